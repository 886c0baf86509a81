//! Asking the homeserver directly (not through the broker) what it thinks of
//! a token: the ground truth every test checks against.

use serde_json::Value;
use std::time::Duration;

/// A plain HTTP client for one homeserver.
#[derive(Debug, Clone)]
pub struct Matrix {
    base: String,
    http: reqwest::blocking::Client,
}

/// A homeserver answer: status and JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body (Null if none).
    pub body: Value,
}

impl Answer {
    /// The Matrix errcode, if any.
    pub fn errcode(&self) -> Option<&str> {
        self.body.get("errcode").and_then(Value::as_str)
    }
}

impl Matrix {
    /// A client for the homeserver at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Self {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Answer {
        let resp = req.send().expect("homeserver request");
        let status = resp.status().as_u16();
        let body = resp.json().unwrap_or(Value::Null);
        Answer { status, body }
    }

    /// `GET` with a token.
    pub fn get(&self, token: &str, path: &str) -> Answer {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
    }

    /// `POST` a JSON body with a token.
    pub fn post(&self, token: &str, path: &str, body: &Value) -> Answer {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .json(body),
        )
    }

    /// `whoami` with `token`.
    pub fn whoami(&self, token: &str) -> Answer {
        self.get(token, "/_matrix/client/v3/account/whoami")
    }

    /// True while the homeserver accepts `token`.
    pub fn alive(&self, token: &str) -> bool {
        let a = self.whoami(token);
        match (a.status, a.errcode()) {
            (200, _) => true,
            (401, Some("M_UNKNOWN_TOKEN")) => false,
            other => panic!("unexpected whoami answer {other:?}: {}", a.body),
        }
    }

    /// Panics unless the homeserver refuses `token` as unknown.
    pub fn assert_dead(&self, token: &str) {
        let a = self.whoami(token);
        assert_eq!(
            (a.status, a.errcode()),
            (401, Some("M_UNKNOWN_TOKEN")),
            "token still accepted: {}",
            a.body
        );
    }

    /// A password login (creates a device): `(token, device_id)`.
    pub fn login(&self, user: &str, password: &str) -> (String, String) {
        self.login_as_device(user, password, None)
    }

    /// A password login with a chosen device id and display name.
    pub fn login_named(
        &self,
        user: &str,
        password: &str,
        device_id: &str,
        display_name: &str,
    ) -> (String, String) {
        let body = serde_json::json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
            "device_id": device_id,
            "initial_device_display_name": display_name,
        });
        let a = self.send(
            self.http
                .post(format!("{}/_matrix/client/v3/login", self.base))
                .json(&body),
        );
        assert_eq!(a.status, 200, "login failed: {}", a.body);
        let s = |k: &str| a.body[k].as_str().expect("login field").to_owned();
        (s("access_token"), s("device_id"))
    }

    /// A password login with a chosen device id.
    pub fn login_as_device(
        &self,
        user: &str,
        password: &str,
        device_id: Option<&str>,
    ) -> (String, String) {
        let mut body = serde_json::json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
        });
        if let Some(d) = device_id {
            body["device_id"] = serde_json::Value::from(d);
        }
        let a = self.send(
            self.http
                .post(format!("{}/_matrix/client/v3/login", self.base))
                .json(&body),
        );
        assert_eq!(a.status, 200, "login failed: {}", a.body);
        let s = |k: &str| a.body[k].as_str().expect("login field").to_owned();
        (s("access_token"), s("device_id"))
    }

    /// The device ids of `user`, via the admin API with `admin_token`.
    pub fn device_ids(&self, admin_token: &str, user: &str) -> Vec<String> {
        let a = self.get(
            admin_token,
            &format!("/_synapse/admin/v2/users/{}/devices", encode(user)),
        );
        assert_eq!(a.status, 200, "device list failed: {}", a.body);
        let mut ids: Vec<String> = a.body["devices"]
            .as_array()
            .expect("devices array")
            .iter()
            .filter_map(|d| d["device_id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }
}

/// Percent-encodes a user id for a URL path.
pub fn encode(s: &str) -> String {
    s.replace('@', "%40").replace(':', "%3A")
}
