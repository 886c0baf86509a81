//! Talking to the broker: one HTTP/1.1 request per connection on its socket.

use crate::error::ClientError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use mxtoken_proto::{
    API_PREFIX, ApiError, CheckReport, CheckRequest, ConfirmDecision, ConfirmRequest, CreateLease,
    LeaseGranted, LeaseList, Lock, LockState, PROTOCOL_VERSION, Released, RenewLease, Renewed,
    Status, Stopped, SweepReport, SweepRequest, Unlock, VERSION_HEADER,
};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A handle on the broker at one socket path.
#[derive(Debug, Clone)]
pub struct BrokerClient {
    socket: PathBuf,
}

impl BrokerClient {
    /// A client for the broker listening on `socket`.
    pub fn new(socket: PathBuf) -> Self {
        Self { socket }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `POST /v1/leases`.
    pub async fn create_lease(&self, req: &CreateLease) -> Result<LeaseGranted, ClientError> {
        self.call(
            Method::POST,
            "/leases",
            Some(serde_json::to_vec(req).map_err(|e| ClientError::Other(e.to_string()))?),
        )
        .await
    }

    /// `DELETE /v1/leases/{id}`.
    pub async fn release(&self, id: &str) -> Result<Released, ClientError> {
        check_lease_id(id)?;
        self.call(Method::DELETE, &format!("/leases/{id}"), None)
            .await
    }

    /// `GET /v1/leases`.
    pub async fn leases(&self) -> Result<LeaseList, ClientError> {
        self.call(Method::GET, "/leases", None).await
    }

    /// `POST /v1/leases/{id}/renew`.
    pub async fn renew(&self, id: &str, req: &RenewLease) -> Result<Renewed, ClientError> {
        check_lease_id(id)?;
        let body = serde_json::to_vec(req).map_err(|e| ClientError::Other(e.to_string()))?;
        self.call(Method::POST, &format!("/leases/{id}/renew"), Some(body))
            .await
    }

    /// `POST /v1/check`.
    pub async fn check(&self, req: &CheckRequest) -> Result<CheckReport, ClientError> {
        let body = serde_json::to_vec(req).map_err(|e| ClientError::Other(e.to_string()))?;
        self.call(Method::POST, "/check", Some(body)).await
    }

    /// `POST /v1/sweep`.
    pub async fn sweep(&self, req: &SweepRequest) -> Result<SweepReport, ClientError> {
        let body = serde_json::to_vec(req).map_err(|e| ClientError::Other(e.to_string()))?;
        self.call(Method::POST, "/sweep", Some(body)).await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.call(Method::GET, "/status", None).await
    }

    /// `POST /v1/lock`.
    pub async fn lock(&self, req: &Lock) -> Result<LockState, ClientError> {
        let body = serde_json::to_vec(req).map_err(|e| ClientError::Other(e.to_string()))?;
        self.call(Method::POST, "/lock", Some(body)).await
    }

    /// `POST /v1/profiles/{name}/unlock`.
    pub async fn unlock(&self, profile: &str, req: &Unlock) -> Result<LockState, ClientError> {
        if !profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ClientError::Invalid(format!(
                "{profile:?} is not a profile name; `mxtoken status` lists them"
            )));
        }
        let body = serde_json::to_vec(req).map_err(|e| ClientError::Other(e.to_string()))?;
        self.call(
            Method::POST,
            &format!("/profiles/{profile}/unlock"),
            Some(body),
        )
        .await
    }

    /// `GET /v1/confirm`: the stream of leases waiting for approval.
    pub async fn confirm_stream(&self) -> Result<ConfirmStream, ClientError> {
        let resp = self.send(Method::GET, "/confirm", None).await?;
        if !resp.status().is_success() {
            return Err(self.error_of(resp).await);
        }
        Ok(ConfirmStream {
            body: resp.into_body(),
            buf: Vec::new(),
            socket: self.socket.clone(),
        })
    }

    /// `POST /v1/confirm/{id}`.
    pub async fn decide(&self, id: &str, approve: bool) -> Result<ConfirmDecision, ClientError> {
        let body = serde_json::to_vec(&ConfirmDecision { approve })
            .map_err(|e| ClientError::Other(e.to_string()))?;
        self.call(Method::POST, &format!("/confirm/{id}"), Some(body))
            .await
    }

    /// `POST /v1/shutdown`: ends every lease, then the broker exits.
    pub async fn shutdown(&self) -> Result<Stopped, ClientError> {
        self.call(Method::POST, "/shutdown", None).await
    }

    /// The pid of the process listening on the socket (from its peer
    /// credentials), if it runs as our uid. Works whatever protocol it speaks.
    pub async fn listener_pid(&self) -> Result<Option<u32>, ClientError> {
        let stream = self.connect().await?;
        let cred = stream.peer_cred().map_err(|e| ClientError::SocketAccess {
            socket: self.socket.clone(),
            source: e,
        })?;
        let mine = rustix::process::getuid().as_raw();
        Ok(cred
            .pid()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|_| cred.uid() == mine))
    }

    fn broken(&self, what: &str) -> ClientError {
        ClientError::Protocol(format!("the broker at {} {what}", self.socket.display()))
    }

    async fn error_of(&self, resp: hyper::Response<hyper::body::Incoming>) -> ClientError {
        let status = resp.status();
        let Ok(bytes) = resp.into_body().collect().await.map(|c| c.to_bytes()) else {
            return self.broken("broke off its answer");
        };
        match serde_json::from_slice::<ApiError>(&bytes) {
            Ok(err) => ClientError::Api(err),
            Err(_) => self.broken(&format!("answered {status} without an error body")),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        route: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let resp = self.send(method, route, body).await?;
        if !resp.status().is_success() {
            return Err(self.error_of(resp).await);
        }
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|_| self.broken("broke off its answer"))?
            .to_bytes();
        serde_json::from_slice(&bytes)
            .map_err(|e| self.broken(&format!("sent an answer this mxtoken cannot read ({e})")))
    }

    async fn connect(&self) -> Result<tokio::net::UnixStream, ClientError> {
        tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    ClientError::NoBroker {
                        socket: self.socket.clone(),
                    }
                }
                _ => ClientError::SocketAccess {
                    socket: self.socket.clone(),
                    source: e,
                },
            })
    }

    /// Sends one request and checks the answer's protocol version.
    async fn send(
        &self,
        method: Method,
        route: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| self.broken("hung up during the handshake"))?;
        tokio::spawn(conn);
        let request = Request::builder()
            .method(method)
            .uri(format!("{API_PREFIX}{route}"))
            .header(hyper::header::HOST, "mxtokend")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Other(e.to_string()))?;
        let resp = sender
            .send_request(request)
            .await
            .map_err(|_| self.broken("closed the connection without an answer"))?;
        let version = resp
            .headers()
            .get(VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok());
        match version {
            Some(PROTOCOL_VERSION) => Ok(resp),
            Some(other) => Err(ClientError::OtherVersion {
                socket: self.socket.clone(),
                broker: other,
            }),
            None => Err(self.broken("is not an mxtokend (no protocol header in its answer)")),
        }
    }
}

/// The open `GET /v1/confirm` answer: one [`ConfirmRequest`] per JSON line.
#[derive(Debug)]
pub struct ConfirmStream {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
    socket: PathBuf,
}

impl ConfirmStream {
    /// The next request waiting for approval; `None` when the broker hangs up.
    pub async fn next(&mut self) -> Result<Option<ConfirmRequest>, ClientError> {
        loop {
            while let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue; // heartbeat
                }
                return serde_json::from_slice(line).map(Some).map_err(|e| {
                    ClientError::Protocol(format!(
                        "the broker at {} sent a confirmation request this mxtoken cannot read ({e})",
                        self.socket.display()
                    ))
                });
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(_)) => return Ok(None),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// Refuses what cannot be a lease id before it reaches a URL path.
fn check_lease_id(id: &str) -> Result<(), ClientError> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ClientError::Api(ApiError::new(
            mxtoken_proto::ErrorCode::UnknownLease,
            format!("{id:?} is not a lease id; `mxtoken leases` lists them"),
        )));
    }
    Ok(())
}
