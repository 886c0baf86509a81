//! `mxtokend`: the broker binary. Runs in the foreground and logs to stderr.

use anyhow::Context;
use clap::Parser;
use mxtoken_broker::cli::Args;
use mxtoken_broker::journal::Journal;
use mxtoken_broker::{
    activation,
    broker::{Broker, BrokerOptions},
    config, dirs,
    homeserver::Homeserver,
    mint::Minter,
    password::PasswordHolder,
    platform, server, socket,
};
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes of `mxtokend` (documented in the README).
mod exit {
    /// Something failed at run time.
    pub const FAILURE: u8 = 1;
    /// Another broker already listens on the socket.
    pub const ALREADY_RUNNING: u8 = 10;
    /// Stopped, but some revocations were not confirmed by the homeserver.
    pub const UNCONFIRMED: u8 = 11;
    /// The config, a sealed password, or a directory or socket path is unusable.
    pub const CONFIG: u8 = 78;
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = args
        .log
        .clone()
        .or_else(|| std::env::var("MXTOKEN_LOG").ok())
        .unwrap_or_else(|| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.downcast_ref::<config::ConfigError>().is_some()
                || e.downcast_ref::<mxtoken_store::StoreError>().is_some()
                || e.downcast_ref::<dirs::DirError>().is_some()
                || matches!(
                    e.downcast_ref::<socket::BindError>(),
                    Some(socket::BindError::UnsafeDir(_) | socket::BindError::NotASocket(_))
                ) {
                exit::CONFIG
            } else if e.downcast_ref::<StopError>().is_some() {
                exit::UNCONFIRMED
            } else if e.downcast_ref::<StartError>().is_some() {
                exit::ALREADY_RUNNING
            } else {
                exit::FAILURE
            };
            eprintln!("mxtokend: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// A socket file this broker bound: removed when dropped, before its lock
/// is released (fields drop after `drop` runs), so it never removes the
/// socket of a broker that claimed the path after us.
struct SocketFile {
    path: std::path::PathBuf,
    _lock: std::fs::File,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A stop that left work for the next start.
#[derive(Debug, thiserror::Error)]
enum StopError {
    #[error(
        "stopped with {0} revocation(s) the homeserver has not confirmed; the next start of mxtokend finishes them from its journal"
    )]
    Unconfirmed(usize),
}

/// Start-up failures that get their own exit code.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("{0}")]
    AlreadyRunning(String),
}

fn run(args: Args) -> anyhow::Result<()> {
    // Before any secret is read: no core dumps, no same-uid debugger.
    for failure in platform::harden_process() {
        tracing::warn!(what = %failure, "cannot harden the process against memory dumps");
    }
    if args.detach {
        mxtoken_broker::platform::detach_from_terminal()
            .context("cannot start a new session (--detach)")?;
    }
    // Before anything else opens a descriptor that could be mistaken for it.
    let inherited = activation::inherited_listener()?;
    let config_path = config::locate(args.config.as_deref());
    let cfg = config::load(&config_path)?;
    let mut minters = Vec::new();
    for profile in cfg.profiles.values() {
        let pw = Arc::new(PasswordHolder::new(profile));
        // Keyring reads may run their own D-Bus runtime: do them before ours starts.
        pw.open_at_start()?;
        if pw.is_locked() {
            tracing::info!(profile = %profile.name, "starting locked; run `mxtoken unlock` to give the passphrase");
        }
        let hs = Homeserver::new(
            profile.homeserver.clone(),
            profile.connect_timeout,
            profile.request_timeout,
        )
        .with_context(|| format!("profile {:?}", profile.name))?;
        minters.push(Minter::new(profile.clone(), hs, pw));
    }
    let socket_path = mxtoken_proto::resolve_socket_path(&mxtoken_proto::SocketLookup {
        explicit: args.socket,
        env_socket: std::env::var("MXTOKEN_SOCKET").ok(),
        xdg_runtime_dir: std::env::var("XDG_RUNTIME_DIR").ok(),
        uid: mxtoken_broker::platform::current_uid(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // A socket passed by the service manager belongs to it: we neither
        // lock nor remove it.
        // Whatever happens from here, a socket file we bound goes with us.
        let (listener, bound) = match inherited {
            Some(l) => (tokio::net::UnixListener::from_std(l).context("cannot use the socket passed by the service manager")?, None),
            None => match socket::bind(&socket_path, !cfg.access.is_owner_only()) {
                Err(e @ socket::BindError::AlreadyRunning(_)) => return Err(StartError::AlreadyRunning(e.to_string()).into()),
                other => {
                    let b = other?;
                    (b.listener, Some(SocketFile { path: socket_path.clone(), _lock: b.lock }))
                }
            },
        };
        let state_dir = dirs::state_dir(args.state_dir.as_deref());
        dirs::ensure_private_dir(&state_dir).context("state directory")?;
        let _state_lock =
            dirs::lock_state_dir(&state_dir).map_err(|e| StartError::AlreadyRunning(e.to_string()))?;
        mxtoken_broker::ids::load_broker_id(&state_dir).context("cannot keep the broker id in the state directory")?;
        let journal_path = Journal::path_in(&state_dir);
        let replay = Journal::replay(&journal_path)?;
        if replay.damaged_lines > 0 {
            tracing::warn!(journal = %journal_path.display(), lines = replay.damaged_lines, "the journal had damaged lines (a crash mid-write?); read what was intact");
        }
        // Compact: keep only what is unresolved, then recover it before the
        // first lease (recovery may log the minter out everywhere).
        let journal = Journal::rewrite(&journal_path, replay.unresolved.values().cloned())?;
        let audit = std::sync::Arc::new(mxtoken_broker::audit::AuditLog::open(&state_dir)?);
        let options = BrokerOptions {
            max_leases_per_uid: cfg.limits.max_leases_per_uid,
            confirm_timeout: cfg.limits.confirm_timeout,
            audit,
        };
        let broker = Broker::with_options(cfg.default_profile.clone(), minters, journal, options);
        if !replay.unresolved.is_empty() {
            tracing::info!(leases = replay.unresolved.len(), "recovering leases left by the previous run");
        }
        broker.recover(replay.unresolved.into_values()).await;
        if bound.is_some() {
            tracing::info!(socket = %socket_path.display(), config = %config_path.display(), state = %state_dir.display(), "mxtokend ready");
        } else {
            tracing::info!(config = %config_path.display(), state = %state_dir.display(), "mxtokend ready on the socket passed by the service manager");
        }
        broker.start_idle_locks();
        if !cfg.access.is_owner_only() {
            tracing::info!(allow_uids = ?cfg.access.allow_uids, allow_gids = ?cfg.access.allow_gids, "serving other users too (allow_uids / allow_groups)");
        }
        let limits = server::ServerLimits {
            max_connections: cfg.limits.max_connections,
            client_timeout: cfg.limits.client_timeout,
            access: cfg.access.clone(),
            ..server::ServerLimits::default()
        };
        activation::notify_ready();
        server::run(listener, broker.clone(), limits, shutdown_signal()).await;
        activation::notify_stopping();
        let unconfirmed = broker.shutdown().await;
        tracing::info!("mxtokend stopped");
        if unconfirmed > 0 {
            return Err(StopError::Unconfirmed(unconfirmed).into());
        }
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the broker with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
