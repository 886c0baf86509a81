//! `mxtoken env`, `get`, `release`, `leases`, `status`.

use crate::common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn env_output_evals_in_sh_and_the_lease_dies_at_its_ttl() {
    let f = Fixture::login();
    let out = f.env.run(&["env", "--ttl", "3s"]);
    assert_success(&out);
    let script = stdout(&out);
    // A real shell evaluates it and sees the values verbatim.
    let shell = Command::new("sh")
        .args(["-c", &format!("{script}\nprintf '%s\\n' \"$MATRIX_ADMIN_TOKEN\" \"$MATRIX_HOMESERVER_URL\" \"$MATRIX_ADMIN_USER\" \"$MXTOKEN_LEASE_ID\"")])
        .output()
        .expect("sh");
    assert_success(&shell);
    let vals: Vec<String> = stdout(&shell).lines().map(str::to_owned).collect();
    let token = vals[0].clone();
    assert_eq!(vals[1], f.synapse.url);
    assert_eq!(vals[2], f.user);
    assert!(f.hs.alive(&token));
    // Lease listing shows the lease, never the token.
    let listed = stdout(&f.env.run(&["leases", "--json"]));
    assert!(
        listed.contains(&vals[3]) && !listed.contains(&token),
        "{listed}"
    );
    assert!(!stdout(&f.env.run(&["leases"])).contains(&token));
    poll::until(
        "the TTL to revoke the token",
        Duration::from_secs(15),
        || (!f.hs.alive(&token)).then_some(()),
    );
    assert_eq!(stdout(&f.env.run(&["leases"])), "no live leases\n");
    f.assert_log_clean(&[&token]);
}

