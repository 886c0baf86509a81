//! `mxtoken exec`: the token works inside, is dead after, exit codes pass
//! through, and signals reach the command exactly once.

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A shell script run under exec that saves what it was given.
const SAVE_ENV: &str = r#"printf %s "$MATRIX_ADMIN_TOKEN" > token; printf '%s\n%s\n%s\n' "$MATRIX_HOMESERVER_URL" "$MATRIX_ADMIN_USER" "$MXTOKEN_LEASE_ID" > vars"#;

#[test]
fn exec_injects_a_working_token_that_dies_with_the_command() {
    let f = Fixture::login();
    let devices_before = f.devices();
    let script = format!(
        "{SAVE_ENV}; curl -sf -o whoami.json -H \"Authorization: Bearer $MATRIX_ADMIN_TOKEN\" \"$MATRIX_HOMESERVER_URL/_synapse/admin/v2/users/$MATRIX_ADMIN_USER\""
    );
    let out = f
        .env
        .run(&["exec", "--purpose", "test", "--", "sh", "-c", &script]);
    assert_success(&out);
    assert_eq!(stdout(&out), "", "exec must print nothing of its own");
    let home = f.env.home();
    let token = std::fs::read_to_string(home.join("token")).expect("token file");
    assert!(token.starts_with("syt_"), "not a Synapse token");
    // The command made a real admin API call with it...
    let whoami: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.join("whoami.json")).expect("admin answer"),
    )
    .expect("json");
    assert_eq!(whoami["name"], f.user.as_str());
    assert_eq!(whoami["admin"], true);
    let vars = std::fs::read_to_string(home.join("vars")).expect("vars");
    let vars: Vec<&str> = vars.lines().collect();
    assert_eq!(vars[0], f.synapse.url);
    assert_eq!(vars[1], f.user);
    assert!(vars[2].starts_with("mxt-"));
    // ...and the homeserver refuses it now, with no device left behind.
    f.hs.assert_dead(&token);
    assert_eq!(f.devices(), devices_before);
    assert_eq!(stdout(&f.env.run(&["leases"])), "no live leases\n");
    f.assert_log_clean(&[&token]);
}

