//! Claiming the socket path: private directory, stale-socket removal, and
//! refusing to start over a live broker.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why the socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another broker answers on the path.
    #[error(
        "a broker is already running on {0}; stop it first (mxtoken stop) or pass another --socket"
    )]
    AlreadyRunning(PathBuf),
    /// The directory is not safe to put a socket in.
    #[error(transparent)]
    UnsafeDir(#[from] crate::dirs::DirError),
    /// Something that is not a socket is at the path; never delete it.
    #[error(
        "{0} exists and is not a socket; refusing to replace it (check --socket / $MXTOKEN_SOCKET)"
    )]
    NotASocket(PathBuf),
    /// Some other I/O failure.
    #[error("cannot create the socket {path}: {error}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

/// A socket this broker bound itself, and the lock that makes it the only
/// broker on that path.
#[derive(Debug)]
pub struct Bound {
    /// The listening socket.
    pub listener: tokio::net::UnixListener,
    /// An exclusive `flock` on `PATH.lock`, held while the broker serves:
    /// dropping it lets another broker claim the path.
    pub lock: std::fs::File,
}

/// Binds a listening Unix socket at `path` (mode 0600, directory 0700).
/// With `shared` (allow lists configured) the socket is 0666 and the
/// directory may be 0711: the peer-credential check is then the fence.
///
/// Two brokers started at once (e.g. two clients auto-starting one) are
/// serialised by a lock file next to the socket, so the loser reports
/// [`BindError::AlreadyRunning`] instead of replacing the winner's socket.
pub fn bind(path: &Path, shared: bool) -> Result<Bound, BindError> {
    let io_err = |error| BindError::Io {
        path: path.to_path_buf(),
        error,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::dirs::ensure_socket_dir(dir, shared)?;
    let is_socket = |meta: &std::fs::Metadata| {
        use std::os::unix::fs::FileTypeExt;
        meta.file_type().is_socket()
    };
    // Check before taking the lock, so a mistyped path gets no lock file.
    if std::fs::symlink_metadata(path).is_ok_and(|m| !is_socket(&m)) {
        return Err(BindError::NotASocket(path.to_path_buf()));
    }
    let lock = claim_lock(path)?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !is_socket(&meta) {
            return Err(BindError::NotASocket(path.to_path_buf()));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(BindError::AlreadyRunning(path.to_path_buf())),
            Err(_) => {
                tracing::info!(socket = %path.display(), "removing stale socket");
                std::fs::remove_file(path).map_err(io_err)?;
            }
        }
    }
    let std_listener = std::os::unix::net::UnixListener::bind(path).map_err(io_err)?;
    let mode = if shared { 0o666 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_err)?;
    std_listener.set_nonblocking(true).map_err(io_err)?;
    let listener = tokio::net::UnixListener::from_std(std_listener).map_err(io_err)?;
    Ok(Bound { listener, lock })
}

/// Takes the exclusive lock on `PATH.lock` without waiting; a lock held by
/// another process means another broker owns (or is claiming) the path.
fn claim_lock(path: &Path) -> Result<std::fs::File, BindError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let io_err = |error| BindError::Io {
        path: lock_path.clone(),
        error,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io_err)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(BindError::AlreadyRunning(path.to_path_buf())),
        Err(e) => Err(io_err(e.into())),
    }
}
