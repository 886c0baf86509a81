//! Request and response bodies, one section per route.
//!
//! | route                         | request              | response        |
//! |-------------------------------|----------------------|-----------------|
//! | `GET  /v1/status`             | —                    | [`Status`]      |
//! | `POST /v1/leases`             | [`CreateLease`]      | [`LeaseGranted`] (201) |
//! | `GET  /v1/leases`             | —                    | [`LeaseList`]   |
//! | `DELETE /v1/leases/{id}`      | —                    | [`Released`]    |
//! | `POST /v1/leases/{id}/renew`  | [`RenewLease`]       | [`Renewed`]     |
//! | `POST /v1/sweep`              | [`SweepRequest`]     | [`SweepReport`] |
//! | `POST /v1/check`              | [`CheckRequest`]     | [`CheckReport`] |
//! | `POST /v1/profiles/{name}/unlock` | [`Unlock`]       | [`LockState`]   |
//! | `POST /v1/lock`               | [`Lock`]             | [`LockState`]   |
//! | `GET  /v1/confirm`            | —                    | a stream of [`ConfirmRequest`] JSON lines (blank lines are heartbeats) |
//! | `POST /v1/confirm/{id}`       | [`ConfirmDecision`]  | [`ConfirmDecision`] |
//! | `POST /v1/shutdown`           | —                    | [`Stopped`]     |
//!
//! Requests reject unknown fields so a typo is an error, not a silent default.

use crate::{AccessToken, Passphrase, Timestamp};
use serde::{Deserialize, Serialize};

/// How a profile obtains a lease's token from the homeserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MintKind {
    /// A password `/login` per lease: one device per lease, rate-limited.
    Login,
    /// Synapse's admin API `POST /_synapse/admin/v1/users/{user}/login`:
    /// no device, server-side expiry, no login rate limit.
    AdminApi,
}

impl std::fmt::Display for MintKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MintKind::Login => "login",
            MintKind::AdminApi => "admin-api",
        })
    }
}

/// `POST /v1/leases`: ask for a fresh token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLease {
    /// Profile name; the broker's `default_profile` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Lease lifetime as a humantime duration (`"90s"`, `"5m"`); the
    /// profile's `default_ttl` when absent. Above `max_ttl` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Free text recorded with the lease and in the device's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// End the lease when the process that sent this request exits.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bind_to_client: bool,
    /// End the lease when this process exits (it must belong to the
    /// requesting uid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_pid: Option<u32>,
}

/// What the broker knows of a lease. Never holds the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// The lease id (`mxt-` followed by random characters).
    pub id: String,
    /// The profile the lease was taken from.
    pub profile: String,
    /// The requester's purpose text, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The Matrix user the token acts as.
    pub user_id: String,
    /// The homeserver base URL.
    pub homeserver: String,
    /// How the token was minted.
    pub mint: MintKind,
    /// The device created for the lease (`login` mint only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// When the lease was granted.
    pub created_at: Timestamp,
    /// When the lease ends unless released earlier.
    pub expires_at: Timestamp,
    /// Uid of the process that asked for the lease.
    pub peer_uid: u32,
    /// Pid of the process that asked for the lease, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_pid: Option<u32>,
    /// The process whose exit ends the lease, if bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_pid: Option<u32>,
    /// The executable of the process that asked (`/proc/PID/exe` on Linux),
    /// when the OS tells it. Absent from brokers before this field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_exe: Option<String>,
}

/// `201` answer to [`CreateLease`]: the only message that ever carries the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseGranted {
    /// The lease.
    pub lease: LeaseInfo,
    /// The access token. Shown once; the broker never returns it again.
    pub token: AccessToken,
    /// The environment variable the profile wants the token in.
    pub token_env: String,
}

/// `GET /v1/leases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseList {
    /// Live leases, oldest first.
    pub leases: Vec<LeaseInfo>,
}

