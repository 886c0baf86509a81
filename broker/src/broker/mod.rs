//! The broker's state: profiles, live leases, and how a lease begins and ends.
//!
//! A lease ends exactly once: whoever removes it from the table (release,
//! expiry, bound-process exit, shutdown) revokes its token.
//!
//! Submodules: `renew` (extending and rotating leases) and `housekeeping`
//! (start-up recovery, sweep, and `status --check`).

mod housekeeping;
mod renew;

use crate::audit::AuditLog;
use crate::confirm::Confirmer;
use crate::homeserver::HsError;
use crate::journal::{Journal, LeaseRecord};
use crate::mint::Minter;
use crate::platform::ExitWatch;
use crate::revoke::{Revoker, Target};
use mxtoken_proto::{
    AccessToken, ApiError, AuditEvent, AuditRecord, ConfirmRequest, CreateLease, ErrorCode,
    LeaseGranted, LeaseInfo, LockState, MintKind, PROTOCOL_VERSION, ProfileLock, ProfileStatus,
    Recovered, Released, Revocation, Status, Timestamp,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::task::AbortHandle;

/// Who is asking, from the socket's peer credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's uid.
    pub uid: u32,
    /// The peer's pid, when the OS tells it.
    pub pid: Option<u32>,
    /// The peer's executable (`/proc/PID/exe`), when the OS tells it.
    pub exe: Option<String>,
}

/// Settings of the broker beyond its profiles.
#[derive(Debug)]
pub struct BrokerOptions {
    /// Live leases one uid may hold.
    pub max_leases_per_uid: usize,
    /// How long a `confirm = true` lease waits for the user.
    pub confirm_timeout: Duration,
    /// Where lease events are recorded.
    pub audit: Arc<AuditLog>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        let limits = crate::config::Limits::default();
        Self {
            max_leases_per_uid: limits.max_leases_per_uid,
            confirm_timeout: limits.confirm_timeout,
            audit: Arc::new(AuditLog::disabled()),
        }
    }
}

/// Why a lease ended; for logs.
#[derive(Debug, Clone, Copy)]
enum EndReason {
    Released,
    Expired,
    ProcessExited(u32),
    Shutdown,
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::Released => f.write_str("released"),
            EndReason::Expired => f.write_str("expired"),
            EndReason::ProcessExited(pid) => write!(f, "bound process {pid} exited"),
            EndReason::Shutdown => f.write_str("broker shutting down"),
        }
    }
}

struct LiveLease {
    info: LeaseInfo,
    token: AccessToken,
    watcher: AbortHandle,
    /// When the lease expires; renewal moves it and the watcher follows.
    deadline: tokio::sync::watch::Sender<tokio::time::Instant>,
}

