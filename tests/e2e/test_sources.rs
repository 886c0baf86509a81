//! Password sources end to end: init or import → broker → lease against the
//! real Synapse, interop with the real `age` CLI, lock/unlock, the keyrings.

use crate::common::*;
use mxtoken_tests::age_cli;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A broker home with no profile yet, and a fresh admin on the shared Synapse.
struct Blank {
    env: BrokerEnv,
    hs: Matrix,
    user: String,
    password: String,
}

fn blank() -> Blank {
    let synapse = Synapse::shared();
    let (user, password) = synapse.new_user("admin", true);
    let env = BrokerEnv::new(&synapse.url, &[]);
    // `init` writes the config; start without one.
    std::fs::remove_file(env.config_path()).expect("rm config");
    std::fs::remove_file(env.config_dir().join("identity.txt")).expect("rm identity");
    Blank {
        env,
        hs: Matrix::new(&synapse.url),
        user,
        password,
    }
}

fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

impl Blank {
    fn init(&self, store: &str, extra: &[&str]) -> Output {
        let mut cmd = self.env.mxtoken();
        cmd.args([
            "init",
            "--homeserver",
            self.env.homeserver(),
            "--user",
            &self.user,
        ])
        .args(["--password-stdin", "--store", store])
        .args(extra);
        let out = with_stdin(cmd, &format!("{}\n", self.password));
        self.assert_no_secret(&out);
        out
    }

    fn assert_no_secret(&self, out: &Output) {
        assert!(!stdout(out).contains(&self.password) && !stderr(out).contains(&self.password));
        assert!(stdout(out).is_empty(), "stdout: {}", stdout(out));
    }

    /// Takes a lease and checks the homeserver accepts its token.
    fn lease_works(&self) -> String {
        let out = self.env.run(&["get", "--ttl", "1m"]);
        assert_success(&out);
        let token = stdout(&out).trim().to_owned();
        assert_eq!(self.hs.whoami(&token).body["user_id"], self.user.as_str());
        token
    }

    /// No file but the sealed ones holds the password; the broker log neither.
    fn assert_files_and_log_clean(&self, tokens: &[&str]) {
        let log = self.env.log();
        assert!(!log.contains(&self.password), "password in broker log");
        for t in tokens {
            assert!(!log.contains(t), "token in broker log");
        }
        for f in walk(self.env.home()) {
            let bytes = std::fs::read(&f).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(&self.password),
                "password in {}",
                f.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(walk(&p)),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).expect("meta").permissions())
        & 0o777
}