/// Whether a token is known to be dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revocation {
    /// The homeserver confirmed the token is gone.
    Revoked,
    /// The homeserver could not be reached; the broker keeps retrying.
    Pending,
}

/// `DELETE /v1/leases/{id}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    /// The lease that ended.
    pub lease_id: String,
    /// The state of its token.
    pub revocation: Revocation,
}

/// `POST /v1/shutdown` answer, sent once every live lease has ended: the
/// broker stops accepting connections and exits as on SIGTERM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    /// The broker's pid (it exits right after this answer).
    pub pid: u32,
    /// Leases that were live and have now ended.
    pub leases_ended: usize,
    /// Revocations the homeserver has not confirmed (the broker exits anyway).
    pub pending_revocations: usize,
}

/// One profile as `GET /v1/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileStatus {
    /// Profile name.
    pub name: String,
    /// Homeserver base URL.
    pub homeserver: String,
    /// The account whose password the broker holds.
    pub user_id: String,
    /// The account leases act as.
    pub lease_user: String,
    /// How leases are minted.
    pub mint: MintKind,
    /// Whether the password is currently unavailable (sealed, not unlocked).
    pub locked: bool,
    /// Whether `unlock` needs a passphrase (an `age -p` file); other sources
    /// unlock by reading the identity file or keyring again.
    #[serde(default)]
    pub needs_passphrase: bool,
    /// Idle time after which the broker locks the profile, if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_after_secs: Option<u64>,
    /// Default lease lifetime in seconds.
    pub default_ttl_secs: u64,
    /// Longest lease lifetime in seconds.
    pub max_ttl_secs: u64,
    /// Environment variable for the token.
    pub token_env: String,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The broker's [`crate::PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// The broker's package version.
    pub broker_version: String,
    /// The broker's pid.
    pub pid: u32,
    /// The profile used when a request names none.
    pub default_profile: String,
    /// Every configured profile.
    pub profiles: Vec<ProfileStatus>,
    /// Number of live leases.
    pub live_leases: usize,
    /// Revocations not yet confirmed by the homeserver.
    pub pending_revocations: usize,
    /// Those revocations, oldest first.
    #[serde(default)]
    pub pending: Vec<PendingRevocation>,
    /// What start-up recovery found in the journal of the previous run.
    #[serde(default)]
    pub recovery: Vec<Recovered>,
}

/// A revocation the broker keeps retrying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRevocation {
    /// The lease whose token is not confirmed dead.
    pub lease_id: String,
    /// Its profile.
    pub profile: String,
    /// When the first attempt failed.
    pub since: Timestamp,
    /// Attempts so far.
    pub attempts: u32,
    /// The last failure, in words.
    pub last_error: String,
    /// True once it has been failing for longer than the profile's `max_ttl`.
    pub overdue: bool,
}

/// What recovery did about one lease left unresolved by a previous run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryOutcome {
    /// The token was killed (device deleted, or the minter logged out everywhere).
    Revoked,
    /// The token had already expired on the server.
    Expired,
    /// The token may live until `expires_at`: an `admin-api` lease whose minter
    /// is not marked `dedicated_minter`, so the broker may not `/logout/all`.
    Orphaned,
    /// The homeserver could not be reached; recovery keeps retrying.
    Pending,
}

/// One lease recovered at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    /// The lease id from the previous run.
    pub lease_id: String,
    /// Its profile.
    pub profile: String,
    /// How it was minted.
    pub mint: MintKind,
    /// When its token expires at the latest.
    pub expires_at: Timestamp,
    /// What recovery did.
    pub outcome: RecoveryOutcome,
}

/// `POST /v1/leases/{id}/renew`: extend a lease, at most to `max_ttl` after
/// its creation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewLease {
    /// New lifetime from now (humantime); the profile's `default_ttl` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// `admin-api` leases only: mint a replacement token that expires at the
    /// new end and revoke the old one (the server-side expiry of a token
    /// cannot be moved).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rotate: bool,
}

