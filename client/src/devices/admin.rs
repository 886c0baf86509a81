//! The two Synapse admin API calls `mxtoken devices` makes, with a leased token.

use super::device::Device;
use crate::error::{ClientError, HomeserverFailure};
use mxtoken_proto::AccessToken;
use serde_json::Value;
use std::time::Duration;

/// Connecting to the homeserver must not take longer than this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One call, including reading the answer. Listing 150,000 devices is one
/// large answer, so this is generous; a hung server still cannot hang cron.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A Synapse admin API client for one homeserver and one leased token.
#[derive(Debug)]
pub struct AdminApi {
    http: reqwest::Client,
    base: String,
    token: AccessToken,
}

impl AdminApi {
    /// A client for the homeserver at `base` (a base URL, maybe with a path prefix).
    pub fn new(base: &str, token: AccessToken) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("mxtoken/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Other(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn user_url(&self, user_id: &str, tail: &str) -> String {
        format!(
            "{}/_synapse/admin/v2/users/{}/{tail}",
            self.base,
            encode_path_segment(user_id)
        )
    }

    /// `GET /_synapse/admin/v2/users/{user_id}/devices`.
    pub async fn list_devices(&self, user_id: &str) -> Result<Vec<Device>, ClientError> {
        let req = self
            .http
            .get(self.user_url(user_id, "devices"))
            .bearer_auth(self.token.expose());
        let body = self.send(req, user_id, "list the devices of").await?;
        let broken = |why: String| ClientError::Homeserver {
            kind: HomeserverFailure::Broken,
            message: format!(
                "the homeserver at {} sent a device list this mxtoken cannot read ({why}); is it Synapse?",
                self.base
            ),
        };
        let Some(Value::Array(items)) = body.get("devices").cloned() else {
            return Err(broken("no devices array".into()));
        };
        items
            .into_iter()
            .map(|raw| Device::from_json(raw).map_err(&broken))
            .collect()
    }

    /// `POST /_synapse/admin/v2/users/{user_id}/delete_devices` for `ids`.
    pub async fn delete_devices(&self, user_id: &str, ids: &[&str]) -> Result<(), ClientError> {
        let req = self
            .http
            .post(self.user_url(user_id, "delete_devices"))
            .bearer_auth(self.token.expose())
            .json(&serde_json::json!({ "devices": ids }));
        self.send(req, user_id, "delete devices of").await.map(drop)
    }

    /// Sends `req`; maps every failure to one sentence and an exit code.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        user_id: &str,
        doing: &str,
    ) -> Result<Value, ClientError> {
        let fail = |kind, message: String| ClientError::Homeserver { kind, message };
        // reqwest's errors name the URL (which holds only the user id) and
        // never the Authorization header.
        let resp = req.send().await.map_err(|e| {
            fail(
                HomeserverFailure::Broken,
                format!(
                    "cannot {doing} {user_id}: the homeserver at {} did not answer ({}); check that it is up",
                    self.base,
                    error_chain(&e)
                ),
            )
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let errcode = body.get("errcode").and_then(Value::as_str).unwrap_or("");
        let said = body
            .get("error")
            .and_then(Value::as_str)
            // The homeserver's text goes to a terminal: no escape sequences.
            .map(|s| format!(": {}", s.replace(char::is_control, "?")))
            .unwrap_or_default();
        Err(match (status.as_u16(), errcode) {
            (404, "M_NOT_FOUND") => fail(
                HomeserverFailure::UnknownUser,
                format!(
                    "the homeserver at {} has no user {user_id}; check the user id (local users only)",
                    self.base
                ),
            ),
            (404, _) => fail(
                HomeserverFailure::Broken,
                format!(
                    "cannot {doing} {user_id}: the homeserver at {} has no Synapse admin API (HTTP 404 {errcode}); check that /_synapse/admin is reachable",
                    self.base
                ),
            ),
            (401, _) => fail(
                HomeserverFailure::Refused,
                format!(
                    "cannot {doing} {user_id}: the homeserver no longer accepts the lease's token ({errcode}); if the lease expired, retry with a longer --ttl"
                ),
            ),
            (403, _) => fail(
                HomeserverFailure::Refused,
                format!(
                    "cannot {doing} {user_id}: the lease's account is not a server admin on {} ({errcode}{said}); use a profile whose account is an admin",
                    self.base
                ),
            ),
            (429, _) => fail(
                HomeserverFailure::RateLimited,
                format!(
                    "cannot {doing} {user_id}: the homeserver is rate-limiting this account{said}; retry later"
                ),
            ),
            (400, _) => fail(
                HomeserverFailure::Invalid,
                format!("cannot {doing} {user_id}: the homeserver refused the request{said}"),
            ),
            (code, _) => fail(
                HomeserverFailure::Broken,
                format!(
                    "cannot {doing} {user_id}: the homeserver at {} answered HTTP {code}{said}; check its logs",
                    self.base
                ),
            ),
        })
    }
}

/// The error and its causes on one line ("timed out: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a user
/// id (`@a:b`, which may hold `/` or `?` in odd ids) stays one path segment.
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_become_one_path_segment() {
        assert_eq!(
            encode_path_segment("@bot_1:example.com"),
            "%40bot_1%3Aexample.com"
        );
        assert_eq!(
            encode_path_segment("@a/b?c#d:é"),
            "%40a%2Fb%3Fc%23d%3A%C3%A9"
        );
    }

    #[test]
    fn debug_does_not_show_the_token() {
        let api = AdminApi::new("http://127.0.0.1:1/", AccessToken::new("syt_secret".into()))
            .expect("client");
        assert!(!format!("{api:?}").contains("syt_secret"));
        assert_eq!(
            api.user_url("@a:b", "devices"),
            "http://127.0.0.1:1/_synapse/admin/v2/users/%40a%3Ab/devices"
        );
    }
}
