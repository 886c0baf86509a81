//! Unsealing a profile's password.

use crate::config::PasswordConfig;
use secrecy::SecretString;
use std::io::Read;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Why a password could not be unsealed. Messages name the file and the fix;
/// they never contain the password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {error}")]
    Read {
        /// Which file this is ("age identity file", ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The identity file holds no usable identity.
    #[error("age identity file {path} is not usable: {message}")]
    Identity {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Decryption failed (wrong identity, damaged file, not an age file).
    #[error("cannot decrypt {path} with identity {identity}: {message}")]
    Decrypt {
        /// The encrypted file.
        path: PathBuf,
        /// The identity file that was tried.
        identity: PathBuf,
        /// Why.
        message: String,
    },
    /// The decrypted content is empty or not UTF-8.
    #[error("{path} decrypts to {problem}; re-create it with the password as its only content")]
    Content {
        /// The encrypted file.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Unseals the password a [`PasswordConfig`] points at.
pub fn unseal(source: &PasswordConfig) -> Result<SecretString, PasswordError> {
    match source {
        PasswordConfig::AgeFile { age_file, identity } => decrypt_with_identity(age_file, identity),
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, PasswordError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|error| PasswordError::Read {
            what,
            path: path.to_path_buf(),
            error,
        })
}

fn decrypt_with_identity(age_file: &Path, identity: &Path) -> Result<SecretString, PasswordError> {
    let id_text = read_file("age identity file", identity)?;
    let identities = age::IdentityFile::from_buffer(id_text.as_slice())
        .map_err(|e| e.to_string())
        .and_then(|f| f.into_identities().map_err(|e| e.to_string()))
        .map_err(|message| PasswordError::Identity {
            path: identity.to_path_buf(),
            message,
        })?;
    if identities.is_empty() {
        return Err(PasswordError::Identity {
            path: identity.to_path_buf(),
            message: "it holds no identity; create one with `age-keygen -o FILE`".into(),
        });
    }
    let sealed = read_file("age-encrypted password file", age_file)?;
    let decrypt_err = |message: String| PasswordError::Decrypt {
        path: age_file.to_path_buf(),
        identity: identity.to_path_buf(),
        message,
    };
    let reader = age::armor::ArmoredReader::new(sealed.as_slice());
    let decryptor = age::Decryptor::new(reader).map_err(|e| decrypt_err(e.to_string()))?;
    let mut plain = Zeroizing::new(Vec::new());
    decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| decrypt_err(e.to_string()))?
        .read_to_end(&mut plain)
        .map_err(|e| decrypt_err(e.to_string()))?;
    password_from_plaintext(plain, age_file)
}

/// Turns decrypted bytes into the password: exactly one trailing newline
/// (`\n` or `\r\n`, as `echo pw | age ...` leaves) is stripped.
fn password_from_plaintext(
    mut plain: Zeroizing<Vec<u8>>,
    path: &Path,
) -> Result<SecretString, PasswordError> {
    let strip = if plain.ends_with(b"\r\n") {
        2
    } else {
        usize::from(plain.ends_with(b"\n"))
    };
    let keep = plain.len() - strip;
    plain.truncate(keep);
    if plain.is_empty() {
        return Err(PasswordError::Content {
            path: path.to_path_buf(),
            problem: "an empty password",
        });
    }
    let text = std::str::from_utf8(&plain).map_err(|_| PasswordError::Content {
        path: path.to_path_buf(),
        problem: "text that is not UTF-8",
    })?;
    Ok(SecretString::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn pw(bytes: &[u8]) -> String {
        password_from_plaintext(Zeroizing::new(bytes.to_vec()), Path::new("p.age"))
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn strips_exactly_one_newline() {
        assert_eq!(pw(b"hunter2\n"), "hunter2");
        assert_eq!(pw(b"hunter2\n\n"), "hunter2\n");
        assert_eq!(pw(b"hunter2\r\n"), "hunter2");
        assert_eq!(pw(b"hunter2"), "hunter2");
        assert!(pw(b"\n").starts_with("ERR p.age decrypts to an empty password"));
    }
}
