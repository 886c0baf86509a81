//! The broker's private directories: where the state lives, and making sure
//! nobody else can read or write there.
//!
//! State directory lookup: `--state-dir`, else `$MXTOKEN_STATE_DIR`, else
//! `$XDG_STATE_HOME/mxtoken`, else `~/.local/state/mxtoken`.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A directory that is not private to this user.
#[derive(Debug, thiserror::Error)]
#[error("directory {path} {problem}")]
pub struct DirError {
    /// The directory.
    pub path: PathBuf,
    /// What is wrong and how to fix it.
    pub problem: String,
}

/// Resolves the state directory (see the module docs; the rule itself lives
/// in `mxtoken_proto` so `mxtoken audit` finds the same directory).
pub fn state_dir(explicit: Option<&Path>) -> PathBuf {
    let env = |k: &str| std::env::var(k).ok();
    mxtoken_proto::resolve_state_dir(&mxtoken_proto::StateLookup {
        explicit: explicit.map(Path::to_path_buf),
        env_state_dir: env("MXTOKEN_STATE_DIR"),
        xdg_state_home: env("XDG_STATE_HOME"),
        home: env("HOME"),
    })
}

/// Creates `dir` with mode 0700 if missing; refuses one that is not ours or
/// that group or others can use.
pub fn ensure_private_dir(dir: &Path) -> Result<(), DirError> {
    ensure_dir(dir, false)
}

/// Like [`ensure_private_dir`], but with `shared` (the config allows other
/// uids or groups) group and others may *search* the directory (mode 0711),
/// so they can reach the socket; they still may not list it or create,
/// replace or remove anything in it.
pub fn ensure_socket_dir(dir: &Path, shared: bool) -> Result<(), DirError> {
    ensure_dir(dir, shared)
}

fn ensure_dir(dir: &Path, shared: bool) -> Result<(), DirError> {
    let err = |problem: String| DirError {
        path: dir.to_path_buf(),
        problem,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(format!("cannot be created: {e}")))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| err(format!("cannot be read: {e}")))?;
    let me = crate::platform::current_uid();
    if meta.uid() != me {
        return Err(err(format!(
            "belongs to uid {}, not to this user (uid {me}); use a directory of your own",
            meta.uid()
        )));
    }
    let forbidden = if shared { 0o066 } else { 0o077 };
    if meta.mode() & forbidden != 0 {
        let fix = if shared { "711" } else { "700" };
        return Err(err(format!(
            "is accessible by group or others (mode {:o}); run `chmod {fix} {}`",
            meta.mode() & 0o777,
            dir.display()
        )));
    }
    Ok(())
}

/// Takes the state directory's lock so two brokers never recover the same
/// journal. Held until the returned file is dropped (process exit).
pub fn lock_state_dir(dir: &Path) -> Result<File, DirError> {
    let path = dir.join("broker.lock");
    let err = |problem: String| DirError {
        path: dir.to_path_buf(),
        problem,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| err(format!("cannot hold the lock file {}: {e}", path.display())))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        err("is in use by another mxtokend (its lock is held); stop that broker or pass another --state-dir".into())
    })?;
    Ok(file)
}
