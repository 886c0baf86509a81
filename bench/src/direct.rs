//! The baseline: the same homeserver calls the broker makes, done directly by
//! one keep-alive HTTP client, and the tight `whoami` probe that tells when a
//! token dies.

use anyhow::{Context, Result, bail};
use mxtoken_proto::AccessToken;
use serde_json::{Value, json};
use std::time::Duration;

/// A keep-alive HTTP client for one homeserver.
#[derive(Debug, Clone)]
pub struct Direct {
    base: String,
    http: reqwest::Client,
}

impl Direct {
    /// A client for `base` (`http://127.0.0.1:PORT`), with the same pool
    /// settings as the broker's homeserver client.
    pub fn new(base: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    async fn post(&self, token: Option<&AccessToken>, path: &str, body: &Value) -> Result<Value> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t.expose());
        }
        let resp = req.send().await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            // The body of an error never holds a token.
            bail!("{path} answered {status}: {body}");
        }
        Ok(body)
    }

    /// A password login with the same body the broker sends (device id and
    /// display name included, so the server does the same work).
    pub async fn login(&self, user: &str, password: &str, device_id: &str) -> Result<AccessToken> {
        let body = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
            "device_id": device_id,
            "initial_device_display_name": "mxtoken benchmark baseline",
        });
        let v = self.post(None, "/_matrix/client/v3/login", &body).await?;
        token_of(v)
    }

    /// One admin-API mint for `user`, as the broker does it.
    pub async fn admin_mint(
        &self,
        root: &AccessToken,
        user: &str,
        valid_until_ms: u64,
    ) -> Result<AccessToken> {
        let path = format!(
            "/_synapse/admin/v1/users/{}/login",
            mxtoken_tests::matrix::encode(user)
        );
        let v = self
            .post(
                Some(root),
                &path,
                &json!({"valid_until_ms": valid_until_ms}),
            )
            .await?;
        token_of(v)
    }

    /// `/logout` with the token itself.
    pub async fn logout(&self, token: &AccessToken) -> Result<()> {
        self.post(Some(token), "/_matrix/client/v3/logout", &json!({}))
            .await
            .map(drop)
    }

    /// Whether the homeserver still accepts `token` (`whoami` 200 vs 401).
    pub async fn alive(&self, token: &AccessToken) -> Result<bool> {
        let resp = self
            .http
            .get(format!("{}/_matrix/client/v3/account/whoami", self.base))
            .bearer_auth(token.expose())
            .send()
            .await?;
        match resp.status().as_u16() {
            200 => Ok(true),
            401 => Ok(false),
            s => bail!("whoami answered {s}"),
        }
    }

    /// Polls `whoami` back to back until the token is refused; returns the
    /// moment the refusal arrived and the number of probes. Gives up after
    /// `limit`.
    pub async fn wait_dead(
        &self,
        token: &AccessToken,
        limit: Duration,
    ) -> Result<(std::time::SystemTime, u32)> {
        let start = std::time::Instant::now();
        let mut probes = 0u32;
        while start.elapsed() < limit {
            probes += 1;
            if !self.alive(token).await? {
                return Ok((std::time::SystemTime::now(), probes));
            }
        }
        bail!("the token was still accepted {limit:?} after the lease ended")
    }
}

fn token_of(v: Value) -> Result<AccessToken> {
    let t = v
        .get("access_token")
        .and_then(Value::as_str)
        .context("no access_token in the answer")?;
    Ok(AccessToken::new(t.to_owned()))
}

/// Now as Unix milliseconds.
pub fn unix_ms_now() -> u64 {
    unix_ms(std::time::SystemTime::now())
}

/// A wall-clock time as Unix milliseconds.
pub fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