fn status_locked(env: &BrokerEnv, profile: &str) -> bool {
    let out = env.run(&["status", "--json"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    v["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .find(|p| p["name"] == profile)
        .expect("profile")["locked"]
        .as_bool()
        .expect("locked")
}

#[test]
fn init_age_identity_then_lease_and_the_age_cli_decrypts_it() {
    let mut b = blank();
    let out = b.init("age-identity", &[]);
    assert_success(&out);
    assert_eq!(mode(&b.env.config_path()), 0o600);
    let id = b.env.config_dir().join("identity.txt");
    assert_eq!(mode(&id), 0o600);
    let sealed = b.env.config_dir().join("admin.age");
    assert_eq!(
        age_cli::decrypt_with_identity(&sealed, &id),
        format!("{}\n", b.password)
    );
    b.env.start();
    let token = b.lease_works();
    b.assert_files_and_log_clean(&[&token]);
}

#[test]
fn init_keeps_other_profiles_and_comments() {
    let b = blank();
    let first = b.init("age-identity", &["--profile", "one"]);
    assert_success(&first);
    let text = std::fs::read_to_string(b.env.config_path()).expect("read");
    b.env
        .write_config(&format!("# keep me\n{text}max_ttl = \"2h\" # and me\n"));
    assert_success(&b.init("age-identity", &["--profile", "two"]));
    let text = std::fs::read_to_string(b.env.config_path()).expect("read");
    assert!(
        text.contains("# keep me") && text.contains("max_ttl = \"2h\" # and me"),
        "{text}"
    );
    assert!(
        text.contains("[profiles.one]") && text.contains("[profiles.two]"),
        "{text}"
    );
    assert!(text.contains("default_profile = \"one\""), "{text}");
}

#[test]
fn a_wrong_password_at_init_is_refused_and_writes_nothing() {
    let b = blank();
    let mut cmd = b.env.mxtoken();
    cmd.args([
        "init",
        "--homeserver",
        b.env.homeserver(),
        "--user",
        &b.user,
        "--password-stdin",
    ]);
    let out = with_stdin(cmd, "not-the-password\n");
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refused the password"),
        "{}",
        stderr(&out)
    );
    assert!(!b.env.config_path().exists());
}

#[test]
fn passphrase_file_made_by_age_cli_locks_unlocks_and_refuses_a_wrong_passphrase() {
    let mut b = blank();
    let sealed = b.env.config_dir().join("admin.age");
    age_cli::encrypt_with_passphrase(&b.password, "correct horse", &sealed);
    b.env.write_config(&format!(
        "[profiles.admin]\nhomeserver = {:?}\nuser = {:?}\npassword = {{ age_file = \"admin.age\" }}\n",
        b.env.homeserver(),
        b.user
    ));
    b.env.start();
    assert!(status_locked(&b.env, "admin"));
    let out = b.env.run(&["get"]);
    assert_eq!(out.status.code(), Some(80), "{}", stderr(&out));
    assert!(stderr(&out).contains("mxtoken unlock"), "{}", stderr(&out));

    let mut wrong = b.env.mxtoken();
    wrong.args(["unlock", "--passphrase-stdin"]);
    let out = with_stdin(wrong, "battery staple\n");
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert!(stderr(&out).contains("stays locked"), "{}", stderr(&out));
    assert!(status_locked(&b.env, "admin"));

    let mut right = b.env.mxtoken();
    right.args(["unlock", "--profile", "admin", "--passphrase-stdin"]);
    let out = with_stdin(right, "correct horse\n");
    assert_success(&out);
    assert!(!status_locked(&b.env, "admin"));
    let token = b.lease_works();

    assert_success(&b.env.run(&["lock"]));
    assert!(status_locked(&b.env, "admin"));
    assert_eq!(b.env.run(&["get"]).status.code(), Some(80));
    // The lease taken before the lock lives on until it ends.
    assert!(b.hs.alive(&token));
    let log = b.env.log();
    assert!(!log.contains("correct horse") && !log.contains("battery staple"));
    b.assert_files_and_log_clean(&[&token]);
}

#[test]
fn init_age_passphrase_decrypts_with_the_age_cli_and_unlocks_the_broker() {
    let mut b = blank();
    let pass_file = b.env.home().join("passphrase.txt");
    std::fs::write(&pass_file, "tr0ub4dor &3\n").expect("write");
    let out = b.init(
        "age-passphrase",
        &["--passphrase-file", pass_file.to_str().expect("utf8")],
    );
    assert_success(&out);
    assert!(stderr(&out).contains("mxtoken unlock"), "{}", stderr(&out));
    let sealed = b.env.config_dir().join("admin.age");
    assert_eq!(
        age_cli::decrypt_with_passphrase(&sealed, "tr0ub4dor &3").as_deref(),
        Some(format!("{}\n", b.password).as_str())
    );
    b.env.start();
    assert!(status_locked(&b.env, "admin"));
    let mut unlock = b.env.mxtoken();
    unlock.args(["unlock", "--passphrase-stdin"]);
    assert_success(&with_stdin(unlock, "tr0ub4dor &3\n"));
    let token = b.lease_works();
    b.assert_files_and_log_clean(&[&token]);
}

#[test]
fn idle_lock_after_locks_the_profile() {
    let mut b = blank();
    assert_success(&b.init("age-identity", &[]));
    let text = std::fs::read_to_string(b.env.config_path()).expect("read");
    b.env.write_config(&format!("{text}lock_after = \"1s\"\n"));
    b.env.start();
    poll::until("the idle lock", Duration::from_secs(30), || {
        status_locked(&b.env, "admin").then_some(())
    });
    assert_eq!(b.env.run(&["get"]).status.code(), Some(80));
    // An identity-file profile unlocks without a passphrase.
    assert_success(&b.env.run(&["unlock"]));
    b.lease_works();
}

fn ssh_keygen(dir: &Path, kind: &str) -> PathBuf {
    let key = dir.join(format!("id_{kind}"));
    mxtoken_tests::broker::run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", "test", "-f"])
            .arg(&key),
    );
    key
}

#[test]
fn ssh_keys_work_both_ways_with_the_age_cli() {
    for kind in ["ed25519", "rsa"] {
        let mut b = blank();
        let key = ssh_keygen(b.env.home(), kind);
        // A file the age CLI sealed to the SSH key opens in the broker.
        let sealed = b.env.config_dir().join("cli.age");
        let mut pub_key = key.clone().into_os_string();
        pub_key.push(".pub");
        age_cli::encrypt_to_recipients_file(&b.password, Path::new(&pub_key), &sealed);
        b.env.write_config(&format!(
            "[profiles.admin]\nhomeserver = {:?}\nuser = {:?}\npassword = {{ age_file = \"cli.age\", identity = {:?} }}\n",
            b.env.homeserver(),
            b.user,
            key.display().to_string()
        ));
        b.env.start();
        b.lease_works();
        let _ = b.env.signal_and_wait(rustix::process::Signal::TERM);
        // A file init sealed to the SSH key opens with the age CLI.
        let store = format!("age-ssh:{}", key.display());
        assert_success(&b.init(&store, &["--profile", "viainit"]));
        assert_eq!(
            age_cli::decrypt_with_identity(&b.env.config_dir().join("viainit.age"), &key),
            format!("{}\n", b.password),
            "{kind}"
        );
    }
}

#[test]
fn an_identity_readable_by_others_is_refused_with_the_fix() {
    let b = blank();
    assert_success(&b.init("age-identity", &[]));
    let id = b.env.config_dir().join("identity.txt");
    std::fs::set_permissions(&id, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let out = poll::output_within(&mut b.env.mxtokend(), Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(
        err.contains(&id.display().to_string()) && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn keyring_on_headless_linux_uses_keyutils() {
    let mut b = blank();
    let out = b.init("keyring", &[]);
    assert_success(&out);
    assert!(stderr(&out).contains("keyutils"), "{}", stderr(&out));
    let text = std::fs::read_to_string(b.env.config_path()).expect("read");
    assert!(
        text.contains("password = { keyring = \"mxtoken\" }"),
        "{text}"
    );
    b.env.start();
    let token = b.lease_works();
    b.assert_files_and_log_clean(&[&token]);
}

#[test]
fn keyring_on_a_desktop_uses_the_secret_service() {
    let mut b = blank();
    let svc = mxtoken_tests::secret_service::SecretService::start(b.env.home());
    b.env.set_env("DBUS_SESSION_BUS_ADDRESS", &svc.address);
    let out = b.init("keyring", &[]);
    assert_success(&out);
    assert!(stderr(&out).contains("Secret Service"), "{}", stderr(&out));
    b.env.start();
    let token = b.lease_works();
    assert!(b.env.log().contains("Secret Service"), "{}", b.env.log());
    // Unlocking reads the keyring again, from inside the broker's runtime.
    assert_success(&b.env.run(&["lock"]));
    assert_eq!(b.env.run(&["get"]).status.code(), Some(80));
    assert_success(&b.env.run(&["unlock"]));
    b.lease_works();
    b.assert_files_and_log_clean(&[&token]);
    let _ = b.env.signal_and_wait(rustix::process::Signal::TERM);
    drop(svc);
}

#[test]
fn import_each_quoting_style_with_crlf_and_revoke_the_old_token() {
    let mut b = blank();
    let (old_token, _) = b.hs.login(&b.user, &b.password);
    let quoted_pw = b.password.replace('\'', "'\\''");
    let file = b.env.home().join("matrix.env");
    std::fs::write(
        &file,
        format!(
            "# old credentials\r\n\r\nexport MATRIX_HOMESERVER_URL={}\r\nexport MATRIX_ADMIN_USER=\"{}\"  # the admin\r\nexport MATRIX_ADMIN_PASSWORD='{quoted_pw}'\r\nexport MATRIX_ADMIN_TOKEN=\"{old_token}\"\r\nexport MATRIX_ROOM_ID='#room:test.local'\r\n",
            b.env.homeserver(),
            b.user
        ),
    )
    .expect("write env file");
    let out = b
        .env
        .run(&["import", file.to_str().expect("utf8"), "--revoke-old-token"]);
    assert_success(&out);
    b.assert_no_secret(&out);
    assert!(!stderr(&out).contains(&old_token));
    assert!(
        stderr(&out).contains("delete the plaintext file"),
        "{}",
        stderr(&out)
    );
    b.hs.assert_dead(&old_token);
    std::fs::remove_file(&file).expect("rm");
    b.env.start();
    let token = b.lease_works();
    b.assert_files_and_log_clean(&[&token, &old_token]);
}

#[test]
fn import_names_a_missing_password_and_a_malformed_line() {
    let b = blank();
    let file = b.env.home().join("matrix.env");
    std::fs::write(
        &file,
        format!(
            "export MATRIX_HOMESERVER_URL={}\nexport MATRIX_ADMIN_USER={}\n",
            b.env.homeserver(),
            b.user
        ),
    )
    .expect("write");
    let out = b.env.run(&["import", file.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(65));
    assert!(
        stderr(&out).contains("no MATRIX_ADMIN_PASSWORD line"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&file, "export MATRIX_ADMIN_PASSWORD='unterminated\n").expect("write");
    let out = b.env.run(&["import", file.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(65));
    assert!(
        stderr(&out).contains("line 1: a single quote is not closed"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("unterminated"));
    assert!(!b.env.config_path().exists());
}

#[test]
fn the_broker_is_not_dumpable() {
    let mut b = blank();
    assert_success(&b.init("age-identity", &[]));
    b.env.start();
    let status = std::fs::read_to_string(format!("/proc/{}/status", b.env.pid())).expect("status");
    // A non-dumpable process's /proc files belong to root, and its core limit is 0.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", b.env.pid())).expect("limits");
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core line");
    assert!(core.split_whitespace().nth(4) == Some("0"), "{core}");
    assert!(status.contains("Name:"));
    assert!(!b.env.log().contains("cannot harden"), "{}", b.env.log());
    let text = stdout(&b.env.run(&["status"]));
    assert!(
        text.contains("admin (default):") && text.contains(", unlocked"),
        "{text}"
    );
}

#[test]
fn locking_an_admin_api_profile_logs_out_its_root_session() {
    let synapse = Synapse::shared();
    let (lease_user, _) = synapse.new_user("ops", true);
    let f = Fixture::with(|user, pw| vec![ProfileSpec::admin_api("admin", user, pw, &lease_user)]);
    let root_devices = || {
        f.devices()
            .into_iter()
            .filter(|d| d.starts_with("MXTOKEN_BROKER_"))
            .count()
    };
    let token = f.get(&["--ttl", "1m"]);
    assert_eq!(root_devices(), 1, "the root session's device");
    assert_success(&f.env.run(&["lock", "--profile", "admin"]));
    assert_eq!(root_devices(), 0, "locking logs the root session out");
    assert_eq!(f.env.run(&["get"]).status.code(), Some(80));
    assert!(f.hs.alive(&token), "a live lease survives the lock");
    assert_success(&f.env.run(&["unlock"]));
    f.get(&[]);
    f.assert_log_clean(&[&token]);
}

fn say<'a>(prompt: &'a str, text: &'a str, secret: bool) -> mxtoken_tests::tty::Answer<'a> {
    mxtoken_tests::tty::Answer {
        prompt,
        text,
        secret,
    }
}

#[test]
fn init_and_unlock_ask_on_the_terminal_without_echo() {
    let mut b = blank();
    let mut cmd = b.env.mxtoken();
    cmd.args(["init", "--store", "age-passphrase"]);
    let (code, screen) = mxtoken_tests::tty::run(
        &cmd,
        &[
            say("Homeserver URL", b.env.homeserver(), false),
            say("Admin user id", &b.user, false),
            say("Password of", &b.password, true),
            say("New passphrase", "sesame tty", true),
            say("Same passphrase again", "sesame tty", true),
        ],
    );
    assert_eq!(code, Some(0), "{screen}");
    assert!(!screen.contains(&b.password), "password echoed: {screen}");
    assert!(
        !screen.contains("sesame tty"),
        "passphrase echoed: {screen}"
    );
    b.env.start();
    let mut unlock = b.env.mxtoken();
    unlock.arg("unlock");
    let (code, screen) = mxtoken_tests::tty::run(
        &unlock,
        &[say("Passphrase for profile admin", "sesame tty", true)],
    );
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        !screen.contains("sesame tty"),
        "passphrase echoed: {screen}"
    );
    let token = b.lease_works();
    b.assert_files_and_log_clean(&[&token]);
}

#[test]
fn a_missing_keyring_entry_is_one_sentence_naming_the_alternatives() {
    let mut b = blank();
    b.env
        .set_env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    b.env.write_config(&format!(
        "[profiles.admin]\nhomeserver = {:?}\nuser = {:?}\npassword = {{ keyring = \"mxtoken-nothing-here\" }}\n",
        b.env.homeserver(),
        b.user
    ));
    let out = poll::output_within(&mut b.env.mxtokend(), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("mxtokend: no password for"), "{err}");
    assert!(
        last.contains("Secret Service") && last.contains("keyutils"),
        "{err}"
    );
    assert!(
        last.contains("age_file") && last.contains("mxtoken init"),
        "{err}"
    );
}
