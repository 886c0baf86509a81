//! The two mints against real rate limits, misconfigured accounts, renewal.

use crate::common::*;
use mxtoken_tests::RateLimits;
use std::time::Duration;

fn get_json(env: &BrokerEnv, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["get", "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    assert_success(&out);
    serde_json::from_str(&stdout(&out)).expect("json")
}

fn s(v: &serde_json::Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_owned()
}

#[test]
fn admin_api_mints_50_leases_under_stock_login_limits() {
    let synapse = Synapse::start(RateLimits::Stock);
    let (minter, minter_pw) = synapse.new_user("minter", true);
    let (ops, _) = synapse.new_user("ops", true);
    let hs = Matrix::new(&synapse.url);
    let ops_devices = hs.device_ids(synapse.auditor_token(), &ops);
    let mut env = BrokerEnv::new(
        &synapse.url,
        &[ProfileSpec::admin_api("fast", &minter, &minter_pw, &ops)],
    );
    env.start();
    for i in 0..50 {
        let g = get_json(&env, &["--ttl", "5m"]);
        let token = s(&g, "token");
        assert_eq!(s(&g, "user_id"), ops);
        // The token acts as the lease user, with admin rights.
        assert_eq!(hs.whoami(&token).body["user_id"], ops.as_str());
        let admin = hs.get(
            &token,
            &format!(
                "/_synapse/admin/v1/users/{}/admin",
                mxtoken_tests::matrix::encode(&ops)
            ),
        );
        assert_eq!(
            (admin.status, &admin.body["admin"]),
            (200, &serde_json::Value::Bool(true)),
            "lease {i}: {}",
            admin.body
        );
        assert_success(&env.run(&["release", &s(&g, "lease_id")]));
        hs.assert_dead(&token);
    }
    assert_eq!(
        hs.device_ids(synapse.auditor_token(), &ops),
        ops_devices,
        "admin-api leases must create no devices"
    );

    // A short lease dies on the server at its end even if the broker is gone.
    let g = get_json(&env, &["--ttl", "3s"]);
    let token = s(&g, "token");
    env.signal_and_wait(rustix::process::Signal::KILL);
    assert!(hs.alive(&token));
    poll::until("the server-side expiry", Duration::from_secs(20), || {
        (!hs.alive(&token)).then_some(())
    });
    let a = hs.whoami(&token);
    assert_eq!(
        a.body["soft_logout"], true,
        "expired, not revoked: {}",
        a.body
    );
}

#[test]
fn login_mint_reports_the_login_rate_limit_in_words() {
    let synapse = Synapse::start(RateLimits::Stock);
    let (user, pw) = synapse.new_user("admin", true);
    let mut env = BrokerEnv::new(&synapse.url, &[ProfileSpec::login("admin", &user, &pw)]);
    env.start();
    for _ in 0..5 {
        let g = get_json(&env, &[]);
        assert_success(&env.run(&["release", &s(&g, "lease_id")]));
    }
    let out = env.run(&["get"]);
    assert_eq!(out.status.code(), Some(75));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    let prefix = format!(
        "mxtoken: the homeserver at {}/ is rate-limiting logins for profile \"admin\": it allows the next login in ",
        synapse.url
    );
    assert!(err.starts_with(&prefix), "{err}");
    let wait = err[prefix.len()..].split(';').next().expect("wait");
    let wait = humantime::parse_duration(wait).unwrap_or_else(|e| panic!("{wait:?}: {e}"));
    assert!(wait > Duration::ZERO);
    assert!(
        err.ends_with(
            "`mint = \"admin-api\"` avoids this limit (see README), or retry with --wait\n"
        ),
        "{err}"
    );
}

#[test]
fn wait_rides_out_a_short_login_limit() {
    let synapse = Synapse::start(RateLimits::Custom {
        per_second: 0.5,
        burst: 1,
    });
    let (user, pw) = synapse.new_user("admin", true);
    let mut env = BrokerEnv::new(&synapse.url, &[ProfileSpec::login("admin", &user, &pw)]);
    env.start();
    let hs = Matrix::new(&synapse.url);
    assert!(hs.alive(stdout(&env.run(&["get"])).trim()));
    assert_eq!(env.run(&["get"]).status.code(), Some(75));
    let out = poll::output_within(
        env.mxtoken().args(["get", "--wait"]),
        Duration::from_secs(60),
    );
    assert_success(&out);
    assert!(hs.alive(stdout(&out).trim()));
    assert!(
        stderr(&out).contains("rate-limiting logins; waiting"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn misconfigured_accounts_are_named_at_the_first_lease_and_by_status_check() {
    let synapse = Synapse::shared();
    let hs = Matrix::new(&synapse.url);
    let (admin, admin_pw) = synapse.new_user("admin", true);
    let (plain, plain_pw) = synapse.new_user("plain", false);
    let (ops, _) = synapse.new_user("ops", true);
    let plain_devices = hs.device_ids(synapse.auditor_token(), &plain);
    let mut env = BrokerEnv::new(
        &synapse.url,
        &[
            ProfileSpec::admin_api("good", &admin, &admin_pw, &ops),
            ProfileSpec::admin_api("notadmin", &plain, &plain_pw, &ops),
            ProfileSpec::admin_api("nolease", &admin, &admin_pw, "@nobody:test.local"),
            ProfileSpec::login("loginplain", &plain, &plain_pw),
        ],
    );
    env.start();
    let refused = |profile: &str, needle: &str| {
        let out = env.run(&["get", "--profile", profile]);
        assert_eq!(out.status.code(), Some(77), "{profile}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{profile}: {}", stderr(&out));
    };
    refused(
        "notadmin",
        &format!("the homeserver says {plain} (profile \"notadmin\") is not a server admin"),
    );
    refused(
        "nolease",
        "the homeserver does not know lease_user @nobody:test.local (profile \"nolease\")",
    );
    refused(
        "loginplain",
        &format!("the homeserver says {plain} (profile \"loginplain\") is not a server admin"),
    );
    // The refused login left no device behind.
    assert_eq!(
        hs.device_ids(synapse.auditor_token(), &plain).len(),
        plain_devices.len() + 1,
        "only the notadmin root session may remain"
    );

    let out = env.run(&["status", "--check"]);
    assert_eq!(out.status.code(), Some(77), "log:\n{}", env.log());
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "  good: ok: {admin} can log in, is a server admin, and can mint tokens for {ops}"
        )),
        "{text}"
    );
    assert!(
        text.contains("  notadmin: FAILED: the homeserver says"),
        "{text}"
    );
    assert!(
        text.contains("  nolease: FAILED: the homeserver does not know lease_user"),
        "{text}"
    );
    assert!(
        text.contains("  loginplain: FAILED: the homeserver says"),
        "{text}"
    );
}

#[test]
fn renewal_extends_login_leases_and_rotates_admin_api_tokens() {
    let synapse = Synapse::shared();
    let hs = Matrix::new(&synapse.url);
    let (admin, admin_pw) = synapse.new_user("admin", true);
    let (minter, minter_pw) = synapse.new_user("minter", true);
    let (ops, _) = synapse.new_user("ops", true);
    let mut env = BrokerEnv::new(
        &synapse.url,
        &[
            ProfileSpec::login("admin", &admin, &admin_pw),
            ProfileSpec::admin_api("fast", &minter, &minter_pw, &ops),
            ProfileSpec::login("short", &admin, &admin_pw)
                .with("default_ttl = \"30s\"\nmax_ttl = \"1m\""),
        ],
    );
    env.start();
    let expiry = |id: &str| -> String {
        let list: serde_json::Value =
            serde_json::from_str(&stdout(&env.run(&["leases", "--json"]))).expect("json");
        list["leases"]
            .as_array()
            .expect("leases")
            .iter()
            .find(|l| l["id"] == id)
            .map(|l| s(l, "expires_at"))
            .expect("lease")
    };

    let g = get_json(&env, &["--ttl", "1m"]);
    let id = s(&g, "lease_id");
    let before = expiry(&id);
    let out = env.run(&["renew", &id, "--ttl", "30m"]);
    assert_success(&out);
    assert_eq!(stdout(&out), "");
    assert!(expiry(&id) > before);
    let over = env.run(&["renew", &id, "--ttl", "2h"]);
    assert_eq!(over.status.code(), Some(65));
    assert!(
        stderr(&over).contains("ttl: 2h is longer than profile \"admin\" allows"),
        "{}",
        stderr(&over)
    );
    // Renewal never reaches past max_ttl after the lease's creation.
    let short = get_json(&env, &["--profile", "short"]);
    let created = std::time::Instant::now();
    poll::until(
        "a second to pass since the lease began",
        Duration::from_secs(5),
        || (created.elapsed() > Duration::from_millis(1100)).then_some(()),
    );
    let too_far = env.run(&["renew", &s(&short, "lease_id"), "--ttl", "59s"]);
    assert_eq!(too_far.status.code(), Some(65));
    assert!(
        stderr(&too_far).contains("more than max_ttl (1m) after its creation"),
        "{}",
        stderr(&too_far)
    );
    let shorter = env.run(&["renew", &id, "--ttl", "10s"]);
    assert_eq!(shorter.status.code(), Some(65));
    assert!(
        stderr(&shorter).contains("renewal only extends"),
        "{}",
        stderr(&shorter)
    );
    let rotate_login = env.run(&["renew", &id, "--rotate"]);
    assert_eq!(rotate_login.status.code(), Some(65));
    assert!(hs.alive(&s(&g, "token")));

    let g = get_json(&env, &["--profile", "fast", "--ttl", "1m"]);
    let (id, old) = (s(&g, "lease_id"), s(&g, "token"));
    let plain = env.run(&["renew", &id, "--ttl", "10m"]);
    assert_eq!(plain.status.code(), Some(65));
    assert!(
        stderr(&plain).contains("renew with --rotate to get a replacement token"),
        "{}",
        stderr(&plain)
    );
    let out = env.run(&["renew", &id, "--ttl", "10m", "--rotate"]);
    assert_success(&out);
    let new = stdout(&out).trim().to_owned();
    assert!(new.starts_with("syt_") && new != old);
    hs.assert_dead(&old);
    assert!(hs.alive(&new));
    assert_success(&env.run(&["release", &id]));
    hs.assert_dead(&new);
}

#[test]
fn a_root_session_logged_out_behind_the_brokers_back_is_replaced() {
    let synapse = Synapse::shared();
    let hs = Matrix::new(&synapse.url);
    let (minter, minter_pw) = synapse.new_user("minter", true);
    let (ops, _) = synapse.new_user("ops", true);
    let mut env = BrokerEnv::new(
        &synapse.url,
        &[ProfileSpec::admin_api("fast", &minter, &minter_pw, &ops)],
    );
    env.start();
    assert!(hs.alive(stdout(&env.run(&["get"])).trim()));
    let (t, _) = hs.login(&minter, &minter_pw);
    assert_eq!(
        hs.post(&t, "/_matrix/client/v3/logout/all", &serde_json::json!({}))
            .status,
        200
    );
    let out = env.run(&["get"]);
    assert_success(&out);
    assert!(hs.alive(stdout(&out).trim()));
    assert!(
        env.log()
            .contains("root session was logged out on the server; logging in again")
    );
}