/// Answer to [`RenewLease`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Renewed {
    /// The lease with its new `expires_at`.
    pub lease: LeaseInfo,
    /// The replacement token, when the renewal rotated it. Shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<AccessToken>,
}

/// `POST /v1/check`: test each profile's accounts against the homeserver now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// Check only this profile; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// The result of checking one profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileCheck {
    /// Profile name.
    pub profile: String,
    /// The error, when the check failed; `None` when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::ApiError>,
    /// What was checked, in words.
    pub checked: String,
}

/// Answer to [`CheckRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// One entry per checked profile.
    pub profiles: Vec<ProfileCheck>,
}

/// `POST /v1/sweep`: delete the broker's leftover devices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    /// Profile; the default profile when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Only report what would be deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Answer to [`SweepRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    /// The profile swept.
    pub profile: String,
    /// The account whose devices were examined.
    pub user_id: String,
    /// Broker-made devices that belong to no live lease or session: deleted,
    /// or with `dry_run` the ones that would be.
    pub stale_devices: Vec<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// `POST /v1/profiles/{name}/unlock`: unseal the profile's password.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unlock {
    /// The passphrase, for a profile whose `needs_passphrase` is true; absent
    /// for other sources (the broker reads the identity file or keyring again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<Passphrase>,
}

/// `POST /v1/lock`: wipe passwords from the broker's memory until `unlock`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// The profile to lock; every profile when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// Answer to [`Unlock`] and [`Lock`]: the profiles the request acted on, and
/// whether each is locked now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    /// Profile name → locked.
    pub profiles: Vec<ProfileLock>,
}

/// One profile in a [`LockState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileLock {
    /// Profile name.
    pub name: String,
    /// Whether its password is out of the broker's memory.
    pub locked: bool,
}

/// A lease waiting for the user's approval, as `mxtoken confirm` is shown it
/// (one JSON line of the `GET /v1/confirm` stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmRequest {
    /// Id to answer with `POST /v1/confirm/{id}`.
    pub id: String,
    /// The profile asked for.
    pub profile: String,
    /// The requester's purpose text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Whether the lease is bound to the asking client (what `mxtoken exec` asks).
    pub bound_to_client: bool,
    /// Uid of the requesting process.
    pub peer_uid: u32,
    /// Pid of the requesting process, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_pid: Option<u32>,
    /// Executable of the requesting process, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_exe: Option<String>,
    /// The lease's lifetime if approved, in seconds.
    pub ttl_secs: u64,
}

