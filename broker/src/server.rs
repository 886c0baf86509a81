//! The HTTP/1.1 + JSON API on the Unix socket.
//!
//! `run` takes the listener and a shutdown future so tests and socket
//! activation can hand in their own. `POST /v1/shutdown` (`mxtoken stop`)
//! ends every lease and then stops the server as the shutdown future would.

use crate::broker::{Broker, Peer};
use crate::config::AccessPolicy;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use mxtoken_proto::{
    API_PREFIX, ApiError, CheckRequest, ConfirmDecision, CreateLease, ErrorCode, LeaseList, Lock,
    MAX_BODY_BYTES, PROTOCOL_VERSION, RenewLease, Stopped, SweepRequest, Unlock, VERSION_HEADER,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::{Notify, Semaphore};

/// Limits on the socket server, and who may use it.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections served at once; more wait in the accept queue.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and then again its body;
    /// a slower client (slowloris) is dropped.
    pub client_timeout: Duration,
    /// Uids and groups served besides the broker's own uid.
    pub access: AccessPolicy,
    /// After shutdown, how long requests in flight get to finish (so a
    /// lease being minted is answered, and `mxtoken stop` gets its answer).
    pub drain_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        let limits = crate::config::Limits::default();
        Self {
            max_connections: limits.max_connections,
            client_timeout: limits.client_timeout,
            access: AccessPolicy::default(),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

type Body = BoxBody<Bytes, std::convert::Infallible>;

/// Reads the peer's credentials, and its executable for the audit log.
fn peer_of(stream: &tokio::net::UnixStream) -> std::io::Result<(Peer, u32)> {
    let c = stream.peer_cred()?;
    let pid = c.pid().and_then(|p| u32::try_from(p).ok());
    let peer = Peer {
        uid: c.uid(),
        pid,
        exe: pid.and_then(crate::platform::process_exe),
    };
    Ok((peer, c.gid()))
}

fn allowed(access: &AccessPolicy, own_uid: u32, peer: &Peer, gid: u32) -> bool {
    if access.allows(own_uid, peer.uid, &[gid]) {
        return true;
    }
    // Supplementary groups only matter when groups are allowed at all.
    !access.allow_gids.is_empty()
        && peer.pid.is_some_and(|pid| {
            access.allows(own_uid, peer.uid, &crate::platform::process_groups(pid))
        })
}

/// Serves the API until `shutdown` resolves or a client asks for a shutdown;
/// then stops accepting and gives requests in flight up to
/// `limits.drain_timeout` to finish.
pub async fn run(
    listener: UnixListener,
    broker: Broker,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let own_uid = crate::platform::current_uid();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let stop = Arc::new(Notify::new());
    // Connections open now; when it falls to 0 the trimmer is told.
    let open = Arc::new(AtomicUsize::new(0));
    let quiet = Arc::new(Notify::new());
    let trimmer = tokio::spawn(trim_when_quiet(quiet.clone(), open.clone()));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            () = stop.notified() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            () = stop.notified() => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let (peer, gid) = match peer_of(&stream) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read peer credentials; dropping connection");
                continue;
            }
        };
        let allowed = allowed(&limits.access, own_uid, &peer, gid);
        if !allowed {
            tracing::warn!(peer_uid = peer.uid, peer_pid = ?peer.pid, peer_exe = ?peer.exe, "refused a connection from a user this broker does not serve");
            broker.audit_refused(&peer, None, None, &not_allowed());
        }
        let broker = broker.clone();
        let stop = stop.clone();
        let (quiet, open) = (quiet.clone(), open.clone());
        let client_timeout = limits.client_timeout;
        open.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (broker, peer) = (broker.clone(), peer.clone());
                let stop = stop.clone();
                async move {
                    let resp = if allowed {
                        route(&broker, &stop, peer, req, client_timeout).await
                    } else {
                        error_response(StatusCode::FORBIDDEN, &not_allowed())
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(client_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
            if open.fetch_sub(1, Ordering::SeqCst) == 1 {
                quiet.notify_one();
            }
        });
    }
    trimmer.abort();
    // Every connection task holds a permit until it ends: getting them all
    // back means nothing is in flight any more.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain_timeout, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight at shutdown; not waiting for them");
    }
}

/// How long the socket must stay without connections before the broker
/// gives freed heap back to the OS.
const QUIET_BEFORE_TRIM: Duration = Duration::from_secs(1);

/// After each stretch of activity, once no connection has been open for
/// `QUIET_BEFORE_TRIM`, returns the heap that the stretch freed to the OS.
/// Sleeps on a `Notify` in between: an idle broker never wakes for it.
async fn trim_when_quiet(quiet: Arc<Notify>, open: Arc<AtomicUsize>) {
    loop {
        quiet.notified().await;
        tokio::time::sleep(QUIET_BEFORE_TRIM).await;
        if open.load(Ordering::SeqCst) == 0 {
            crate::platform::release_free_heap();
        }
    }
}

