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
