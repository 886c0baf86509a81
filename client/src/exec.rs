//! `mxtoken exec`: run a command with a token, revoke it when the command ends.
//!
//! Signals: the command runs in our process group, so a terminal's Ctrl-C
//! (or Ctrl-\, or a window resize) already reaches it from the kernel. We
//! catch those signals too, and forward only the ones a process sent to us
//! (`kill`, systemd, a supervisor), so none arrives twice.

use crate::api::BrokerClient;
use crate::cli::ExecArgs;
use crate::error::{ClientError, exit};
use mxtoken_proto::LeaseGranted;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};

const FORWARDED: &[i32] = &[SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH];

/// Runs `exec`; returns the exit code to leave with.
pub fn run(
    rt: &tokio::runtime::Runtime,
    client: &BrokerClient,
    args: ExecArgs,
) -> Result<u8, ClientError> {
    let program = args.command[0].clone();
    // Find the command before taking a lease: a typo must not cost a login.
    let resolved = match resolve(&program, std::env::var_os("PATH")) {
        Ok(p) => p,
        Err(e) => return Ok(cannot_run(&program, &e)),
    };
    let purpose = format!("exec {}", program.to_string_lossy());
    let granted = rt.block_on(crate::lease::take(client, &args.lease, true, None, purpose))?;
    let lease_id = granted.lease.id.clone();

    let mut cmd = Command::new(&resolved);
    std::os::unix::process::CommandExt::arg0(&mut cmd, &program);
    cmd.args(&args.command[1..]);
    set_env(&mut cmd, &granted);
    drop(granted);

    let outcome = spawn_and_wait(&mut cmd);
    drop(cmd); // the environment copy holding the token

    match rt.block_on(client.release(&lease_id)) {
        Ok(_) => {}
        Err(ClientError::Api(e)) if e.code == mxtoken_proto::ErrorCode::UnknownLease => eprintln!(
            "mxtoken: warning: lease {lease_id} ended before the command did (its TTL ran out, so the token stopped working mid-run); pass a longer --ttl"
        ),
        Err(e) => eprintln!("mxtoken: warning: could not release lease {lease_id}: {e}"),
    }
    match outcome {
        Ok(status) => Ok(status_code(status)),
        Err(e) => Ok(cannot_run(&program, &e)),
    }
}

/// Reports why a command cannot run; returns the shell's exit code for it.
fn cannot_run(program: &std::ffi::OsStr, e: &std::io::Error) -> u8 {
    let name = program.to_string_lossy();
    if e.kind() == std::io::ErrorKind::NotFound {
        eprintln!("mxtoken: {name}: command not found");
        exit::NOT_FOUND
    } else {
        eprintln!("mxtoken: {name}: cannot execute: {e}");
        exit::CANNOT_EXECUTE
    }
}

/// Finds `program` the way `execvp` would: a name with a `/` as given, else
/// the first executable file of that name on `path`.
fn resolve(
    program: &std::ffi::OsStr,
    path: Option<std::ffi::OsString>,
) -> std::io::Result<std::path::PathBuf> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| -> std::io::Result<()> {
        let meta = std::fs::metadata(p)?;
        if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
            return Err(Error::new(ErrorKind::PermissionDenied, "Permission denied"));
        }
        Ok(())
    };
    let candidate = std::path::Path::new(program);
    if program.as_encoded_bytes().contains(&b'/') {
        executable(candidate)?;
        return Ok(candidate.to_path_buf());
    }
    let mut denied = None;
    for dir in std::env::split_paths(&path.unwrap_or_default()) {
        let full = dir.join(candidate);
        match executable(&full) {
            Ok(()) => return Ok(full),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => denied = Some(e),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or_else(|| Error::new(ErrorKind::NotFound, "command not found")))
}

fn set_env(cmd: &mut Command, g: &LeaseGranted) {
    cmd.env(&g.token_env, g.token.expose())
        .env("MATRIX_HOMESERVER_URL", &g.lease.homeserver)
        .env("MATRIX_ADMIN_USER", &g.lease.user_id)
        .env("MXTOKEN_LEASE_ID", &g.lease.id);
}

fn spawn_and_wait(cmd: &mut Command) -> std::io::Result<ExitStatus> {
    // Catch signals before the child exists, so none is lost in between.
    let mut signals = SignalsInfo::<WithOrigin>::new(FORWARDED)?;
    let handle = signals.handle();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            handle.close();
            return Err(e);
        }
    };
    let child_pid = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    let forwarder = std::thread::spawn(move || {
        for origin in signals.forever() {
            if matches!(origin.cause, Cause::Kernel) {
                continue; // the terminal sent it to the child as well
            }
            if let (Some(pid), Some(sig)) = (
                child_pid,
                rustix::process::Signal::from_named_raw(origin.signal),
            ) {
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    });
    let status = child.wait();
    handle.close();
    let _ = forwarder.join();
    status
}

/// A shell's idea of the exit status: the code, or 128 + the signal.
fn status_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(exit::FAILURE),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(exit::FAILURE),
        (None, None) => exit::FAILURE,
    }
}