#[test]
fn exec_exit_codes_follow_the_shell() {
    let f = Fixture::login();
    let code = |args: &[&str]| f.env.run(args).status.code();
    assert_eq!(code(&["exec", "--", "true"]), Some(0));
    assert_eq!(code(&["exec", "--", "sh", "-c", "exit 7"]), Some(7));
    assert_eq!(
        code(&["exec", "--", "sh", "-c", "kill -TERM $$"]),
        Some(143)
    );
    let missing = f.env.run(&["exec", "--", "no-such-command-mxtoken"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(
        !f.env.log().contains("exec no-such-command-mxtoken"),
        "a missing command must not cost a lease"
    );
    assert_eq!(
        stderr(&missing),
        "mxtoken: no-such-command-mxtoken: command not found\n"
    );
    let not_exec = f.env.home().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").expect("write");
    let denied = f.env.run(&["exec", "--", not_exec.to_str().expect("utf8")]);
    assert_eq!(denied.status.code(), Some(126));
    assert!(
        stderr(&denied).contains("cannot execute"),
        "{}",
        stderr(&denied)
    );
    // Every one of those leases was released.
    assert_eq!(stdout(&f.env.run(&["leases"])), "no live leases\n");
}

#[test]
fn sigkill_of_the_client_revokes_the_token_within_a_second() {
    let f = Fixture::login();
    let devices_before = f.devices();
    let home = f.env.home();
    let mut client = f
        .env
        .mxtoken()
        .args([
            "exec",
            "--",
            "sh",
            "-c",
            &format!("{SAVE_ENV}; echo $$ > child.pid; exec sleep 60"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let token = poll::until("the command to start", Duration::from_secs(20), || {
        std::fs::read_to_string(home.join("child.pid"))
            .ok()
            .filter(|s| s.ends_with('\n'))?;
        std::fs::read_to_string(home.join("token")).ok()
    });
    assert!(f.hs.alive(&token));
    client.kill().expect("SIGKILL mxtoken");
    let killed = Instant::now();
    client.wait().expect("reap");
    poll::until(
        "the token to be revoked",
        Duration::from_secs(1).saturating_sub(killed.elapsed()),
        || (!f.hs.alive(&token)).then_some(()),
    );
    let child: i32 = std::fs::read_to_string(home.join("child.pid"))
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    let _ = Command::new("kill").arg(child.to_string()).status();
    poll::until("the lease's device to go", Duration::from_secs(5), || {
        (f.devices() == devices_before).then_some(())
    });
}

#[test]
fn sigterm_to_the_client_is_forwarded_to_the_command() {
    let f = Fixture::login();
    let home = f.env.home();
    let mut client = f
        .env
        .mxtoken()
        .args([
            "exec",
            "--",
            "sh",
            "-c",
            &format!("{SAVE_ENV}; exec sleep 60"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let token = poll::until("the command to start", Duration::from_secs(20), || {
        std::fs::read_to_string(home.join("token")).ok()
    });
    let pid =
        rustix::process::Pid::from_raw(i32::try_from(client.id()).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let status = client.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(143),
        "sleep should have died of the forwarded SIGTERM"
    );
    f.hs.assert_dead(&token);
}

/// Ctrl-C on a terminal goes to the whole foreground process group; the
/// command must get it once, from the terminal, not again from mxtoken.
#[test]
fn terminal_ctrl_c_reaches_the_command_once() {
    let f = Fixture::login();
    let home = f.env.home();
    // The command logs the origin (si_code) of every SIGINT it receives.
    let child = r#"
import os, signal, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
open("token", "w").write(os.environ["MATRIX_ADMIN_TOKEN"])
open("ready", "w").close()
log = open("ints", "a")
deadline = time.time() + 3
while time.time() < deadline:
    info = signal.sigtimedwait([signal.SIGINT], max(0.01, deadline - time.time()))
    if info is not None:
        log.write("%d %d\n" % (info.si_code, info.si_pid)); log.flush()
"#;
    std::fs::write(home.join("child.py"), child).expect("write");
    // A real pseudo-terminal, Ctrl-C typed into it.
    let driver = r#"
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
deadline = time.time() + 30
while not os.path.exists("ready"):
    done, status = os.waitpid(pid, os.WNOHANG)
    if done or time.time() > deadline:
        try:
            print(os.read(fd, 65536).decode(errors="replace"), file=sys.stderr)
        except OSError:
            pass
        print("mxtoken exited or stalled before the command started", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.01)
os.write(fd, b"\x03")
while True:
    try:
        if not os.read(fd, 1024): break
    except OSError:
        break
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"#;
    let python = mxtoken_tests::synapse::venv().join("bin/python");
    let mxtoken = f.env.mxtoken();
    let envs: Vec<_> = mxtoken
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let out = Command::new(&python)
        .args(["-c", driver])
        .arg(mxtoken.get_program())
        .args(["exec", "--"])
        .arg(&python)
        .arg("child.py")
        .env_clear()
        .envs(envs)
        .current_dir(home)
        .output()
        .expect("pty driver");
    assert_eq!(stdout(&out).trim(), "0", "stderr: {}", stderr(&out));
    let ints = std::fs::read_to_string(home.join("ints")).expect("ints");
    let lines: Vec<&str> = ints.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "SIGINT arrived {} times: {ints:?}",
        lines.len()
    );
    assert!(
        lines[0].starts_with("128 "),
        "SIGINT should come from the terminal (SI_KERNEL): {ints:?}"
    );
    let token = std::fs::read_to_string(home.join("token")).expect("token");
    f.hs.assert_dead(&token);
}
