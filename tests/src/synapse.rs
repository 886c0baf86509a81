//! A real Synapse homeserver on 127.0.0.1, installed from PyPI into a cached
//! virtualenv, with SQLite and a throwaway data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The Synapse release the tests pin (scripts/setup installs the same one).
pub const SYNAPSE_VERSION: &str = include_str!("../synapse-version.txt").trim_ascii();

/// The server name of every test homeserver.
pub const SERVER_NAME: &str = "test.local";

/// The login rate limits a test homeserver runs with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimits {
    /// Raised far out of the way, for tests that are not about them.
    Raised,
    /// Synapse's defaults (5 logins, then one per ~333 s).
    Stock,
    /// `per_second` and `burst_count` for the address and account limiters.
    Custom {
        /// Refill rate.
        per_second: f64,
        /// Bucket size.
        burst: u32,
    },
}

/// A running Synapse. Killed when the test process exits (PR_SET_PDEATHSIG).
#[derive(Debug)]
pub struct Synapse {
    dir: PathBuf,
    config: PathBuf,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pid: AtomicU32,
    users: AtomicUsize,
    auditor: OnceLock<String>,
}

/// The virtualenv holding Synapse: `$MXTOKEN_SYNAPSE_VENV`, else
/// `~/.cache/mxtoken/synapse-venv`.
pub fn venv() -> PathBuf {
    if let Some(v) = std::env::var_os("MXTOKEN_SYNAPSE_VENV") {
        return PathBuf::from(v);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/mxtoken/synapse-venv")
}

/// Installs Synapse into [`venv`] unless it is there already.
pub fn ensure_installed() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let v = venv();
        let py = v.join("bin/python");
        let ok = Command::new(&py)
            .args(["-c", "import synapse"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "installing matrix-synapse {SYNAPSE_VERSION} into {} ...",
                v.display()
            );
            run(Command::new("python3").arg("-m").arg("venv").arg(&v));
            run(Command::new(v.join("bin/pip")).args([
                "install",
                "-q",
                &format!("matrix-synapse=={SYNAPSE_VERSION}"),
            ]));
        }
        v
    })
    .clone()
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A process-unique scratch directory under the system temp dir.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir");
    dir.keep()
}