#[test]
fn env_quotes_for_each_shell() {
    let f = Fixture::login();
    let fish = stdout(&f.env.run(&["env", "--shell", "fish"]));
    assert!(fish.lines().all(|l| l.starts_with("set -gx ")), "{fish}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&f.env.run(&["env", "--shell", "json"]))).expect("json");
    assert!(
        json["MATRIX_ADMIN_TOKEN"]
            .as_str()
            .is_some_and(|t| t.starts_with("syt_"))
    );
    assert_eq!(json["MATRIX_ADMIN_USER"], f.user.as_str());
    let bad = f.env.run(&["env", "--shell", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn get_prints_only_the_token_and_release_revokes_it() {
    let f = Fixture::login();
    let token = f.get(&[]);
    assert!(f.hs.alive(&token));
    let listed: serde_json::Value =
        serde_json::from_str(&stdout(&f.env.run(&["leases", "--json"]))).expect("json");
    let lease = listed["leases"][0]["id"]
        .as_str()
        .expect("lease id")
        .to_owned();
    let out = f.env.run(&["release", &lease]);
    assert_success(&out);
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("token is revoked"),
        "{}",
        stderr(&out)
    );
    f.hs.assert_dead(&token);
    // A second release names the problem and exits 65.
    let again = f.env.run(&["release", &lease]);
    assert_eq!(again.status.code(), Some(65));
    assert!(
        stderr(&again).contains("no live lease"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn get_json_has_the_documented_keys() {
    let f = Fixture::login();
    let out = f.env.run(&["get", "--json", "--ttl", "1m"]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["expires_at", "homeserver", "lease_id", "token", "user_id"]
    );
    assert_eq!(v["user_id"], f.user.as_str());
    assert_eq!(v["homeserver"], f.synapse.url.as_str());
    let token = v["token"].as_str().expect("token");
    assert!(f.hs.alive(token));
    assert_success(&f.env.run(&["release", v["lease_id"].as_str().expect("id")]));
    f.hs.assert_dead(token);
}

#[test]
fn lease_requests_the_broker_refuses_get_their_exit_codes() {
    let f = Fixture::login();
    let over = f.env.run(&["get", "--ttl", "2h"]);
    assert_eq!(over.status.code(), Some(65));
    assert_eq!(stdout(&over), "");
    assert_eq!(
        stderr(&over),
        "mxtoken: ttl: 2h is longer than profile \"admin\" allows (max_ttl = 1h); ask for less or raise max_ttl in the config\n"
    );
    let junk = f.env.run(&["get", "--ttl", "soon"]);
    assert_eq!(junk.status.code(), Some(65));
    assert!(
        stderr(&junk).contains("ttl: \"soon\" is not a duration"),
        "{}",
        stderr(&junk)
    );
    let unknown = f.env.run(&["get", "--profile", "nope"]);
    assert_eq!(unknown.status.code(), Some(65));
    assert!(
        stderr(&unknown).contains("there is no profile \"nope\"; known profiles: admin"),
        "{}",
        stderr(&unknown)
    );
    assert_eq!(stdout(&f.env.run(&["leases"])), "no live leases\n");
}

#[test]
fn status_reports_profiles_and_live_leases() {
    let f = Fixture::login();
    let _token = f.get(&[]);
    let s: serde_json::Value =
        serde_json::from_str(&stdout(&f.env.run(&["status", "--json"]))).expect("json");
    assert_eq!(s["protocol_version"], 1);
    assert_eq!(s["live_leases"], 1);
    assert_eq!(s["profiles"][0]["name"], "admin");
    assert_eq!(s["profiles"][0]["mint"], "login");
    let text = stdout(&f.env.run(&["status"]));
    assert!(
        text.contains("live leases: 1") && text.contains("admin (default)"),
        "{text}"
    );
}

#[test]
fn a_wrong_stored_password_is_named_not_retried() {
    let f = Fixture::with(|user, _| vec![ProfileSpec::login("admin", user, "not-the-password")]);
    let out = f.env.run(&["get"]);
    assert_eq!(out.status.code(), Some(77));
    let err = stderr(&out);
    assert!(
        err.contains("refused the password of")
            && err.contains(&f.user)
            && err.contains("profile \"admin\""),
        "{err}"
    );
    assert!(!f.env.log().contains("not-the-password"));
    // Asked again, the broker does not send the refused password again:
    // each failure would feed the homeserver's failed-login limiter.
    let again = f.env.run(&["get"]);
    assert_eq!(again.status.code(), Some(77));
    assert!(
        stderr(&again).contains("earlier, so the broker does not send it again"),
        "{}",
        stderr(&again)
    );
    let log = std::fs::read_to_string(f.synapse.log_path()).expect("synapse log");
    let failures = log
        .lines()
        .filter(|l| l.contains("Failed password login") && l.ends_with(f.user.as_str()))
        .count();
    assert_eq!(
        failures, 1,
        "the homeserver saw the wrong password {failures} times"
    );
}

#[test]
fn no_broker_is_an_error_that_says_where_it_looked() {
    let synapse = Synapse::shared();
    let env = BrokerEnv::new(&synapse.url, &[]);
    let out = env.run(&["get"]);
    assert_eq!(out.status.code(), Some(69));
    let expected = format!(
        "mxtoken: the broker is not running (nothing answers on {}); start it with `mxtokend`\n",
        env.socket().display()
    );
    assert_eq!(stderr(&out), expected);
    assert_eq!(stdout(&out), "");
}

#[test]
fn a_login_lease_device_names_mxtoken_the_lease_and_the_purpose() {
    let f = Fixture::login();
    let out = f
        .env
        .run(&["get", "--json", "--purpose", "nightly room purge"]);
    assert_success(&out);
    let g: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let lease = g["lease_id"].as_str().expect("lease id");
    let device = format!(
        "MXTOKEN_{}",
        lease.trim_start_matches("mxt-").to_ascii_uppercase()
    );
    let path = format!(
        "/_synapse/admin/v2/users/{}/devices/{device}",
        mxtoken_tests::matrix::encode(&f.user)
    );
    let d = f.hs.get(f.synapse.auditor_token(), &path);
    assert_eq!(d.status, 200, "{}", d.body);
    let broker_id =
        std::fs::read_to_string(f.env.state_dir().join("broker-id")).expect("broker id");
    assert_eq!(
        d.body["display_name"],
        format!(
            "mxtoken lease {lease}: nightly room purge [mxtokend {}]",
            broker_id.trim()
        )
        .as_str()
    );
    let listed = stdout(&f.env.run(&["leases", "--json"]));
    assert!(
        listed.contains(&device),
        "leases shows the device id: {listed}"
    );
}
