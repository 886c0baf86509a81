//! Making devices on a real Synapse for the `mxtoken devices` tests and the
//! device-audit benchmark: logged-in devices used with a chosen user agent,
//! bare devices made through the admin API (fast, never used), and ageing
//! `last_seen` through the homeserver's database.

use crate::matrix::encode;
use crate::synapse::{Synapse, venv};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A device logged in with a password: its token and id.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// The device's access token.
    pub token: String,
    /// The device id.
    pub device_id: String,
}

fn http(user_agent: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .user_agent(user_agent)
        .build()
        .expect("http client")
}

/// Logs `user` in as device `device_id` named `display_name`.
pub fn login_device(
    hs: &Synapse,
    user: &str,
    password: &str,
    device_id: &str,
    display_name: Option<&str>,
) -> LoggedIn {
    let mut body = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
        "device_id": device_id,
    });
    if let Some(n) = display_name {
        body["initial_device_display_name"] = json!(n);
    }
    let resp = http("mxtoken-tests")
        .post(format!("{}/_matrix/client/v3/login", hs.url))
        .json(&body)
        .send()
        .expect("login request");
    let status = resp.status();
    let v: Value = resp.json().unwrap_or(Value::Null);
    assert!(status.is_success(), "login of {device_id} failed: {v}");
    LoggedIn {
        token: v["access_token"].as_str().expect("access_token").to_owned(),
        device_id: v["device_id"].as_str().expect("device_id").to_owned(),
    }
}

/// Makes one authenticated request with `token` as `user_agent`, so the
/// homeserver records the device as last seen now with that agent.
pub fn use_token(hs: &Synapse, token: &str, user_agent: &str) {
    let resp = http(user_agent)
        .get(format!("{}/_matrix/client/v3/account/whoami", hs.url))
        .bearer_auth(token)
        .send()
        .expect("whoami");
    assert!(resp.status().is_success(), "whoami as {user_agent} failed");
}

/// Creates `ids` as devices of `user` with the admin API, `workers`
/// requests at a time. These devices have no token and were never seen.
pub fn create_devices(hs: &Synapse, admin_token: &str, user: &str, ids: &[String], workers: usize) {
    let url = format!(
        "{}/_synapse/admin/v2/users/{}/devices",
        hs.url,
        encode(user)
    );
    let per = ids.len().div_ceil(workers.max(1)).max(1);
    std::thread::scope(|s| {
        for chunk in ids.chunks(per) {
            let url = &url;
            s.spawn(move || {
                let client = http("mxtoken-tests");
                for id in chunk {
                    let resp = client
                        .post(url)
                        .bearer_auth(admin_token)
                        .json(&json!({ "device_id": id }))
                        .send()
                        .expect("create device");
                    assert_eq!(resp.status().as_u16(), 201, "creating {id}");
                }
            });
        }
    });
}

/// Sets the display name of device `device_id` of `user` (admin API).
pub fn rename_device(hs: &Synapse, admin_token: &str, user: &str, device_id: &str, name: &str) {
    let resp = http("mxtoken-tests")
        .put(format!(
            "{}/_synapse/admin/v2/users/{}/devices/{}",
            hs.url,
            encode(user),
            encode(device_id)
        ))
        .bearer_auth(admin_token)
        .json(&json!({ "display_name": name }))
        .send()
        .expect("rename device");
    assert!(resp.status().is_success(), "renaming {device_id}");
}

/// Sets `last_seen` (Unix ms), IP and user agent of devices of `user` in the
/// homeserver's database, as if they had last been used at those times.
/// See [`write_database`] for how and on which homeserver.
pub fn age_devices(hs: &Synapse, user: &str, rows: &[(&str, u64, &str)]) {
    let rows: Vec<Value> = rows
        .iter()
        .map(|(id, ts, ua)| json!([ts, "127.0.0.1", ua, user, id]))
        .collect();
    let n = rows.len();
    let changed = write_database(
        hs,
        "UPDATE devices SET last_seen = ?, ip = ?, user_agent = ? WHERE user_id = ? AND device_id = ?",
        rows,
    );
    assert_eq!(changed, n, "every device to age exists");
}

/// Adds never-used devices `ids` to `user` straight in the database: the
/// same `devices` row the admin API's device creation writes, for set-ups
/// of tens of thousands of devices, which the API makes at only ~100 a
/// second on a busy 2-core machine. See [`write_database`].
pub fn insert_devices(hs: &Synapse, user: &str, ids: &[String]) {
    let rows: Vec<Value> = ids.iter().map(|id| json!([user, id])).collect();
    let added = write_database(
        hs,
        "INSERT INTO devices (user_id, device_id, hidden) VALUES (?, ?, 0)",
        rows,
    );
    assert_eq!(added, ids.len(), "every device inserted");
}

