//! The broker's TOML configuration.
//!
//! Lookup: `--config FILE`, else `$MXTOKEN_CONFIG`, else
//! `$XDG_CONFIG_HOME/mxtoken/config.toml` (`~/.config/...` when unset).
//! Relative paths inside the file are relative to the file's folder.

use mxtoken_proto::MintKind;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// A configuration problem; its message names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No file was given and none was found.
    #[error("no config file at {path}; create one (see README) or pass --config FILE")]
    Missing {
        /// Where we looked.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read config file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A value is well-formed but not acceptable.
    #[error("config file {path}: `{key}` {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key, e.g. `profiles.admin.max_ttl`.
        key: String,
        /// What is wrong and what would be right.
        problem: String,
    },
}

/// Where the password of a profile is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordConfig {
    /// An age-encrypted file with an identity file (X25519 or SSH key).
    AgeFile {
        /// The encrypted password.
        age_file: PathBuf,
        /// The identity that decrypts it.
        identity: PathBuf,
    },
    /// A passphrase-encrypted age file (`age -p`): the broker starts locked
    /// and `mxtoken unlock` sends the passphrase.
    AgePassphrase {
        /// The encrypted password.
        age_file: PathBuf,
    },
    /// The OS keyring: service name, account = the profile's `user`.
    Keyring {
        /// The keyring service name.
        service: String,
    },
}

/// One profile: a homeserver account the broker leases tokens for.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name (the key under `[profiles]`).
    pub name: String,
    /// Base URL of the homeserver, with a trailing slash.
    pub homeserver: Url,
    /// The account whose password the broker holds.
    pub user: String,
    /// Where the password is.
    pub password: PasswordConfig,
    /// How leases get their tokens.
    pub mint: MintKind,
    /// The account leases act as (`user` for `login`).
    pub lease_user: String,
    /// Lease lifetime when a request names none.
    pub default_ttl: Duration,
    /// Longest lease a request may ask for.
    pub max_ttl: Duration,
    /// Environment variable the client puts the token in.
    pub token_env: String,
    /// Timeout for establishing a connection to the homeserver.
    pub connect_timeout: Duration,
    /// Timeout for a whole homeserver request.
    pub request_timeout: Duration,
    /// `admin-api` only: the minter account is used by this broker alone, so
    /// recovery may log it out everywhere to kill orphaned tokens.
    pub dedicated_minter: bool,
    /// Idle time (no lease granted) after which the password is wiped from
    /// memory until the next `mxtoken unlock`.
    pub lock_after: Option<Duration>,
    /// Leases need the user's approval through a waiting `mxtoken confirm`.
    pub confirm: bool,
    /// With `confirm`: whether `exec` leases need approval too.
    pub confirm_exec: bool,
}

/// Who may use the broker besides its own uid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Further uids allowed to connect (`allow_uids`).
    pub allow_uids: BTreeSet<u32>,
    /// Gids whose members may connect (`allow_groups`, names resolved at load).
    pub allow_gids: BTreeSet<u32>,
}

impl AccessPolicy {
    /// Whether a peer with `uid` and membership in `gids` may connect to a
    /// broker running as `own_uid`.
    pub fn allows(&self, own_uid: u32, uid: u32, gids: &[u32]) -> bool {
        uid == own_uid
            || self.allow_uids.contains(&uid)
            || gids.iter().any(|g| self.allow_gids.contains(g))
    }

    /// True when only the broker's own uid is served.
    pub fn is_owner_only(&self) -> bool {
        self.allow_uids.is_empty() && self.allow_gids.is_empty()
    }
}

