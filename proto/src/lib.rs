//! Wire types shared by `mxtokend` (the broker) and `mxtoken` (the client).
//!
//! The protocol is HTTP/1.1 with JSON bodies over a Unix socket. Every route
//! lives under [`API_PREFIX`]; every response carries the [`VERSION_HEADER`]
//! so a client can tell a stale broker from a broken one.
//!
//! This crate does no I/O: socket-path resolution takes the environment as a
//! function so it can be tested without touching the process.

mod audit;
mod error;
mod paths;
mod time;
mod token;
mod wire;

pub use audit::{AUDIT_LOG_FILE, AuditEvent, AuditRecord};
pub use error::{ApiError, ErrorCode};
pub use paths::{
    ConfigLookup, SocketLookup, StateLookup, resolve_config_path, resolve_socket_path,
    resolve_state_dir,
};
pub use time::Timestamp;
pub use token::{AccessToken, Passphrase};
pub use wire::*;

/// The version of the broker's socket protocol. Bumped on any incompatible
/// change to a route or a body; a client refuses to talk to another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// Path prefix of every route of [`PROTOCOL_VERSION`].
pub const API_PREFIX: &str = "/v1";

/// Response header carrying the broker's [`PROTOCOL_VERSION`].
pub const VERSION_HEADER: &str = "mxtoken-protocol";

/// Every device the broker creates on the homeserver has an id starting
/// with this, so audits can tell broker devices from others.
pub const DEVICE_PREFIX: &str = "MXTOKEN_";

/// The largest request body the broker accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
