//! The audit log: one JSON line per lease event (created, released, expired,
//! process-exited, shutdown, revoked, revoke-failed, refused) in
//! `$STATE/audit.log`, mode 0600. `mxtoken audit` reads it.
//!
//! Records are built from lease metadata only ([`AuditRecord`] has no field
//! that could hold a token or a password). Each line is one `write(2)` on an
//! `O_APPEND` file, so lines from concurrent tasks never interleave. Writes
//! are not synced: the journal, not this log, is what recovery relies on.

use mxtoken_proto::{AUDIT_LOG_FILE, AuditRecord};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The audit log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log {path}: {source}")]
pub struct AuditError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// An open audit log, or a disabled one (tests, in-process servers).
#[derive(Debug)]
pub struct AuditLog {
    path: Option<PathBuf>,
    file: Mutex<Option<File>>,
    /// Log a write failure once, not once per event.
    failed: AtomicBool,
}

impl AuditLog {
    /// Opens (creating, mode 0600) `audit.log` in `state_dir` for appending.
    /// An existing file that group or others can read is made private again.
    pub fn open(state_dir: &Path) -> Result<Self, AuditError> {
        let path = state_dir.join(AUDIT_LOG_FILE);
        let err = |source| AuditError {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(err)?;
        let mode = file.metadata().map_err(err)?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(err)?;
            tracing::warn!(audit_log = %path.display(), "the audit log was readable by others; made it 0600");
        }
        Ok(Self {
            path: Some(path),
            file: Mutex::new(Some(file)),
            failed: AtomicBool::new(false),
        })
    }

    /// A log that records nothing.
    pub fn disabled() -> Self {
        Self {
            path: None,
            file: Mutex::new(None),
            failed: AtomicBool::new(false),
        }
    }

    /// Appends one record. A failure is logged (once) and otherwise ignored:
    /// losing an audit line must not stop a revocation.
    pub fn record(&self, rec: &AuditRecord) {
        let Ok(mut line) = serde_json::to_vec(rec) else {
            return;
        };
        line.push(b'\n');
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = guard.as_mut() else { return };
        if let Err(e) = file.write_all(&line) {
            if !self.failed.swap(true, Ordering::Relaxed) {
                tracing::error!(audit_log = ?self.path, error = %e, "cannot write the audit log; events are being lost");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxtoken_proto::{AuditEvent, Timestamp};

    #[test]
    fn appends_private_json_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(AUDIT_LOG_FILE);
        std::fs::write(&path, "").expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let log = AuditLog::open(dir.path()).expect("open");
        for event in [AuditEvent::Created, AuditEvent::Revoked] {
            log.record(&AuditRecord::new(Timestamp::from_unix_ms(5), event));
        }
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).expect("read");
        let events: Vec<AuditEvent> = text
            .lines()
            .map(|l| serde_json::from_str::<AuditRecord>(l).expect("line").event)
            .collect();
        assert_eq!(events, [AuditEvent::Created, AuditEvent::Revoked]);
    }
}