/// Limits on what clients may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once (`max_connections`).
    pub max_connections: usize,
    /// Live leases one uid may hold (`max_leases_per_uid`).
    pub max_leases_per_uid: usize,
    /// Time a client has to send a request's headers, and then its body
    /// (`client_timeout`).
    pub client_timeout: Duration,
    /// How long a `confirm = true` lease waits for approval (`confirm_timeout`).
    pub confirm_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_leases_per_uid: 64,
            client_timeout: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(60),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The profile used when a request names none.
    pub default_profile: String,
    /// Profiles by name.
    pub profiles: BTreeMap<String, Profile>,
    /// Who may connect.
    pub access: AccessPolicy,
    /// Connection, lease and timing limits.
    pub limits: Limits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default_profile: Option<String>,
    #[serde(default)]
    allow_uids: Vec<u32>,
    #[serde(default)]
    allow_groups: Vec<RawGroup>,
    max_connections: Option<usize>,
    max_leases_per_uid: Option<usize>,
    client_timeout: Option<HumanDuration>,
    confirm_timeout: Option<HumanDuration>,
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    homeserver: String,
    user: String,
    password: RawPassword,
    #[serde(default = "default_mint")]
    mint: MintKind,
    lease_user: Option<String>,
    default_ttl: Option<HumanDuration>,
    max_ttl: Option<HumanDuration>,
    token_env: Option<String>,
    connect_timeout: Option<HumanDuration>,
    request_timeout: Option<HumanDuration>,
    #[serde(default)]
    dedicated_minter: bool,
    lock_after: Option<HumanDuration>,
    #[serde(default)]
    confirm: bool,
    confirm_exec: Option<bool>,
}

/// A group in `allow_groups`: a name or a numeric gid.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawGroup {
    Id(u32),
    Name(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPassword {
    age_file: Option<PathBuf>,
    identity: Option<PathBuf>,
    keyring: Option<String>,
}

fn default_mint() -> MintKind {
    MintKind::Login
}

/// A duration written the humantime way (`"5m"`, `"1h 30m"`).
struct HumanDuration(Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a duration ({e}); write e.g. \"90s\", \"5m\" or \"1h\""
                ))
            })
    }
}

const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
const DEFAULT_MAX_TTL: Duration = Duration::from_secs(60 * 60);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds the config file: explicit path, then `$MXTOKEN_CONFIG`, then XDG.
pub fn locate(explicit: Option<&Path>) -> PathBuf {
    let var = |k: &str| std::env::var(k).ok();
    mxtoken_proto::resolve_config_path(&mxtoken_proto::ConfigLookup {
        explicit: explicit.map(Path::to_path_buf),
        env_config: var("MXTOKEN_CONFIG"),
        xdg_config_home: var("XDG_CONFIG_HOME"),
        home: var("HOME"),
    })
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(error) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                error,
            });
        }
    };
    parse(path, &text)
}

