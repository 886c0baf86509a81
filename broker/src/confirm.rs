//! Confirm-on-issue: a `confirm = true` profile's lease waits until the user
//! approves it in a waiting `mxtoken confirm`, and is refused at once when no
//! such client is connected.
//!
//! Each `mxtoken confirm` holds one `GET /v1/confirm` response open; the
//! broker writes pending requests to it as JSON lines and a blank line every
//! few seconds, so a client that went away is noticed (its channel closes
//! when hyper drops the response body). Answers come back on separate
//! `POST /v1/confirm/{id}` requests.

use bytes::Bytes;
use mxtoken_proto::{ApiError, ConfirmRequest, ErrorCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How often a waiting `mxtoken confirm` gets a heartbeat line.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// The pending approvals and the connected `mxtoken confirm` streams.
#[derive(Debug, Default)]
pub struct Confirmer {
    listeners: Mutex<Vec<mpsc::Sender<Bytes>>>,
    pending: Mutex<HashMap<String, oneshot::Sender<bool>>>,
    next: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes a pending request when its asker stops waiting (answer, timeout,
/// or the client hanging up).
struct PendingGuard<'a>(&'a Confirmer, String);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.pending).remove(&self.1);
    }
}

impl Confirmer {
    /// Registers a new `mxtoken confirm` stream; lines for it arrive on the
    /// returned receiver, which the caller turns into the response body.
    pub fn subscribe(&self) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(64);
        let heartbeat = tx.clone();
        lock(&self.listeners).push(tx);
        tokio::spawn(async move {
            // Ends when the body is dropped: the client went away.
            while heartbeat.send(Bytes::from_static(b"\n")).await.is_ok() {
                tokio::time::sleep(HEARTBEAT).await;
            }
        });
        rx
    }

    /// Asks the waiting `mxtoken confirm` clients to approve `req` and waits
    /// up to `timeout` for the answer.
    pub async fn ask(&self, mut req: ConfirmRequest, timeout: Duration) -> Result<(), ApiError> {
        let profile = req.profile.clone();
        let id = format!("c{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        req.id = id.clone();
        let mut line = serde_json::to_vec(&req).unwrap_or_default();
        line.push(b'\n');
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), tx);
        let _guard = PendingGuard(self, id);
        let delivered = {
            let mut listeners = lock(&self.listeners);
            listeners.retain(|l| !l.is_closed());
            listeners
                .iter()
                .filter(|l| l.try_send(Bytes::from(line.clone())).is_ok())
                .count()
        };
        if delivered == 0 {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "profile {profile:?} needs your confirmation and no `mxtoken confirm` is waiting; run `mxtoken confirm` in another terminal and try again"
                ),
            ));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("the lease of profile {profile:?} was denied in `mxtoken confirm`"),
            )),
            Ok(Err(_)) | Err(_) => Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "the lease of profile {profile:?} was not confirmed within {}; answer it in `mxtoken confirm`",
                    humantime::format_duration(timeout)
                ),
            )),
        }
    }

    /// Delivers the user's answer to pending request `id`.
    pub fn decide(&self, id: &str, approve: bool) -> Result<(), ApiError> {
        let Some(tx) = lock(&self.pending).remove(id) else {
            return Err(ApiError::new(
                ErrorCode::UnknownLease,
                format!(
                    "there is no pending confirmation {id:?}; it was answered already or timed out"
                ),
            ));
        };
        // The asker may have hung up meanwhile; then there is nothing to grant.
        let _ = tx.send(approve);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ConfirmRequest {
        ConfirmRequest {
            id: String::new(),
            profile: "admin".into(),
            purpose: Some("get".into()),
            bound_to_client: false,
            peer_uid: 1000,
            peer_pid: Some(42),
            peer_exe: None,
            ttl_secs: 60,
        }
    }

    #[tokio::test]
    async fn refused_without_a_listener_and_answered_with_one() {
        let c = std::sync::Arc::new(Confirmer::default());
        let e = c
            .ask(req(), Duration::from_secs(5))
            .await
            .expect_err("nobody");
        assert!(e.message.contains("no `mxtoken confirm` is waiting"), "{e}");

        let mut rx = c.subscribe();
        assert_eq!(
            rx.recv().await.expect("heartbeat"),
            Bytes::from_static(b"\n")
        );
        let asker = tokio::spawn({
            let c = c.clone();
            async move { c.ask(req(), Duration::from_secs(30)).await }
        });
        let line = loop {
            let b = rx.recv().await.expect("line");
            if b.as_ref() != b"\n" {
                break b;
            }
        };
        let shown: ConfirmRequest = serde_json::from_slice(&line).expect("json");
        assert_eq!(shown.profile, "admin");
        c.decide(&shown.id, false).expect("decide");
        let e = asker.await.expect("join").expect_err("denied");
        assert!(e.message.contains("was denied"), "{e}");
        assert!(c.decide(&shown.id, true).is_err());

        drop(rx);
        // The closed stream no longer counts as a listener.
        tokio::task::yield_now().await;
        let e = c
            .ask(req(), Duration::from_secs(5))
            .await
            .expect_err("gone");
        assert!(e.message.contains("no `mxtoken confirm` is waiting"), "{e}");
    }
}