/// The broker. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    default_profile: String,
    minters: BTreeMap<String, Minter>,
    leases: Mutex<HashMap<String, LiveLease>>,
    revoker: Revoker,
    journal: Arc<Journal>,
    /// Broker devices in use outside the lease table — leases being minted,
    /// housekeeping sessions — so a concurrent sweep leaves them alone.
    busy_devices: Mutex<HashSet<String>>,
    /// Profiles whose recovery has not finished: they grant no leases, since
    /// recovery may log the minter out everywhere.
    recovering: Mutex<BTreeSet<String>>,
    recovery: Mutex<Vec<Recovered>>,
    options: BrokerOptions,
    confirmer: Confirmer,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("profiles", &self.inner.minters.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The longest purpose text accepted.
const MAX_PURPOSE_CHARS: usize = 200;

impl Broker {
    /// Builds the broker from one minter per profile and the open journal.
    pub fn new(default_profile: String, minters: Vec<Minter>, journal: Journal) -> Self {
        Self::with_options(default_profile, minters, journal, BrokerOptions::default())
    }

    /// [`Broker::new`] with limits and an audit log.
    pub fn with_options(
        default_profile: String,
        minters: Vec<Minter>,
        journal: Journal,
        options: BrokerOptions,
    ) -> Self {
        let minters = minters
            .into_iter()
            .map(|m| (m.profile().name.clone(), m))
            .collect();
        let journal = Arc::new(journal);
        Self {
            inner: Arc::new(Inner {
                default_profile,
                minters,
                leases: Mutex::new(HashMap::new()),
                revoker: Revoker::new(journal.clone()).with_audit(options.audit.clone()),
                journal,
                busy_devices: Mutex::default(),
                recovering: Mutex::default(),
                recovery: Mutex::default(),
                options,
                confirmer: Confirmer::default(),
            }),
        }
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveLease>> {
        lock(&self.inner.leases)
    }

    fn minter(&self, name: Option<&str>) -> Result<&Minter, ApiError> {
        let name = name.unwrap_or(&self.inner.default_profile);
        if !crate::config::valid_profile_name(name) {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!(
                    "profile: {:?} is not a profile name; names use only letters, digits, '-' and '_'",
                    truncate(name)
                ),
            ));
        }
        self.inner.minters.get(name).ok_or_else(|| {
            let known = self
                .inner
                .minters
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            ApiError::new(
                ErrorCode::UnknownProfile,
                format!("there is no profile {name:?}; known profiles: {known}"),
            )
        })
    }

    /// Grants a lease: mints a token and arms its end (TTL, bound process).
    /// Records `created` or `refused` in the audit log.
    pub async fn create_lease(
        &self,
        peer: Peer,
        req: CreateLease,
    ) -> Result<LeaseGranted, ApiError> {
        let (profile, purpose) = (req.profile.clone(), req.purpose.clone());
        let result = self.grant(&peer, req).await;
        match &result {
            Ok(g) => self.audit_lease(AuditEvent::Created, &g.lease, None),
            Err(e) => {
                let profile = profile.unwrap_or_else(|| self.inner.default_profile.clone());
                self.audit_refused(&peer, Some(profile), purpose, e);
            }
        }
        result
    }

    /// Records a refused request (or connection) in the audit log.
    pub fn audit_refused(
        &self,
        peer: &Peer,
        profile: Option<String>,
        purpose: Option<String>,
        why: &ApiError,
    ) {
        let mut r = AuditRecord::new(now(), AuditEvent::Refused);
        r.profile = profile.map(|p| truncate(&p));
        r.purpose = purpose.map(|p| truncate(&p));
        r.peer_uid = Some(peer.uid);
        r.peer_pid = peer.pid;
        r.peer_exe.clone_from(&peer.exe);
        r.detail = Some(why.message.clone());
        self.inner.options.audit.record(&r);
    }

    fn audit_lease(&self, event: AuditEvent, l: &LeaseInfo, detail: Option<String>) {
        let mut r = AuditRecord::new(now(), event);
        r.lease_id = Some(l.id.clone());
        r.profile = Some(l.profile.clone());
        r.purpose.clone_from(&l.purpose);
        r.peer_uid = Some(l.peer_uid);
        r.peer_pid = l.peer_pid;
        r.peer_exe.clone_from(&l.peer_exe);
        r.created_at = Some(l.created_at);
        r.expires_at = Some(l.expires_at);
        r.detail = detail;
        self.inner.options.audit.record(&r);
    }

    /// The `mxtoken confirm` side of confirm-on-issue.
    pub fn confirmer(&self) -> &Confirmer {
        &self.inner.confirmer
    }

    async fn grant(&self, peer: &Peer, req: CreateLease) -> Result<LeaseGranted, ApiError> {
        let minter = self.minter(req.profile.as_deref())?;
        let profile = minter.profile();
        if lock(&self.inner.recovering).contains(&profile.name) {
            return Err(ApiError::new(
                ErrorCode::HomeserverUnreachable,
                format!(
                    "profile {:?} is still revoking tokens left by the broker's last run (the homeserver at {} is not answering); try again shortly",
                    profile.name, profile.homeserver
                ),
            ));
        }
        let ttl = requested_ttl(req.ttl.as_deref(), profile)?;
        let purpose = check_purpose(req.purpose)?;
        let max = self.inner.options.max_leases_per_uid;
        let held = self
            .leases()
            .values()
            .filter(|l| l.info.peer_uid == peer.uid)
            .count();
        if held >= max {
            return Err(ApiError::new(
                ErrorCode::LimitReached,
                format!(
                    "uid {} already holds {held} live leases (max_leases_per_uid = {max}); release some (`mxtoken leases` lists them) or raise max_leases_per_uid in the config",
                    peer.uid
                ),
            ));
        }
        if profile.confirm && (profile.confirm_exec || !req.bind_to_client) {
            let ask = ConfirmRequest {
                id: String::new(),
                profile: profile.name.clone(),
                purpose: purpose.clone(),
                bound_to_client: req.bind_to_client,
                peer_uid: peer.uid,
                peer_pid: peer.pid,
                peer_exe: peer.exe.clone(),
                ttl_secs: ttl.as_secs(),
            };
            self.inner
                .confirmer
                .ask(ask, self.inner.options.confirm_timeout)
                .await?;
        }
        let watches = self.bind_watches(peer, req.bind_to_client, req.bind_pid)?;
        let bound_pid = watches.first().map(ExitWatch::pid);

        let id = crate::ids::new_lease_id();
        let created_at = Timestamp::from_system_time(SystemTime::now());
        let expires_at = created_at.saturating_add(ttl);
        // The TTL runs from the grant, not from when the mint returns: a
        // password login can take a quarter second, and the lease must end at
        // the `expires_at` the client is told.
        let ends_at = tokio::time::Instant::now() + ttl;
        let device_id = (profile.mint == MintKind::Login).then(|| crate::mint::device_id_for(&id));
        let record = LeaseRecord {
            lease: id.clone(),
            profile: profile.name.clone(),
            user: profile.user.clone(),
            device_id: device_id.clone(),
            mint: profile.mint,
            created_at,
            expires_at,
        };
        // Durable before the token can exist: a crash from here on leaves a
        // record that recovery acts on.
        let journal = self.inner.journal.clone();
        journal.begin(record).await.map_err(|e| {
            tracing::error!(error = %e, "cannot write the lease journal");
            ApiError::new(
                ErrorCode::Internal,
                format!("{e}; the broker refuses to mint tokens it could not revoke after a crash"),
            )
        })?;
        let minting_guard = BusyDevice::new(self, device_id);
        let minted = match minter.mint(&id, purpose.as_deref(), expires_at).await {
            Ok(m) => m,
            Err(e) => {
                // A failed login leaves no device and an admin-api failure no token.
                self.inner.journal.end(&id);
                return Err(mint_error(&e, minter));
            }
        };

        let info = LeaseInfo {
            id: id.clone(),
            profile: profile.name.clone(),
            purpose,
            user_id: profile.lease_user.clone(),
            homeserver: display_url(&profile.homeserver),
            mint: profile.mint,
            device_id: minted.device_id,
            created_at,
            expires_at,
            peer_uid: peer.uid,
            peer_pid: peer.pid,
            bound_pid,
            peer_exe: peer.exe.clone(),
        };
        tracing::info!(
            lease = %id, profile = %info.profile, purpose = info.purpose.as_deref().unwrap_or(""),
            peer_uid = peer.uid, peer_pid = ?peer.pid, bound_pid = ?bound_pid, ttl = %humantime::format_duration(ttl),
            "lease granted"
        );
        // Insert before arming the watcher so it always finds the lease.
        let mut leases = self.leases();
        let (deadline, deadline_rx) = tokio::sync::watch::channel(ends_at);
        let watcher =
            tokio::spawn(self.clone().watch(id.clone(), deadline_rx, watches)).abort_handle();
        leases.insert(
            id,
            LiveLease {
                info: info.clone(),
                token: minted.token.clone(),
                watcher,
                deadline,
            },
        );
        drop(leases);
        drop(minting_guard);
        Ok(LeaseGranted {
            lease: info,
            token: minted.token,
            token_env: profile.token_env.clone(),
        })
    }

    fn bind_watches(
        &self,
        peer: &Peer,
        to_client: bool,
        pid: Option<u32>,
    ) -> Result<Vec<ExitWatch>, ApiError> {
        let mut watches = Vec::new();
        if to_client {
            let Some(client) = peer.pid else {
                return Err(ApiError::new(
                    ErrorCode::BadBindPid,
                    "the OS did not report the client's pid, so the lease cannot be bound to it",
                ));
            };
            watches.push(ExitWatch::new(client).map_err(|e| {
                ApiError::new(
                    ErrorCode::BadBindPid,
                    format!("cannot watch the client process {client}: {e}"),
                )
            })?);
        }
        if let Some(pid) = pid {
            let gone = || {
                ApiError::new(
                    ErrorCode::BadBindPid,
                    format!("bind_pid: there is no process {pid}"),
                )
            };
            // Open the watch first, then check the owner: the pid cannot be
            // recycled while we hold a pidfd to it.
            let watch = ExitWatch::new(pid).map_err(|_| gone())?;
            let owner = crate::platform::process_uid(pid).map_err(|_| gone())?;
            if owner != peer.uid {
                return Err(ApiError::new(
                    ErrorCode::BadBindPid,
                    format!(
                        "bind_pid: process {pid} belongs to another user; bind the lease to one of your own processes"
                    ),
                ));
            }
            watches.insert(0, watch);
        }
        Ok(watches)
    }

    async fn watch(
        self,
        id: String,
        mut deadline: tokio::sync::watch::Receiver<tokio::time::Instant>,
        watches: Vec<ExitWatch>,
    ) {
        let expiry = async {
            loop {
                let at = *deadline.borrow_and_update();
                tokio::select! {
                    () = tokio::time::sleep_until(at) => return,
                    changed = deadline.changed() => {
                        if changed.is_err() {
                            return std::future::pending().await;
                        }
                    }
                }
            }
        };
        let any_exit = async {
            match watches.as_slice() {
                [] => std::future::pending().await,
                [only] => {
                    only.exited().await;
                    only.pid()
                }
                [first, second, ..] => tokio::select! {
                    () = first.exited() => first.pid(),
                    () = second.exited() => second.pid(),
                },
            }
        };
        let reason = tokio::select! {
            () = expiry => EndReason::Expired,
            pid = any_exit => EndReason::ProcessExited(pid),
        };
        self.end(&id, reason).await;
    }

    /// Ends a lease now and revokes its token (`DELETE /v1/leases/{id}`).
    pub async fn release(&self, peer: &Peer, id: &str) -> Result<Released, ApiError> {
        {
            let leases = self.leases();
            let Some(lease) = leases.get(id) else {
                return Err(unknown_lease(id));
            };
            if lease.info.peer_uid != peer.uid {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!("lease {id} belongs to another user"),
                ));
            }
            lease.watcher.abort();
        }
        let revocation = self
            .end(id, EndReason::Released)
            .await
            .unwrap_or(Revocation::Revoked);
        Ok(Released {
            lease_id: id.to_owned(),
            revocation,
        })
    }

    /// Removes the lease and revokes its token; `None` if someone else already did.
    async fn end(&self, id: &str, reason: EndReason) -> Option<Revocation> {
        let lease = self.leases().remove(id)?;
        let minter = self.inner.minters.get(&lease.info.profile)?;
        let outcome = self
            .inner
            .revoker
            .revoke(
                Target {
                    lease_id: id,
                    profile: &lease.info.profile,
                    overdue_after: minter.profile().max_ttl,
                    ends_lease: true,
                },
                minter.homeserver(),
                lease.token,
            )
            .await;
        let ended = match reason {
            EndReason::Released => AuditEvent::Released,
            EndReason::Expired => AuditEvent::Expired,
            EndReason::ProcessExited(_) => AuditEvent::ProcessExited,
            EndReason::Shutdown => AuditEvent::Shutdown,
        };
        self.audit_lease(ended, &lease.info, Some(reason.to_string()));
        match outcome {
            Revocation::Revoked => {
                self.audit_lease(AuditEvent::Revoked, &lease.info, None);
                tracing::info!(lease = %id, reason = %reason, "lease ended; token revoked")
            }
            Revocation::Pending => {
                self.audit_lease(
                    AuditEvent::RevokeFailed,
                    &lease.info,
                    Some("the homeserver did not confirm; the broker keeps retrying".into()),
                );
                tracing::warn!(lease = %id, reason = %reason, "lease ended; revocation pending")
            }
        }
        Some(outcome)
    }

    /// Live leases, oldest first. Tokens are not included.
    pub fn list(&self) -> Vec<LeaseInfo> {
        let mut v: Vec<LeaseInfo> = self.leases().values().map(|l| l.info.clone()).collect();
        v.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        v
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Status {
        let pending = self.inner.revoker.pending();
        let profiles = self
            .inner
            .minters
            .values()
            .map(|m| {
                let p = m.profile();
                ProfileStatus {
                    name: p.name.clone(),
                    homeserver: display_url(&p.homeserver),
                    user_id: p.user.clone(),
                    lease_user: p.lease_user.clone(),
                    mint: p.mint,
                    locked: m.password().is_locked(),
                    needs_passphrase: m.password().needs_passphrase(),
                    lock_after_secs: m.password().lock_after().map(|d| d.as_secs()),
                    default_ttl_secs: p.default_ttl.as_secs(),
                    max_ttl_secs: p.max_ttl.as_secs(),
                    token_env: p.token_env.clone(),
                }
            })
            .collect();
        Status {
            protocol_version: PROTOCOL_VERSION,
            broker_version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            default_profile: self.inner.default_profile.clone(),
            profiles,
            live_leases: self.leases().len(),
            pending_revocations: pending.len(),
            pending,
            recovery: lock(&self.inner.recovery).clone(),
        }
    }

    /// Starts the `lock_after` watchers; call once, inside the runtime.
    pub fn start_idle_locks(&self) {
        for name in self.inner.minters.keys() {
            let this = self.clone();
            let name = name.clone();
            tokio::spawn(async move {
                if let Some(m) = this.inner.minters.get(&name) {
                    m.lock_when_idle().await;
                }
            });
        }
    }

    /// `POST /v1/lock`: drops the password of `profile`, or of every profile.
    /// Live leases keep running; new ones need `unlock`.
    pub async fn lock(&self, profile: Option<&str>) -> Result<LockState, ApiError> {
        let minters: Vec<&Minter> = match profile {
            Some(name) => vec![self.minter(Some(name))?],
            None => self.inner.minters.values().collect(),
        };
        let mut profiles = Vec::new();
        for m in minters {
            m.lock().await;
            profiles.push(ProfileLock {
                name: m.profile().name.clone(),
                locked: m.password().is_locked(),
            });
        }
        Ok(LockState { profiles })
    }

    /// `POST /v1/profiles/{name}/unlock`.
    pub async fn unlock(
        &self,
        profile: &str,
        passphrase: Option<secrecy::SecretString>,
    ) -> Result<LockState, ApiError> {
        let m = self.minter(Some(profile))?;
        m.password().unlock(passphrase).await?;
        // A freshly unsealed password may be the corrected one.
        m.forget_refused_password();
        Ok(LockState {
            profiles: vec![ProfileLock {
                name: m.profile().name.clone(),
                locked: m.password().is_locked(),
            }],
        })
    }

    /// Ends every lease (revoking its token) and closes root sessions.
    /// Returns how many revocations the homeserver has not confirmed.
    pub async fn shutdown(&self) -> usize {
        let ids: Vec<String> = {
            let leases = self.leases();
            leases.values().for_each(|l| l.watcher.abort());
            leases.keys().cloned().collect()
        };
        tracing::info!(
            leases = ids.len(),
            "shutting down: revoking every live lease"
        );
        let mut set = tokio::task::JoinSet::new();
        for id in ids {
            let this = self.clone();
            set.spawn(async move { this.end(&id, EndReason::Shutdown).await });
        }
        while set.join_next().await.is_some() {}
        for m in self.inner.minters.values() {
            m.close().await;
        }
        self.inner.journal.flush().await;
        let pending = self.inner.revoker.pending();
        if !pending.is_empty() {
            tracing::error!(
                count = pending.len(),
                "exiting with revocations the homeserver has not confirmed"
            );
        }
        pending.len()
    }
}

