//! Lease ids.

use rand::Rng;

/// Every lease id starts with this.
pub const LEASE_PREFIX: &str = "mxt-";

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Sixteen random characters from `[a-z0-9]` (about 82 bits).
pub fn random_suffix() -> String {
    let mut rng = rand::rng();
    (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A fresh lease id.
pub fn new_lease_id() -> String {
    format!("{LEASE_PREFIX}{}", random_suffix())
}

/// This broker's identity: a random id kept in its state directory, so that
/// the devices it makes can be told from those of another broker using the
/// same account (a second host, a test instance). Set once at start-up.
static BROKER_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Loads the broker id from `state_dir/broker-id`, creating it (0600) on the
/// first start.
pub fn load_broker_id(state_dir: &std::path::Path) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join("broker-id");
    let id = match std::fs::read_to_string(&path) {
        Ok(text) if valid_broker_id(text.trim()) => text.trim().to_owned(),
        Ok(_) | Err(_) => {
            let id: String = random_suffix().chars().take(10).collect();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(format!("{id}\n").as_bytes())?;
            f.sync_all()?;
            id
        }
    };
    let _ = BROKER_ID.set(id.clone());
    Ok(id)
}

fn valid_broker_id(s: &str) -> bool {
    (8..=32).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The suffix every device display name of this broker ends with:
/// ` [mxtokend ID]`. Empty before [`load_broker_id`] (unit tests).
pub fn device_tag() -> String {
    BROKER_ID
        .get()
        .map(|id| format!(" [mxtokend {id}]"))
        .unwrap_or_default()
}
