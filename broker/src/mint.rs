//! Getting a fresh token for a lease from the homeserver.

use crate::config::Profile;
use crate::homeserver::{Homeserver, HsError};
use crate::password::PasswordHolder;
use mxtoken_proto::{AccessToken, DEVICE_PREFIX, MintKind, Timestamp};
use secrecy::SecretString;
use std::sync::Arc;
use tokio::sync::Mutex;

/// A token minted for one lease.
#[derive(Debug)]
pub struct Minted {
    /// The token.
    pub token: AccessToken,
    /// The device the login created (`login` mint only).
    pub device_id: Option<String>,
}

/// Mints tokens for one profile.
#[derive(Debug)]
pub struct Minter {
    profile: Profile,
    hs: Homeserver,
    password: Arc<PasswordHolder>,
    /// `admin-api` only: the minter's own session, logged in at the first
    /// lease and kept in memory only. Never handed out.
    root: Mutex<Option<RootSession>>,
    /// `login` only: whether a lease token has been seen to have admin rights.
    /// Checked once, at the first lease, so a non-admin account is reported
    /// as such instead of handing out useless tokens.
    admin_verified: std::sync::atomic::AtomicBool,
    /// Set when the homeserver refuses the password: it is not sent again
    /// (each failure feeds Synapse's failed-login limiter for the account).
    password_refused: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Clone)]
struct RootSession {
    token: AccessToken,
    device_id: String,
}

/// An admin session for the broker's own housekeeping (recovery, sweep).
#[derive(Debug)]
pub struct AdminSession {
    /// Its token.
    pub token: AccessToken,
    /// Its device, which housekeeping must not delete.
    pub device_id: String,
    /// True if it was logged in for this job and must be logged out after.
    temporary: bool,
}

