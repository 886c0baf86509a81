//! Killing tokens, and retrying until the homeserver confirms.

use crate::homeserver::{Homeserver, HsError};
use mxtoken_proto::{AccessToken, Revocation};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// A revocation the homeserver has not confirmed yet.
#[derive(Debug, Clone)]
pub struct Pending {
    /// When the first attempt failed.
    pub since: Instant,
    /// The last failure.
    pub last_error: String,
    /// Attempts so far.
    pub attempts: u32,
}

/// Revokes tokens; failed revocations are retried in the background.
#[derive(Debug, Clone, Default)]
pub struct Revoker {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
}

/// Calls `/logout` with the token. A token the server does not know is as
/// good as revoked.
pub async fn logout(hs: &Homeserver, token: &AccessToken) -> Result<(), HsError> {
    match hs.logout(token).await {
        Err(e) if e.errcode() == Some("M_UNKNOWN_TOKEN") => Ok(()),
        other => other,
    }
}

impl Revoker {
    /// Revokes `token` now; on failure, keeps retrying in the background and
    /// answers [`Revocation::Pending`].
    pub async fn revoke(&self, lease_id: &str, hs: &Homeserver, token: AccessToken) -> Revocation {
        match logout(hs, &token).await {
            Ok(()) => Revocation::Revoked,
            Err(e) => {
                tracing::warn!(lease = lease_id, error = %e, "revocation failed; will retry");
                self.lock().insert(
                    lease_id.to_owned(),
                    Pending {
                        since: Instant::now(),
                        last_error: e.to_string(),
                        attempts: 1,
                    },
                );
                let this = self.clone();
                let (lease_id, hs) = (lease_id.to_owned(), hs.clone());
                tokio::spawn(async move { this.retry(lease_id, hs, token, e).await });
                Revocation::Pending
            }
        }
    }

    async fn retry(&self, lease_id: String, hs: Homeserver, token: AccessToken, mut last: HsError) {
        let mut delay = FIRST_RETRY;
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
                    self.lock().remove(&lease_id);
                    tracing::info!(lease = %lease_id, "revocation succeeded after retrying");
                    return;
                }
                Err(e) => {
                    if let Some(p) = self.lock().get_mut(&lease_id) {
                        p.attempts += 1;
                        p.last_error = e.to_string();
                    }
                    tracing::warn!(lease = %lease_id, error = %e, "revocation still failing; will retry");
                    last = e;
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// Revocations not yet confirmed.
    pub fn pending(&self) -> HashMap<String, Pending> {
        self.lock().clone()
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
