//! No token outlives its lease: client and broker crashes, the journal,
//! bound processes and the sweep.

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

#[test]
fn sigkill_of_exec_clients_leaks_nothing_over_20_trials() {
    let f = Fixture::login();
    let devices_before = f.devices();
    for trial in 0..20 {
        let token_file = f.env.home().join(format!("token{trial}"));
        let script = format!(
            "printf %s \"$MATRIX_ADMIN_TOKEN\" > {0}.tmp && mv {0}.tmp {0}; exec sleep 60",
            token_file.display()
        );
        let mut client = f
            .env
            .mxtoken()
            .args(["exec", "--", "sh", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let token = poll::until("the command to start", Duration::from_secs(20), || {
            std::fs::read_to_string(&token_file).ok()
        });
        client.kill().expect("SIGKILL");
        let killed = Instant::now();
        client.wait().expect("reap");
        poll::until(
            &format!("trial {trial}: the token to die"),
            Duration::from_secs(1).saturating_sub(killed.elapsed()),
            || (!f.hs.alive(&token)).then_some(()),
        );
    }
    let _ = Command::new("pkill")
        .args(["-f", &format!("{}", f.env.home().display())])
        .status();
    poll::until("every lease device to go", Duration::from_secs(5), || {
        (f.devices() == devices_before).then_some(())
    });
}

#[test]
fn broker_sigkill_then_restart_revokes_every_token_of_both_mints() {
    let synapse = Synapse::shared();
    let (user, pw) = synapse.new_user("admin", true);
    let (minter, minter_pw) = synapse.new_user("minter", true);
    let (ops, _) = synapse.new_user("ops", true);
    let hs = Matrix::new(&synapse.url);
    let auditor = synapse.auditor_token();
    let user_devices = hs.device_ids(auditor, &user);
    let ops_devices = hs.device_ids(auditor, &ops);
    let mut env = BrokerEnv::new(
        &synapse.url,
        &[
            ProfileSpec::login("admin", &user, &pw),
            ProfileSpec::admin_api("fast", &minter, &minter_pw, &ops)
                .with("dedicated_minter = true"),
        ],
    );
    env.start();
    let mut tokens = Vec::new();
    for profile in ["admin", "fast"] {
        for _ in 0..30 {
            let out = env.run(&["get", "--profile", profile, "--ttl", "30m"]);
            assert_success(&out);
            tokens.push(stdout(&out).trim().to_owned());
        }
    }
    assert!(hs.alive(&tokens[0]) && hs.alive(&tokens[59]));
    assert_eq!(hs.device_ids(auditor, &user).len(), user_devices.len() + 30);
    let journal = std::fs::read_to_string(env.state_dir().join("journal.jsonl")).expect("journal");
    assert_eq!(journal.lines().count(), 60);
    assert!(!journal.contains(&pw) && !journal.contains(&minter_pw));
    assert!(
        tokens.iter().all(|t| !journal.contains(t.as_str())),
        "a token is in the journal"
    );

    env.signal_and_wait(rustix::process::Signal::KILL);
    assert!(
        hs.alive(&tokens[0]) && hs.alive(&tokens[59]),
        "tokens should survive the crash until recovery"
    );
    let restarted = Instant::now();
    env.start();
    for t in &tokens {
        poll::until(
            "recovery to kill the token",
            Duration::from_secs(10).saturating_sub(restarted.elapsed()),
            || (!hs.alive(t)).then_some(()),
        );
    }
    // No device left behind: the login leases' devices are gone, the lease
    // user never had any, and the minter keeps only the new root session.
    assert_eq!(hs.device_ids(auditor, &user), user_devices);
    assert_eq!(hs.device_ids(auditor, &ops), ops_devices);
    poll::until(
        "the minter to keep at most its new root session",
        Duration::from_secs(10),
        || {
            let left = hs.device_ids(auditor, &minter);
            (left.len() <= 1 && left.iter().all(|d| d.starts_with("MXTOKEN_BROKER_"))).then_some(())
        },
    );
    let status = json(&env.run(&["status", "--json"]));
    let recovered = status["recovery"].as_array().expect("recovery");
    assert_eq!(recovered.len(), 60);
    assert!(
        recovered.iter().all(|r| r["outcome"] == "revoked"),
        "{recovered:?}"
    );
    assert!(stdout(&env.run(&["status"])).contains("recovered from the last run: 60 revoked"));
    // And the broker serves again.
    let t = stdout(&env.run(&["get", "--profile", "fast"]))
        .trim()
        .to_owned();
    assert!(hs.alive(&t));
}

#[test]
fn admin_api_orphans_without_a_dedicated_minter_are_reported_not_killed() {
    let synapse = Synapse::shared();
    let (minter, minter_pw) = synapse.new_user("minter", true);
    let (ops, _) = synapse.new_user("ops", true);
    let hs = Matrix::new(&synapse.url);
    let mut env = BrokerEnv::new(
        &synapse.url,
        &[ProfileSpec::admin_api("fast", &minter, &minter_pw, &ops)],
    );
    env.start();
    let token = stdout(&env.run(&["get", "--ttl", "10m"])).trim().to_owned();
    env.signal_and_wait(rustix::process::Signal::KILL);
    env.start();
    let status = json(&env.run(&["status", "--json"]));
    assert_eq!(status["recovery"][0]["outcome"], "orphaned");
    assert!(stdout(&env.run(&["status"])).contains("set dedicated_minter = true"));
    assert!(
        hs.alive(&token),
        "without dedicated_minter the broker must not log the minter out everywhere"
    );
}

#[test]
fn a_journal_torn_mid_record_is_read_up_to_the_damage() {
    let synapse = Synapse::shared();
    let (user, pw) = synapse.new_user("admin", true);
    let hs = Matrix::new(&synapse.url);
    // A lease of a previous run whose device really exists, then a torn line.
    let (token, device) = hs.login_as_device(&user, &pw, Some("MXTOKEN_PREVIOUSRUN01"));
    let mut env = BrokerEnv::new(&synapse.url, &[ProfileSpec::login("admin", &user, &pw)]);
    std::fs::create_dir_all(env.state_dir()).expect("state dir");
    std::fs::set_permissions(
        env.state_dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let record = serde_json::json!({
        "event": "begin", "lease": "mxt-previousrun01", "profile": "admin", "user": user,
        "device_id": device, "mint": "login",
        "created_at": "2026-01-01T00:00:00.000Z", "expires_at": "2099-01-01T00:00:00.000Z",
    });
    std::fs::write(
        env.state_dir().join("journal.jsonl"),
        format!("{record}\n{{\"event\":\"begin\",\"lease\":\"mxt-torn"),
    )
    .expect("journal");
    env.start();
    hs.assert_dead(&token);
    assert!(env.log().contains("damaged"), "{}", env.log());
    let status = json(&env.run(&["status", "--json"]));
    assert_eq!(status["recovery"][0]["lease_id"], "mxt-previousrun01");
    assert_eq!(status["recovery"][0]["outcome"], "revoked");
}

#[test]
fn env_bound_to_a_shell_dies_with_the_shell() {
    let f = Fixture::login();
    let mxtoken = f.env.mxtoken();
    let program = mxtoken.get_program().to_string_lossy().into_owned();
    // Exactly the documented usage: eval "$(mxtoken env --bind-pid $$)".
    let script = format!(
        "eval \"$('{program}' env --bind-pid $$)\" && printf %s \"$MATRIX_ADMIN_TOKEN\" > token && sleep 0.2"
    );
    let envs: Vec<_> = mxtoken
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let out = Command::new("sh")
        .args(["-c", &script])
        .env_clear()
        .envs(envs)
        .current_dir(f.env.home())
        .output()
        .expect("sh");
    assert_success(&out);
    let exited = Instant::now();
    let token = std::fs::read_to_string(f.env.home().join("token")).expect("token");
    poll::until(
        "the token to die with its shell",
        Duration::from_secs(1).saturating_sub(exited.elapsed()),
        || (!f.hs.alive(&token)).then_some(()),
    );
}

#[test]
fn bind_pid_must_be_a_live_process_of_the_same_user() {
    let f = Fixture::login();
    let mut other = if rustix::process::getuid().is_root() {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sleep",
                "30",
            ])
            .spawn()
            .expect("setpriv")
    } else {
        Command::new("sleep").arg("30").spawn().expect("sleep")
    };
    let pid = if rustix::process::getuid().is_root() {
        // setpriv runs as root until it has switched to nobody: wait for that.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let owner = || {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(format!("/proc/{}", other.id())).map(|m| m.uid())
        };
        while owner().is_ok_and(|u| u != 65534) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        other.id()
    } else {
        1
    };
    let out = f.env.run(&["get", "--bind-pid", &pid.to_string()]);
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(out.status.code(), Some(65));
    assert!(
        stderr(&out).contains(&format!("bind_pid: process {pid} belongs to another user")),
        "{}",
        stderr(&out)
    );
    let gone = f.env.run(&["get", "--bind-pid", "999999999"]);
    assert_eq!(gone.status.code(), Some(65));
    assert!(
        stderr(&gone).contains("there is no process"),
        "{}",
        stderr(&gone)
    );
    assert_eq!(stdout(&f.env.run(&["leases"])), "no live leases\n");
}

