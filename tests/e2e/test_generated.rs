//! Completions and man pages: generated from the clap definitions, they
//! cover every subcommand and option (the lists come from clap, not from here).

use crate::common::*;
use clap::CommandFactory;

fn subcommands() -> Vec<String> {
    mxtoken_client::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect()
}

#[test]
fn completions_for_every_shell_name_every_subcommand() {
    let env = BrokerEnv::new("http://127.0.0.1:9", &[]);
    let names = subcommands();
    assert!(names.iter().any(|n| n == "stop") && names.iter().any(|n| n == "completions"));
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = env.run(&["completions", shell]);
        assert_success(&out);
        assert!(stderr(&out).is_empty(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for name in &names {
            assert!(
                script.contains(name.as_str()),
                "{shell} completions lack {name}"
            );
        }
    }
    let out = env.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_pages_cover_both_binaries_and_every_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(mxtoken_tests::bins::bin("xtask"))
        .arg("assets")
        .arg(dir.path())
        .output()
        .expect("xtask");
    assert_success(&out);
    let man = dir.path().join("man");
    let page = |name: &str| {
        std::fs::read_to_string(man.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let top = page("mxtoken.1");
    for name in subcommands() {
        assert!(top.contains(&name), "mxtoken.1 does not mention {name}");
        let sub = page(&format!("mxtoken-{name}.1"));
        assert!(
            sub.contains(&format!("mxtoken\\-{name}")),
            "mxtoken-{name}.1"
        );
    }
    let daemon = page("mxtokend.1");
    for arg in mxtoken_broker::cli::Args::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(
                daemon.contains(&format!("\\-\\-{}", long.replace('-', "\\-"))),
                "mxtokend.1 lacks --{long}"
            );
        }
    }
    let completions = dir.path().join("completions");
    for file in [
        "mxtoken.bash",
        "_mxtoken",
        "mxtoken.fish",
        "mxtoken.elv",
        "_mxtoken.ps1",
        "mxtokend.bash",
        "_mxtokend",
        "mxtokend.fish",
    ] {
        assert!(completions.join(file).is_file(), "{file} missing");
    }
}
