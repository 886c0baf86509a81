//! Identity files: `age-keygen` X25519 keys and unencrypted SSH keys
//! (ed25519, RSA), and the matching recipients for sealing.

use crate::StoreError;
use secrecy::ExposeSecret;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use zeroize::Zeroizing;

/// One or more identities read from a file, ready to decrypt with.
pub struct Identities(Vec<Box<dyn age::Identity>>);

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({} keys, redacted)", self.0.len())
    }
}

impl Identities {
    /// The identities, as `age` wants them.
    pub fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.0.iter().map(|i| i.as_ref() as &dyn age::Identity)
    }
}

pub(crate) fn read(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|error| StoreError::Io {
            action: "read",
            what,
            path: path.to_path_buf(),
            error,
        })
}

/// Refuses an identity file that group or others may read: whoever reads it
/// can decrypt the password.
pub fn check_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|error| StoreError::Io {
        action: "read",
        what: "identity file",
        path: path.to_path_buf(),
        error,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::IdentityExposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Loads the identities of `path`: an `age-keygen` file or an unencrypted
/// OpenSSH/PEM private key. The file must be private (see [`check_private`]).
pub fn load(path: &Path) -> Result<Identities, StoreError> {
    check_private(path)?;
    let text = read("identity file", path)?;
    let bad = |message: String| StoreError::Identity {
        path: path.to_path_buf(),
        message,
    };
    if text.starts_with(b"-----BEGIN") {
        let id = age::ssh::Identity::from_buffer(text.as_slice(), Some(path.display().to_string()))
            .map_err(|e| {
                bad(format!(
                    "{e}; give an ed25519 or RSA key made by ssh-keygen"
                ))
            })?;
        return match id {
            age::ssh::Identity::Unencrypted(_) => Ok(Identities(vec![Box::new(id)])),
            age::ssh::Identity::Encrypted(_) => Err(bad(
                "the SSH key is protected by a passphrase, which the broker cannot ask for; use a key without one, or an age-passphrase store".into(),
            )),
            age::ssh::Identity::Unsupported(_) => Err(bad(
                "this kind of SSH key is not supported; use an ed25519 or RSA key".into(),
            )),
        };
    }
    let file = age::IdentityFile::from_buffer(text.as_slice())
        .map_err(|e| bad(e.to_string()))?
        .into_identities()
        .map_err(|e| bad(e.to_string()))?;
    if file.is_empty() {
        return Err(bad(
            "it holds no identity; create one with `age-keygen -o FILE`".into(),
        ));
    }
    Ok(Identities(
        file.into_iter()
            .map(|i| i as Box<dyn age::Identity>)
            .collect(),
    ))
}

/// A recipient to seal to.
pub struct Recipient(Box<dyn age::Recipient + Send>);

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recipient")
    }
}

impl Recipient {
    /// For `age`.
    pub fn as_dyn(&self) -> &dyn age::Recipient {
        self.0.as_ref()
    }
}

/// The recipient of an `age-keygen` identity file.
pub fn recipient_of_age_identity(path: &Path) -> Result<Recipient, StoreError> {
    check_private(path)?;
    let text = read("identity file", path)?;
    let line = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")))
        .and_then(|l| age::x25519::Identity::from_str(l.trim()).ok())
        .ok_or_else(|| StoreError::Identity {
            path: path.to_path_buf(),
            message: "it holds no AGE-SECRET-KEY line; create one with `age-keygen -o FILE`".into(),
        })?;
    Ok(Recipient(Box::new(line.to_public())))
}

/// The recipient of an SSH private key, read from `KEY.pub` beside it.
pub fn recipient_of_ssh_key(private_key: &Path) -> Result<Recipient, StoreError> {
    let mut public = private_key.as_os_str().to_owned();
    public.push(".pub");
    let public = PathBuf::from(public);
    let text = std::fs::read_to_string(&public).map_err(|error| StoreError::Io {
        action: "read",
        what: "SSH public key",
        path: public.clone(),
        error,
    })?;
    let r = age::ssh::Recipient::from_str(text.trim()).map_err(|e| StoreError::Identity {
        path: public.clone(),
        message: format!("{e:?}; give an ed25519 or RSA key made by ssh-keygen"),
    })?;
    Ok(Recipient(Box::new(r)))
}

/// Creates a new `age-keygen`-style identity file (mode 0600) at `path`.
pub fn generate(path: &Path) -> Result<Recipient, StoreError> {
    let id = age::x25519::Identity::generate();
    let public = id.to_public();
    let text = Zeroizing::new(format!(
        "# created by mxtoken\n# public key: {public}\n{}\n",
        id.to_string().expose_secret()
    ));
    let io = |error| StoreError::Io {
        action: "write",
        what: "identity file",
        path: path.to_path_buf(),
        error,
    };
    let mut f = create_private(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(Recipient(Box::new(public)))
}

/// Creates `path` with mode 0600, failing if it exists.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}
