//! The only code that talks to the homeserver.
//!
//! Errors carry the homeserver's base URL and the Matrix error code, never a
//! request body or a token (tokens travel in the `Authorization` header only).

use mxtoken_proto::AccessToken;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use url::Url;

/// A failed homeserver call.
#[derive(Debug, thiserror::Error)]
pub enum HsError {
    /// No connection, or no answer in time.
    #[error("cannot reach the homeserver at {base}: {cause}")]
    Unreachable {
        /// Homeserver base URL.
        base: String,
        /// What the network layer said.
        cause: String,
    },
    /// 429 `M_LIMIT_EXCEEDED`.
    #[error("the homeserver at {base} is rate-limiting this request")]
    RateLimited {
        /// Homeserver base URL.
        base: String,
        /// When the server allows the next attempt, if it said.
        retry_after: Option<Duration>,
    },
    /// The homeserver answered with a Matrix error.
    #[error("the homeserver at {base} answered {status} {errcode}: {error}")]
    Matrix {
        /// Homeserver base URL.
        base: String,
        /// HTTP status.
        status: u16,
        /// Matrix `errcode`.
        errcode: String,
        /// Matrix `error` text.
        error: String,
    },
    /// The answer is not a Matrix answer (an HTML error page from a proxy, ...).
    #[error(
        "the homeserver at {base} answered HTTP {status} with something that is not a Matrix response (is a reverse proxy failing?)"
    )]
    NotMatrix {
        /// Homeserver base URL.
        base: String,
        /// HTTP status.
        status: u16,
    },
    /// Not a homeserver answer: the profile's password is locked, so no call
    /// that needs it (a login) was made. Retrying succeeds after `unlock`.
    #[error("profile {profile:?} is locked; unlock it with `mxtoken unlock --profile {profile}`")]
    Locked {
        /// The profile.
        profile: String,
    },
}

impl HsError {
    /// The Matrix errcode, if this is a Matrix error.
    pub fn errcode(&self) -> Option<&str> {
        match self {
            HsError::Matrix { errcode, .. } => Some(errcode),
            _ => None,
        }
    }

    /// True if retrying later can succeed (network, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            HsError::Unreachable { .. }
            | HsError::RateLimited { .. }
            | HsError::NotMatrix { .. }
            | HsError::Locked { .. } => true,
            HsError::Matrix { status, .. } => *status >= 500,
        }
    }
}

/// A successful password login.
#[derive(Debug)]
pub struct LoginSession {
    /// The new session's token.
    pub token: AccessToken,
    /// The device the login created.
    pub device_id: String,
}

/// Requests the broker has in flight to one homeserver at most; more wait
/// their turn. Synapse serves requests on one reactor thread, so more in
/// flight only queue there, and a burst of 1,000 leases would open 1,000
/// connections (and their buffers) that its listen backlog drops.
pub const MAX_IN_FLIGHT: usize = 16;

/// A client for one homeserver.
#[derive(Debug, Clone)]
pub struct Homeserver {
    base: Url,
    http: reqwest::Client,
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
}

#[derive(Deserialize)]
struct MatrixErrorBody {
    errcode: String,
    #[serde(default)]
    error: String,
    retry_after_ms: Option<u64>,
}

#[derive(Deserialize)]
struct LoginBody {
    access_token: AccessToken,
    device_id: String,
}

#[derive(Deserialize)]
struct AdminLoginBody {
    access_token: AccessToken,
}

/// The answer of `whoami`.
#[derive(Debug, Deserialize)]
pub struct WhoAmI {
    /// The user the token belongs to.
    pub user_id: String,
    /// The token's device, if it has one.
    pub device_id: Option<String>,
}

