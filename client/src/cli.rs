//! The command line, as clap sees it.

use crate::shell::Shell;
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// Run jobs with short-lived Matrix admin tokens from the mxtokend broker.
#[derive(Debug, Parser)]
#[command(name = "mxtoken", version, about, propagate_version = true)]
pub struct Cli {
    /// Broker socket [default: $MXTOKEN_SOCKET, else $XDG_RUNTIME_DIR/mxtoken/broker.sock, else /tmp/mxtoken-$UID/broker.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run CMD with a fresh token in its environment; revoke it when CMD exits.
    Exec(ExecArgs),
    /// Print shell lines that export a fresh token: eval "$(mxtoken env)".
    Env(EnvArgs),
    /// Print a fresh token and nothing else (for scripts and Ansible lookups).
    Get(GetArgs),
    /// End a lease now and revoke its token.
    Release {
        /// The lease id (`mxtoken leases` lists them; `env` exports it as MXTOKEN_LEASE_ID).
        lease_id: String,
    },
    /// List live leases (never their tokens).
    Leases {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete devices the broker created that belong to no live lease.
    Sweep {
        /// Profile to sweep [default: the config's default_profile]
        #[arg(long, short = 'p', value_name = "NAME")]
        profile: Option<String>,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show the broker's version, profiles and live lease count.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also log in as each profile's account now and check it can do what
        /// leases need (admin rights, lease user); exits non-zero on a failure.
        #[arg(long)]
        check: bool,
    },
    /// Extend a lease (at most to max_ttl after its creation).
    Renew {
        /// The lease id.
        lease_id: String,
        /// New lifetime from now [default: the profile's default_ttl]
        #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
        ttl: Option<String>,
        /// admin-api leases: get a replacement token (printed) that expires at
        /// the new end; the old token is revoked.
        #[arg(long)]
        rotate: bool,
    },
    /// Audit a user's devices through the Synapse admin API; --revoke deletes the matches.
    Devices(crate::devices::DevicesArgs),
    /// Wipe the password from the broker's memory until `mxtoken unlock`.
    Lock {
        /// Only this profile [default: every profile]
        #[arg(long, short = 'p', value_name = "NAME")]
        profile: Option<String>,
    },
    /// Unseal a profile's password in the broker (asks for its passphrase if it has one).
    Unlock(crate::unlock::UnlockArgs),
    /// Set up a profile: check the credentials with the homeserver, seal the password, write config.toml.
    Init(crate::init::InitArgs),
    /// Migrate a profile from a plaintext env file (MATRIX_HOMESERVER_URL, MATRIX_ADMIN_USER, MATRIX_ADMIN_PASSWORD).
    Import(crate::import::ImportArgs),
    /// Stop the broker: every lease ends and its token is revoked.
    Stop,
    /// Print a shell completion script, e.g. `mxtoken completions bash > /etc/bash_completion.d/mxtoken`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Show the audit log: every lease created, ended, revoked or refused.
    Audit(AuditArgs),
    /// Wait for leases of `confirm = true` profiles and approve or deny each.
    Confirm,
}

/// `mxtoken audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events since this long ago (`1h`, `2d`) or since this time (`2026-12-03T16:00:00Z`).
    #[arg(long, value_name = "D")]
    pub since: Option<String>,
    /// Print the log's JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The broker's state directory [default: $MXTOKEN_STATE_DIR, else $XDG_STATE_HOME/mxtoken, else ~/.local/state/mxtoken]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Options shared by every command that takes a lease.
#[derive(Debug, Args)]
pub struct LeaseArgs {
    /// Profile to take the lease from [default: the config's default_profile]
    #[arg(long, short = 'p', value_name = "NAME")]
    pub profile: Option<String>,
    /// Lease lifetime, e.g. 90s, 5m, 1h [default: the profile's default_ttl]
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub ttl: Option<String>,
    /// Why you need the token; recorded with the lease and on its device.
    #[arg(long, value_name = "TEXT")]
    pub purpose: Option<String>,
    /// If the homeserver rate-limits the login, wait until it allows one.
    #[arg(long)]
    pub wait: bool,
}

/// `mxtoken exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// `mxtoken env`.
#[derive(Debug, Args)]
pub struct EnvArgs {
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// Shell syntax to print.
    #[arg(long, value_enum, default_value_t = Shell::Sh)]
    pub shell: Shell,
    /// Also end the lease when process PID exits (e.g. `--bind-pid $$` for your shell).
    #[arg(long, value_name = "PID")]
    pub bind_pid: Option<u32>,
}

/// `mxtoken get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// Print {"token","lease_id","expires_at","homeserver","user_id"} as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also end the lease when process PID exits.
    #[arg(long, value_name = "PID")]
    pub bind_pid: Option<u32>,
}
