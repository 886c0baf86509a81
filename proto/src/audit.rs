//! The audit log's line format: one JSON object per lease event, appended by
//! the broker to `audit.log` in its state directory and read by
//! `mxtoken audit`. Never holds a token or a password.

use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// The audit log's file name inside the state directory.
pub const AUDIT_LOG_FILE: &str = "audit.log";

/// What happened to a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditEvent {
    /// A lease was granted and its token handed out.
    Created,
    /// The holder released the lease.
    Released,
    /// The lease reached its TTL.
    Expired,
    /// The process the lease was bound to exited.
    ProcessExited,
    /// The broker ended the lease because it is shutting down.
    Shutdown,
    /// The homeserver confirmed the lease's token is dead.
    Revoked,
    /// Revoking the token failed; the broker keeps retrying.
    RevokeFailed,
    /// A request was refused (not allowed, invalid, over a limit, not confirmed).
    Refused,
    /// An event this reader does not know (from a newer broker).
    #[serde(other)]
    Other,
}

impl std::fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuditEvent::Created => "created",
            AuditEvent::Released => "released",
            AuditEvent::Expired => "expired",
            AuditEvent::ProcessExited => "process-exited",
            AuditEvent::Shutdown => "shutdown",
            AuditEvent::Revoked => "revoked",
            AuditEvent::RevokeFailed => "revoke-failed",
            AuditEvent::Refused => "refused",
            AuditEvent::Other => "other",
        })
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the event happened.
    pub at: Timestamp,
    /// What happened.
    pub event: AuditEvent,
    /// The lease, when there is one (a refused request has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
    /// The profile asked for or leased from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The requester's purpose text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Uid of the requesting process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_uid: Option<u32>,
    /// Pid of the requesting process, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_pid: Option<u32>,
    /// Executable of the requesting process, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_exe: Option<String>,
    /// When the lease was granted (lease events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// When the lease ends at the latest (lease events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Why: the refusal's or failure's one-sentence message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditRecord {
    /// A record of `event` at `at` with every optional field empty.
    pub fn new(at: Timestamp, event: AuditEvent) -> Self {
        Self {
            at,
            event,
            lease_id: None,
            profile: None,
            purpose: None,
            peer_uid: None,
            peer_pid: None,
            peer_exe: None,
            created_at: None,
            expires_at: None,
            detail: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_line_and_unknown_events() {
        let mut r = AuditRecord::new(Timestamp::from_unix_ms(1_000), AuditEvent::RevokeFailed);
        r.lease_id = Some("mxt-a".into());
        r.peer_uid = Some(1000);
        assert_eq!(
            serde_json::to_string(&r).expect("json"),
            r#"{"at":"1970-01-01T00:00:01.000Z","event":"revoke-failed","lease_id":"mxt-a","peer_uid":1000}"#
        );
        let future: AuditRecord =
            serde_json::from_str(r#"{"at":"1970-01-01T00:00:01.000Z","event":"renewed","new":1}"#)
                .expect("parse");
        assert_eq!(future.event, AuditEvent::Other);
    }
}