/// Validates config text as if read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let invalid = |key: String, problem: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        key,
        problem,
    };
    let base_dir = path.parent().unwrap_or(Path::new("."));
    if raw.profiles.is_empty() {
        return Err(invalid(
            "profiles".into(),
            "is empty; add a [profiles.NAME] table".into(),
        ));
    }
    let mut profiles = BTreeMap::new();
    for (name, p) in raw.profiles {
        let key = |k: &str| format!("profiles.{name}.{k}");
        if !valid_profile_name(&name) {
            return Err(invalid(
                format!("profiles.{name}"),
                "is not a valid profile name; use letters, digits, '-' and '_'".into(),
            ));
        }
        let homeserver =
            parse_base_url(&p.homeserver).map_err(|problem| invalid(key("homeserver"), problem))?;
        check_mxid(&p.user).map_err(|problem| invalid(key("user"), problem))?;
        let password = match (p.password.age_file, p.password.identity, p.password.keyring) {
            (Some(age_file), Some(identity), None) => PasswordConfig::AgeFile {
                age_file: base_dir.join(age_file),
                identity: base_dir.join(identity),
            },
            (Some(age_file), None, None) => PasswordConfig::AgePassphrase {
                age_file: base_dir.join(age_file),
            },
            (None, None, Some(service)) if !service.trim().is_empty() => {
                PasswordConfig::Keyring { service }
            }
            (None, None, Some(_)) => {
                return Err(invalid(
                    key("password.keyring"),
                    "is empty; name the keyring service, e.g. keyring = \"mxtoken\"".into(),
                ));
            }
            (None, Some(_), _) => {
                return Err(invalid(
                    key("password.identity"),
                    "needs age_file, the file the identity decrypts".into(),
                ));
            }
            (Some(_), _, Some(_)) => {
                return Err(invalid(
                    key("password"),
                    "names both an age file and a keyring; keep one".into(),
                ));
            }
            (None, None, None) => {
                return Err(invalid(key("password"), "names no source; write password = { age_file = \"password.age\", identity = \"identity.txt\" }, { age_file = \"password.age\" } (passphrase) or { keyring = \"mxtoken\" }".into()));
            }
        };
        let lease_user = match (p.mint, p.lease_user) {
            (MintKind::Login, None) => p.user.clone(),
            (MintKind::Login, Some(_)) => {
                return Err(invalid(
                    key("lease_user"),
                    "only applies to mint = \"admin-api\"; remove it or change mint".into(),
                ));
            }
            (MintKind::AdminApi, None) => {
                return Err(invalid(key("lease_user"), "is required with mint = \"admin-api\": name a second admin account for leases to act as".into()));
            }
            (MintKind::AdminApi, Some(u)) => {
                check_mxid(&u).map_err(|problem| invalid(key("lease_user"), problem))?;
                if u == p.user {
                    return Err(invalid(key("lease_user"), "must differ from `user`: Synapse refuses to mint an admin-API token for the caller itself".into()));
                }
                u
            }
        };
        let default_ttl = p.default_ttl.map_or(DEFAULT_TTL, |d| d.0);
        let max_ttl = p.max_ttl.map_or(DEFAULT_MAX_TTL.max(default_ttl), |d| d.0);
        if default_ttl.is_zero() {
            return Err(invalid(
                key("default_ttl"),
                "must be longer than zero".into(),
            ));
        }
        if default_ttl > max_ttl {
            return Err(invalid(
                key("default_ttl"),
                format!(
                    "({}) is longer than max_ttl ({})",
                    humantime::format_duration(default_ttl),
                    humantime::format_duration(max_ttl)
                ),
            ));
        }
        if p.dedicated_minter && p.mint != MintKind::AdminApi {
            return Err(invalid(
                key("dedicated_minter"),
                "only applies to mint = \"admin-api\"".into(),
            ));
        }
        if p.confirm_exec.is_some() && !p.confirm {
            return Err(invalid(
                key("confirm_exec"),
                "only applies with confirm = true".into(),
            ));
        }
        let token_env = p.token_env.unwrap_or_else(|| "MATRIX_ADMIN_TOKEN".into());
        if reserved_env_name(&token_env) {
            return Err(invalid(
                key("token_env"),
                format!(
                    "{token_env:?} is reserved (mxtoken sets it, or it would change what the command runs); pick another name such as MATRIX_ADMIN_TOKEN"
                ),
            ));
        }
        if !valid_env_name(&token_env) {
            return Err(invalid(
                key("token_env"),
                format!("{token_env:?} is not a valid environment variable name"),
            ));
        }
        let profile = Profile {
            name: name.clone(),
            homeserver,
            user: p.user,
            password,
            mint: p.mint,
            lease_user,
            default_ttl,
            max_ttl,
            token_env,
            connect_timeout: p.connect_timeout.map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.0),
            request_timeout: p.request_timeout.map_or(DEFAULT_REQUEST_TIMEOUT, |d| d.0),
            dedicated_minter: p.dedicated_minter,
            lock_after: match p.lock_after.map(|d| d.0) {
                Some(d) if d.is_zero() => {
                    return Err(invalid(
                        key("lock_after"),
                        "must be longer than zero; remove it to never lock on idle".into(),
                    ));
                }
                other => other,
            },
            confirm: p.confirm,
            confirm_exec: p.confirm_exec.unwrap_or(true),
        };
        profiles.insert(name, profile);
    }
    // Recovery may /logout/all a dedicated minter: no other profile may
    // log in as that account, or it would lose its sessions too.
    for p in profiles.values().filter(|p| p.dedicated_minter) {
        if let Some(other) = profiles
            .values()
            .find(|o| o.name != p.name && o.user == p.user && o.homeserver == p.homeserver)
        {
            return Err(invalid(
                format!("profiles.{}.dedicated_minter", p.name),
                format!(
                    "says {} is used by this profile alone, but profile {:?} logs in as it too; give the minter its own account or drop dedicated_minter",
                    p.user, other.name
                ),
            ));
        }
    }
    let default_profile = match raw.default_profile {
        Some(name) if profiles.contains_key(&name) => name,
        Some(name) => {
            return Err(invalid(
                "default_profile".into(),
                format!(
                    "names {name:?}, which is not a profile; known: {}",
                    known(&profiles)
                ),
            ));
        }
        None if profiles.len() == 1 => profiles.keys().next().cloned().unwrap_or_default(),
        None => {
            return Err(invalid(
                "default_profile".into(),
                format!("is missing; set it to one of {}", known(&profiles)),
            ));
        }
    };
    let mut allow_gids = BTreeSet::new();
    for g in raw.allow_groups {
        allow_gids.insert(match g {
            RawGroup::Id(gid) => gid,
            RawGroup::Name(name) => crate::platform::group_id(&name).ok_or_else(|| {
                invalid(
                    "allow_groups".into(),
                    format!("names group {name:?}, which this system does not know; write an existing group name or a numeric gid"),
                )
            })?,
        });
    }
    let access = AccessPolicy {
        allow_uids: raw.allow_uids.into_iter().collect(),
        allow_gids,
    };
    let defaults = Limits::default();
    let limits = Limits {
        max_connections: in_range(raw.max_connections, defaults.max_connections, 1..=65_536)
            .map_err(|p| invalid("max_connections".into(), p))?,
        max_leases_per_uid: in_range(
            raw.max_leases_per_uid,
            defaults.max_leases_per_uid,
            1..=100_000,
        )
        .map_err(|p| invalid("max_leases_per_uid".into(), p))?,
        client_timeout: duration_in_range(
            raw.client_timeout,
            defaults.client_timeout,
            Duration::from_secs(300),
        )
        .map_err(|p| invalid("client_timeout".into(), p))?,
        confirm_timeout: duration_in_range(
            raw.confirm_timeout,
            defaults.confirm_timeout,
            Duration::from_secs(3600),
        )
        .map_err(|p| invalid("confirm_timeout".into(), p))?,
    };
    Ok(Config {
        path: path.to_path_buf(),
        default_profile,
        profiles,
        access,
        limits,
    })
}

