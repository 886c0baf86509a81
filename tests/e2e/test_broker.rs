//! The broker process: start-up checks, socket handling, shutdown.

use crate::common::*;

#[test]
fn sigterm_revokes_every_live_lease_and_exits_zero() {
    let mut f = Fixture::login();
    let devices_before = f.devices();
    let tokens: Vec<String> = (0..3).map(|_| f.get(&["--ttl", "10m"])).collect();
    assert!(tokens.iter().all(|t| f.hs.alive(t)));
    assert_eq!(f.devices().len(), devices_before.len() + 3);
    let status = f.env.signal_and_wait(rustix::process::Signal::TERM);
    assert_eq!(status.code(), Some(0), "log:\n{}", f.env.log());
    for t in &tokens {
        f.hs.assert_dead(t);
    }
    assert_eq!(f.devices(), devices_before);
    assert!(!f.env.socket().exists(), "socket left behind");
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    f.assert_log_clean(&refs);
}

#[test]
fn a_second_broker_on_the_same_socket_is_refused() {
    let f = Fixture::login();
    let out = poll::output_within(&mut f.env.mxtokend(), std::time::Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(10));
    let err = stderr(&out);
    assert!(
        err.contains("a broker is already running on")
            && err.contains(&f.env.socket().display().to_string()),
        "{err}"
    );
    // The first one still serves.
    assert_success(&f.env.run(&["status"]));
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let synapse = Synapse::shared();
    let (user, pw) = synapse.new_user("admin", true);
    let mut env = BrokerEnv::new(&synapse.url, &[ProfileSpec::login("admin", &user, &pw)]);
    let dir = env.socket().parent().expect("dir").to_owned();
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    drop(std::os::unix::net::UnixListener::bind(env.socket()).expect("bind"));
    assert!(env.socket().exists());
    env.start();
    assert!(env.log().contains("removing stale socket"), "{}", env.log());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.socket()).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn socket_directory_is_private() {
    let f = Fixture::login();
    let dir = f.env.socket().parent().expect("dir").to_owned();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&dir).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn config_errors_name_the_file_and_key_and_stop_before_binding() {
    let synapse = Synapse::shared();
    let (user, pw) = synapse.new_user("admin", true);
    let env = BrokerEnv::new(
        &synapse.url,
        &[ProfileSpec::login("admin", &user, &pw).with("default_ttl = \"2h\"\nmax_ttl = \"1h\"")],
    );
    let cfg = env.config_path().display().to_string();
    let run = || poll::output_within(&mut env.mxtokend(), std::time::Duration::from_secs(20));

    let out = run();
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        stderr(&out),
        format!(
            "mxtokend: config file {cfg}: `profiles.admin.default_ttl` (2h) is longer than max_ttl (1h)\n"
        )
    );
    assert!(!env.socket().exists());

    let text = std::fs::read_to_string(env.config_path())
        .expect("read")
        .replace("default_ttl = \"2h\"", "defualt_ttl = \"2m\"");
    env.write_config(&text);
    let err = stderr(&run());
    assert!(
        err.contains(&cfg) && err.contains("unknown field `defualt_ttl`"),
        "{err}"
    );

    env.write_config(
        &text
            .replace("defualt_ttl = \"2m\"", "")
            .replace(&synapse.url, "matrix.example.com"),
    );
    let err = stderr(&run());
    assert!(
        err.contains("`profiles.admin.homeserver` \"matrix.example.com\" is not a URL"),
        "{err}"
    );

    std::fs::remove_file(env.config_path()).expect("rm");
    let out = run();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains(&format!("no config file at {cfg}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_undecryptable_password_file_is_a_config_error() {
    let synapse = Synapse::shared();
    let (user, pw) = synapse.new_user("admin", true);
    let env = BrokerEnv::new(&synapse.url, &[ProfileSpec::login("admin", &user, &pw)]);
    // Seal with another identity than the config names.
    let other = env.home().join("other.txt");
    mxtoken_tests::broker::run_ok(
        std::process::Command::new("age-keygen")
            .arg("-o")
            .arg(&other),
    );
    env.seal(&pw, &other, &env.config_dir().join("admin.age"));
    let out = poll::output_within(&mut env.mxtokend(), std::time::Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(
        err.contains("cannot decrypt") && err.contains("admin.age") && err.contains("identity.txt"),
        "{err}"
    );
    assert!(!err.contains(&pw));
}

#[test]
fn a_socket_path_that_is_not_a_socket_is_never_replaced() {
    let synapse = Synapse::shared();
    let (user, pw) = synapse.new_user("admin", true);
    let env = BrokerEnv::new(&synapse.url, &[ProfileSpec::login("admin", &user, &pw)]);
    let sealed = env.config_dir().join("admin.age");
    let before = std::fs::read(&sealed).expect("sealed password");
    std::fs::set_permissions(
        env.config_dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let out = poll::output_within(
        env.mxtokend().arg("--socket").arg(&sealed),
        std::time::Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        stderr(&out),
        format!(
            "mxtokend: {} exists and is not a socket; refusing to replace it (check --socket / $MXTOKEN_SOCKET)\n",
            sealed.display()
        )
    );
    assert_eq!(std::fs::read(&sealed).expect("still there"), before);
}
