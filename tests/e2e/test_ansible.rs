//! The Ansible integration with a real ansible-core: the `mxtoken` lookup
//! plugin (drop-in and collection), the `mxtoken exec -- ansible-playbook`
//! pattern, and the devices audit playbook.

use crate::common::*;
use mxtoken_tests::ansible;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `ansible-playbook PLAYBOOK ARGS` on localhost with `env`'s environment,
/// `mxtoken` on PATH and the plugin reachable both ways.
fn playbook(env: &BrokerEnv, program: &[&std::ffi::OsStr], playbook: &std::path::Path) -> Command {
    let venv_bin = ansible::ensure_installed();
    let path = std::env::join_paths(
        [mxtoken_tests::bins::bin_dir(), venv_bin.clone()]
            .into_iter()
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .expect("PATH");
    let (first, rest) = program.split_first().expect("program");
    let mut cmd = env.base_command(first);
    cmd.args(rest)
        .arg(venv_bin.join("ansible-playbook"))
        .args(["-i", "localhost,", "-c", "local"])
        .arg("-e")
        .arg(format!("matrix_homeserver_url={}", env.homeserver()))
        .arg("-e")
        .arg(format!(
            "ansible_python_interpreter={}",
            venv_bin.join("python").display()
        ))
        .arg(playbook)
        .env("PATH", path)
        .env("LC_ALL", "C.UTF-8")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "false")
        .env(
            "ANSIBLE_LOOKUP_PLUGINS",
            ansible::packaging_dir().join("ansible_collections/mxtoken/broker/plugins/lookup"),
        )
        .env("ANSIBLE_COLLECTIONS_PATH", ansible::packaging_dir())
        .stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command) -> Output {
    let out = cmd.output().expect("ansible-playbook");
    assert!(
        out.status.success(),
        "ansible-playbook failed ({:?}):\n{}\n{}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    out
}

fn tests_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ansible")
}

/// A room named `name` on the homeserver, made by a fresh account.
fn make_room(f: &Fixture, name: &str) {
    let (user, pw) = f.synapse.new_user("roomer", false);
    let (token, _) = f.hs.login(&user, &pw);
    let a = f.hs.post(
        &token,
        "/_matrix/client/v3/createRoom",
        &serde_json::json!({ "name": name }),
    );
    assert_eq!(a.status, 200, "{}", a.body);
}

#[test]
fn lookup_token_lists_rooms_and_dies_with_the_playbook() {
    let f = Fixture::login();
    let room = format!("ansible-lookup-room-{}", std::process::id());
    make_room(&f, &room);
    let out = run(playbook(
        &f.env,
        &["env".as_ref()],
        &tests_dir().join("lookup-token.yml"),
    ));
    let text = stdout(&out);
    let token = text
        .split("TOKEN=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("token in output")
        .to_owned();
    assert!(text.contains(&room), "{text}");
    assert!(text.contains(&format!("WHOAMI={}", f.user)), "{text}");
    // Bound to ansible-playbook: revoked once it has exited.
    poll::until("the token to be revoked", Duration::from_secs(30), || {
        (!f.hs.alive(&token)).then_some(())
    });
    f.hs.assert_dead(&token);
    let leases = f.env.run(&["leases", "--json"]);
    assert!(
        stdout(&leases).contains("\"leases\": []"),
        "{}",
        stdout(&leases)
    );
    f.assert_log_clean(&[&token]);
}

#[test]
fn example_list_rooms_playbook_uses_the_collection() {
    let f = Fixture::login();
    let room = format!("ansible-example-room-{}", std::process::id());
    make_room(&f, &room);
    let out = run(playbook(
        &f.env,
        &["env".as_ref()],
        &ansible::packaging_dir().join("examples/list-rooms.yml"),
    ));
    let text = stdout(&out);
    assert!(text.contains(&room), "{text}");
    assert!(text.contains("rooms:"), "{text}");
    poll::until("the lease to end", Duration::from_secs(30), || {
        stdout(&f.env.run(&["leases", "--json"]))
            .contains("\"leases\": []")
            .then_some(())
    });
}

#[test]
fn a_playbook_under_mxtoken_exec_reads_the_env_token() {
    let f = Fixture::login();
    let room = format!("ansible-exec-room-{}", std::process::id());
    make_room(&f, &room);
    let mxtoken = mxtoken_tests::bins::bin("mxtoken");
    let out = run(playbook(
        &f.env,
        &[
            mxtoken.as_os_str(),
            "exec".as_ref(),
            "--purpose".as_ref(),
            "ansible exec test".as_ref(),
            "--".as_ref(),
        ],
        &ansible::packaging_dir().join("examples/exec-env.yml"),
    ));
    assert!(stdout(&out).contains(&room), "{}", stdout(&out));
    let leases = f.env.run(&["leases", "--json"]);
    assert!(
        stdout(&leases).contains("\"leases\": []"),
        "{}",
        stdout(&leases)
    );
}

#[test]
fn devices_playbook_reports_the_module_keys() {
    let f = Fixture::login();
    let mut cmd = playbook(
        &f.env,
        &["env".as_ref()],
        &ansible::packaging_dir().join("examples/audit-devices.yml"),
    );
    cmd.arg("-e").arg(format!("matrix_user={}", f.user));
    let out = run(cmd);
    assert!(
        stdout(&out).contains(
            "keys: changed,devices,matched_count,matched_devices,revoked_devices,total_devices"
        ),
        "{}",
        stdout(&out)
    );
}
