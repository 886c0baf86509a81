//! The `mxtokend` command line, as clap sees it. It lives in the library so
//! the man page and completions are generated from this one definition.

use clap::Parser;
use std::path::PathBuf;

/// The mxtoken broker: leases short-lived Matrix admin tokens over a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "mxtokend", version, about)]
pub struct Args {
    /// Config file [default: $MXTOKEN_CONFIG, else $XDG_CONFIG_HOME/mxtoken/config.toml]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Socket path [default: $MXTOKEN_SOCKET, else $XDG_RUNTIME_DIR/mxtoken/broker.sock, else /tmp/mxtoken-$UID/broker.sock]. Ignored when the service manager passes a socket (LISTEN_FDS).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// State directory for the lease journal [default: $MXTOKEN_STATE_DIR, else $XDG_STATE_HOME/mxtoken, else ~/.local/state/mxtoken]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Stay in the foreground (the only mode for now; accepted for service managers).
    #[arg(long)]
    pub foreground: bool,
    /// Start a new session, detached from the terminal (mxtoken uses this when it auto-starts the broker). Does not fork.
    #[arg(long)]
    pub detach: bool,
    /// Log filter, e.g. `info`, `debug` [default: $MXTOKEN_LOG, else info]
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}