impl Minter {
    /// A minter for `profile`, using the password in `password` while it is unlocked.
    pub fn new(profile: Profile, hs: Homeserver, password: Arc<PasswordHolder>) -> Self {
        Self {
            profile,
            hs,
            password,
            root: Mutex::new(None),
            admin_verified: std::sync::atomic::AtomicBool::new(false),
            password_refused: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The homeserver client.
    pub fn homeserver(&self) -> &Homeserver {
        &self.hs
    }

    /// The profile's password holder.
    pub fn password(&self) -> &Arc<PasswordHolder> {
        &self.password
    }

    /// Drops the password and logs out the `admin-api` root session, which
    /// is worth as much as the password. Returns whether it was unlocked.
    pub async fn lock(&self) -> bool {
        let was_unlocked = self.password.lock();
        self.close().await;
        if was_unlocked {
            tracing::info!(profile = %self.profile.name, "locked");
        }
        was_unlocked
    }

    /// The password, or [`HsError::Locked`]: every homeserver login, leases
    /// and housekeeping alike, waits for `unlock`.
    fn current_password(&self) -> Result<SecretString, HsError> {
        self.password.current().map_err(|_| HsError::Locked {
            profile: self.profile.name.clone(),
        })
    }

    /// Locks the profile each time it has been idle for `lock_after`.
    pub async fn lock_when_idle(&self) {
        loop {
            self.password.idle_locked().await;
            self.close().await;
        }
    }

    /// Mints a token for lease `lease_id` that is valid until `expires_at`
    /// (enforced by the server for `admin-api`, by the broker for `login`).
    pub async fn mint(
        &self,
        lease_id: &str,
        purpose: Option<&str>,
        expires_at: Timestamp,
    ) -> Result<Minted, HsError> {
        // Checked for admin-api too, so a locked profile mints nothing even
        // while a root session would still be usable.
        let password = self.current_password()?;
        match self.profile.mint {
            MintKind::Login => {
                let device_id = device_id_for(lease_id);
                let display = match purpose {
                    Some(p) => format!("mxtoken lease {lease_id}: {p}"),
                    None => format!("mxtoken lease {lease_id}"),
                };
                let s = self.login(&password, &device_id, &display).await?;
                self.verify_admin_once(&s.token).await?;
                Ok(Minted {
                    token: s.token,
                    device_id: Some(s.device_id),
                })
            }
            MintKind::AdminApi => {
                let token = self.mint_admin_api(&password, expires_at).await?;
                Ok(Minted {
                    token,
                    device_id: None,
                })
            }
        }
    }

    /// Lets the next login try the password again (after an unlock).
    pub fn forget_refused_password(&self) {
        self.password_refused
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every password login of this profile goes through here.
    async fn login(
        &self,
        password: &SecretString,
        device_id: &str,
        display: &str,
    ) -> Result<crate::homeserver::LoginSession, HsError> {
        use std::sync::atomic::Ordering;
        if self.password_refused.load(Ordering::Relaxed) {
            return Err(HsError::Matrix {
                base: self.hs.base().to_string(),
                status: 403,
                errcode: "M_FORBIDDEN".into(),
                error: PASSWORD_NOT_RESENT.into(),
            });
        }
        let result = self
            .hs
            .password_login(&self.profile.user, password, device_id, display)
            .await;
        if result.as_ref().err().and_then(HsError::errcode) == Some("M_FORBIDDEN") {
            self.password_refused.store(true, Ordering::Relaxed);
        }
        result
    }

    async fn verify_admin_once(&self, token: &AccessToken) -> Result<(), HsError> {
        use std::sync::atomic::Ordering;
        if self.admin_verified.load(Ordering::Relaxed) {
            return Ok(());
        }
        match self.hs.check_admin(token, &self.profile.user).await {
            Ok(()) => {
                self.admin_verified.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // Do not leave the useless session behind.
                let _ = crate::revoke::logout(&self.hs, token).await;
                Err(e)
            }
        }
    }

    async fn mint_admin_api(
        &self,
        password: &SecretString,
        expires_at: Timestamp,
    ) -> Result<AccessToken, HsError> {
        let root = self.root_session(password).await?;
        match self
            .hs
            .admin_login_as(&root, &self.profile.lease_user, expires_at.unix_ms())
            .await
        {
            Err(e) if e.errcode() == Some("M_UNKNOWN_TOKEN") => {
                // Someone logged our root session out: log in again, once.
                tracing::warn!(profile = %self.profile.name, "root session was logged out on the server; logging in again");
                self.forget_root(&root).await;
                let root = self.root_session(password).await?;
                self.hs
                    .admin_login_as(&root, &self.profile.lease_user, expires_at.unix_ms())
                    .await
            }
            other => other,
        }
    }

    async fn root_session(&self, password: &SecretString) -> Result<AccessToken, HsError> {
        let mut guard = self.root.lock().await;
        if let Some(r) = guard.as_ref() {
            return Ok(r.token.clone());
        }
        let s = self
            .housekeeping_login(password, "BROKER", "root session, never handed out")
            .await?;
        tracing::info!(profile = %self.profile.name, device_id = %s.device_id, "logged in the minter's root session");
        *guard = Some(RootSession {
            token: s.token.clone(),
            device_id: s.device_id,
        });
        Ok(s.token)
    }

    async fn housekeeping_login(
        &self,
        password: &SecretString,
        kind: &str,
        what: &str,
    ) -> Result<crate::homeserver::LoginSession, HsError> {
        let suffix = crate::ids::random_suffix().to_ascii_uppercase();
        let device_id = format!("{DEVICE_PREFIX}{kind}_{suffix}");
        let display = format!("mxtoken broker {what} ({})", self.profile.name);
        self.login(password, &device_id, &display).await
    }

    async fn forget_root(&self, dead: &AccessToken) {
        let mut guard = self.root.lock().await;
        if guard
            .as_ref()
            .is_some_and(|r| r.token.expose() == dead.expose())
        {
            *guard = None;
        }
    }

    /// The device of the current root session, if any.
    pub async fn root_device(&self) -> Option<String> {
        self.root.lock().await.as_ref().map(|r| r.device_id.clone())
    }

    /// An admin session of `user`: the root session for `admin-api`, a
    /// short-lived login otherwise (one login against the rate limit).
    pub async fn admin_session(&self) -> Result<AdminSession, HsError> {
        let password = self.current_password()?;
        if self.profile.mint == MintKind::AdminApi {
            let token = self.root_session(&password).await?;
            let device_id = self.root_device().await.unwrap_or_default();
            return Ok(AdminSession {
                token,
                device_id,
                temporary: false,
            });
        }
        let s = self
            .housekeeping_login(&password, "MAINT", "maintenance session")
            .await?;
        Ok(AdminSession {
            token: s.token,
            device_id: s.device_id,
            temporary: true,
        })
    }

    /// Ends a session from [`Self::admin_session`] if it was made for the job.
    pub async fn end_admin_session(&self, s: AdminSession) {
        if s.temporary {
            if let Err(e) = crate::revoke::logout(&self.hs, &s.token).await {
                tracing::warn!(profile = %self.profile.name, error = %e, "could not log out the maintenance session; the next sweep deletes its device");
            }
        }
    }

    /// Logs out every session of the minter, which also kills every token it
    /// minted through the admin API (recovery with `dedicated_minter`).
    pub async fn logout_everywhere(&self) -> Result<(), HsError> {
        let password = self.current_password()?;
        let s = self
            .housekeeping_login(&password, "RECOVERY", "recovery session")
            .await?;
        self.hs.logout_all(&s.token).await?;
        *self.root.lock().await = None;
        Ok(())
    }

    /// Logs the root session out, if there is one (at broker shutdown).
    pub async fn close(&self) {
        let Some(root) = self.root.lock().await.take() else {
            return;
        };
        match self.hs.logout(&root.token).await {
            Ok(()) => tracing::info!(profile = %self.profile.name, "logged out the root session"),
            Err(e) if e.errcode() == Some("M_UNKNOWN_TOKEN") => {}
            Err(e) => {
                tracing::warn!(profile = %self.profile.name, error = %e, "could not log out the root session")
            }
        }
    }
}

/// The error text of a login the broker did not attempt because the
/// homeserver refused the same password before.
pub const PASSWORD_NOT_RESENT: &str = "password refused earlier; not sent again";

/// The device id of a lease: recognisable by [`DEVICE_PREFIX`].
pub fn device_id_for(lease_id: &str) -> String {
    let suffix = lease_id
        .strip_prefix(crate::ids::LEASE_PREFIX)
        .unwrap_or(lease_id);
    format!("{DEVICE_PREFIX}{}", suffix.to_ascii_uppercase())
}
