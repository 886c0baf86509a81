//! A private home for one broker: config, sealed passwords, socket, and the
//! real `mxtokend` / `mxtoken` binaries run with a cleared environment.

use crate::bins::bin;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

/// One `[profiles.NAME]` table of the broker's config.
#[derive(Debug, Clone)]
pub struct ProfileSpec {
    /// Profile name.
    pub name: String,
    /// The account whose password the broker holds.
    pub user: String,
    /// Its password (sealed with the `age` CLI on disk).
    pub password: String,
    /// `mint` value.
    pub mint: &'static str,
    /// `lease_user` (admin-api only).
    pub lease_user: Option<String>,
    /// Extra TOML lines for the table.
    pub extra: String,
}

impl ProfileSpec {
    /// A `mint = "login"` profile.
    pub fn login(name: &str, user: &str, password: &str) -> Self {
        Self {
            name: name.into(),
            user: user.into(),
            password: password.into(),
            mint: "login",
            lease_user: None,
            extra: String::new(),
        }
    }

    /// A `mint = "admin-api"` profile.
    pub fn admin_api(name: &str, minter: &str, password: &str, lease_user: &str) -> Self {
        Self {
            mint: "admin-api",
            lease_user: Some(lease_user.into()),
            ..Self::login(name, minter, password)
        }
    }

    /// Adds a TOML line to the profile.
    pub fn with(mut self, line: &str) -> Self {
        self.extra.push_str(line);
        self.extra.push('\n');
        self
    }
}

/// A broker's private directory tree and, once started, its process.
#[derive(Debug)]
pub struct BrokerEnv {
    home: tempfile::TempDir,
    homeserver: String,
    log_filter: String,
    child: Option<Child>,
    extra_env: Vec<(String, String)>,
}

impl BrokerEnv {
    /// Writes a config for `profiles` on the homeserver at `homeserver`,
    /// sealing each password with `age` to a fresh `age-keygen` identity.
    pub fn new(homeserver: &str, profiles: &[ProfileSpec]) -> Self {
        let home = tempfile::Builder::new()
            .prefix("mxt-")
            .tempdir()
            .expect("tempdir");
        let env = Self {
            home,
            homeserver: homeserver.to_owned(),
            log_filter: "debug".to_owned(),
            child: None,
            extra_env: Vec::new(),
        };
        std::fs::create_dir_all(env.config_dir()).expect("config dir");
        let identity = env.config_dir().join("identity.txt");
        run_ok(Command::new("age-keygen").arg("-o").arg(&identity));
        let mut text = format!(
            "default_profile = {:?}\n",
            profiles.first().map_or("admin", |p| p.name.as_str())
        );
        for p in profiles {
            let sealed = env.config_dir().join(format!("{}.age", p.name));
            env.seal(&p.password, &identity, &sealed);
            text.push_str(&format!(
                "\n[profiles.{name}]\nhomeserver = {hs:?}\nuser = {user:?}\npassword = {{ age_file = \"{name}.age\", identity = \"identity.txt\" }}\nmint = {mint:?}\n",
                name = p.name,
                hs = homeserver,
                user = p.user,
                mint = p.mint
            ));
            if let Some(l) = &p.lease_user {
                text.push_str(&format!("lease_user = {l:?}\n"));
            }
            text.push_str(&p.extra);
        }
        env.write_config(&text);
        env
    }