/// Marks a device as in use (protected from sweeps) until dropped.
pub(super) struct BusyDevice<'a> {
    broker: &'a Broker,
    device: Option<String>,
}

impl<'a> BusyDevice<'a> {
    pub(super) fn new(broker: &'a Broker, device: Option<String>) -> Self {
        if let Some(d) = &device {
            lock(&broker.inner.busy_devices).insert(d.clone());
        }
        Self { broker, device }
    }
}

impl Drop for BusyDevice<'_> {
    fn drop(&mut self) {
        if let Some(d) = &self.device {
            lock(&self.broker.inner.busy_devices).remove(d);
        }
    }
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// Client-chosen text cut to a length fit for a log line or an error.
fn truncate(text: &str) -> String {
    text.chars().take(MAX_PURPOSE_CHARS).collect()
}

/// The base URL as users write it: without the trailing slash we keep
/// internally, so `$MATRIX_HOMESERVER_URL/_matrix/...` has no double slash.
fn display_url(u: &url::Url) -> String {
    u.as_str().trim_end_matches('/').to_owned()
}

/// The TTL a request asks for, checked against its profile's default and
/// `max_ttl`.
pub fn requested_ttl(
    text: Option<&str>,
    profile: &crate::config::Profile,
) -> Result<Duration, ApiError> {
    parse_ttl(text, profile.default_ttl, profile.max_ttl, &profile.name)
}

