//! The OS keyring, through the `keyring` crate.
//!
//! Backends and their order:
//! - macOS: the login Keychain.
//! - Linux: the Secret Service (GNOME Keyring, KWallet, KeePassXC) when a
//!   D-Bus session bus is configured and answers, else the kernel's keyutils
//!   (no D-Bus needed, fine on headless servers): the user keyring, which
//!   lives while any process of the uid runs, linked into the persistent
//!   keyring where the kernel allows (a few days past the last login). Both
//!   are cleared at reboot.
//!
//! Reading tries the backends in that order and takes the first entry found,
//! so a password `init` put in keyutils on a server is found there even when
//! a session bus exists. The entry is (service = the configured `keyring`
//! name, account = the profile's `user`).

use crate::StoreError;
use secrecy::{ExposeSecret, SecretString};

/// A keyring backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The freedesktop Secret Service over D-Bus.
    SecretService,
    /// The Linux kernel's keyutils (persistent keyring).
    Keyutils,
    /// The macOS Keychain.
    Keychain,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::SecretService => "the Secret Service",
            Backend::Keyutils => "the kernel keyutils keyring",
            Backend::Keychain => "the macOS Keychain",
        })
    }
}

/// The backends of this platform, in lookup order.
pub fn backends() -> Vec<Backend> {
    let mut v = Vec::new();
    #[cfg(target_os = "macos")]
    v.push(Backend::Keychain);
    #[cfg(target_os = "linux")]
    {
        // Without a session bus address, connecting would only fail slower.
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty()) {
            v.push(Backend::SecretService);
        }
        v.push(Backend::Keyutils);
    }
    v
}

const ALTERNATIVES: &str = "use password = { age_file = ..., identity = ... } or an age passphrase file instead (`mxtoken init --store age-identity`)";

fn entry(backend: Backend, service: &str, user: &str) -> keyring::Result<keyring::Entry> {
    let cred: Box<keyring::Credential> = match backend {
        #[cfg(target_os = "linux")]
        Backend::SecretService => Box::new(keyring::secret_service::SsCredential::new_with_target(
            None, service, user,
        )?),
        #[cfg(target_os = "macos")]
        Backend::Keychain => Box::new(keyring::macos::MacCredential::new_with_target(
            None, service, user,
        )?),
        #[allow(unreachable_patterns)]
        _ => return Err(keyring::Error::NoEntry),
    };
    Ok(keyring::Entry::new_with_credential(cred))
}

/// What a keyring error says, without anything it might carry of the secret
/// (`BadEncoding` holds the stored bytes).
fn describe(e: &keyring::Error) -> String {
    match e {
        keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
            let text = inner.to_string();
            // D-Bus errors can run to several lines; the first says enough.
            text.lines().next().unwrap_or("").to_owned()
        }
        keyring::Error::NoEntry => "no such entry".into(),
        keyring::Error::BadEncoding(_) => "the stored password is not UTF-8".into(),
        keyring::Error::TooLong(what, max) => format!("{what} is longer than {max}"),
        keyring::Error::Invalid(what, why) => format!("{what} is invalid: {why}"),
        keyring::Error::Ambiguous(_) => "more than one entry matches".into(),
        _ => "unexpected keyring failure".into(),
    }
}

