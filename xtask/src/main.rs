//! Build steps that are not compiling: `cargo xtask assets [DIR]` writes the
//! man pages of `mxtoken` (one per subcommand too) and `mxtokend`, and the
//! completion scripts of both for every shell clap_complete knows, generated
//! from the same clap definitions the binaries parse with. The .deb packs
//! them from `target/assets` (the default DIR).

use anyhow::Context;
use clap::{CommandFactory, ValueEnum};
use std::path::{Path, PathBuf};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["assets"] => assets(&default_dir()),
        ["assets", dir] => assets(Path::new(dir)),
        _ => {
            eprintln!("usage: cargo xtask assets [DIR]   (default DIR: target/assets)");
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(dir) => {
            eprintln!(
                "xtask: man pages and completions written to {}",
                dir.display()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `target/assets` of the workspace this xtask belongs to.
fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .join("target/assets")
}

/// The clap definitions of both binaries, with their binary names.
fn commands() -> Vec<clap::Command> {
    vec![
        mxtoken_client::cli::Cli::command(),
        mxtoken_broker::cli::Args::command(),
    ]
}

fn assets(dir: &Path) -> anyhow::Result<PathBuf> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    for cmd in commands() {
        // One page for the binary and one per subcommand (`mxtoken-exec.1`).
        clap_mangen::generate_to(cmd.clone(), &man)
            .with_context(|| format!("cannot write man pages to {}", man.display()))?;
        let name = cmd.get_name().to_owned();
        for shell in clap_complete::Shell::value_variants() {
            clap_complete::generate_to(*shell, &mut cmd.clone(), &name, &completions)
                .with_context(|| {
                    format!(
                        "cannot write {shell} completions to {}",
                        completions.display()
                    )
                })?;
        }
    }
    Ok(dir.to_path_buf())
}
