//! The homeserver failing: down, stalled, or behind a failing reverse proxy.

use crate::common::*;
use mxtoken_tests::{Fault, FaultProxy, RateLimits};
use std::time::Duration;

fn status(env: &BrokerEnv) -> serde_json::Value {
    serde_json::from_str(&stdout(&env.run(&["status", "--json"]))).expect("status json")
}

#[test]
fn a_stalled_homeserver_is_a_timeout_error_not_a_hang() {
    let synapse = Synapse::shared();
    let (user, pw) = synapse.new_user("admin", true);
    let proxy = FaultProxy::start(synapse.port);
    let mut env = BrokerEnv::new(
        &proxy.url,
        &[ProfileSpec::login("admin", &user, &pw)
            .with("connect_timeout = \"1s\"\nrequest_timeout = \"2s\"")],
    );
    env.start();
    proxy.set(Fault::Stall);
    let out = poll::output_within(env.mxtoken().arg("get"), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(74));
    assert_eq!(
        stderr(&out),
        format!(
            "mxtoken: cannot reach the homeserver at {}/: timed out\n",
            proxy.url
        )
    );

    proxy.set(Fault::BadGateway);
    let out = poll::output_within(env.mxtoken().arg("get"), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(74));
    assert_eq!(
        stderr(&out),
        format!(
            "mxtoken: the homeserver at {}/ answered HTTP 502 with something that is not a Matrix response (is a reverse proxy failing?)\n",
            proxy.url
        )
    );

    proxy.set(Fault::Refuse);
    let out = poll::output_within(env.mxtoken().arg("get"), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(74));
    assert!(
        stderr(&out).starts_with(&format!(
            "mxtoken: cannot reach the homeserver at {}/",
            proxy.url
        )),
        "{}",
        stderr(&out)
    );

    proxy.set(Fault::Pass);
    assert_success(&env.run(&["get"]));
}

#[test]
fn revocations_wait_out_an_outage_and_survive_a_broker_restart() {
    let synapse = Synapse::start(RateLimits::Raised);
    let (user, pw) = synapse.new_user("admin", true);
    let hs = Matrix::new(&synapse.url);
    let profile = ProfileSpec::login("admin", &user, &pw)
        .with("connect_timeout = \"1s\"\nrequest_timeout = \"3s\"");
    let mut env = BrokerEnv::new(&synapse.url, &[profile]);
    env.start();
    let devices_before = hs.device_ids(synapse.auditor_token(), &user);

    // 1. Leases end while the homeserver is down: queued, then drained.
    let first: Vec<String> = (0..3)
        .map(|_| stdout(&env.run(&["get"])).trim().to_owned())
        .collect();
    let leases: Vec<String> =
        serde_json::from_str::<serde_json::Value>(&stdout(&env.run(&["leases", "--json"])))
            .expect("json")["leases"]
            .as_array()
            .expect("leases")
            .iter()
            .map(|l| l["id"].as_str().expect("id").to_owned())
            .collect();
    synapse.pause();
    for id in &leases {
        let out = env.run(&["release", id]);
        assert_success(&out);
        assert!(
            stderr(&out).contains("keeps retrying the revocation"),
            "{}",
            stderr(&out)
        );
    }
    let s = status(&env);
    assert_eq!(s["pending_revocations"], 3);
    assert!(
        s["pending"][0]["last_error"]
            .as_str()
            .expect("error")
            .contains("cannot reach the homeserver"),
        "{s}"
    );
    assert!(stdout(&env.run(&["status"])).contains("pending revocations: 3\n  lease "));
    synapse.resume();
    poll::until("the queue to drain", Duration::from_secs(60), || {
        (status(&env)["pending_revocations"] == 0).then_some(())
    });
    for t in &first {
        hs.assert_dead(t);
    }

    // 2. The same with a broker restart in the middle.
    let second: Vec<String> = (0..3)
        .map(|_| stdout(&env.run(&["get"])).trim().to_owned())
        .collect();
    synapse.pause();
    let stopped = env.signal_and_wait(rustix::process::Signal::TERM);
    assert_eq!(
        stopped.code(),
        Some(11),
        "exit 11: stopped with unconfirmed revocations"
    );
    assert!(
        env.log()
            .contains("exiting with revocations the homeserver has not confirmed")
    );
    synapse.resume();
    assert!(
        second.iter().all(|t| hs.alive(t)),
        "tokens must still be alive before the restart"
    );
    env.start();
    for t in &second {
        poll::until(
            "recovery to kill the token",
            Duration::from_secs(30),
            || (!hs.alive(t)).then_some(()),
        );
    }
    // The start-up sweep's own session may still be closing.
    poll::until(
        "only the account's own devices to remain",
        Duration::from_secs(10),
        || (hs.device_ids(synapse.auditor_token(), &user) == devices_before).then_some(()),
    );
}
