//! `age`-encrypted password files: opened with identities or a passphrase,
//! written for recipients or a passphrase. The plaintext is the password and
//! at most one trailing newline (as `echo PW | age ...` leaves it).

use crate::StoreError;
use crate::identity::{self, Identities, Recipient};
use secrecy::SecretString;
use std::io::{Read, Write};
use std::path::Path;
use zeroize::Zeroizing;

/// The work factor (log2 N) above which a passphrase file is refused, so a
/// crafted file cannot pin the broker's CPU and memory for hours. `age -p`
/// uses 18; 22 takes a few seconds.
const MAX_SCRYPT_LOG_N: u8 = 22;

/// Decrypts `age_file` with the identities in `identity_file`.
pub fn decrypt_with_identity(
    age_file: &Path,
    identity_file: &Path,
) -> Result<SecretString, StoreError> {
    let ids: Identities = identity::load(identity_file)?;
    let sealed = identity::read("age-encrypted password file", age_file)?;
    let err = |message: String| StoreError::Decrypt {
        path: age_file.to_path_buf(),
        with: format!("identity {}", identity_file.display()),
        message,
    };
    let d = age::Decryptor::new(age::armor::ArmoredReader::new(sealed.as_slice()))
        .map_err(|e| err(e.to_string()))?;
    if d.is_scrypt() {
        return Err(StoreError::WrongKind {
            path: age_file.to_path_buf(),
            problem: "is encrypted with a passphrase (age -p), not to an identity; write password = { age_file = \"...\" } without identity",
        });
    }
    let mut plain = Zeroizing::new(Vec::new());
    d.decrypt(ids.iter())
        .map_err(|e| err(e.to_string()))?
        .read_to_end(&mut plain)
        .map_err(|e| err(e.to_string()))?;
    password_from_plaintext(plain, age_file)
}

/// Decrypts a passphrase-encrypted (`age -p`) `age_file`.
pub fn decrypt_with_passphrase(
    age_file: &Path,
    passphrase: &SecretString,
) -> Result<SecretString, StoreError> {
    let sealed = identity::read("age-encrypted password file", age_file)?;
    let err = |message: String| StoreError::Decrypt {
        path: age_file.to_path_buf(),
        with: "the passphrase".into(),
        message,
    };
    let d = age::Decryptor::new(age::armor::ArmoredReader::new(sealed.as_slice()))
        .map_err(|e| err(e.to_string()))?;
    if !d.is_scrypt() {
        return Err(StoreError::WrongKind {
            path: age_file.to_path_buf(),
            problem: "is encrypted to an identity, not with a passphrase; add identity = \"FILE\" to its password entry",
        });
    }
    let mut id = age::scrypt::Identity::new(passphrase.clone());
    id.set_max_work_factor(MAX_SCRYPT_LOG_N);
    let mut plain = Zeroizing::new(Vec::new());
    let mut reader = d
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                StoreError::WrongPassphrase {
                    path: age_file.to_path_buf(),
                }
            }
            other => err(other.to_string()),
        })?;
    reader
        .read_to_end(&mut plain)
        .map_err(|e| err(e.to_string()))?;
    password_from_plaintext(plain, age_file)
}

/// Whether `age_file` was made with a passphrase (`age -p`).
pub fn is_passphrase_file(age_file: &Path) -> Result<bool, StoreError> {
    let sealed = identity::read("age-encrypted password file", age_file)?;
    let d =
        age::Decryptor::new(age::armor::ArmoredReader::new(sealed.as_slice())).map_err(|e| {
            StoreError::Decrypt {
                path: age_file.to_path_buf(),
                with: "nothing yet".into(),
                message: e.to_string(),
            }
        })?;
    Ok(d.is_scrypt())
}

/// Seals `password` for `recipient` into `out` (mode 0600, replaced atomically).
pub fn seal_to(
    recipient: &Recipient,
    password: &SecretString,
    out: &Path,
) -> Result<(), StoreError> {
    let enc =
        age::Encryptor::with_recipients(std::iter::once(recipient.as_dyn())).map_err(|e| {
            StoreError::Encrypt {
                path: out.to_path_buf(),
                message: e.to_string(),
            }
        })?;
    write_sealed(enc, password, out)
}

/// Seals `password` with `passphrase` (scrypt, as `age -p` does) into `out`.
pub fn seal_with_passphrase(
    passphrase: &SecretString,
    password: &SecretString,
    out: &Path,
) -> Result<(), StoreError> {
    write_sealed(
        age::Encryptor::with_user_passphrase(passphrase.clone()),
        password,
        out,
    )
}

fn write_sealed(
    enc: age::Encryptor,
    password: &SecretString,
    out: &Path,
) -> Result<(), StoreError> {
    use secrecy::ExposeSecret;
    let enc_err = |message: String| StoreError::Encrypt {
        path: out.to_path_buf(),
        message,
    };
    let mut sealed = Vec::new();
    let mut w = enc
        .wrap_output(&mut sealed)
        .map_err(|e| enc_err(e.to_string()))?;
    w.write_all(password.expose_secret().as_bytes())
        .and_then(|()| w.write_all(b"\n"))
        .map_err(|e| enc_err(e.to_string()))?;
    w.finish().map_err(|e| enc_err(e.to_string()))?;
    write_private_atomically(out, &sealed).map_err(|error| StoreError::Io {
        action: "write",
        what: "age-encrypted password file",
        path: out.to_path_buf(),
        error,
    })
}

/// Writes `bytes` to a 0600 temporary file beside `path`, then renames it over
/// `path`, so a crash never leaves half a file.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = identity::create_private(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Turns decrypted bytes into the password: exactly one trailing newline
/// (`\n` or `\r\n`) is stripped.
pub fn password_from_plaintext(
    mut plain: Zeroizing<Vec<u8>>,
    path: &Path,
) -> Result<SecretString, StoreError> {
    let strip = if plain.ends_with(b"\r\n") {
        2
    } else {
        usize::from(plain.ends_with(b"\n"))
    };
    let keep = plain.len() - strip;
    plain.truncate(keep);
    if plain.is_empty() {
        return Err(StoreError::Content {
            path: path.to_path_buf(),
            problem: "an empty password",
        });
    }
    let text = std::str::from_utf8(&plain).map_err(|_| StoreError::Content {
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

    #[test]
    fn identity_round_trip_and_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let id = dir.path().join("id.txt");
        let out = dir.path().join("pw.age");
        let r = identity::generate(&id).expect("generate");
        seal_to(&r, &SecretString::from("s3cret 'x\""), &out).expect("seal");
        let got = decrypt_with_identity(&out, &id).expect("open");
        assert_eq!(got.expose_secret(), "s3cret 'x\"");
        std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let e = decrypt_with_identity(&out, &id)
            .expect_err("exposed")
            .to_string();
        assert!(e.contains("chmod 600") && e.contains("id.txt"), "{e}");
    }

    #[test]
    fn passphrase_round_trip_and_wrong_passphrase() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("pw.age");
        let pass = SecretString::from("correct horse");
        seal_with_passphrase(&pass, &SecretString::from("pw"), &out).expect("seal");
        assert!(is_passphrase_file(&out).expect("kind"));
        assert_eq!(
            decrypt_with_passphrase(&out, &pass)
                .expect("open")
                .expose_secret(),
            "pw"
        );
        let e = decrypt_with_passphrase(&out, &SecretString::from("wrong")).expect_err("wrong");
        assert!(matches!(e, StoreError::WrongPassphrase { .. }), "{e}");
    }
}
