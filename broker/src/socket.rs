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

/// Binds a listening Unix socket at `path` (mode 0600, directory 0700).
/// With `shared` (allow lists configured) the socket is 0666 and the
/// directory may be 0711: the peer-credential check is then the fence.
pub fn bind(path: &Path, shared: bool) -> Result<tokio::net::UnixListener, BindError> {
    let io_err = |error| BindError::Io {
        path: path.to_path_buf(),
        error,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::dirs::ensure_socket_dir(dir, shared)?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
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
    tokio::net::UnixListener::from_std(std_listener).map_err(io_err)
}