impl Homeserver {
    /// A client for the homeserver at `base` (which ends in `/`).
    pub fn new(
        base: Url,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, HsError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("mxtoken/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            // Every connection in_flight allows stays open for the next burst.
            .pool_max_idle_per_host(MAX_IN_FLIGHT)
            .build()
            .map_err(|e| HsError::Unreachable {
                base: base.to_string(),
                cause: error_chain(&e),
            })?;
        Ok(Self {
            base,
            http,
            in_flight: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        // `base` ends in '/', `path` never starts with one: join keeps a prefix.
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    /// `POST /_matrix/client/v3/login` with a password; creates a device.
    pub async fn password_login(
        &self,
        user: &str,
        password: &SecretString,
        device_id: &str,
        display_name: &str,
    ) -> Result<LoginSession, HsError> {
        let body = serde_json::json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": user },
            "password": password.expose_secret(),
            "device_id": device_id,
            // Tagged with the broker's id so its sweeps spare other brokers' devices.
            "initial_device_display_name": tagged_display_name(display_name, &crate::ids::device_tag()),
        });
        let req = self
            .http
            .post(self.url("_matrix/client/v3/login"))
            .json(&body);
        drop(body);
        let login: LoginBody = self.send(req).await?;
        Ok(LoginSession {
            token: login.access_token,
            device_id: login.device_id,
        })
    }

    /// `POST /_synapse/admin/v1/users/{user}/login`: mints a token for `user`
    /// that the server expires at `valid_until_ms`.
    pub async fn admin_login_as(
        &self,
        admin: &AccessToken,
        user: &str,
        valid_until_ms: u64,
    ) -> Result<AccessToken, HsError> {
        let path = format!(
            "_synapse/admin/v1/users/{}/login",
            encode_path_segment(user)
        );
        let req = self
            .http
            .post(self.url(&path))
            .bearer_auth(admin.expose())
            .json(&serde_json::json!({ "valid_until_ms": valid_until_ms }));
        let body: AdminLoginBody = self.send(req).await?;
        Ok(body.access_token)
    }

    /// `POST /_matrix/client/v3/logout`: ends the token's session.
    pub async fn logout(&self, token: &AccessToken) -> Result<(), HsError> {
        let req = self
            .http
            .post(self.url("_matrix/client/v3/logout"))
            .bearer_auth(token.expose())
            .json(&serde_json::json!({}));
        let _: serde_json::Value = self.send(req).await?;
        Ok(())
    }

    /// `POST /_matrix/client/v3/logout/all`: ends every session of the token's
    /// user, and every token that user minted through the admin API.
    pub async fn logout_all(&self, token: &AccessToken) -> Result<(), HsError> {
        let req = self
            .http
            .post(self.url("_matrix/client/v3/logout/all"))
            .bearer_auth(token.expose())
            .json(&serde_json::json!({}));
        let _: serde_json::Value = self.send(req).await?;
        Ok(())
    }

    /// `GET /_synapse/admin/v2/users/{user}/devices`: `(device_id, display_name)`
    /// of each device of `user`.
    pub async fn devices(
        &self,
        admin: &AccessToken,
        user: &str,
    ) -> Result<Vec<(String, Option<String>)>, HsError> {
        #[derive(Deserialize)]
        struct Device {
            device_id: String,
            display_name: Option<String>,
        }
        #[derive(Deserialize)]
        struct Devices {
            devices: Vec<Device>,
        }
        let path = format!(
            "_synapse/admin/v2/users/{}/devices",
            encode_path_segment(user)
        );
        let body: Devices = self
            .send(self.http.get(self.url(&path)).bearer_auth(admin.expose()))
            .await?;
        Ok(body
            .devices
            .into_iter()
            .map(|d| (d.device_id, d.display_name))
            .collect())
    }

    /// `POST /_synapse/admin/v2/users/{user}/delete_devices`: deletes devices
    /// (and their tokens); ids that do not exist are ignored by the server.
    pub async fn delete_devices(
        &self,
        admin: &AccessToken,
        user: &str,
        ids: &[String],
    ) -> Result<(), HsError> {
        let path = format!(
            "_synapse/admin/v2/users/{}/delete_devices",
            encode_path_segment(user)
        );
        let req = self
            .http
            .post(self.url(&path))
            .bearer_auth(admin.expose())
            .json(&serde_json::json!({ "devices": ids }));
        let _: serde_json::Value = self.send(req).await?;
        Ok(())
    }

    /// `GET /_synapse/admin/v1/users/{user}/admin` with `user`'s own token:
    /// succeeds only if the token has admin rights (else 403 "You are not a
    /// server admin").
    pub async fn check_admin(&self, token: &AccessToken, user: &str) -> Result<(), HsError> {
        let path = format!(
            "_synapse/admin/v1/users/{}/admin",
            encode_path_segment(user)
        );
        let _: serde_json::Value = self
            .send(self.http.get(self.url(&path)).bearer_auth(token.expose()))
            .await?;
        Ok(())
    }

    /// `GET /_matrix/client/v3/account/whoami`.
    pub async fn whoami(&self, token: &AccessToken) -> Result<WhoAmI, HsError> {
        let req = self
            .http
            .get(self.url("_matrix/client/v3/account/whoami"))
            .bearer_auth(token.expose());
        self.send(req).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, HsError> {
        let base = || self.base.to_string();
        // Never closed, so this always yields a permit; the request timeout
        // runs from here, not from joining the queue.
        let _turn = self.in_flight.acquire().await.ok();
        let resp = req.send().await.map_err(|e| HsError::Unreachable {
            base: base(),
            cause: error_chain(&e),
        })?;
        let status = resp.status();
        let retry_header = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(|e| HsError::Unreachable {
            base: base(),
            cause: error_chain(&e),
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|_| HsError::NotMatrix {
                base: base(),
                status: status.as_u16(),
            });
        }
        let parsed: Option<MatrixErrorBody> = serde_json::from_slice(&bytes).ok();
        if status == StatusCode::TOO_MANY_REQUESTS
            || parsed
                .as_ref()
                .is_some_and(|b| b.errcode == "M_LIMIT_EXCEEDED")
        {
            let from_body = parsed
                .as_ref()
                .and_then(|b| b.retry_after_ms)
                .map(Duration::from_millis);
            return Err(HsError::RateLimited {
                base: base(),
                retry_after: from_body.or(retry_header),
            });
        }
        match parsed {
            Some(b) => Err(HsError::Matrix {
                base: base(),
                status: status.as_u16(),
                errcode: b.errcode,
                error: b.error,
            }),
            None => Err(HsError::NotMatrix {
                base: base(),
                status: status.as_u16(),
            }),
        }
    }
}

/// The chain of causes of a reqwest error, without the URL (which the caller
/// names already) and joined on one line.
fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut parts = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = e.source();
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    let text = parts
        .last()
        .cloned()
        .unwrap_or_else(|| "request failed".into());
    if text.contains("timed out") || text.contains("deadline") {
        "timed out".into()
    } else {
        text
    }
}

/// Synapse refuses device display names longer than this (in characters).
const MAX_DISPLAY_NAME: usize = 100;

/// `name` followed by `tag`, shortened with an ellipsis so the whole fits
/// the homeserver's limit; the tag (which sweeps rely on) is kept whole.
fn tagged_display_name(name: &str, tag: &str) -> String {
    let room = MAX_DISPLAY_NAME.saturating_sub(tag.chars().count());
    if name.chars().count() <= room {
        return format!("{name}{tag}");
    }
    let kept: String = name.chars().take(room.saturating_sub(1)).collect();
    format!("{kept}…{tag}")
}

/// Percent-encodes one path segment (a user id has '@' and ':').
fn encode_path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_fit_the_homeserver_limit_and_keep_the_tag() {
        let tag = " [mxtokend abcdefghij]";
        assert_eq!(
            tagged_display_name("mxtoken lease x", tag),
            format!("mxtoken lease x{tag}")
        );
        let long = tagged_display_name(&"é".repeat(300), tag);
        assert_eq!(long.chars().count(), MAX_DISPLAY_NAME);
        assert!(long.ends_with(&format!("…{tag}")));
    }

    #[test]
    fn user_ids_are_encoded_and_prefix_kept() {
        assert_eq!(
            encode_path_segment("@admin:example.com"),
            "%40admin%3Aexample.com"
        );
        let base = Url::parse("https://h.example/matrix/").expect("url");
        let hs =
            Homeserver::new(base, Duration::from_secs(1), Duration::from_secs(1)).expect("client");
        assert_eq!(
            hs.url("_matrix/client/v3/login").as_str(),
            "https://h.example/matrix/_matrix/client/v3/login"
        );
    }
}