/// Validates a requested TTL against a default and a maximum.
fn parse_ttl(
    text: Option<&str>,
    default: Duration,
    max: Duration,
    profile: &str,
) -> Result<Duration, ApiError> {
    let Some(text) = text else { return Ok(default) };
    let bad = |why: &str| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("ttl: {text:?} {why}; write a duration such as \"90s\" or \"5m\""),
        )
    };
    if text.trim_start().starts_with('-') {
        return Err(bad("is negative"));
    }
    let ttl = humantime::parse_duration(text.trim()).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => bad("is too large"),
        _ => bad("is not a duration"),
    })?;
    if ttl.is_zero() {
        return Err(bad("is zero"));
    }
    if ttl > max {
        return Err(ApiError::new(
            ErrorCode::TtlTooLong,
            format!(
                "ttl: {} is longer than profile {profile:?} allows (max_ttl = {}); ask for less or raise max_ttl in the config",
                humantime::format_duration(ttl),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(ttl)
}

fn check_purpose(purpose: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(p) = purpose else { return Ok(None) };
    if p.chars().count() > MAX_PURPOSE_CHARS {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("purpose: longer than {MAX_PURPOSE_CHARS} characters"),
        ));
    }
    if p.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "purpose: must not contain control characters",
        ));
    }
    Ok(Some(p).filter(|p| !p.is_empty()))
}

