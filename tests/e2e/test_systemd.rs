//! systemd integration: socket activation and readiness the way systemd does
//! them, and the unit files in packaging/systemd.

use crate::common::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Binds and listens on argv[1] (0600), moves the socket to fd 3, sets
/// LISTEN_FDS=1 and LISTEN_PID to its own pid (which survives exec) and execs
/// argv[2:], as systemd does for a socket-activated service.
const LAUNCHER: &str = r#"
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o600)
s.listen(64)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)  # dup2 onto itself keeps close-on-exec
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"#;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn units_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("packaging/systemd")
}

#[test]
fn a_socket_passed_by_the_service_manager_serves_leases_after_ready() {
    let synapse = Synapse::shared();
    let (user, pw) = synapse.new_user("admin", true);
    let env = BrokerEnv::new(&synapse.url, &[ProfileSpec::login("admin", &user, &pw)]);
    let hs = Matrix::new(&synapse.url);
    let dir = env.socket().parent().expect("dir").to_owned();
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    let notify_path = env.home().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");

    let log = std::fs::File::create(env.log_path()).expect("log");
    let mut broker = env.base_command("python3");
    broker
        .args(["-c", LAUNCHER])
        .arg(env.socket())
        .arg(mxtoken_tests::bins::bin("mxtokend"))
        // A --socket elsewhere is ignored: the passed socket wins.
        .arg("--socket")
        .arg(env.home().join("elsewhere.sock"))
        .env("MXTOKEN_LOG", "debug")
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let mut broker = KillOnDrop(broker.spawn().expect("spawn launcher"));

    // READY=1 comes only once the socket accepts: the first request after it
    // must succeed, with no polling.
    let mut buf = [0u8; 256];
    let n = notify
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no READY=1 from mxtokend ({e}); log:\n{}", env.log()));
    assert_eq!(&buf[..n], b"READY=1\n");
    assert_success(&env.run(&["status"]));

    let token = stdout(&{
        let out = env.run(&["get"]);
        assert_success(&out);
        out
    })
    .trim_end()
    .to_owned();
    assert!(hs.alive(&token));
    assert!(
        env.log().contains("socket passed by the service manager"),
        "{}",
        env.log()
    );
    assert!(!env.home().join("elsewhere.sock").exists());

    // SIGTERM: STOPPING=1, leases revoked, and the socket left to its owner.
    let pid = rustix::process::Pid::from_raw(broker.0.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
    let n = notify.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1\n");
    let status = poll::until("mxtokend to exit", Duration::from_secs(30), || {
        broker.0.try_wait().ok().flatten()
    });
    assert_eq!(status.code(), Some(0), "log:\n{}", env.log());
    hs.assert_dead(&token);
    assert!(
        env.socket().exists(),
        "the service manager's socket was removed"
    );
    assert!(!env.log().contains(&token) && !env.log().contains(&pw));
}

/// Sets LISTEN_PID to its own pid and LISTEN_FDS to argv[1], puts a regular
/// file on fd 3, and execs argv[2:]: activations mxtokend must refuse.
const BAD_LAUNCHER: &str = r#"
import os, sys
fd = os.open(os.devnull, os.O_RDONLY)
os.dup2(fd, 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = sys.argv[1]
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"#;

#[test]
fn a_broken_activation_is_refused_clearly() {
    let synapse = Synapse::shared();
    let (user, pw) = synapse.new_user("admin", true);
    let env = BrokerEnv::new(&synapse.url, &[ProfileSpec::login("admin", &user, &pw)]);
    let run = |fds: &str| {
        let mut cmd = env.base_command("python3");
        cmd.args(["-c", BAD_LAUNCHER, fds])
            .arg(mxtoken_tests::bins::bin("mxtokend"));
        poll::output_within(&mut cmd, Duration::from_secs(20))
    };
    let out = run("2");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("LISTEN_FDS=\"2\"") && stderr(&out).contains("exactly one"),
        "{}",
        stderr(&out)
    );
    let out = run("1");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("descriptor 3 passed by the service manager is not a socket"),
        "{}",
        stderr(&out)
    );
    assert!(!env.socket().exists());
}

/// `systemd-analyze verify` on the units, when systemd-analyze is installed.
#[test]
fn unit_files_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("SKIPPED: systemd-analyze is not installed");
        return;
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let bin_dir = mxtoken_tests::bins::bin_dir();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(units_dir()).expect("packaging/systemd") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_owned();
        // verify checks that ExecStart exists: point it at the built binaries.
        let text = std::fs::read_to_string(&path)
            .expect("unit")
            .replace("/usr/bin/", &format!("{}/", bin_dir.display()));
        std::fs::write(scratch.path().join(&name), text).expect("write unit");
        units.push(name);
    }
    units.sort();
    assert_eq!(
        units,
        [
            "mxtoken-sweep.service",
            "mxtoken-sweep.timer",
            "mxtokend.service",
            "mxtokend.socket"
        ]
    );
    let out = Command::new("systemd-analyze")
        .args(["--user", "--man=no", "verify"])
        .args(&units)
        .current_dir(scratch.path())
        .env("XDG_RUNTIME_DIR", scratch.path())
        .output()
        .expect("systemd-analyze");
    assert!(
        out.status.success() && stderr(&out).trim().is_empty(),
        "systemd-analyze verify: {}",
        stderr(&out)
    );
}

#[test]
fn the_service_is_type_notify_and_hardened_as_documented() {
    let unit = std::fs::read_to_string(units_dir().join("mxtokend.service")).expect("unit");
    let settings: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for want in [
        "Type=notify",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallArchitectures=native",
        "UMask=0077",
        "LimitCORE=0",
    ] {
        assert!(settings.contains(&want), "mxtokend.service lacks {want}");
    }
    let socket = std::fs::read_to_string(units_dir().join("mxtokend.socket")).expect("socket");
    assert!(socket.contains("ListenStream=%t/mxtoken/broker.sock"));
}
