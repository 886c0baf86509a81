//! `mxtoken completions SHELL`: the shell completion script, generated from
//! the clap definition so it always matches the commands.

use crate::cli::Cli;
use clap::CommandFactory;

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "mxtoken", &mut out);
    out
}
