//! Process facts from the OS: who we are, whether a process has exited
//! (pidfd on Linux, polling elsewhere), and keeping secrets out of core dumps,
//! debuggers and swap.
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

/// Keeps the process's memory out of core dumps and away from same-uid
/// debuggers: `RLIMIT_CORE` 0 everywhere, and `PR_SET_DUMPABLE` 0 on Linux
/// (which also makes `/proc/PID/mem` and ptrace attach refuse other processes
/// of our uid). Returns what could not be done, for a warning.
pub fn harden_process() -> Vec<String> {
    let mut failed = Vec::new();
    let zero = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Core, zero) {
        failed.push(format!("RLIMIT_CORE 0: {e}"));
    }
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        failed.push(format!("PR_SET_DUMPABLE 0: {e}"));
    }
    failed
}

/// Whether the kernel says this process is non-dumpable (for tests and `status`).
#[cfg(target_os = "linux")]
pub fn is_dumpable() -> bool {
    rustix::process::dumpable_behavior()
        .map(|b| b != rustix::process::DumpableBehavior::NotDumpable)
        .unwrap_or(true)
}

/// Locks the pages holding `bytes` in RAM so they are never written to swap.
/// The pages stay locked until the process exits: another secret may share
/// them, so unlocking one could expose the other.
pub fn lock_in_memory(bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    // SAFETY: `mlock` only changes the paging of the address range; the range
    // is exactly the borrowed slice, valid for the duration of the call, and
    // nothing is read or written through the pointer.
    unsafe { rustix::mm::mlock(bytes.as_ptr().cast_mut().cast(), bytes.len()) }
        .map_err(io::Error::from)
}

/// Gives the heap's free pages back to the OS. glibc keeps what a burst of
/// requests freed (tens of MiB after 1,000 concurrent leases) until told;
/// the broker calls this when its socket falls quiet. A no-op elsewhere.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only walks the allocator's own free lists and
    // returns unused pages; it takes no pointer of ours and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
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

/// The executable of a running process (`/proc/PID/exe`), for the audit
/// record. `None` when the OS does not say (process gone, not Linux).
pub fn process_exe(pid: u32) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// The supplementary groups of a running process (`Groups:` in
/// `/proc/PID/status`); empty when unknown. The primary gid comes from the
/// socket's peer credentials.
pub fn process_groups(pid: u32) -> Vec<u32> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                    g.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
            })
            .unwrap_or_default()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        Vec::new()
    }
}

/// The gid of group `name` from `/etc/group`. (NSS sources such as LDAP are
/// not consulted; write such groups as numeric gids.)
pub fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(name))
            .then(|| f.nth(1).and_then(|gid| gid.parse().ok()))
            .flatten()
    })
}

/// The first descriptor a service manager passes (`SD_LISTEN_FDS_START` in
/// sd_listen_fds(3)).
pub const LISTEN_FDS_START: i32 = 3;

/// Takes ownership of descriptor [`LISTEN_FDS_START`] as the listening Unix
/// socket a service manager handed to this process.
///
/// The caller must first have checked that `LISTEN_PID` names this process
/// and `LISTEN_FDS` is at least 1 (see `activation`). The descriptor is taken
/// at most once per process; it is checked to be a listening Unix stream
/// socket and marked close-on-exec.
pub fn adopt_activation_socket() -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    static ADOPTED: AtomicBool = AtomicBool::new(false);
    if ADOPTED.swap(true, Ordering::SeqCst) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the socket passed by the service manager was already taken",
        ));
    }
    // SAFETY: LISTEN_PID names this process, so by the sd_listen_fds(3)
    // contract the service manager left descriptor 3 open for us; nothing in
    // this process closes it while this borrow lives (it is only inspected).
    let borrowed = unsafe { BorrowedFd::borrow_raw(LISTEN_FDS_START) };
    let not_ours = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {LISTEN_FDS_START} passed by the service manager {what}"),
        )
    };
    rustix::io::fcntl_getfd(borrowed).map_err(|_| not_ours("is not open"))?;
    let family = rustix::net::getsockname(borrowed)
        .map_err(|_| not_ours("is not a socket"))?
        .address_family();
    if family != rustix::net::AddressFamily::UNIX
        || rustix::net::sockopt::socket_type(borrowed)? != rustix::net::SocketType::STREAM
    {
        return Err(not_ours(
            "is not a Unix stream socket; use ListenStream=PATH in the .socket unit",
        ));
    }
    #[cfg(not(target_vendor = "apple"))]
    if !rustix::net::sockopt::socket_acceptconn(borrowed)? {
        return Err(not_ours("is not listening"));
    }
    // SAFETY: as above the descriptor is open and was passed to this process
    // alone; `ADOPTED` ensures it is wrapped in an owner only once, so it is
    // closed exactly once.
    let owned = unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    Ok(std::os::unix::net::UnixListener::from(owned))
}

/// Starts a new session so the broker has no controlling terminal and is not
/// hit by the hang-up of the terminal that started it.
pub fn detach_from_terminal() -> io::Result<()> {
    match rustix::process::setsid() {
        Ok(_) => Ok(()),
        // Already a process-group leader (e.g. started with setsid(1)): it
        // has its own group already; nothing more to do.
        Err(rustix::io::Errno::PERM) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
