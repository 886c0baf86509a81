//! `mxtoken devices`: filters, JSON, revocation, errors, timestamps and
//! scale, against real devices on a real Synapse.

use crate::common::*;
use mxtoken_tests::RateLimits;
use mxtoken_tests::devices::{
    Creation, LoggedIn, age_devices, create_devices, device_audit_scale, login_device,
    rename_device, use_token, wait_seen,
};
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

const DAY_MS: u64 = 86_400_000;

/// `mxtoken devices --user USER ARGS --json`, which must succeed.
fn devices_json(env: &BrokerEnv, user: &str, args: &[&str]) -> Value {
    let mut all = vec!["devices", "--user", user, "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    assert_success(&out);
    assert_eq!(stderr(&out), "", "nothing on stderr for {args:?}");
    serde_json::from_str(&stdout(&out)).expect("devices --json")
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["device_id"].as_str().expect("device_id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// The sorted device ids `ARGS` match.
fn matched(env: &BrokerEnv, user: &str, args: &[&str]) -> Vec<String> {
    let v = devices_json(env, user, args);
    let found = ids(&v["matched_devices"]);
    assert_eq!(v["matched_count"], found.len(), "{args:?}");
    found
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn with(base: &[String], extra: &[&str]) -> Vec<String> {
    sorted(
        base.iter()
            .cloned()
            .chain(extra.iter().map(|s| (*s).to_owned()))
            .collect(),
    )
}

fn seen(f: &Fixture, user: &str, password: &str, id: &str, name: &str, agent: &str) -> LoggedIn {
    let d = login_device(f.synapse, user, password, id, Some(name));
    use_token(f.synapse, &d.token, agent);
    wait_seen(f.synapse, f.synapse.auditor_token(), user, id, agent);
    d
}

#[test]
fn devices_filters_select_real_devices() {
    let f = Fixture::login();
    let auditor = f.synapse.auditor_token();
    let (bot, bot_pw) = f.synapse.new_user("bot", false);
    // register_new_matrix_user leaves never-used devices of its own.
    let pre = f.hs.device_ids(auditor, &bot);
    seen(
        &f,
        &bot,
        &bot_pw,
        "ANSIBLE_A",
        "Ansible run",
        "ansible-httpget",
    );
    seen(
        &f,
        &bot,
        &bot_pw,
        "ELEMENT_B",
        "Element Desktop",
        "Mozilla/5.0 Element/1.11",
    );
    create_devices(
        f.synapse,
        auditor,
        &bot,
        &["SPARE_C".into(), "MXTOKEN_STALE".into()],
        2,
    );
    rename_device(f.synapse, auditor, &bot, "SPARE_C", "spare");

    let all = devices_json(&f.env, &bot, &[]);
    let mut keys: Vec<&str> = all
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "changed",
            "devices",
            "matched_count",
            "matched_devices",
            "revoked_devices",
            "total_devices"
        ]
    );
    assert_eq!(all["total_devices"], pre.len() + 4);
    assert_eq!(all["matched_count"], pre.len() + 4);
    assert_eq!(
        (&all["changed"], &all["revoked_devices"]),
        (&Value::Bool(false), &serde_json::json!([]))
    );
    // Device objects are Synapse's, field names and all.
    let a = all["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["device_id"] == "ANSIBLE_A")
        .expect("ANSIBLE_A listed");
    assert_eq!(a["user_id"], bot.as_str());
    assert_eq!(a["display_name"], "Ansible run");
    assert_eq!(a["last_seen_user_agent"], "ansible-httpget");
    assert_eq!(a["last_seen_ip"], "127.0.0.1");
    assert!(a["last_seen_ts"].as_u64().is_some(), "{a}");

    let m = |args: &[&str]| matched(&f.env, &bot, args);
    let never = with(&pre, &["MXTOKEN_STALE", "SPARE_C"]);
    assert_eq!(m(&["--user-agent", "ANSIBLE-HttpGet"]), ["ANSIBLE_A"]);
    assert_eq!(
        m(&["--display-name", "element", "--user-agent", "mozilla"]),
        ["ELEMENT_B"]
    );
    assert_eq!(m(&["--display-name", "SPARE"]), ["SPARE_C"]);
    assert_eq!(m(&["--never-used"]), never);
    assert_eq!(
        m(&["--older-than-days", "0"]),
        never,
        "Ansible's 0 = never seen"
    );
    assert_eq!(m(&["--older-than", "0s"]), ["ANSIBLE_A", "ELEMENT_B"]);
    assert!(
        m(&["--older-than", "1h"]).is_empty(),
        "never-seen devices are not old"
    );
    assert!(m(&["--older-than-days", "1"]).is_empty());
    assert_eq!(m(&["--only-broker"]), ["MXTOKEN_STALE"]);
    assert_eq!(
        m(&["--exclude-broker", "--never-used"]),
        with(&pre, &["SPARE_C"])
    );
    // A combination that matches nothing is a normal, successful answer.
    let none = devices_json(&f.env, &bot, &["--user-agent", "ansible", "--never-used"]);
    assert_eq!(none["matched_count"], 0);
    assert_eq!(none["total_devices"], pre.len() + 4);

    // The table: the matches, oldest first, then a summary line.
    let out = f.env.run(&["devices", "--user", &bot, "--exclude-broker"]);
    assert_success(&out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("DEVICE") && lines[0].contains("USER AGENT"),
        "{text}"
    );
    let row = |id: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in {text}"))
    };
    assert!(
        row("SPARE_C") < row("ANSIBLE_A") && row("ANSIBLE_A") < row("ELEMENT_B"),
        "{text}"
    );
    assert!(
        lines[row("ANSIBLE_A")].contains("ansible-httpget")
            && lines[row("ANSIBLE_A")].contains("Ansible run")
    );
    assert_eq!(
        lines.last().copied(),
        Some(format!("{} of {} devices match", pre.len() + 3, pre.len() + 4).as_str())
    );
    // Each run took and released its own lease.
    assert_eq!(stdout(&f.env.run(&["leases"])), "no live leases\n");
    f.assert_log_clean(&[]);
}

#[test]
fn devices_revoke_kills_exactly_the_matches_and_spares_live_leases() {
    let f = Fixture::login();
    let auditor = f.synapse.auditor_token();
    let pre = f.devices();
    let live_token = f.get(&["--ttl", "5m", "--purpose", "busy job"]);
    let leases: Value =
        serde_json::from_str(&stdout(&f.env.run(&["leases", "--json"]))).expect("json");
    let live_device = leases["leases"][0]["device_id"]
        .as_str()
        .expect("lease device")
        .to_owned();
    let old1 = seen(&f, &f.user, &f.password, "OLD1", "cron", "ansible-httpget");
    let old2 = seen(
        &f,
        &f.user,
        &f.password,
        "OLD2",
        "cron",
        "Ansible-HTTPGet/2",
    );
    let keep = seen(&f, &f.user, &f.password, "KEEP", "laptop", "Element");
    // A broker device of no lease, and one shaped like a broker session's
    // (which only `mxtoken sweep` may judge).
    create_devices(
        f.synapse,
        auditor,
        &f.user,
        &["MXTOKEN_LEFTOVER".into(), "MXTOKEN_MAINT_X1".into()],
        1,
    );

    let dry = devices_json(
        &f.env,
        &f.user,
        &["--user-agent", "ansible", "--revoke", "--dry-run"],
    );
    assert_eq!(ids(&dry["matched_devices"]), ["OLD1", "OLD2"]);
    assert_eq!(
        sorted(serde_json::from_value(dry["revoked_devices"].clone()).expect("ids")),
        ["OLD1", "OLD2"]
    );
    assert_eq!(dry["changed"], true);
    assert!(
        f.hs.alive(&old1.token) && f.hs.alive(&old2.token),
        "a dry run deletes nothing"
    );

    let done = devices_json(&f.env, &f.user, &["--user-agent", "ansible", "--revoke"]);
    assert_eq!(
        sorted(serde_json::from_value(done["revoked_devices"].clone()).expect("ids")),
        ["OLD1", "OLD2"]
    );
    assert_eq!(done["changed"], true);
    f.hs.assert_dead(&old1.token);
    f.hs.assert_dead(&old2.token);
    assert!(f.hs.alive(&keep.token));

    // Broker devices: the leftover goes, the live lease's device and the
    // command's own lease device stay out of it.
    let out = f
        .env
        .run(&["devices", "--user", &f.user, "--only-broker", "--revoke"]);
    assert_success(&out);
    // KEEP, the leftover, the session, the live lease's device and the registration's.
    assert!(
        stdout(&out).ends_with(&format!(
            "revoked 1 of {} devices; 2 more in use by this broker (live leases, its sessions), spared\n",
            pre.len() + 4
        )),
        "{}",
        stdout(&out)
    );
    assert!(f.hs.alive(&live_token), "the live lease's token survives");
    assert_eq!(
        f.devices(),
        with(&pre, &["KEEP", "MXTOKEN_MAINT_X1", &live_device])
    );
    let after: Value =
        serde_json::from_str(&stdout(&f.env.run(&["leases", "--json"]))).expect("json");
    assert_eq!(
        after["leases"].as_array().map(Vec::len),
        Some(1),
        "only the get lease is left"
    );
    f.assert_log_clean(&[&live_token, &keep.token]);
}

#[test]
fn devices_errors_have_their_own_exit_codes() {
    let f = Fixture::login();
    let out = f.env.run(&["devices", "--user", "@nobody-here:test.local"]);
    assert_eq!(out.status.code(), Some(67), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("has no user @nobody-here:test.local"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&f.env.run(&["leases"])),
        "no live leases\n",
        "released on error"
    );

    for bad in [
        &["devices", "--user", "nobody"][..],
        &["devices", "--user", &f.user, "--dry-run"],
        &[
            "devices",
            "--user",
            &f.user,
            "--only-broker",
            "--exclude-broker",
        ],
        &["devices", "--user", &f.user, "--older-than", "soon"],
        &["devices", "--user", &f.user, "--older-than-days", "-1"],
    ] {
        let out = f.env.run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "");
    }

    // A login profile whose account is not an admin: the broker refuses the lease.
    let (plain, plain_pw) = f.synapse.new_user("plain", false);
    let mut env = BrokerEnv::new(
        &f.synapse.url,
        &[
            ProfileSpec::login("plain", &plain, &plain_pw),
            // An admin minting for a non-admin: the lease is granted, its token
            // is not an admin's, and the admin API call says so.
            ProfileSpec::admin_api("minted", &f.user, &f.password, &plain),
        ],
    );
    env.start();
    for profile in ["plain", "minted"] {
        let out = env.run(&["devices", "--profile", profile, "--user", &plain]);
        assert_eq!(out.status.code(), Some(77), "{profile}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("not a server admin"),
            "{profile}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "");
    }
    let out = env.run(&["devices", "--profile", "minted", "--user", &plain]);
    assert!(
        stderr(&out).starts_with(&format!(
            "mxtoken: cannot list the devices of {plain}: the lease's account is not a server admin"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&env.run(&["leases"])), "no live leases\n");
}

#[test]
fn devices_older_than_uses_last_seen_timestamps() {
    // Private homeserver: ageing rows pauses it.
    let hs = Synapse::start(RateLimits::Raised);
    let matrix = Matrix::new(&hs.url);
    let (admin, admin_pw) = hs.new_user("admin", true);
    let (bot, bot_pw) = hs.new_user("bot", false);
    let pre = matrix.device_ids(hs.auditor_token(), &bot);
    let d40 = login_device(&hs, &bot, &bot_pw, "SEEN_40D", Some("old cron"));
    let d10 = login_device(&hs, &bot, &bot_pw, "SEEN_10D", Some("old cron"));
    let d1h = login_device(&hs, &bot, &bot_pw, "SEEN_1H", Some("laptop"));
    create_devices(&hs, hs.auditor_token(), &bot, &["NEVER_X".into()], 1);
    let now = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms");
    age_devices(
        &hs,
        &bot,
        &[
            ("SEEN_40D", now - 40 * DAY_MS, "ansible-httpget"),
            ("SEEN_10D", now - 10 * DAY_MS, "ansible-httpget"),
            ("SEEN_1H", now - 3_600_000, "Element"),
        ],
    );
    let mut env = BrokerEnv::new(&hs.url, &[ProfileSpec::login("admin", &admin, &admin_pw)]);
    env.start();
    let m = |args: &[&str]| matched(&env, &bot, args);
    assert_eq!(m(&["--older-than", "30d"]), ["SEEN_40D"]);
    assert_eq!(m(&["--older-than", "5d"]), ["SEEN_10D", "SEEN_40D"]);
    assert_eq!(
        m(&["--older-than", "30m"]),
        ["SEEN_10D", "SEEN_1H", "SEEN_40D"]
    );
    assert_eq!(m(&["--older-than-days", "10"]), ["SEEN_10D", "SEEN_40D"]);
    assert_eq!(m(&["--older-than-days", "0"]), with(&pre, &["NEVER_X"]));
    assert_eq!(
        m(&["--user-agent", "ansible", "--older-than-days", "30"]),
        ["SEEN_40D"]
    );
    assert!(m(&["--older-than", "41d"]).is_empty());

    let out = env.run(&["devices", "--user", &bot, "--older-than", "5d"]);
    assert_success(&out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].starts_with("SEEN_40D") && lines[1].contains(" 40d "),
        "{text}"
    );
    assert!(
        lines[2].starts_with("SEEN_10D") && lines[2].contains(" 10d "),
        "{text}"
    );

    let gone = devices_json(&env, &bot, &["--older-than", "30d", "--revoke"]);
    assert_eq!(gone["revoked_devices"], serde_json::json!(["SEEN_40D"]));
    matrix.assert_dead(&d40.token);
    assert!(matrix.alive(&d10.token) && matrix.alive(&d1h.token));
}

#[test]
fn devices_lists_filters_and_revokes_ten_thousand() {
    let hs = Synapse::start(RateLimits::Raised);
    let t = device_audit_scale(&hs, 10_000, Creation::Database);
    // For the record only: BENCHMARKS.md has the measured numbers.
    eprintln!("10,000 devices: list {:?}, revoke {:?}", t.list, t.revoke);
}
