//! `mxtoken`, the client of the mxtokend broker.

pub mod api;
pub mod audit;
pub mod autostart;
pub mod cli;
pub mod commands;
pub mod completions;
pub mod confirm;
pub mod devices;
pub mod error;
pub mod exec;
pub mod homeserver_check;
pub mod import;
pub mod init;
pub mod lease;
pub mod profile_config;
pub mod shell;
pub mod stop;
pub mod unlock;

use clap::Parser;
use cli::{Cli, Command};
use error::{ClientError, exit};
use std::io::Write;
use std::process::ExitCode;

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    let socket = mxtoken_proto::resolve_socket_path(&mxtoken_proto::SocketLookup {
        explicit: cli.socket.clone(),
        env_socket: std::env::var("MXTOKEN_SOCKET").ok(),
        xdg_runtime_dir: std::env::var("XDG_RUNTIME_DIR").ok(),
        uid: rustix::process::getuid().as_raw(),
    });
    // Only commands that need a lease start a broker; the others report
    // the broker as it is.
    if matches!(
        cli.command,
        Command::Exec(_) | Command::Env(_) | Command::Get(_) | Command::Devices(_)
    ) {
        if let Err(e) = autostart::ensure_broker(&socket) {
            return fail(&e);
        }
    }
    let client = api::BrokerClient::new(socket);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(&ClientError::Other(format!(
                "cannot start the async runtime: {e}"
            )));
        }
    };
    let printed = match cli.command {
        Command::Exec(args) => {
            return exec::run(&rt, &client, args).map_or_else(|e| fail(&e), ExitCode::from);
        }
        Command::Env(args) => rt.block_on(commands::env(&client, args)),
        Command::Get(args) => rt.block_on(commands::get(&client, args)),
        Command::Release { lease_id } => rt.block_on(commands::release(&client, &lease_id)),
        Command::Leases { json } => rt.block_on(commands::leases(&client, json)),
        Command::Status { json, check } => rt.block_on(commands::status(&client, json, check)),
        Command::Renew {
            lease_id,
            ttl,
            rotate,
        } => rt.block_on(commands::renew(&client, &lease_id, ttl, rotate)),
        Command::Sweep { profile, dry_run } => {
            rt.block_on(commands::sweep(&client, profile, dry_run))
        }
        Command::Devices(args) => rt.block_on(devices::run(&client, args)),
        Command::Lock { profile } => rt.block_on(unlock::lock(&client, profile)),
        Command::Unlock(args) => rt.block_on(unlock::unlock(&client, args)),
        // Not in the runtime: the keyring may start its own.
        Command::Init(args) => return init::run(args),
        Command::Import(args) => return import::run(args),
        Command::Audit(args) => audit::show(&args),
        Command::Confirm => rt.block_on(confirm::run(&client)),
        Command::Stop => rt.block_on(stop::stop(&client)),
        Command::Completions { shell } => return print(&completions::script(shell)),
    };
    match printed {
        Ok(text) => print(text.as_bytes()),
        Err(e) => fail(&e),
    }
}

/// Writes the requested output to stdout.
fn print(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
        return ExitCode::from(exit::FAILURE);
    }
    ExitCode::SUCCESS
}

fn fail(e: &ClientError) -> ExitCode {
    eprintln!("mxtoken: {e}");
    ExitCode::from(e.exit_code())
}
