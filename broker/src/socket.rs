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
    #[error("socket {0}")]
    UnsafeDir(#[from] crate::dirs::DirError),
    /// Some other I/O failure.
    #[error("cannot create the socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Binds a listening Unix socket at `path` (mode 0600, directory 0700).
pub fn bind(path: &Path) -> Result<tokio::net::UnixListener, BindError> {
    let io_err = |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::dirs::ensure_private_dir(dir)?;
    if std::fs::symlink_metadata(path).is_ok() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(BindError::AlreadyRunning(path.to_path_buf())),
            Err(_) => {
                tracing::info!(socket = %path.display(), "removing stale socket");
                std::fs::remove_file(path).map_err(io_err)?;
            }
        }
    }
    let std_listener = std::os::unix::net::UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    std_listener.set_nonblocking(true).map_err(io_err)?;
    tokio::net::UnixListener::from_std(std_listener).map_err(io_err)
}