/// Turns a homeserver failure during minting into what the client is told.
fn unknown_lease(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnknownLease,
        format!("there is no live lease {id:?}; it may have ended already"),
    )
}

fn mint_error(e: &HsError, minter: &Minter) -> ApiError {
    let p = minter.profile();
    let (code, message) = match e {
        HsError::RateLimited { retry_after, .. } => {
            let mut err = ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "the homeserver at {} is rate-limiting logins for profile {:?}",
                    p.homeserver, p.name
                ),
            );
            err.retry_after_ms =
                retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            return err;
        }
        HsError::Unreachable { .. } => (ErrorCode::HomeserverUnreachable, e.to_string()),
        HsError::NotMatrix { .. } => (ErrorCode::HomeserverError, e.to_string()),
        // Not a failure worth a warning: the user locked it.
        HsError::Locked { .. } => return ApiError::new(ErrorCode::Locked, e.to_string()),
        HsError::Matrix {
            errcode,
            error,
            status,
            ..
        } => match (errcode.as_str(), error.as_str()) {
            ("M_FORBIDDEN", err) if err.contains("not a server admin") => (
                ErrorCode::HomeserverRefused,
                format!(
                    "the homeserver says {} (profile {:?}) is not a server admin; make it an admin or use another account",
                    p.user, p.name
                ),
            ),
            ("M_FORBIDDEN", _) => (
                ErrorCode::WrongPassword,
                format!(
                    "the homeserver at {} refused the password of {} (profile {:?}){}; store the right one and restart mxtokend",
                    p.homeserver,
                    p.user,
                    p.name,
                    if error == crate::mint::PASSWORD_NOT_RESENT {
                        " earlier, so the broker does not send it again"
                    } else {
                        ""
                    }
                ),
            ),
            ("M_NOT_FOUND", _) if *status == 404 => (
                ErrorCode::HomeserverRefused,
                format!(
                    "the homeserver does not know lease_user {} (profile {:?}); create that account or fix lease_user",
                    p.lease_user, p.name
                ),
            ),
            ("M_UNRECOGNIZED", _) => (
                ErrorCode::HomeserverRefused,
                format!(
                    "the homeserver at {} does not offer this API ({}); check homeserver and mint for profile {:?}",
                    p.homeserver, error, p.name
                ),
            ),
            _ => (
                ErrorCode::HomeserverRefused,
                format!("{e} (profile {:?})", p.name),
            ),
        },
    };
    tracing::warn!(profile = %p.name, error = %e, "minting a token failed");
    ApiError::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ttls_name_the_field_and_the_problem() {
        let (d, max) = (Duration::from_secs(300), Duration::from_secs(3600));
        let msg = |t: &str| parse_ttl(Some(t), d, max, "admin").expect_err(t).message;
        assert!(msg("0s").starts_with("ttl: \"0s\" is zero;"));
        assert!(msg("-5m").starts_with("ttl: \"-5m\" is negative;"));
        assert!(msg("soon").starts_with("ttl: \"soon\" is not a duration;"));
        assert!(msg("99999999999999999999999h").contains("is too large"));
        assert!(msg("2h").starts_with("ttl: 2h is longer than profile \"admin\" allows"));
        assert_eq!(parse_ttl(None, d, max, "admin").expect("default"), d);
        assert_eq!(
            parse_ttl(Some(" 90s "), d, max, "admin").expect("ok"),
            Duration::from_secs(90)
        );
    }
}