/// Runs `sql` once per row (positional parameters) on the homeserver's
/// SQLite database; returns the number of rows changed.
///
/// Synapse batches last-seen writes in memory and caches what it read, so
/// this runs with the server stopped: [`Synapse::pause`] (which drops any
/// unflushed last-seen batch: write every value that matters here) and then
/// [`Synapse::resume`] (which starts with empty caches, so the admin API
/// answers what was written). Use a private homeserver: pausing the shared
/// one would break the other tests.
pub fn write_database(hs: &Synapse, sql: &str, rows: Vec<Value>) -> usize {
    hs.pause();
    let script = "import json, sqlite3, sys\n\
        db = sqlite3.connect(sys.argv[1])\n\
        n = db.executemany(sys.argv[2], json.load(sys.stdin)).rowcount\n\
        db.commit()\n\
        print(n)\n";
    let mut child = Command::new(venv().join("bin/python"))
        .args(["-c", script])
        .arg(hs.database_path())
        .arg(sql)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(Value::Array(rows).to_string().as_bytes())
            .expect("write rows");
    }
    let out = child.wait_with_output().expect("python");
    hs.resume();
    assert!(
        out.status.success(),
        "writing the homeserver database failed ({})",
        out.status
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("row count")
}

/// How [`device_audit_scale`] makes its devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// `POST /_synapse/admin/v2/users/{user}/devices`, 8 at a time (slow at scale).
    AdminApi,
    /// [`insert_devices`]: rows written while the server is paused. Needs a
    /// private homeserver.
    Database,
}

/// Times of one device-audit run at scale.
#[derive(Debug, Clone, Copy)]
pub struct ScaleTimes {
    /// Creating the devices through the admin API (set-up, not measured product time).
    pub create: Duration,
    /// `mxtoken devices --user U --json` (lease, list, release).
    pub list: Duration,
    /// `mxtoken devices --user U --never-used --revoke --json` (lease, list, revoke all, release).
    pub revoke: Duration,
}

/// Gives a fresh user `n` never-used devices (plus five used ones), then
/// times `mxtoken devices` listing them all and revoking the `n` with
/// `--never-used --revoke`, through a real broker. Checks the outcome and
/// panics if it is wrong; the times are for the benchmark set, not asserted.
pub fn device_audit_scale(hs: &Synapse, n: usize, creation: Creation) -> ScaleTimes {
    use crate::{BrokerEnv, Matrix, ProfileSpec};
    use std::time::Instant;
    let auditor = hs.auditor_token().to_owned();
    let (admin, admin_pw) = hs.new_user("scaleadmin", true);
    let (bot, bot_pw) = hs.new_user("scalebot", false);
    let matrix = Matrix::new(&hs.url);
    // register_new_matrix_user leaves a never-used device of its own.
    let before = matrix.device_ids(&auditor, &bot);
    let ids: Vec<String> = (0..n).map(|i| format!("BULK_{i:06}")).collect();
    let start = Instant::now();
    match creation {
        Creation::AdminApi => create_devices(hs, &auditor, &bot, &ids, 8),
        Creation::Database => insert_devices(hs, &bot, &ids),
    }
    let create = start.elapsed();
    // Used after any pause: a pause drops last-seen data not yet flushed.
    let keep: Vec<String> = (0..5)
        .map(|i| {
            let d = login_device(hs, &bot, &bot_pw, &format!("KEEP_{i}"), Some("kept"));
            use_token(hs, &d.token, "element/1.0");
            d.device_id
        })
        .collect();

    let mut env = BrokerEnv::new(&hs.url, &[ProfileSpec::login("admin", &admin, &admin_pw)]);
    env.start();
    let run = |args: &[&str]| -> (Value, Duration, String) {
        let start = Instant::now();
        let out = env.run(args);
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "mxtoken {args:?}: exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let json = serde_json::from_slice(&out.stdout).expect("devices --json");
        (
            json,
            took,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let total = n + keep.len() + before.len();
    let (all, list, _) = run(&["devices", "--user", &bot, "--json"]);
    assert_eq!(all["total_devices"], total);
    assert_eq!(all["matched_count"], total);
    let (unused, _, _) = run(&["devices", "--user", &bot, "--never-used", "--json"]);
    assert_eq!(unused["matched_count"], n + before.len());
    let (gone, revoke, progress) = run(&[
        "devices",
        "--user",
        &bot,
        "--never-used",
        "--revoke",
        "--json",
    ]);
    // Not a terminal: one progress line per batch on stderr.
    let m = n + before.len();
    if m > 1000 {
        assert!(
            progress.contains(&format!("mxtoken: revoked {m} of {m} devices\n")),
            "{progress}"
        );
    }
    assert_eq!(
        gone["revoked_devices"].as_array().map(Vec::len),
        Some(n + before.len())
    );
    let mut left = matrix.device_ids(&auditor, &bot);
    left.sort();
    assert_eq!(left, keep, "only the used devices remain");
    ScaleTimes {
        create,
        list,
        revoke,
    }
}

/// Waits until the admin API shows device `device_id` of `user` last seen
/// with `user_agent` (Synapse records usage just after answering).
pub fn wait_seen(hs: &Synapse, admin_token: &str, user: &str, device_id: &str, user_agent: &str) {
    let matrix = crate::Matrix::new(&hs.url);
    let path = format!("/_synapse/admin/v2/users/{}/devices", encode(user));
    crate::poll::until(
        &format!("{device_id} to show as last seen with {user_agent}"),
        Duration::from_secs(30),
        || {
            let a = matrix.get(admin_token, &path);
            a.body["devices"]
                .as_array()?
                .iter()
                .find(|d| d["device_id"] == device_id && d["last_seen_user_agent"] == user_agent)?;
            Some(())
        },
    );
}
