//! The client's only homeserver calls (used by `init` and `import`): one
//! password login to prove the credentials, logged out again at once, and
//! logging out an old pasted token on request. Leases never come from here.

use crate::error::{ClientError, HomeserverFailure};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use url::Url;

fn client() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .user_agent(concat!("mxtoken/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ClientError::Other(format!("cannot build an HTTP client: {e}")))
}

fn refused(message: String) -> ClientError {
    ClientError::Homeserver {
        kind: HomeserverFailure::Refused,
        message,
    }
}

fn broken(message: String) -> ClientError {
    ClientError::Homeserver {
        kind: HomeserverFailure::Broken,
        message,
    }
}

fn endpoint(base: &Url, path: &str) -> Url {
    base.join(path).unwrap_or_else(|_| base.clone())
}

fn unreachable(base: &Url, e: &reqwest::Error) -> ClientError {
    let why = if e.is_timeout() {
        "timed out"
    } else {
        "no connection"
    };
    broken(format!(
        "cannot reach the homeserver at {base} ({why}); check the URL and your network"
    ))
}

#[derive(serde::Deserialize)]
struct MatrixError {
    errcode: String,
    #[serde(default)]
    error: String,
}

/// Logs in as `user` with `password` and logs that session out again.
/// Returns the user id the homeserver reports.
pub async fn check_login(
    base: &Url,
    user: &str,
    password: &SecretString,
) -> Result<String, ClientError> {
    let http = client()?;
    let body = serde_json::json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": user },
        "password": password.expose_secret(),
        "initial_device_display_name": "mxtoken init: credential check (logged out at once)",
    });
    let resp = http
        .post(endpoint(base, "_matrix/client/v3/login"))
        .json(&body)
        .send()
        .await
        .map_err(|e| unreachable(base, &e))?;
    drop(body);
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| unreachable(base, &e))?;
    if !status.is_success() {
        return Err(match serde_json::from_slice::<MatrixError>(&bytes) {
            Ok(m) if m.errcode == "M_FORBIDDEN" => refused(format!(
                "the homeserver at {base} refused the password of {user}; check the user id and password and try again"
            )),
            Ok(m) if m.errcode == "M_LIMIT_EXCEEDED" => ClientError::Homeserver {
                kind: HomeserverFailure::RateLimited,
                message: format!(
                    "the homeserver at {base} is rate-limiting logins; wait a few minutes and try again"
                ),
            },
            Ok(m) => refused(format!(
                "the homeserver at {base} refused the login of {user} ({} {}: {})",
                status.as_u16(),
                m.errcode,
                m.error
            )),
            Err(_) => broken(format!(
                "{base} answered HTTP {} to a login, which is not a Matrix answer; check the homeserver URL",
                status.as_u16()
            )),
        });
    }
    #[derive(serde::Deserialize)]
    struct Login {
        access_token: SecretString,
        user_id: String,
    }
    let login: Login = serde_json::from_slice(&bytes).map_err(|_| {
        broken(format!(
            "{base} answered a login with something that is not a Matrix answer; check the homeserver URL"
        ))
    })?;
    logout(base, &login.access_token).await.map_err(|_| {
        broken(format!(
            "the credentials work, but logging out the check's session on {base} failed; remove the device \"mxtoken init: credential check\" by hand"
        ))
    })?;
    Ok(login.user_id)
}

/// The outcome of logging out a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggedOut {
    /// The homeserver ended the session.
    Now,
    /// The homeserver did not know the token (already revoked or expired).
    AlreadyDead,
}

/// `POST /_matrix/client/v3/logout` with `token`.
pub async fn logout(base: &Url, token: &SecretString) -> Result<LoggedOut, ClientError> {
    let resp = client()?
        .post(endpoint(base, "_matrix/client/v3/logout"))
        .bearer_auth(token.expose_secret())
        .json(&serde_json::json!({}))
        .send()
        .await
        .map_err(|e| unreachable(base, &e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(LoggedOut::Now);
    }
    let bytes = resp.bytes().await.map_err(|e| unreachable(base, &e))?;
    match serde_json::from_slice::<MatrixError>(&bytes) {
        Ok(m) if m.errcode == "M_UNKNOWN_TOKEN" => Ok(LoggedOut::AlreadyDead),
        Ok(m) => Err(refused(format!(
            "the homeserver at {base} refused to log the token out ({}: {})",
            m.errcode, m.error
        ))),
        Err(_) => Err(broken(format!(
            "{base} answered HTTP {} to a logout, which is not a Matrix answer",
            status.as_u16()
        ))),
    }
}

/// Parses a homeserver URL the way the broker's config does (a trailing
/// slash so a path prefix is kept).
pub fn parse_base_url(text: &str) -> Result<Url, ClientError> {
    let bad = |why: &str| {
        ClientError::Invalid(format!(
            "{text:?} is not a homeserver URL ({why}); write e.g. https://matrix.example.com"
        ))
    };
    let mut url = Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad("it must start with https:// and name a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}