fn not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        "this broker does not serve your uid; its owner can add it to allow_uids (or your group to allow_groups) in the broker's config",
    )
}

async fn route(
    broker: &Broker,
    stop: &Notify,
    peer: Peer,
    req: Request<Incoming>,
    body_timeout: Duration,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path
        .strip_prefix(API_PREFIX)
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        let msg = if path.starts_with("/v") {
            format!(
                "this broker speaks protocol {PROTOCOL_VERSION} ({API_PREFIX}/...), not {path}; upgrade the older of mxtoken and mxtokend"
            )
        } else {
            format!("no route {path}; the API lives under {API_PREFIX}/")
        };
        return error_response(
            StatusCode::BAD_REQUEST,
            &ApiError::new(ErrorCode::UnknownRoute, msg),
        );
    };
    let method = req.method().clone();
    match (method, rest) {
        (Method::GET, "/status") => json_response(StatusCode::OK, &broker.status()),
        (Method::GET, "/leases") => json_response(
            StatusCode::OK,
            &LeaseList {
                leases: broker.list(),
            },
        ),
        (Method::POST, "/leases") => {
            let body: CreateLease = match read_json(req, body_timeout).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            // Run on its own task: a client that hangs up mid-mint must not
            // cancel us between minting and recording the lease.
            let broker = broker.clone();
            match tokio::spawn(async move { broker.create_lease(peer, body).await }).await {
                Ok(Ok(granted)) => json_response(StatusCode::CREATED, &granted),
                Ok(Err(e)) => api_error(&e),
                Err(_) => error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &ApiError::new(
                        ErrorCode::Internal,
                        "the broker failed while minting; see its log",
                    ),
                ),
            }
        }
        (Method::POST, "/check") => {
            let body: CheckRequest = match read_json(req, body_timeout).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let broker = broker.clone();
            match tokio::spawn(async move { broker.check(body.profile.as_deref()).await }).await {
                Ok(Ok(report)) => json_response(StatusCode::OK, &report),
                Ok(Err(e)) => api_error(&e),
                Err(_) => internal("the broker failed while checking; see its log"),
            }
        }
        (Method::POST, r) if r.starts_with("/leases/") && r.ends_with("/renew") => {
            let id = r
                .trim_start_matches("/leases/")
                .trim_end_matches("/renew")
                .to_owned();
            let body: RenewLease = match read_json(req, body_timeout).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let broker = broker.clone();
            match tokio::spawn(async move { broker.renew(peer, &id, body).await }).await {
                Ok(Ok(renewed)) => json_response(StatusCode::OK, &renewed),
                Ok(Err(e)) => api_error(&e),
                Err(_) => internal("the broker failed while renewing; see its log"),
            }
        }
        (Method::POST, "/sweep") => {
            let body: SweepRequest = match read_json(req, body_timeout).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let broker = broker.clone();
            match tokio::spawn(
                async move { broker.sweep(body.profile.as_deref(), body.dry_run).await },
            )
            .await
            {
                Ok(Ok(report)) => json_response(StatusCode::OK, &report),
                Ok(Err(e)) => api_error(&e),
                Err(_) => internal("the broker failed while sweeping; see its log"),
            }
        }
        (Method::POST, "/shutdown") => {
            tracing::info!(peer_pid = ?peer.pid, "shutdown requested over the socket");
            // Stop accepting first, so no lease can start while we end them.
            stop.notify_one();
            let broker = broker.clone();
            let ending = tokio::spawn(async move {
                let leases_ended = broker.list().len();
                (leases_ended, broker.shutdown().await)
            });
            match ending.await {
                Ok((leases_ended, pending_revocations)) => json_response(
                    StatusCode::OK,
                    &Stopped {
                        pid: std::process::id(),
                        leases_ended,
                        pending_revocations,
                    },
                ),
                Err(_) => internal("the broker failed while shutting down; see its log"),
            }
        }
        (Method::DELETE, r) if r.starts_with("/leases/") => {
            let id = r.trim_start_matches("/leases/").to_owned();
            let broker = broker.clone();
            match tokio::spawn(async move { broker.release(&peer, &id).await }).await {
                Ok(Ok(released)) => json_response(StatusCode::OK, &released),
                Ok(Err(e)) => api_error(&e),
                Err(_) => error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &ApiError::new(
                        ErrorCode::Internal,
                        "the broker failed while revoking; see its log",
                    ),
                ),
            }
        }
        (Method::POST, "/lock") => {
            let body: Lock = match read_json(req, body_timeout).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            match broker.lock(body.profile.as_deref()).await {
                Ok(state) => json_response(StatusCode::OK, &state),
                Err(e) => api_error(&e),
            }
        }
        (Method::POST, r) if unlock_target(r).is_some() => {
            let name = unlock_target(r).unwrap_or_default().to_owned();
            let body: Unlock = match read_json(req, body_timeout).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let passphrase = body.passphrase.map(mxtoken_proto::Passphrase::into_secret);
            match broker.unlock(&name, passphrase).await {
                Ok(state) => json_response(StatusCode::OK, &state),
                Err(e) => api_error(&e),
            }
        }
        (Method::GET, "/confirm") if peer.uid == crate::platform::current_uid() => {
            let rx = broker.confirmer().subscribe();
            let mut resp = Response::new(ChannelBody(rx).boxed());
            set_headers(&mut resp, "application/x-ndjson");
            resp
        }
        (Method::POST, r) if r.starts_with("/confirm/") => {
            if peer.uid != crate::platform::current_uid() {
                return error_response(
                    StatusCode::FORBIDDEN,
                    &ApiError::new(
                        ErrorCode::Forbidden,
                        "only the broker's owner may confirm leases",
                    ),
                );
            }
            let id = r.trim_start_matches("/confirm/").to_owned();
            let body: ConfirmDecision = match read_json(req, body_timeout).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            match broker.confirmer().decide(&id, body.approve) {
                Ok(()) => json_response(StatusCode::OK, &body),
                Err(e) => api_error(&e),
            }
        }
        (Method::GET, "/confirm") => error_response(
            StatusCode::FORBIDDEN,
            &ApiError::new(
                ErrorCode::Forbidden,
                "only the broker's owner may confirm leases",
            ),
        ),
        (m, r) => error_response(
            StatusCode::NOT_FOUND,
            &ApiError::new(
                ErrorCode::UnknownRoute,
                format!("no route {m} {API_PREFIX}{r}"),
            ),
        ),
    }
}