impl Synapse {
    /// One shared homeserver with raised login limits, for the whole test process.
    pub fn shared() -> &'static Synapse {
        static SHARED: OnceLock<Synapse> = OnceLock::new();
        SHARED.get_or_init(|| Synapse::start(RateLimits::Raised))
    }

    /// Starts a new homeserver with the given login limits and cheap
    /// password hashing (bcrypt cost 4), as every test wants.
    pub fn start(limits: RateLimits) -> Synapse {
        Self::start_with(limits, Some(4))
    }

    /// Starts a new homeserver with the given login limits and bcrypt cost
    /// (`None`: Synapse's default, 12). The cost applies to passwords hashed
    /// while it runs, i.e. accounts registered on it; benchmarks use the
    /// default to time password logins as a real server does them.
    pub fn start_with(limits: RateLimits, bcrypt_rounds: Option<u32>) -> Synapse {
        let venv = ensure_installed();
        remove_dead_scratch_dirs();
        let dir = scratch_dir("mxtoken-synapse-");
        let port = free_port();
        let config = dir.join("homeserver.yaml");
        std::fs::write(&config, config_text(&dir, port, limits, bcrypt_rounds))
            .expect("write homeserver.yaml");
        run(Command::new(venv.join("bin/python"))
            .args(["-m", "synapse.app.homeserver", "--generate-keys", "-c"])
            .arg(&config)
            .stdout(Stdio::null()));
        let hs = Synapse {
            dir,
            config,
            port,
            url: format!("http://127.0.0.1:{port}"),
            pid: AtomicU32::new(0),
            users: AtomicUsize::new(0),
            auditor: OnceLock::new(),
        };
        hs.resume();
        hs
    }

    /// Starts the server process (again) and waits until it answers.
    pub fn resume(&self) {
        let python = venv().join("bin/python");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("synapse.log"))
            .expect("open synapse.log");
        let mut cmd = Command::new("python3");
        // Ask the kernel to kill Synapse when the thread that started it dies;
        // that thread lives until Synapse exits, so this fires when the test
        // process does.
        cmd.args([
            "-c",
            "import ctypes,os,sys; ctypes.CDLL(None).prctl(1, 9); os.execv(sys.argv[1], sys.argv[1:])",
        ])
        .arg(&python)
        .args(["-m", "synapse.app.homeserver", "-c"])
        .arg(&self.config)
        .current_dir(&self.dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(child.id()));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        });
        let pid = rx.recv().expect("keeper thread").expect("spawn synapse");
        self.pid.store(pid, Ordering::SeqCst);
        // Synapse writes its pid_file only when it daemonizes, and it does
        // not here; without this file every other test process's
        // `remove_dead_scratch_dirs` takes a live server whose directory has
        // not changed for 5 minutes for dead and deletes its config and
        // database under it.
        std::fs::write(self.dir.join("homeserver.pid"), pid.to_string())
            .expect("write homeserver.pid");
        let versions = format!("{}/_matrix/client/versions", self.url);
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        crate::poll::until(
            &format!(
                "Synapse on {} (log: {})",
                self.url,
                self.log_path().display()
            ),
            Duration::from_secs(90),
            || {
                client
                    .get(&versions)
                    .send()
                    .ok()
                    .filter(|r| r.status().is_success())
            },
        );
    }

    /// Stops the server (SIGKILL) and waits until the port is closed: an outage.
    pub fn pause(&self) {
        let pid = self.pid.load(Ordering::SeqCst);
        if let Some(p) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        crate::poll::until("Synapse to stop", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port))
                .is_err()
                .then_some(())
        });
    }

    /// The pid of the server process (0 while stopped by [`Self::pause`]
    /// before it was resumed), e.g. to read its CPU time from `/proc`.
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("synapse.log")
    }

    /// The SQLite database (write to it only while [`Self::pause`]d).
    pub fn database_path(&self) -> PathBuf {
        self.dir.join("homeserver.db")
    }

    /// The homeserver.yaml.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Creates an account with `register_new_matrix_user`; returns its user id.
    pub fn register(&self, localpart: &str, password: &str, admin: bool) -> String {
        // register_new_matrix_user is a Python program; serialise the calls so
        // parallel tests do not load the machine with interpreters.
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let mut cmd = Command::new(venv().join("bin/register_new_matrix_user"));
        cmd.arg("-c")
            .arg(&self.config)
            .args(["-u", localpart, "-p", password]);
        cmd.arg(if admin { "-a" } else { "--no-admin" })
            .arg(&self.url);
        run(&mut cmd);
        format!("@{localpart}:{SERVER_NAME}")
    }

    /// A token of a separate admin account, for tests to inspect the server
    /// (list devices) without touching the accounts under test.
    pub fn auditor_token(&self) -> &str {
        self.auditor.get_or_init(|| {
            let (user, pw) = self.new_user("auditor", true);
            crate::Matrix::new(&self.url).login(&user, &pw).0
        })
    }

    /// A fresh account with a unique name: `(user_id, password)`.
    pub fn new_user(&self, prefix: &str, admin: bool) -> (String, String) {
        let n = self.users.fetch_add(1, Ordering::SeqCst);
        let localpart = format!("{prefix}{n}p{}", std::process::id());
        // Quotes and a dollar sign: the password must survive every layer verbatim.
        let password = format!("pw-{localpart}-S3cr3t!'\"$");
        (self.register(&localpart, &password, admin), password)
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.pause();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Earlier runs' data directories whose Synapse is gone (the shared server is
/// a static and never dropped, so its directory outlives the test process).
fn remove_dead_scratch_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .starts_with("mxtoken-synapse-")
        {
            continue;
        }
        let pid = std::fs::read_to_string(e.path().join("homeserver.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        let alive = pid
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
        let age = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default();
        // A fresh directory may not have its pid file yet.
        if !alive && age > Duration::from_secs(300) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn config_text(dir: &Path, port: u16, limits: RateLimits, bcrypt_rounds: Option<u32>) -> String {
    let d = dir.display();
    let bcrypt = bcrypt_rounds.map_or(String::new(), |r| format!("bcrypt_rounds: {r}\n"));
    let rc_login = match limits {
        RateLimits::Raised => "rc_login:\n  address: {per_second: 1000, burst_count: 1000}\n  account: {per_second: 1000, burst_count: 1000}\n  failed_attempts: {per_second: 1000, burst_count: 1000}\n".to_owned(),
        RateLimits::Stock => String::new(),
        RateLimits::Custom { per_second, burst } => format!(
            "rc_login:\n  address: {{per_second: {per_second}, burst_count: {burst}}}\n  account: {{per_second: {per_second}, burst_count: {burst}}}\n"
        ),
    };
    format!(
        r#"server_name: "{SERVER_NAME}"
pid_file: {d}/homeserver.pid
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: {d}/homeserver.db
media_store_path: {d}/media_store
signing_key_path: {d}/signing.key
registration_shared_secret: "test-registration-secret"
macaroon_secret_key: "test-macaroon-secret"
form_secret: "test-form-secret"
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
enable_metrics: false
{bcrypt}{rc_login}"#
    )
}
