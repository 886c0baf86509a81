use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes. The set only grows; clients treat an
/// unknown code as [`ErrorCode::Internal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request was malformed (bad JSON, unknown field, bad value).
    BadRequest,
    /// The requested TTL is above the profile's `max_ttl`.
    TtlTooLong,
    /// No such profile.
    UnknownProfile,
    /// No such lease (never existed, or already ended).
    UnknownLease,
    /// No such route, or a route of another protocol version.
    UnknownRoute,
    /// The peer may not use this broker, or may not act on this lease.
    Forbidden,
    /// The request body is larger than [`crate::MAX_BODY_BYTES`].
    PayloadTooLarge,
    /// The homeserver rate-limited the broker; see `retry_after_ms`.
    RateLimited,
    /// The homeserver refused the stored password.
    WrongPassword,
    /// The homeserver refused an admin call (the account is not an admin,
    /// the lease user is unknown, ...). The message says which.
    HomeserverRefused,
    /// The homeserver could not be reached or timed out.
    HomeserverUnreachable,
    /// The homeserver answered with something that is not a Matrix answer.
    HomeserverError,
    /// The profile's password is sealed and the broker is locked; `mxtoken
    /// unlock` opens it.
    Locked,
    /// The passphrase given to unlock does not decrypt the password file.
    WrongPassphrase,
    /// The peer process to bind the lease to is gone or not the peer's.
    BadBindPid,
    /// Too many live leases or connections.
    LimitReached,
    /// A bug or an unexpected failure in the broker.
    Internal,
    /// A code this client does not know (from a newer broker).
    #[serde(other)]
    Unknown,
}

/// The body of every non-2xx response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong and what to do, for people: one sentence.
    pub message: String,
    /// For [`ErrorCode::RateLimited`]: how long until the homeserver allows
    /// the next attempt, when it said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}
