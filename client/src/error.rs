//! What can go wrong in the client, and the exit code for each (one place).

use mxtoken_proto::{ApiError, ErrorCode};
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes of `mxtoken`. `exec` otherwise exits with its command's status.
pub mod exit {
    /// Something unexpected failed.
    pub const FAILURE: u8 = 1;
    /// Bad command-line usage (clap's code; also a bad `audit --since`).
    pub const USAGE: u8 = 2;
    /// The broker refused the request as invalid (TTL, profile, lease id, pid).
    pub const INVALID: u8 = 65;
    /// `devices`: the homeserver has no such user (a filter matching nothing is 0).
    pub const UNKNOWN_USER: u8 = 67;
    /// No broker answers on the socket.
    pub const NO_BROKER: u8 = 69;
    /// The broker hit an internal error.
    pub const BROKER_FAILED: u8 = 70;
    /// The homeserver could not be reached or gave a broken answer.
    pub const HOMESERVER: u8 = 74;
    /// The homeserver is rate-limiting (try again later, or `--wait`), or the
    /// uid holds `max_leases_per_uid` leases already.
    pub const RATE_LIMITED: u8 = 75;
    /// The broker speaks another protocol version.
    pub const PROTOCOL: u8 = 76;
    /// Refused: wrong password or passphrase, not an admin, not allowed on
    /// this broker, or a lease of a `confirm = true` profile not confirmed.
    pub const REFUSED: u8 = 77;
    /// The profile is locked: run `mxtoken unlock`.
    pub const LOCKED: u8 = 80;
    /// `exec`: the command could not be executed.
    pub const CANNOT_EXECUTE: u8 = 126;
    /// `exec`: the command was not found.
    pub const NOT_FOUND: u8 = 127;
}

/// A client failure; its `Display` is the one sentence shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("the broker is not running (nothing answers on {socket}); start it with `mxtokend`")]
    NoBroker {
        /// Where we looked.
        socket: PathBuf,
    },
    /// The socket exists but we may not use it.
    #[error("cannot use the broker socket {socket}: {source}")]
    SocketAccess {
        /// The socket.
        socket: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No broker answered, and starting one failed.
    #[error(
        "the broker is not running (nothing answers on {socket}) and could not be started: {reason}"
    )]
    AutoStart {
        /// Where we looked.
        socket: PathBuf,
        /// What went wrong, with what to do.
        reason: String,
    },
    /// An mxtokend of another protocol version answers.
    #[error(
        "the broker at {socket} speaks protocol {broker}, this mxtoken speaks {}; restart the broker from the same version (`mxtoken stop`, then start mxtokend)",
        mxtoken_proto::PROTOCOL_VERSION
    )]
    OtherVersion {
        /// The socket.
        socket: PathBuf,
        /// The broker's protocol version.
        broker: u32,
    },
    /// The peer is not an mxtokend, or broke the protocol.
    #[error("{0}")]
    Protocol(String),
    /// The broker answered with an error.
    #[error("{}", describe_api_error(.0))]
    Api(ApiError),
    /// A call the client made itself with a leased token (`devices`) failed.
    #[error("{message}")]
    Homeserver {
        /// Which kind of failure, for the exit code.
        kind: HomeserverFailure,
        /// The sentence for the user.
        message: String,
    },
    /// Bad input to `init`/`import` (a malformed env file, a bad URL).
    #[error("{0}")]
    Invalid(String),
    /// A command-line value that clap cannot check (e.g. `--since`).
    #[error("{0}")]
    Usage(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Kinds of failure of the client's own homeserver calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeserverFailure {
    /// The user does not exist on the homeserver (404).
    UnknownUser,
    /// The homeserver refused the request as invalid (400), e.g. a remote user.
    Invalid,
    /// The token is not a server admin's, or no longer valid.
    Refused,
    /// 429.
    RateLimited,
    /// Unreachable, timed out, or an answer that is not Synapse's.
    Broken,
}

impl ClientError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::NoBroker { .. } | ClientError::AutoStart { .. } => exit::NO_BROKER,
            ClientError::SocketAccess { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                exit::REFUSED
            }
            ClientError::SocketAccess { .. } => exit::NO_BROKER,
            ClientError::Protocol(_) | ClientError::OtherVersion { .. } => exit::PROTOCOL,
            ClientError::Usage(_) => exit::USAGE,
            ClientError::Other(_) => exit::FAILURE,
            ClientError::Homeserver { kind, .. } => match kind {
                HomeserverFailure::UnknownUser => exit::UNKNOWN_USER,
                HomeserverFailure::Invalid => exit::INVALID,
                HomeserverFailure::Refused => exit::REFUSED,
                HomeserverFailure::RateLimited => exit::RATE_LIMITED,
                HomeserverFailure::Broken => exit::HOMESERVER,
            },
            ClientError::Invalid(_) => exit::INVALID,
            ClientError::Api(e) => match e.code {
                ErrorCode::BadRequest
                | ErrorCode::TtlTooLong
                | ErrorCode::UnknownProfile
                | ErrorCode::UnknownLease
                | ErrorCode::BadBindPid
                | ErrorCode::PayloadTooLarge => exit::INVALID,
                ErrorCode::UnknownRoute => exit::PROTOCOL,
                ErrorCode::Forbidden
                | ErrorCode::WrongPassword
                | ErrorCode::WrongPassphrase
                | ErrorCode::HomeserverRefused => exit::REFUSED,
                ErrorCode::Locked => exit::LOCKED,
                ErrorCode::RateLimited | ErrorCode::LimitReached => exit::RATE_LIMITED,
                ErrorCode::HomeserverUnreachable | ErrorCode::HomeserverError => exit::HOMESERVER,
                ErrorCode::Internal | ErrorCode::Unknown => exit::BROKER_FAILED,
            },
        }
    }

    /// How long the homeserver asked us to wait, for a rate-limit error.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Api(ApiError {
                code: ErrorCode::RateLimited,
                retry_after_ms,
                ..
            }) => Some(Duration::from_millis(retry_after_ms.unwrap_or(0))),
            _ => None,
        }
    }
}

fn describe_api_error(e: &ApiError) -> String {
    match (e.code, e.retry_after_ms) {
        (ErrorCode::RateLimited, Some(ms)) => format!(
            "{}: it allows the next login in {}; `mint = \"admin-api\"` avoids this limit (see README), or retry with --wait",
            e.message,
            format_wait(Duration::from_millis(ms))
        ),
        (ErrorCode::RateLimited, None) => format!(
            "{}; try again later, or use `mint = \"admin-api\"` which avoids this limit (see README)",
            e.message
        ),
        _ => e.message.clone(),
    }
}

/// A wait rounded up to whole seconds, as humantime writes it (`5m 29s`).
pub fn format_wait(d: Duration) -> String {
    let secs = d.as_millis().div_ceil(1000);
    humantime::format_duration(Duration::from_secs(u64::try_from(secs).unwrap_or(u64::MAX)))
        .to_string()
}
