//! Running under a service manager: the listening socket it may hand over
//! (socket activation, sd_listen_fds(3)) and the readiness notification it
//! may ask for (sd_notify(3)). Both are plain environment protocols, so no
//! libsystemd is needed; outside systemd both are no-ops.

use std::io;

/// Why an inherited socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_FDS` names this process but is not a count we can use.
    #[error(
        "the service manager passed LISTEN_FDS={0:?}; mxtokend needs exactly one listening socket (one ListenStream= in mxtokend.socket)"
    )]
    BadCount(String),
    /// The descriptor is not a listening Unix socket.
    #[error("cannot use the socket passed by the service manager")]
    Unusable(#[source] io::Error),
}

/// How many descriptors the service manager passed to the process `own_pid`,
/// from the values of `LISTEN_PID` and `LISTEN_FDS`. Variables meant for
/// another process (a parent that did not clear them) count as none.
pub fn passed_fd_count(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    own_pid: u32,
) -> Result<usize, ActivationError> {
    let for_us = listen_pid
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|p| p == own_pid);
    if !for_us {
        return Ok(0);
    }
    let raw = listen_fds.unwrap_or("");
    match raw.trim().parse::<usize>() {
        Ok(n) if n <= 1 => Ok(n),
        _ => Err(ActivationError::BadCount(raw.to_owned())),
    }
}

/// The listening socket passed by the service manager, if this process was
/// socket-activated; `None` when it should bind its own.
pub fn inherited_listener() -> Result<Option<std::os::unix::net::UnixListener>, ActivationError> {
    let count = passed_fd_count(
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::process::id(),
    )?;
    if count == 0 {
        return Ok(None);
    }
    let listener = crate::platform::adopt_activation_socket().map_err(ActivationError::Unusable)?;
    listener
        .set_nonblocking(true)
        .map_err(ActivationError::Unusable)?;
    Ok(Some(listener))
}

/// Tells the service manager that the broker accepts connections (`READY=1`).
pub fn notify_ready() {
    notify("READY=1\n");
}

/// Tells the service manager that the broker is shutting down (`STOPPING=1`).
pub fn notify_stopping() {
    notify("STOPPING=1\n");
}

/// Sends `state` to `$NOTIFY_SOCKET` when set. A failure is logged, not
/// fatal: the broker works without the service manager knowing its state.
fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET").filter(|v| !v.is_empty()) else {
        return;
    };
    if let Err(e) = send_datagram(&target, state.as_bytes()) {
        tracing::warn!(error = %e, socket = ?target, "cannot notify the service manager");
    }
}

fn send_datagram(target: &std::ffi::OsStr, msg: &[u8]) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let bytes = target.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract socket addresses exist only on Linux",
            ));
        }
        None => SocketAddr::from_pathname(std::path::Path::new(target))?,
    };
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to_addr(msg, &addr)?;
    if sent != msg.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the notification was cut short",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_variables_for_this_process_count() {
        assert_eq!(passed_fd_count(None, None, 7).ok(), Some(0));
        assert_eq!(passed_fd_count(Some("8"), Some("1"), 7).ok(), Some(0));
        assert_eq!(passed_fd_count(Some("7"), Some("1"), 7).ok(), Some(1));
        assert_eq!(passed_fd_count(Some(" 7\n"), Some("0"), 7).ok(), Some(0));
        assert!(passed_fd_count(Some("7"), Some("2"), 7).is_err());
        assert!(passed_fd_count(Some("7"), Some("x"), 7).is_err());
        assert!(passed_fd_count(Some("7"), None, 7).is_err());
    }

    #[test]
    fn notifications_reach_a_path_socket() {
        let dir = tempfile_dir();
        let path = dir.join("notify.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
        send_datagram(path.as_os_str(), b"READY=1\n").expect("send");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1\n");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("mxtokend-notify-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        d
    }
}
