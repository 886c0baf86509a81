//! A profile's password in the broker: where it is sealed, and whether it is
//! in memory right now (unlocked) or not (locked).
//!
//! Identity-file and keyring sources unseal at start-up; a passphrase source
//! starts locked until `mxtoken unlock` sends the passphrase. `mxtoken lock`
//! and `lock_after` drop the password (its memory is zeroed); `unlock` opens
//! the source again.

use crate::config::{PasswordConfig, Profile};
use mxtoken_proto::{ApiError, ErrorCode};
use mxtoken_store::{StoreError, age_file, os_keyring};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The password of one profile, locked or not.
pub struct PasswordHolder {
    profile: String,
    user: String,
    source: PasswordConfig,
    lock_after: Option<Duration>,
    state: Mutex<State>,
    /// Wakes the idle watcher when the password comes back or is used.
    changed: tokio::sync::Notify,
}

struct State {
    secret: Option<SecretString>,
    last_used: Instant,
}

impl std::fmt::Debug for PasswordHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHolder")
            .field("profile", &self.profile)
            .field("source", &self.source)
            .field("locked", &self.is_locked())
            .finish_non_exhaustive()
    }
}

impl PasswordHolder {
    /// A locked holder for `profile`'s password.
    pub fn new(profile: &Profile) -> Self {
        Self {
            profile: profile.name.clone(),
            user: profile.user.clone(),
            source: profile.password.clone(),
            lock_after: profile.lock_after,
            state: Mutex::new(State {
                secret: None,
                last_used: Instant::now(),
            }),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// At start-up: unseals identity-file and keyring sources (blocking), and
    /// checks that a passphrase file exists and is one, so a broken config
    /// fails now rather than at the first unlock.
    pub fn open_at_start(&self) -> Result<(), StoreError> {
        match &self.source {
            PasswordConfig::AgePassphrase { age_file: path } => {
                if age_file::is_passphrase_file(path)? {
                    Ok(())
                } else {
                    Err(StoreError::WrongKind {
                        path: path.clone(),
                        problem: "is encrypted to an identity, not with a passphrase; add identity = \"FILE\" to its password entry",
                    })
                }
            }
            _ => {
                let pw = self.unseal(None)?;
                self.put(pw);
                Ok(())
            }
        }
    }

    /// Whether unlocking needs a passphrase.
    pub fn needs_passphrase(&self) -> bool {
        matches!(self.source, PasswordConfig::AgePassphrase { .. })
    }

    /// Whether the password is out of memory.
    pub fn is_locked(&self) -> bool {
        self.state().secret.is_none()
    }

    /// The idle time after which the password is dropped, if configured.
    pub fn lock_after(&self) -> Option<Duration> {
        self.lock_after
    }

    /// A copy of the password for one homeserver call (zeroed when dropped),
    /// or the `locked` error. Counts as use for `lock_after`.
    pub fn current(&self) -> Result<SecretString, ApiError> {
        let mut st = self.state();
        let Some(secret) = st.secret.as_ref() else {
            return Err(ApiError::new(
                ErrorCode::Locked,
                format!(
                    "profile {:?} is locked; unlock it with `mxtoken unlock --profile {}`",
                    self.profile, self.profile
                ),
            ));
        };
        let copy = secret.clone();
        st.last_used = Instant::now();
        drop(st);
        self.changed.notify_waiters();
        Ok(copy)
    }

    /// Drops the password (zeroing it). Returns whether it was unlocked.
    pub fn lock(&self) -> bool {
        let old = self.state().secret.take();
        old.is_some()
    }

    /// Opens the source again: with `passphrase` for a passphrase file, by
    /// reading the identity file or keyring otherwise. Runs the (slow, blocking)
    /// decryption off the async runtime.
    pub async fn unlock(
        self: &std::sync::Arc<Self>,
        passphrase: Option<SecretString>,
    ) -> Result<(), ApiError> {
        let needs = self.needs_passphrase();
        let passphrase = match (needs, passphrase) {
            (true, None) => {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!(
                        "profile {:?} is sealed with a passphrase; send it with `mxtoken unlock --profile {}`",
                        self.profile, self.profile
                    ),
                ));
            }
            (false, Some(_)) => None, // Nothing to use it for; unseal as usual.
            (_, p) => p,
        };
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || this.unseal(passphrase.as_ref()))
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::Internal,
                    "the broker failed while unsealing; see its log",
                )
            })?;
        match result {
            Ok(pw) => {
                self.put(pw);
                tracing::info!(profile = %self.profile, "unlocked");
                Ok(())
            }
            Err(StoreError::WrongPassphrase { .. }) => {
                tracing::warn!(profile = %self.profile, "unlock refused: wrong passphrase");
                Err(ApiError::new(
                    ErrorCode::WrongPassphrase,
                    format!(
                        "the passphrase does not open the password of profile {:?}; it stays locked, try again",
                        self.profile
                    ),
                ))
            }
            Err(e) => {
                tracing::warn!(profile = %self.profile, error = %e, "unlock failed");
                Err(ApiError::new(
                    ErrorCode::Internal,
                    format!("profile {:?} stays locked: {e}", self.profile),
                ))
            }
        }
    }

    fn unseal(&self, passphrase: Option<&SecretString>) -> Result<SecretString, StoreError> {
        match (&self.source, passphrase) {
            (PasswordConfig::AgeFile { age_file, identity }, _) => {
                age_file::decrypt_with_identity(age_file, identity)
            }
            (PasswordConfig::AgePassphrase { age_file }, Some(p)) => {
                age_file::decrypt_with_passphrase(age_file, p)
            }
            (PasswordConfig::AgePassphrase { age_file }, None) => Err(StoreError::WrongKind {
                path: age_file.clone(),
                problem: "needs a passphrase; run `mxtoken unlock`",
            }),
            (PasswordConfig::Keyring { service }, _) => {
                let (pw, backend) = os_keyring::get(service, &self.user)?;
                tracing::info!(profile = %self.profile, backend = %backend, "password read from the OS keyring");
                Ok(pw)
            }
        }
    }

    fn put(&self, pw: SecretString) {
        if let Err(e) = crate::platform::lock_in_memory(pw.expose_secret().as_bytes()) {
            tracing::warn!(profile = %self.profile, error = %e, "cannot mlock the password; it may be swapped to disk (raise RLIMIT_MEMLOCK to avoid this)");
        }
        let mut st = self.state();
        st.secret = Some(pw);
        st.last_used = Instant::now();
        drop(st);
        self.changed.notify_waiters();
    }

    /// Resolves when the password has been unused for `lock_after` while
    /// unlocked, then drops it. Never resolves without `lock_after`.
    pub async fn idle_locked(&self) {
        let Some(idle) = self.lock_after else {
            return std::future::pending().await;
        };
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (locked, last_used) = {
                let st = self.state();
                (st.secret.is_none(), st.last_used)
            };
            if locked {
                notified.await;
                continue;
            }
            let deadline = last_used + idle;
            if Instant::now() >= deadline {
                let mut st = self.state();
                // Re-check under the lock: a lease may have just used it.
                if st.last_used == last_used && st.secret.take().is_some() {
                    drop(st);
                    tracing::info!(profile = %self.profile, idle = %humantime::format_duration(idle), "locked after idle time");
                    return;
                }
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = notified => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(lock_after: Option<Duration>) -> PasswordHolder {
        let cfg = crate::config::parse(
            std::path::Path::new("/c.toml"),
            "[profiles.admin]\nhomeserver = \"https://h.example\"\nuser = \"@a:h.example\"\npassword = { age_file = \"p.age\" }\n",
        )
        .expect("config");
        let mut profile = cfg.profiles["admin"].clone();
        profile.lock_after = lock_after;
        PasswordHolder::new(&profile)
    }

    #[test]
    fn locked_until_put_and_after_lock() {
        let h = holder(None);
        assert!(h.is_locked() && h.needs_passphrase());
        let e = h.current().expect_err("locked");
        assert_eq!(e.code, ErrorCode::Locked);
        assert!(
            e.message.contains("mxtoken unlock --profile admin"),
            "{}",
            e.message
        );
        h.put(SecretString::from("pw"));
        assert_eq!(h.current().expect("unlocked").expose_secret(), "pw");
        assert!(!format!("{h:?}").contains("pw\""));
        assert!(h.lock());
        assert!(h.is_locked() && !h.lock());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_lock_counts_from_the_last_use() {
        let h = std::sync::Arc::new(holder(Some(Duration::from_secs(30 * 60))));
        h.put(SecretString::from("pw"));
        let watcher = tokio::spawn({
            let h = h.clone();
            async move { h.idle_locked().await }
        });
        tokio::time::sleep(Duration::from_secs(20 * 60)).await;
        h.current().expect("still unlocked");
        tokio::time::sleep(Duration::from_secs(20 * 60)).await;
        assert!(!h.is_locked(), "use restarted the idle clock");
        tokio::time::sleep(Duration::from_secs(11 * 60)).await;
        watcher.await.expect("watcher");
        assert!(h.is_locked());
    }
}
