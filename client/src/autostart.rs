//! Starting `mxtokend` when a command needs a lease and no broker answers.
//!
//! The broker is started detached (own session, stdin and stdout on
//! /dev/null, stderr appended to `mxtokend.log` in the broker's state
//! directory) and
//! polled on its socket until it answers or a deadline passes. Two clients
//! racing here both start a broker; the broker's lock file lets only one of
//! them bind, the other exits with "already running" (10), and both clients
//! go on with the winner.

use crate::error::ClientError;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set (to anything non-empty) to never start a broker.
pub const NO_AUTOSTART_ENV: &str = "MXTOKEN_NO_AUTOSTART";
/// The broker binary to start, instead of looking next to `mxtoken` and on PATH.
pub const BROKER_BIN_ENV: &str = "MXTOKEN_BROKER_BIN";
/// How long a starting broker gets to answer on its socket.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How often the socket is tried meanwhile.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// `mxtokend`'s exit code when another broker holds the socket.
const BROKER_ALREADY_RUNNING: i32 = 10;

/// Makes sure a broker answers on `socket`, starting one unless
/// `$MXTOKEN_NO_AUTOSTART` is set. Returns without error when auto-start is
/// off: the request that follows then reports the missing broker.
pub fn ensure_broker(socket: &Path) -> Result<(), ClientError> {
    if answers(socket) || env_set(NO_AUTOSTART_ENV) {
        return Ok(());
    }
    let program = broker_binary().ok_or_else(|| ClientError::AutoStart {
        socket: socket.to_path_buf(),
        reason: format!(
            "mxtokend was not found next to mxtoken or on PATH; install it or set ${BROKER_BIN_ENV}"
        ),
    })?;
    start(&program, socket)
}

/// Whether something listens on `socket`. Errors other than "nothing there"
/// count as an answer, so the request that follows reports them.
fn answers(socket: &Path) -> bool {
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
        ),
    }
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// `$MXTOKEN_BROKER_BIN`, else `mxtokend` next to this executable, else on PATH.
fn broker_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(BROKER_BIN_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("mxtokend")))
        .filter(|p| p.is_file());
    sibling.or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join("mxtokend"))
            .find(|p| p.is_file())
    })
}

/// Where an auto-started broker's stderr goes: `mxtokend.log` in the
/// broker's state directory (`$MXTOKEN_STATE_DIR`, else
/// `$XDG_STATE_HOME/mxtoken`, else `~/.local/state/mxtoken`).
pub fn log_path() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = env("MXTOKEN_STATE_DIR")
        .or_else(|| env("XDG_STATE_HOME").map(|d| d.join("mxtoken")))
        .or_else(|| env("HOME").map(|h| h.join(".local/state/mxtoken")))?;
    Some(dir.join("mxtokend.log"))
}

/// Opens the log for appending (directory 0700, file 0600); `None` if that
/// fails, and the broker's stderr then goes to /dev/null.
fn open_log(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path.parent()?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .ok()?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .ok()
}

fn start(program: &Path, socket: &Path) -> Result<(), ClientError> {
    let failed = |reason: String| ClientError::AutoStart {
        socket: socket.to_path_buf(),
        reason,
    };
    let log_path = log_path();
    let log = log_path.as_deref().and_then(open_log);
    let log_start = log
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len());
    let stderr = match &log {
        Some(f) => f.try_clone().map_or_else(|_| Stdio::null(), Stdio::from),
        None => Stdio::null(),
    };
    let mut child = Command::new(program)
        .arg("--detach")
        .arg("--socket")
        .arg(socket)
        // Service-manager variables meant for this client, not the broker.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_FDNAMES")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", program.display())))?;
    let end = Instant::now() + READY_DEADLINE;
    let mut lost_race = false;
    loop {
        if answers(socket) {
            if !lost_race {
                let log_note = log_path
                    .as_ref()
                    .map(|p| format!(" (log: {})", p.display()))
                    .unwrap_or_default();
                eprintln!("mxtoken: started mxtokend{log_note}");
            }
            return Ok(());
        }
        if !lost_race {
            if let Ok(Some(status)) = child.try_wait() {
                if status.code() == Some(BROKER_ALREADY_RUNNING) {
                    // Another client's broker won the socket; wait for it.
                    lost_race = true;
                } else {
                    let said = log_path
                        .as_deref()
                        .and_then(|p| last_error_line(p, log_start))
                        .map(|l| format!(": {l}"))
                        .unwrap_or_default();
                    return Err(failed(format!(
                        "mxtokend exited with {status} while starting{said}"
                    )));
                }
            }
        }
        if Instant::now() >= end {
            return Err(failed(format!(
                "mxtokend did not answer within {}s{}",
                READY_DEADLINE.as_secs(),
                log_path
                    .map(|p| format!("; see {}", p.display()))
                    .unwrap_or_default()
            )));
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// The broker's own one-sentence error (`mxtokend: ...`) from what it wrote
/// to the log after `offset`, without the prefix.
fn last_error_line(log: &Path, offset: u64) -> Option<String> {
    let mut f = std::fs::File::open(log).ok()?;
    f.seek(std::io::SeekFrom::Start(offset)).ok()?;
    let mut bytes = Vec::new();
    f.take(64 * 1024).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("mxtokend: "))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brokers_own_sentence_is_taken_from_after_the_offset() {
        let path =
            std::env::temp_dir().join(format!("mxtoken-autostart-{}.log", std::process::id()));
        let old = "mxtokend: an error of an earlier start\n";
        std::fs::write(
            &path,
            format!("{old}2026-01-01 INFO starting\nmxtokend: no config file at /x/config.toml\n"),
        )
        .expect("write");
        assert_eq!(
            last_error_line(&path, old.len() as u64).as_deref(),
            Some("no config file at /x/config.toml")
        );
        let end = std::fs::metadata(&path).expect("meta").len();
        assert_eq!(last_error_line(&path, end), None);
        let _ = std::fs::remove_file(&path);
    }
}