/// keyutils, done here rather than through `keyring`'s credential, which
/// keeps the key in the session keyring: a broker started by a service manager
/// has another session than the shell that ran `init`, and in containers
/// linking to the persistent keyring fails outright.
///
/// The key goes into the user keyring (shared by every process of the uid)
/// and, where the kernel allows, the persistent keyring (which outlives the
/// last login for a few days). Its permissions give the uid, not only the
/// possessor, read and search, so any process of the uid finds it.
#[cfg(target_os = "linux")]
mod keyutils {
    use linux_keyutils::{KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

    /// The same description `keyring` uses, so entries are shared with it.
    fn description(service: &str, user: &str) -> String {
        format!("keyring-rs:{user}@{service}")
    }

    fn rings() -> Vec<KeyRing> {
        let mut v = Vec::new();
        if let Ok(r) = KeyRing::from_special_id(KeyRingIdentifier::User, true) {
            v.push(r);
        }
        if let Ok(r) = KeyRing::get_persistent(KeyRingIdentifier::User) {
            v.push(r);
        }
        v
    }

    pub fn set(service: &str, user: &str, secret: &[u8]) -> keyring::Result<()> {
        let err = |e: linux_keyutils::KeyError| keyring::Error::PlatformFailure(Box::new(e));
        let ring = KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(err)?;
        let key = ring
            .add_key(&description(service, user), secret)
            .map_err(err)?;
        let perms = KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(Permission::VIEW | Permission::READ | Permission::SEARCH | Permission::WRITE)
            .build();
        key.set_perms(perms).map_err(err)?;
        // Best effort: the persistent keyring outlives the last login.
        if let Ok(persistent) = KeyRing::get_persistent(KeyRingIdentifier::User) {
            let _ = persistent.link_key(key);
        }
        Ok(())
    }

    pub fn get(service: &str, user: &str) -> keyring::Result<String> {
        let desc = description(service, user);
        for ring in rings() {
            if let Ok(key) = ring.search(&desc) {
                let bytes = zeroize::Zeroizing::new(
                    key.read_to_vec()
                        .map_err(|e| keyring::Error::PlatformFailure(Box::new(e)))?,
                );
                return String::from_utf8(bytes.to_vec())
                    .map_err(|_| keyring::Error::BadEncoding(Vec::new()));
            }
        }
        Err(keyring::Error::NoEntry)
    }
}

fn get_from(b: Backend, service: &str, user: &str) -> keyring::Result<String> {
    match b {
        #[cfg(target_os = "linux")]
        Backend::Keyutils => keyutils::get(service, user),
        _ => entry(b, service, user).and_then(|e| e.get_password()),
    }
}

fn set_in(b: Backend, service: &str, user: &str, password: &str) -> keyring::Result<()> {
    match b {
        #[cfg(target_os = "linux")]
        Backend::Keyutils => keyutils::set(service, user, password.as_bytes()),
        _ => entry(b, service, user).and_then(|e| e.set_password(password)),
    }
}

/// Reads the password stored for (`service`, `user`). Blocking: call it off
/// the async runtime.
pub fn get(service: &str, user: &str) -> Result<(SecretString, Backend), StoreError> {
    let mut tried = Vec::new();
    for b in backends() {
        match get_from(b, service, user) {
            Ok(pw) if pw.is_empty() => {
                return Err(StoreError::Keyring(format!(
                    "the keyring entry {service:?} for {user} in {b} is empty; store the password again with `mxtoken init --store keyring`"
                )));
            }
            Ok(pw) => return Ok((SecretString::from(pw), b)),
            Err(keyring::Error::NoEntry) => tried.push(format!("{b}: no entry")),
            Err(e) => tried.push(format!("{b}: {}", describe(&e))),
        }
    }
    if tried.is_empty() {
        return Err(StoreError::Keyring(format!(
            "no OS keyring is available on this system; {ALTERNATIVES}"
        )));
    }
    Err(StoreError::Keyring(format!(
        "no password for {user} under keyring service {service:?} ({}); store it with `mxtoken init --store keyring`, or {ALTERNATIVES}",
        tried.join("; ")
    )))
}

/// Stores `password` for (`service`, `user`) in the first backend that takes
/// it; returns which. Blocking.
pub fn set(service: &str, user: &str, password: &SecretString) -> Result<Backend, StoreError> {
    let mut tried = Vec::new();
    for b in backends() {
        match set_in(b, service, user, password.expose_secret()) {
            Ok(()) => return Ok(b),
            Err(e) => tried.push(format!("{b}: {}", describe(&e))),
        }
    }
    Err(StoreError::Keyring(format!(
        "no OS keyring could store the password ({}); {ALTERNATIVES}",
        if tried.is_empty() {
            "none is available on this system".to_owned()
        } else {
            tried.join("; ")
        }
    )))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn keyutils_round_trip() {
        let user = format!("@unit{}:test.local", std::process::id());
        super::keyutils::set("mxtoken-unit", &user, b"pw").expect("set");
        assert_eq!(
            super::keyutils::get("mxtoken-unit", &user).expect("get"),
            "pw"
        );
    }
}
