//! The durable record of leases: which tokens may exist on the homeserver.
//!
//! An append-only file of JSON lines in the state directory. A `begin` record
//! is written and fdatasync'ed *before* the homeserver is asked for a token,
//! so after a crash at any point every token that may exist has a record. An
//! `end` record follows once the token is known dead (or was never minted);
//! it is not synced: losing one only makes recovery revoke a dead token again,
//! which is harmless. A torn last line (crash mid-write) is ignored with a
//! warning. Records hold ids, names and times — never a token or password.
//!
//! At start-up the broker reads the journal, recovers what is unresolved, and
//! rewrites the file with only what is still unresolved (write, fsync, rename).

use mxtoken_proto::{MintKind, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    /// A token may exist from now on.
    Begin(LeaseRecord),
    /// The token of `lease` is known dead, or was never minted.
    End {
        /// Lease id.
        lease: String,
        /// When.
        at: Timestamp,
    },
}

/// What recovery needs to kill a lease's token without the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Lease id.
    pub lease: String,
    /// Profile name.
    pub profile: String,
    /// The account that logged in (`login`) or minted (`admin-api`).
    pub user: String,
    /// The device the login creates (`login` only; chosen before the call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// How the token is minted.
    pub mint: MintKind,
    /// When the lease began.
    pub created_at: Timestamp,
    /// When it ends at the latest (server-side expiry for `admin-api`).
    pub expires_at: Timestamp,
}

/// Why the journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An I/O failure on the journal file or its directory.
    #[error("cannot use the lease journal {path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

/// The open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    /// Lines for the writer thread; a `begin` carries a reply channel.
    writer: std::sync::mpsc::Sender<Append>,
}

/// One line for the writer thread.
struct Append {
    line: Vec<u8>,
    /// Present when the caller waits for the line to be on disk.
    durable: Option<tokio::sync::oneshot::Sender<Result<(), std::io::ErrorKind>>>,
}

/// What reading a journal found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Leases begun and not ended, by lease id.
    pub unresolved: BTreeMap<String, LeaseRecord>,
    /// Lines that could not be read (a torn tail after a crash, or damage).
    pub damaged_lines: usize,
}

impl Journal {
    /// The journal file inside `state_dir`.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("journal.jsonl")
    }

    /// Reads the journal at `path` (missing = empty), tolerating damage.
    pub fn replay(path: &Path) -> Result<Replay, JournalError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replay::default()),
            Err(error) => {
                return Err(JournalError::Io {
                    path: path.to_path_buf(),
                    error,
                });
            }
        };
        let mut replay = Replay::default();
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Record>(line) {
                Ok(Record::Begin(r)) => {
                    replay.unresolved.insert(r.lease.clone(), r);
                }
                Ok(Record::End { lease, .. }) => {
                    replay.unresolved.remove(&lease);
                }
                Err(_) => {
                    replay.damaged_lines += 1;
                    tracing::warn!(journal = %path.display(), line = n + 1, "skipping a damaged journal line (a crash mid-write leaves one)");
                }
            }
        }
        Ok(replay)
    }

    /// Replaces the journal at `path` with `begins` only (atomically), and
    /// opens it for appending.
    pub fn rewrite(
        path: &Path,
        begins: impl IntoIterator<Item = LeaseRecord>,
    ) -> Result<Self, JournalError> {
        let io = |error| JournalError::Io {
            path: path.to_path_buf(),
            error,
        };
        let tmp = path.with_extension("jsonl.tmp");
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            for r in begins {
                f.write_all(&line(&Record::Begin(r))).map_err(io)?;
            }
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        let file = OpenOptions::new()
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || write_lines(file, rx))
            .map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: tx,
        })
    }

    /// Records that a token may exist from now on; durable on return.
    pub async fn begin(&self, r: LeaseRecord) -> Result<(), JournalError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Append {
            line: line(&Record::Begin(r)),
            durable: Some(tx),
        });
        let io = |kind: std::io::ErrorKind| JournalError::Io {
            path: self.path.clone(),
            error: kind.into(),
        };
        match rx.await {
            Ok(result) => result.map_err(io),
            Err(_) => Err(io(std::io::ErrorKind::BrokenPipe)),
        }
    }

    /// Records that a lease's token is dead (or was never minted). Not
    /// waited for: losing it only makes recovery revoke a dead token again.
    pub fn end(&self, lease: &str) {
        let rec = Record::End {
            lease: lease.to_owned(),
            at: Timestamp::from_system_time(std::time::SystemTime::now()),
        };
        self.send(Append {
            line: line(&rec),
            durable: None,
        });
    }

    /// Waits until every line sent so far is on disk (at shutdown, so the
    /// last `end` records are not lost).
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Append {
            line: Vec::new(),
            durable: Some(tx),
        });
        let _ = rx.await;
    }

    fn send(&self, append: Append) {
        if self.writer.send(append).is_err() {
            tracing::error!(journal = %self.path.display(), "the journal writer has stopped");
        }
    }
}

/// The journal's only writer. It takes every line already queued, appends
/// them with one `write(2)` and, if any caller waits for durability, one
/// `fdatasync` for all (group commit): concurrent leases share the cost, and
/// no async worker ever blocks on the disk.
fn write_lines(mut file: File, rx: std::sync::mpsc::Receiver<Append>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let bytes: Vec<u8> = batch.iter().flat_map(|a| a.line.iter().copied()).collect();
        // Whole lines in one append: a crash can only tear the last line.
        let mut result = file.write_all(&bytes);
        let waiting: Vec<_> = batch.into_iter().filter_map(|a| a.durable).collect();
        if result.is_ok() && !waiting.is_empty() {
            result = file.sync_data();
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, "cannot write the lease journal");
        }
        for w in waiting {
            let _ = w.send(result.as_ref().map(|_| ()).map_err(std::io::Error::kind));
        }
    }
}

fn line(rec: &Record) -> Vec<u8> {
    let mut v = serde_json::to_vec(rec).unwrap_or_default();
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> LeaseRecord {
        LeaseRecord {
            lease: id.into(),
            profile: "admin".into(),
            user: "@admin:example.com".into(),
            device_id: Some(format!("MXTOKEN_{id}")),
            mint: MintKind::Login,
            created_at: Timestamp::from_unix_ms(1),
            expires_at: Timestamp::from_unix_ms(2),
        }
    }

    #[tokio::test]
    async fn unresolved_survive_and_a_torn_tail_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Journal::path_in(dir.path());
        let j = Journal::rewrite(&path, []).expect("open");
        j.begin(rec("a")).await.expect("a");
        j.end("a");
        j.begin(rec("b")).await.expect("b");
        j.flush().await;
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(br#"{"event":"begin","lease":"c","prof"#)
            .expect("torn");
        let r = Journal::replay(&path).expect("replay");
        assert_eq!(r.unresolved.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(r.damaged_lines, 1);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        // Compaction keeps only what is unresolved.
        drop(Journal::rewrite(&path, r.unresolved.into_values()).expect("rewrite"));
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains(r#""lease":"b""#));
    }
}