#[test]
fn sweep_deletes_stale_broker_devices_and_spares_live_leases() {
    let f = Fixture::login();
    let broker_id =
        std::fs::read_to_string(f.env.state_dir().join("broker-id")).expect("broker id");
    // A device this broker made in an earlier run (its tag), one another
    // broker made (another tag), and one that is not a broker's at all.
    let mine = format!(
        "mxtoken lease mxt-stale0001 [mxtokend {}]",
        broker_id.trim()
    );
    let (stale_token, stale) =
        f.hs.login_named(&f.user, &f.password, "MXTOKEN_STALE0001", &mine);
    let (foreign_token, _) = f.hs.login_named(
        &f.user,
        &f.password,
        "MXTOKEN_FOREIGN001",
        "mxtoken lease mxt-foreign001 [mxtokend otherbroker1]",
    );
    let (other_token, _) =
        f.hs.login_as_device(&f.user, &f.password, Some("SOMEONEELSE"));
    let live = f.get(&[]);
    let dry = f.env.run(&["sweep", "--dry-run"]);
    assert_success(&dry);
    assert_eq!(stdout(&dry), format!("{stale}\n"));
    assert!(f.hs.alive(&stale_token));
    let out = f.env.run(&["sweep"]);
    assert_success(&out);
    assert_eq!(stdout(&out), format!("{stale}\n"));
    f.hs.assert_dead(&stale_token);
    assert!(f.hs.alive(&live), "the live lease's device must be spared");
    assert!(
        f.hs.alive(&other_token),
        "devices the broker did not make must be spared"
    );
    assert!(
        f.hs.alive(&foreign_token),
        "another broker's devices must be spared"
    );
}

#[test]
fn sweeps_spare_the_devices_of_another_broker_on_the_same_account() {
    let synapse = Synapse::shared();
    let (user, pw) = synapse.new_user("admin", true);
    let (ops, _) = synapse.new_user("ops", true);
    let hs = Matrix::new(&synapse.url);
    let mut a = BrokerEnv::new(&synapse.url, &[ProfileSpec::login("admin", &user, &pw)]);
    a.start();
    let token = stdout(&a.run(&["get", "--ttl", "10m"])).trim().to_owned();
    // A second broker (another host, a test instance) whose minter is the
    // same account: its start-up sweep and an explicit sweep see A's device.
    let mut b = BrokerEnv::new(
        &synapse.url,
        &[ProfileSpec::admin_api("fast", &user, &pw, &ops)],
    );
    b.start();
    let swept = b.run(&["sweep"]);
    assert_success(&swept);
    assert_eq!(stdout(&swept), "", "B must not claim A's devices");
    assert!(hs.alive(&token), "B's sweeps killed a live lease of A");
    assert!(hs.alive(stdout(&b.run(&["get"])).trim()));
}
