//! Auto-start: a client that needs a lease starts the broker when none
//! answers, and `mxtoken stop` ends it cleanly.

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Stops whatever broker a test auto-started, even when the test fails.
struct StopOnDrop<'a>(&'a BrokerEnv);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["stop"]);
    }
}

fn env_for_new_admin() -> (BrokerEnv, String, Matrix) {
    let synapse = Synapse::shared();
    let (user, pw) = synapse.new_user("admin", true);
    let env = BrokerEnv::new(&synapse.url, &[ProfileSpec::login("admin", &user, &pw)]);
    (env, pw, Matrix::new(&synapse.url))
}

fn autostarting(env: &BrokerEnv, args: &[&str]) -> Command {
    let mut cmd = env.mxtoken();
    cmd.env_remove("MXTOKEN_NO_AUTOSTART")
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// Pids of the live `mxtokend` processes serving `env`'s socket.
fn brokers_of(env: &BrokerEnv) -> Vec<u32> {
    let socket = env.socket().display().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !zombie
            && args.first().is_some_and(|a| a.ends_with("mxtokend"))
            && args.iter().any(|a| a == &socket)
        {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn without_autostart_a_missing_broker_is_exit_69_naming_the_socket() {
    let (env, _, _) = env_for_new_admin();
    let out = env.run(&["get"]);
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&env.socket().display().to_string()),
        "{}",
        stderr(&out)
    );
    assert!(brokers_of(&env).is_empty());
}

#[test]
fn get_starts_a_broker_and_stop_ends_it_with_its_leases() {
    let (env, pw, hs) = env_for_new_admin();
    let _stop = StopOnDrop(&env);
    let out = autostarting(&env, &["get"]).output().expect("mxtoken get");
    assert_success(&out);
    let token = stdout(&out).trim_end().to_owned();
    assert!(hs.alive(&token));
    assert!(
        stderr(&out).contains("started mxtokend"),
        "{}",
        stderr(&out)
    );
    assert_eq!(brokers_of(&env).len(), 1);

    // The broker outlives the client that started it and serves the next one
    // without another start.
    let again = autostarting(&env, &["get"]).output().expect("mxtoken get");
    assert_success(&again);
    assert!(!stderr(&again).contains("started"), "{}", stderr(&again));
    let second = stdout(&again).trim_end().to_owned();

    let stopped = env.run(&["stop"]);
    assert_success(&stopped);
    assert!(
        stderr(&stopped).contains("stopped; 2 leases ended"),
        "{}",
        stderr(&stopped)
    );
    assert!(stdout(&stopped).is_empty());
    hs.assert_dead(&token);
    hs.assert_dead(&second);
    poll::until("the broker to exit", Duration::from_secs(30), || {
        (brokers_of(&env).is_empty() && !env.socket().exists()).then_some(())
    });

    // Its stderr went to the state directory's log, without secrets.
    let log = std::fs::read_to_string(env.home().join(".local/state/mxtoken/mxtokend.log"))
        .expect("auto-started broker's log");
    assert!(log.contains("mxtokend ready"), "{log}");
    assert!(!log.contains(&token) && !log.contains(&second) && !log.contains(&pw));

    // Stopping again is not an error.
    let out = env.run(&["stop"]);
    assert_success(&out);
    assert!(
        stderr(&out).contains("no broker is running"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn racing_clients_end_with_one_broker() {
    let (env, _, hs) = env_for_new_admin();
    let _stop = StopOnDrop(&env);
    let children: Vec<_> = (0..4)
        .map(|_| {
            autostarting(&env, &["get", "--ttl", "10m"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn mxtoken get")
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    for out in &outs {
        assert_success(out);
        assert!(hs.alive(stdout(out).trim_end()));
    }
    // Losers of the race exit with "already running"; one broker remains
    // and it holds all four leases.
    poll::until("one broker", Duration::from_secs(30), || {
        (brokers_of(&env).len() == 1).then_some(())
    });
    let status = env.run(&["status", "--json"]);
    assert_success(&status);
    let s: serde_json::Value = serde_json::from_str(&stdout(&status)).expect("json");
    assert_eq!(s["live_leases"], 4, "{s}");
    assert_eq!(
        brokers_of(&env),
        vec![s["pid"].as_u64().expect("pid") as u32]
    );
}

#[test]
fn a_broker_that_cannot_start_is_reported_with_its_own_error() {
    let (env, _, _) = env_for_new_admin();
    std::fs::remove_file(env.config_path()).expect("rm config");
    let out = autostarting(&env, &["get"]).output().expect("mxtoken get");
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("could not be started") && err.contains("no config file at"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_missing_broker_binary_is_named() {
    let (env, _, _) = env_for_new_admin();
    let out = autostarting(&env, &["get"])
        .env("MXTOKEN_BROKER_BIN", env.home().join("no-such-mxtokend"))
        .output()
        .expect("mxtoken get");
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no-such-mxtokend"),
        "{}",
        stderr(&out)
    );
}
