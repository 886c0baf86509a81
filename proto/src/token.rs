use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Matrix access token. Its `Debug` never shows the value, and the value is
/// zeroed when dropped; only [`AccessToken::expose`] reveals it.
#[derive(Clone)]
pub struct AccessToken(SecretString);

impl AccessToken {
    /// Wraps a token.
    pub fn new(token: String) -> Self {
        Self(SecretString::from(token))
    }

    /// The token itself, for the one place that must send or print it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

impl Serialize for AccessToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for AccessToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `SecretString`'s own impl deserialises straight into the secret box.
        SecretString::deserialize(d).map(Self)
    }
}

/// A passphrase on its way from `mxtoken unlock` to the broker. Like
/// [`AccessToken`]: redacted `Debug`, zeroed on drop.
#[derive(Clone)]
pub struct Passphrase(SecretString);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(passphrase: String) -> Self {
        Self(SecretString::from(passphrase))
    }

    /// The passphrase itself.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The passphrase as a [`SecretString`].
    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase([redacted])")
    }
}

impl Serialize for Passphrase {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Passphrase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SecretString::deserialize(d).map(Self)
    }
}