/// The profile of `/profiles/{name}/unlock`.
fn unlock_target(rest: &str) -> Option<&str> {
    rest.strip_prefix("/profiles/")
        .and_then(|r| r.strip_suffix("/unlock"))
        .filter(|name| !name.is_empty() && !name.contains('/'))
}

/// The body of a streamed answer (`GET /v1/confirm`): whatever the sender
/// side writes, until it is dropped.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    timeout: Duration,
) -> Result<T, Response<Body>> {
    let collected = tokio::time::timeout(
        timeout,
        Limited::new(req.into_body(), MAX_BODY_BYTES).collect(),
    )
    .await
    .map_err(|_| {
        error_response(
            StatusCode::REQUEST_TIMEOUT,
            &ApiError::new(
                ErrorCode::BadRequest,
                format!(
                    "the request body did not arrive within {}",
                    humantime::format_duration(timeout)
                ),
            ),
        )
    })?;
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body is over {MAX_BODY_BYTES} bytes"),
                ),
            ));
        }
        Err(_) => {
            return Err(error_response(
                StatusCode::BAD_REQUEST,
                &ApiError::new(ErrorCode::BadRequest, "could not read the request body"),
            ));
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        error_response(
            StatusCode::BAD_REQUEST,
            &ApiError::new(ErrorCode::BadRequest, format!("invalid request body: {e}")),
        )
    })
}

fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest
        | ErrorCode::TtlTooLong
        | ErrorCode::BadBindPid
        | ErrorCode::UnknownRoute => StatusCode::BAD_REQUEST,
        ErrorCode::UnknownProfile | ErrorCode::UnknownLease => StatusCode::NOT_FOUND,
        ErrorCode::Forbidden | ErrorCode::WrongPassphrase => StatusCode::FORBIDDEN,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited | ErrorCode::LimitReached => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Locked => StatusCode::LOCKED,
        ErrorCode::WrongPassword | ErrorCode::HomeserverRefused | ErrorCode::HomeserverError => {
            StatusCode::BAD_GATEWAY
        }
        ErrorCode::HomeserverUnreachable => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Internal | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn internal(message: &str) -> Response<Body> {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &ApiError::new(ErrorCode::Internal, message),
    )
}

fn api_error(e: &ApiError) -> Response<Body> {
    error_response(status_for(e.code), e)
}

fn error_response(status: StatusCode, e: &ApiError) -> Response<Body> {
    json_response(status, e)
}

fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| {
        br#"{"code":"internal","message":"could not encode the response"}"#.to_vec()
    });
    let mut resp = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *resp.status_mut() = status;
    set_headers(&mut resp, "application/json");
    resp
}

fn set_headers(resp: &mut Response<Body>, content_type: &'static str) {
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        VERSION_HEADER,
        hyper::header::HeaderValue::from(PROTOCOL_VERSION),
    );
}

#[cfg(test)]
mod tests {
    use super::unlock_target;

    #[test]
    fn unlock_routes_name_one_profile() {
        assert_eq!(unlock_target("/profiles/admin/unlock"), Some("admin"));
        assert_eq!(unlock_target("/profiles/unlock"), None);
        assert_eq!(unlock_target("/profiles//unlock"), None);
        assert_eq!(unlock_target("/profiles/a/b/unlock"), None);
    }
}
