//! Adding or updating one profile in config.toml without touching the rest:
//! other profiles, their settings and every comment stay as they were.

use crate::error::ClientError;
use std::path::Path;
use toml_edit::{DocumentMut, InlineTable, Item, Table, value};

/// Where a profile's password is kept, as written into `password = {...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordEntry {
    /// `{ age_file, identity }`.
    AgeIdentity {
        /// Relative to the config's folder, or absolute.
        age_file: String,
        /// Relative to the config's folder, or absolute.
        identity: String,
    },
    /// `{ age_file }` (passphrase).
    AgePassphrase {
        /// Relative to the config's folder, or absolute.
        age_file: String,
    },
    /// `{ keyring }`.
    Keyring {
        /// The keyring service name.
        service: String,
    },
}

/// Sets `[profiles.NAME]`'s homeserver, user and password in `text`, keeping
/// its other keys; sets `default_profile` when there is none yet.
pub fn upsert(
    text: &str,
    path: &Path,
    name: &str,
    homeserver: &str,
    user: &str,
    password: &PasswordEntry,
) -> Result<String, ClientError> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        ClientError::Invalid(format!(
            "config file {} is not valid TOML ({}); fix it first",
            path.display(),
            e.message()
        ))
    })?;
    if doc.get("default_profile").is_none() {
        // Keep it at the top, before the tables.
        doc.insert("default_profile", value(name));
    }
    let profiles = doc
        .entry("profiles")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| {
            ClientError::Invalid(format!(
                "config file {}: `profiles` is not a table; fix it first",
                path.display()
            ))
        })?;
    let profile = profiles
        .entry(name)
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| {
            ClientError::Invalid(format!(
                "config file {}: `profiles.{name}` is not a table; fix it first",
                path.display()
            ))
        })?;
    profile.insert("homeserver", value(homeserver));
    profile.insert("user", value(user));
    let mut pw = InlineTable::new();
    match password {
        PasswordEntry::AgeIdentity { age_file, identity } => {
            pw.insert("age_file", age_file.as_str().into());
            pw.insert("identity", identity.as_str().into());
        }
        PasswordEntry::AgePassphrase { age_file } => {
            pw.insert("age_file", age_file.as_str().into());
        }
        PasswordEntry::Keyring { service } => {
            pw.insert("keyring", service.as_str().into());
        }
    }
    profile.insert("password", value(pw));
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXISTING: &str = r#"# my broker
default_profile = "prod"

# production, do not touch
[profiles.prod]
homeserver = "https://prod.example"  # the big one
user = "@admin:prod.example"
password = { keyring = "mxtoken" }
mint = "admin-api"
lease_user = "@ops:prod.example"
"#;

    #[test]
    fn adds_a_profile_and_keeps_everything_else() {
        let out = upsert(
            EXISTING,
            Path::new("c.toml"),
            "staging",
            "https://staging.example/",
            "@admin:staging.example",
            &PasswordEntry::AgeIdentity {
                age_file: "staging.age".into(),
                identity: "identity.txt".into(),
            },
        )
        .expect("upsert");
        assert!(out.starts_with(EXISTING), "{out}");
        assert!(out.contains("[profiles.staging]\nhomeserver = \"https://staging.example/\"\nuser = \"@admin:staging.example\"\npassword = { age_file = \"staging.age\", identity = \"identity.txt\" }\n"), "{out}");
    }

    #[test]
    fn updates_an_existing_profile_in_place() {
        let out = upsert(
            EXISTING,
            Path::new("c.toml"),
            "prod",
            "https://prod.example",
            "@admin:prod.example",
            &PasswordEntry::AgePassphrase {
                age_file: "prod.age".into(),
            },
        )
        .expect("upsert");
        assert!(out.contains("# production, do not touch"), "{out}");
        assert!(out.contains("mint = \"admin-api\""), "{out}");
        assert!(
            out.contains("password = { age_file = \"prod.age\" }"),
            "{out}"
        );
        assert!(!out.contains("keyring"), "{out}");
    }

    #[test]
    fn a_new_file_gets_a_default_profile() {
        let out = upsert(
            "",
            Path::new("c.toml"),
            "admin",
            "https://h.example/",
            "@a:h.example",
            &PasswordEntry::Keyring {
                service: "mxtoken".into(),
            },
        )
        .expect("upsert");
        assert_eq!(
            out,
            "default_profile = \"admin\"\n\n[profiles.admin]\nhomeserver = \"https://h.example/\"\nuser = \"@a:h.example\"\npassword = { keyring = \"mxtoken\" }\n"
        );
    }
}