fn in_range(
    value: Option<usize>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, String> {
    let v = value.unwrap_or(default);
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "is {v}; write a number from {} to {}",
            range.start(),
            range.end()
        ))
    }
}

fn duration_in_range(
    value: Option<HumanDuration>,
    default: Duration,
    max: Duration,
) -> Result<Duration, String> {
    let v = value.map_or(default, |d| d.0);
    if v.is_zero() || v > max {
        Err(format!(
            "is {}; write a duration longer than zero and at most {}",
            humantime::format_duration(v),
            humantime::format_duration(max)
        ))
    } else {
        Ok(v)
    }
}

fn known(profiles: &BTreeMap<String, Profile>) -> String {
    profiles
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Profile names become parts of device names and file names: keep them plain.
pub fn valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Variables `token_env` must not name: the others mxtoken sets, and ones
/// whose hijacking would change what the command runs.
const RESERVED_ENV: &[&str] = &[
    "MATRIX_HOMESERVER_URL",
    "MATRIX_ADMIN_USER",
    "MXTOKEN_LEASE_ID",
    "PATH",
    "HOME",
    "SHELL",
    "IFS",
    "ENV",
    "BASH_ENV",
];

fn reserved_env_name(name: &str) -> bool {
    RESERVED_ENV.contains(&name)
        || name.starts_with("LD_")
        || name.starts_with("DYLD_")
        || name.starts_with("MXTOKEN_")
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_mxid(user: &str) -> Result<(), String> {
    match user.strip_prefix('@').and_then(|rest| rest.split_once(':')) {
        Some((local, server)) if !local.is_empty() && !server.is_empty() => Ok(()),
        _ => Err(format!(
            "{user:?} is not a full Matrix user id; write it as \"@name:server.name\""
        )),
    }
}

/// Parses a homeserver base URL and gives it a trailing slash, so that joining
/// `_matrix/...` keeps any path prefix (`https://host/matrix/`).
fn parse_base_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| {
        format!("{text:?} is not a URL ({e}); write e.g. \"https://matrix.example.com\"")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{text:?} must start with https:// (or http:// for a local server)"
        ));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(format!("{text:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
default_profile = "admin"
[profiles.admin]
homeserver = "https://matrix.example.com/prefix"
user = "@admin:example.com"
password = { age_file = "password.age", identity = "identity.txt" }
mint = "login"
default_ttl = "5m"
max_ttl = "1h"
token_env = "MATRIX_ADMIN_TOKEN"
"#;

    fn err(text: &str) -> String {
        parse(Path::new("/etc/mx/config.toml"), text)
            .expect_err("should fail")
            .to_string()
    }

    #[test]
    fn the_documented_shape_parses() {
        let c = parse(Path::new("/etc/mx/config.toml"), GOOD).expect("valid");
        let p = &c.profiles["admin"];
        assert_eq!(p.homeserver.as_str(), "https://matrix.example.com/prefix/");
        assert_eq!(p.default_ttl, Duration::from_secs(300));
        assert_eq!(p.lease_user, "@admin:example.com");
        assert_eq!(
            p.password,
            PasswordConfig::AgeFile {
                age_file: "/etc/mx/password.age".into(),
                identity: "/etc/mx/identity.txt".into()
            }
        );
    }

    #[test]
    fn each_password_source_parses() {
        let p = |line: &str| {
            parse(
                Path::new("/etc/mx/config.toml"),
                &GOOD.replace(
                    "password = { age_file = \"password.age\", identity = \"identity.txt\" }",
                    line,
                ),
            )
            .map(|c| c.profiles["admin"].password.clone())
            .map_err(|e| e.to_string())
        };
        assert_eq!(
            p("password = { age_file = \"pw.age\" }"),
            Ok(PasswordConfig::AgePassphrase {
                age_file: "/etc/mx/pw.age".into()
            })
        );
        assert_eq!(
            p("password = { keyring = \"mxtoken\" }"),
            Ok(PasswordConfig::Keyring {
                service: "mxtoken".into()
            })
        );
        let lock = parse(
            Path::new("/c.toml"),
            &GOOD.replace("mint = \"login\"", "mint = \"login\"\nlock_after = \"30m\""),
        )
        .expect("valid");
        assert_eq!(
            lock.profiles["admin"].lock_after,
            Some(Duration::from_secs(1800))
        );
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = err(&GOOD.replace("\"5m\"", "\"5 parsecs\""));
        assert!(
            e.contains("/etc/mx/config.toml") && e.contains("default_ttl"),
            "{e}"
        );
        let e = err(&GOOD.replace("\"1h\"", "\"1m\""));
        assert!(
            e.contains("`profiles.admin.default_ttl` (5m) is longer than max_ttl (1m)"),
            "{e}"
        );
        let e = err(&GOOD.replace("token_env", "tokn_env"));
        assert!(e.contains("unknown field `tokn_env`"), "{e}");
        let e = err(&GOOD.replace("@admin:example.com", "admin"));
        assert!(e.contains("`profiles.admin.user`"), "{e}");
        let e = err(&GOOD.replace("default_profile = \"admin\"", "default_profile = \"nope\""));
        assert!(
            e.contains("`default_profile` names \"nope\", which is not a profile; known: admin"),
            "{e}"
        );
        let e = err(&GOOD.replace("\"MATRIX_ADMIN_TOKEN\"", "\"MATRIX_HOMESERVER_URL\""));
        assert!(
            e.contains("`profiles.admin.token_env` \"MATRIX_HOMESERVER_URL\" is reserved"),
            "{e}"
        );
        let e = err(&GOOD.replace("\"MATRIX_ADMIN_TOKEN\"", "\"LD_PRELOAD\""));
        assert!(e.contains("is reserved"), "{e}");
        let shared = format!(
            "{GOOD}\n[profiles.fast]\nhomeserver = \"https://matrix.example.com/prefix\"\nuser = \"@admin:example.com\"\nlease_user = \"@ops:example.com\"\nmint = \"admin-api\"\ndedicated_minter = true\npassword = {{ age_file = \"p.age\", identity = \"i.txt\" }}\n"
        );
        let e = err(&shared);
        assert!(e.contains("`profiles.fast.dedicated_minter` says @admin:example.com is used by this profile alone, but profile \"admin\" logs in as it too"), "{e}");
        let e = err(&GOOD.replace(", identity = \"identity.txt\"", ", keyring = \"k\""));
        assert!(e.contains("both an age file and a keyring"), "{e}");
        let e = err(&GOOD.replace("mint = \"login\"", "mint = \"admin-api\""));
        assert!(e.contains("`profiles.admin.lease_user` is required"), "{e}");
    }

    #[test]
    fn access_policy_and_limits() {
        let c = parse(Path::new("/etc/mx/config.toml"), GOOD).expect("valid");
        assert!(c.access.is_owner_only());
        assert_eq!(c.limits, Limits::default());
        assert!(c.access.allows(1000, 1000, &[]));
        assert!(!c.access.allows(1000, 1001, &[1000]));

        let text = format!(
            "allow_uids = [1001]\nallow_groups = [\"root\", 4242]\nmax_connections = 8\nmax_leases_per_uid = 2\nclient_timeout = \"2s\"\n{GOOD}"
        );
        let c = parse(Path::new("/etc/mx/config.toml"), &text).expect("valid");
        assert!(c.access.allows(1000, 1001, &[]));
        assert!(c.access.allows(1000, 1002, &[0]));
        assert!(c.access.allows(1000, 1002, &[7, 4242]));
        assert!(!c.access.allows(1000, 1002, &[7]));
        assert_eq!(c.limits.max_connections, 8);
        assert_eq!(c.limits.max_leases_per_uid, 2);
        assert_eq!(c.limits.client_timeout, Duration::from_secs(2));

        let e = err(&format!("allow_groups = [\"no-such-group-xyz\"]\n{GOOD}"));
        assert!(
            e.contains("`allow_groups` names group \"no-such-group-xyz\""),
            "{e}"
        );
        let e = err(&format!("allow_uids = [-1]\n{GOOD}"));
        assert!(e.contains("allow_uids"), "{e}");
        let e = err(&format!("max_leases_per_uid = 0\n{GOOD}"));
        assert!(
            e.contains("`max_leases_per_uid` is 0; write a number from 1"),
            "{e}"
        );
        let e = err(&format!("client_timeout = \"0s\"\n{GOOD}"));
        assert!(e.contains("`client_timeout` is 0s"), "{e}");
        let e = err(&format!("{GOOD}confirm_exec = false\n"));
        assert!(
            e.contains("`profiles.admin.confirm_exec` only applies with confirm = true"),
            "{e}"
        );
        let c = parse(
            Path::new("/etc/mx/config.toml"),
            &format!("{GOOD}confirm = true\nconfirm_exec = false\n"),
        )
        .expect("valid");
        assert!(c.profiles["admin"].confirm && !c.profiles["admin"].confirm_exec);
    }
}