    /// Seals `password` like a user would: `echo PASSWORD | age -r KEY -o FILE`.
    pub fn seal(&self, password: &str, identity: &Path, out: &Path) {
        let public = run_ok(Command::new("age-keygen").arg("-y").arg(identity));
        let recipient = String::from_utf8(public.stdout).expect("utf8");
        let mut child = Command::new("age")
            .args(["-r", recipient.trim(), "-o"])
            .arg(out)
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn age");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write");
        assert!(child.wait().expect("age").success(), "age failed");
    }

    /// Adds a variable to every command's environment (e.g. a D-Bus address).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.push((key.into(), value.into()));
    }

    /// Puts top-level `lines` (e.g. `allow_uids = [65534]`) at the head of
    /// the config, where TOML wants keys outside tables.
    pub fn prepend_config(&self, lines: &str) {
        let text = std::fs::read_to_string(self.config_path()).expect("read config");
        self.write_config(&format!("{lines}\n{text}"));
    }

    /// The broker's audit log.
    pub fn audit_log(&self) -> String {
        std::fs::read_to_string(self.state_dir().join("audit.log")).unwrap_or_default()
    }

    /// Sets the broker's `MXTOKEN_LOG` filter for the next [`Self::start`]
    /// (default `debug`, which tests want; benchmarks run at the shipped
    /// default, `info`, so they do not time debug logging).
    pub fn with_log_filter(&mut self, filter: &str) -> &mut Self {
        filter.clone_into(&mut self.log_filter);
        self
    }

    /// Replaces the config file.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// `$HOME` of this broker and its clients.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `$XDG_CONFIG_HOME/mxtoken`.
    pub fn config_dir(&self) -> PathBuf {
        self.home().join(".config/mxtoken")
    }

    /// The default config path.
    pub fn config_path(&self) -> PathBuf {
        self.config_dir().join("config.toml")
    }

    /// `$XDG_RUNTIME_DIR` (the broker creates `mxtoken/` inside).
    pub fn runtime_dir(&self) -> PathBuf {
        self.home().join("run")
    }

    /// The default socket path under [`Self::runtime_dir`].
    pub fn socket(&self) -> PathBuf {
        self.runtime_dir().join("mxtoken/broker.sock")
    }

    /// `$XDG_STATE_HOME/mxtoken`: the journal lives here.
    pub fn state_dir(&self) -> PathBuf {
        self.home().join(".local/state/mxtoken")
    }

    /// The broker's stderr.
    pub fn log_path(&self) -> PathBuf {
        self.home().join("mxtokend.log")
    }

    /// Everything the broker has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The homeserver URL the profiles use.
    pub fn homeserver(&self) -> &str {
        &self.homeserver
    }

    /// `program` with this broker's environment: a cleared environment with
    /// PATH, a private HOME and XDG tree, and auto-start off
    /// (`MXTOKEN_NO_AUTOSTART=1`; tests of auto-start remove it).
    pub fn base_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("MXTOKEN_NO_AUTOSTART", "1")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("XDG_STATE_HOME", self.home().join(".local/state"))
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.home());
        cmd
    }

    /// A `mxtokend` command with this environment (not started).
    pub fn mxtokend(&self) -> Command {
        let mut cmd = self.base_command(bin("mxtokend"));
        cmd.env("MXTOKEN_LOG", &self.log_filter);
        cmd
    }

    /// A `mxtoken` command with this environment.
    pub fn mxtoken(&self) -> Command {
        self.base_command(bin("mxtoken"))
    }

    /// Runs `mxtoken ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.mxtoken()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run mxtoken")
    }

    /// Starts `mxtokend` and waits until it answers on its socket.
    pub fn start(&mut self) -> &mut Self {
        std::fs::create_dir_all(self.runtime_dir()).expect("runtime dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log");
        let child = self
            .mxtokend()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mxtokend");
        self.child = Some(child);
        crate::poll::until("mxtokend to answer", Duration::from_secs(20), || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("mxtokend exited early with {status}; log:\n{}", self.log());
            }
            self.run(&["status"]).status.success().then_some(())
        });
        self
    }

    /// The broker's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker started").id()
    }

    /// Sends `signal` to the broker and waits for it to exit.
    pub fn signal_and_wait(&mut self, signal: rustix::process::Signal) -> ExitStatus {
        let mut child = self.child.take().expect("broker started");
        if let Some(p) = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(p, signal);
        }
        crate::poll::until("mxtokend to exit", Duration::from_secs(30), || {
            child.try_wait().ok().flatten()
        })
    }
}

impl Drop for BrokerEnv {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs a command and panics with its stderr unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