/// `POST /v1/confirm/{id}`: the user's answer (echoed back on success).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmDecision {
    /// True to grant the lease, false to refuse it.
    pub approve: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiError, ErrorCode};

    fn lease() -> LeaseInfo {
        LeaseInfo {
            id: "mxt-abc".into(),
            profile: "admin".into(),
            purpose: Some("cron".into()),
            user_id: "@admin:example.com".into(),
            homeserver: "https://matrix.example.com".into(),
            mint: MintKind::Login,
            device_id: Some("MXTOKEN_abc".into()),
            created_at: Timestamp::from_unix_ms(1_000),
            expires_at: Timestamp::from_unix_ms(301_000),
            peer_uid: 1000,
            peer_pid: Some(42),
            bound_pid: None,
            peer_exe: Some("/usr/bin/mxtoken".into()),
        }
    }

    #[test]
    fn create_lease_golden() {
        let req = CreateLease {
            profile: Some("admin".into()),
            ttl: Some("90s".into()),
            purpose: None,
            bind_to_client: true,
            bind_pid: None,
        };
        let json = serde_json::to_string(&req).expect("serialize");
        assert_eq!(
            json,
            r#"{"profile":"admin","ttl":"90s","bind_to_client":true}"#
        );
        assert_eq!(
            serde_json::from_str::<CreateLease>(&json).expect("parse"),
            req
        );
        assert_eq!(
            serde_json::from_str::<CreateLease>("{}").expect("parse"),
            CreateLease::default()
        );
    }

    #[test]
    fn create_lease_rejects_unknown_fields() {
        let err = serde_json::from_str::<CreateLease>(r#"{"tll":"5m"}"#).expect_err("typo");
        assert!(err.to_string().contains("unknown field `tll`"), "{err}");
    }

    #[test]
    fn granted_debug_hides_token_but_json_carries_it() {
        let g = LeaseGranted {
            lease: lease(),
            token: AccessToken::new("syt_secret".into()),
            token_env: "MATRIX_ADMIN_TOKEN".into(),
        };
        assert!(!format!("{g:?}").contains("syt_secret"));
        let json = serde_json::to_string(&g).expect("serialize");
        assert!(json.contains(r#""token":"syt_secret""#));
        let back: LeaseGranted = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.token.expose(), "syt_secret");
        assert_eq!(back.lease, lease());
    }

    #[test]
    fn stopped_golden() {
        let s = Stopped {
            pid: 42,
            leases_ended: 3,
            pending_revocations: 0,
        };
        let json = serde_json::to_string(&s).expect("serialize");
        assert_eq!(
            json,
            r#"{"pid":42,"leases_ended":3,"pending_revocations":0}"#
        );
        assert_eq!(serde_json::from_str::<Stopped>(&json).expect("parse"), s);
    }

    #[test]
    fn lease_info_golden() {
        let json = serde_json::to_value(lease()).expect("serialize");
        assert_eq!(json["mint"], "login");
        assert_eq!(json["created_at"], "1970-01-01T00:00:01.000Z");
        assert!(json.get("bound_pid").is_none());
    }

    #[test]
    fn unlock_golden_and_debug_hides_passphrase() {
        let u = Unlock {
            passphrase: Some(Passphrase::new("open sesame".into())),
        };
        assert!(!format!("{u:?}").contains("open sesame"));
        let json = serde_json::to_string(&u).expect("serialize");
        assert_eq!(json, r#"{"passphrase":"open sesame"}"#);
        let back: Unlock = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.passphrase.expect("some").expose(), "open sesame");
        assert_eq!(serde_json::to_string(&Unlock::default()).expect("s"), "{}");
    }

    #[test]
    fn lock_golden() {
        assert_eq!(serde_json::to_string(&Lock::default()).expect("s"), "{}");
        let l = Lock {
            profile: Some("admin".into()),
        };
        assert_eq!(
            serde_json::to_string(&l).expect("s"),
            r#"{"profile":"admin"}"#
        );
        let state = LockState {
            profiles: vec![ProfileLock {
                name: "admin".into(),
                locked: true,
            }],
        };
        let json = serde_json::to_string(&state).expect("s");
        assert_eq!(json, r#"{"profiles":[{"name":"admin","locked":true}]}"#);
        assert_eq!(serde_json::from_str::<LockState>(&json).expect("p"), state);
    }

    #[test]
    fn profile_status_from_an_older_broker_parses() {
        let json = r#"{"name":"a","homeserver":"h","user_id":"@a:b","lease_user":"@a:b","mint":"login","locked":false,"default_ttl_secs":1,"max_ttl_secs":2,"token_env":"T"}"#;
        let p: ProfileStatus = serde_json::from_str(json).expect("parse");
        assert!(!p.needs_passphrase && p.lock_after_secs.is_none());
    }

    #[test]
    fn error_codes_are_stable_and_tolerate_new_ones() {
        let e = ApiError::new(ErrorCode::TtlTooLong, "too long");
        assert_eq!(
            serde_json::to_string(&e).expect("serialize"),
            r#"{"code":"ttl_too_long","message":"too long"}"#
        );
        let future: ApiError =
            serde_json::from_str(r#"{"code":"brand_new","message":"m"}"#).expect("parse");
        assert_eq!(future.code, ErrorCode::Unknown);
    }
}
