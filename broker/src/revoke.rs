//! Killing tokens, and retrying until the homeserver confirms.
//!
//! A failed revocation (network, timeout, 5xx, 429) is retried with
//! exponential backoff and jitter, capped at a minute, honouring the server's
//! `retry_after_ms`. Its journal `begin` record stays unresolved until it
//! succeeds, so a broker restart continues it through recovery.

use crate::audit::AuditLog;
use crate::homeserver::{Homeserver, HsError};
use crate::journal::Journal;
use mxtoken_proto::{
    AccessToken, AuditEvent, AuditRecord, PendingRevocation, Revocation, Timestamp,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// A revocation the homeserver has not confirmed yet.
#[derive(Debug, Clone)]
struct Pending {
    profile: String,
    since: SystemTime,
    started: Instant,
    overdue_after: Duration,
    last_error: String,
    attempts: u32,
}

/// Revokes tokens; failed revocations are retried in the background.
#[derive(Debug, Clone)]
pub struct Revoker {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    journal: Arc<Journal>,
    audit: Arc<AuditLog>,
}

/// Calls `/logout` with the token. A token the server does not know is as
/// good as revoked.
pub async fn logout(hs: &Homeserver, token: &AccessToken) -> Result<(), HsError> {
    match hs.logout(token).await {
        Err(e) if e.errcode() == Some("M_UNKNOWN_TOKEN") => Ok(()),
        other => other,
    }
}

/// Which lease a revocation is for, and when failing becomes an alarm.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Lease id.
    pub lease_id: &'a str,
    /// Profile name.
    pub profile: &'a str,
    /// Failing longer than this is reported loudly (the profile's `max_ttl`).
    pub overdue_after: Duration,
    /// Whether success ends the lease in the journal (not for a token
    /// rotated out of a lease that goes on).
    pub ends_lease: bool,
}

impl Revoker {
    /// A revoker that records completed revocations in `journal`.
    pub fn new(journal: Arc<Journal>) -> Self {
        Self {
            pending: Arc::default(),
            journal,
            audit: Arc::new(AuditLog::disabled()),
        }
    }

    /// Records revocations that succeed only after retrying in `audit` (the
    /// first attempt's outcome is recorded by the broker).
    pub fn with_audit(mut self, audit: Arc<AuditLog>) -> Self {
        self.audit = audit;
        self
    }

    /// Revokes `token` now; on failure keeps retrying in the background and
    /// answers [`Revocation::Pending`].
    pub async fn revoke(
        &self,
        target: Target<'_>,
        hs: &Homeserver,
        token: AccessToken,
    ) -> Revocation {
        match logout(hs, &token).await {
            Ok(()) => {
                if target.ends_lease {
                    self.journal.end(target.lease_id);
                }
                Revocation::Revoked
            }
            Err(e) => {
                tracing::warn!(lease = target.lease_id, error = %e, "revocation failed; will retry");
                let pending = Pending {
                    profile: target.profile.to_owned(),
                    since: SystemTime::now(),
                    started: Instant::now(),
                    overdue_after: target.overdue_after,
                    last_error: e.to_string(),
                    attempts: 1,
                };
                self.lock().insert(target.lease_id.to_owned(), pending);
                let this = self.clone();
                let (lease_id, hs, ends) =
                    (target.lease_id.to_owned(), hs.clone(), target.ends_lease);
                tokio::spawn(async move { this.retry(lease_id, hs, token, e, ends).await });
                Revocation::Pending
            }
        }
    }

    async fn retry(
        &self,
        lease_id: String,
        hs: Homeserver,
        token: AccessToken,
        mut last: HsError,
        ends_lease: bool,
    ) {
        let mut delay = FIRST_RETRY;
        let mut warned_overdue = false;
        loop {
            let wait = match &last {
                HsError::RateLimited {
                    retry_after: Some(d),
                    ..
                } => (*d).max(delay),
                _ => delay,
            };
            tokio::time::sleep(jitter(wait)).await;
            match logout(&hs, &token).await {
                Ok(()) => {
                    let done = self.lock().remove(&lease_id);
                    if ends_lease {
                        self.journal.end(&lease_id);
                    }
                    let mut r = AuditRecord::new(
                        Timestamp::from_system_time(SystemTime::now()),
                        AuditEvent::Revoked,
                    );
                    r.lease_id = Some(lease_id.clone());
                    r.profile = done.as_ref().map(|p| p.profile.clone());
                    r.detail = done.map(|p| format!("after {} failed attempts", p.attempts));
                    self.audit.record(&r);
                    tracing::info!(lease = %lease_id, "revocation succeeded after retrying");
                    return;
                }
                Err(e) => {
                    let overdue = self.lock().get_mut(&lease_id).is_some_and(|p| {
                        p.attempts += 1;
                        p.last_error = e.to_string();
                        p.started.elapsed() > p.overdue_after
                    });
                    if overdue && !warned_overdue {
                        tracing::error!(lease = %lease_id, error = %e, "revocation has been failing for longer than max_ttl; the token may still be valid on the homeserver");
                        warned_overdue = true;
                    } else {
                        tracing::warn!(lease = %lease_id, error = %e, "revocation still failing; will retry");
                    }
                    last = e;
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// Revocations not yet confirmed, oldest first.
    pub fn pending(&self) -> Vec<PendingRevocation> {
        let mut v: Vec<PendingRevocation> = self
            .lock()
            .iter()
            .map(|(id, p)| PendingRevocation {
                lease_id: id.clone(),
                profile: p.profile.clone(),
                since: Timestamp::from_system_time(p.since),
                attempts: p.attempts,
                last_error: p.last_error.clone(),
                overdue: p.started.elapsed() > p.overdue_after,
            })
            .collect();
        v.sort_by_key(|a| a.since);
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Up to 25% random extra, so many retries do not hit the server in step.
fn jitter(d: Duration) -> Duration {
    use rand::Rng;
    d + d.mul_f64(rand::rng().random_range(0.0..0.25))
}
