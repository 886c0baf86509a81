//! Process facts from the OS: who we are, whether a process has exited.
//! Linux uses pidfd; other systems fall back to polling.
//!
//! This is the one module of the broker allowed `unsafe` (see ARCHITECTURE.md).
#![allow(unsafe_code)]

use std::io;
use std::time::Duration;

/// The broker's own uid.
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The effective uid a running process belongs to.
pub fn process_uid(pid: u32) -> io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    #[cfg(target_os = "linux")]
    {
        std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "process owner lookup is only implemented on Linux",
        ))
    }
}

/// A handle that resolves when a process exits.
#[derive(Debug)]
pub struct ExitWatch {
    pid: u32,
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl ExitWatch {
    /// Starts watching `pid`. Fails with `NotFound` if there is no such process.
    pub fn new(pid: u32) -> io::Result<Self> {
        let raw = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        let Some(p) = raw else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a valid pid",
            ));
        };
        #[cfg(target_os = "linux")]
        {
            match rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) {
                Ok(fd) => {
                    // SAFETY: the pidfd is an `OwnedFd` moved into the
                    // `AsyncFd`, which deregisters it before closing it; nothing
                    // else can close or reuse the descriptor meanwhile.
                    let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }
                        .map_err(io::Error::from)?;
                    Ok(Self { pid, fd: Some(fd) })
                }
                Err(rustix::io::Errno::SRCH) => {
                    Err(io::Error::new(io::ErrorKind::NotFound, "no such process"))
                }
                // Kernels before 5.3: fall back to polling.
                Err(rustix::io::Errno::NOSYS) => Ok(Self { pid, fd: None }),
                Err(e) => Err(e.into()),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = p;
            Ok(Self { pid })
        }
    }

    /// The watched pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves once the process has exited.
    pub async fn exited(&self) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            // A pidfd turns readable when the process exits; an error also
            // means we can no longer watch it, so treat it as gone.
            let _ = fd.readable().await;
            return;
        }
        while process_alive(self.pid) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn process_alive(pid: u32) -> bool {
    match i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        Some(p) => rustix::process::test_kill_process(p).is_ok(),
        None => false,
    }
}
