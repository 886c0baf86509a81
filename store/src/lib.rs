//! Where mxtoken keeps a profile's admin password, and how it gets in and out:
//!
//! - [`age_file`]: an `age`-encrypted file, opened with an identity file
//!   ([`identity`]: `age-keygen` X25519 or an unencrypted SSH ed25519/RSA key)
//!   or with a passphrase (`age -p`);
//! - [`os_keyring`]: the OS keyring (Secret Service, kernel keyutils, macOS Keychain).
//!
//! Both the broker (reading) and the client's `init`/`import` (writing) use it,
//! so the two always agree on formats. Every error names the file or keyring
//! entry and the fix; none contains a secret.

pub mod age_file;
pub mod identity;
pub mod os_keyring;

use std::path::PathBuf;

/// Why a password could not be read or stored. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("cannot {action} {what} {path}: {error}")]
    Io {
        /// "read" or "write".
        action: &'static str,
        /// Which file this is ("age identity file", ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The identity file may be read by other users.
    #[error(
        "identity file {path} is readable by group or others (mode {mode:03o}); run `chmod 600 {path}`"
    )]
    IdentityExposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The identity file holds no usable identity.
    #[error("identity file {path} is not usable: {message}")]
    Identity {
        /// The file.
        path: PathBuf,
        /// Why, and what to do.
        message: String,
    },
    /// Decryption failed (wrong identity, damaged file, not an age file).
    #[error("cannot decrypt {path} with {with}: {message}")]
    Decrypt {
        /// The encrypted file.
        path: PathBuf,
        /// What was tried ("identity FILE", "the passphrase").
        with: String,
        /// Why.
        message: String,
    },
    /// The passphrase does not open the file.
    #[error("the passphrase does not decrypt {path}; try again")]
    WrongPassphrase {
        /// The encrypted file.
        path: PathBuf,
    },
    /// The file needs a passphrase (it was made with `age -p`), or needs an
    /// identity but a passphrase was given.
    #[error("{path} {problem}")]
    WrongKind {
        /// The encrypted file.
        path: PathBuf,
        /// What kind it is and what to configure instead.
        problem: &'static str,
    },
    /// Encryption failed.
    #[error("cannot encrypt to {path}: {message}")]
    Encrypt {
        /// The output file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The decrypted content is empty or not UTF-8.
    #[error("{path} decrypts to {problem}; re-create it with the password as its only content")]
    Content {
        /// The encrypted file, or the keyring entry.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The keyring failed.
    #[error("{0}")]
    Keyring(String),
}
