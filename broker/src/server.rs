//! The HTTP/1.1 + JSON API on the Unix socket.
//!
//! `run` takes the listener and a shutdown future so tests and socket
//! activation can hand in their own. `POST /v1/shutdown` (`mxtoken stop`)
//! ends every lease and then stops the server as the shutdown future would.

use crate::broker::{Broker, Peer};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use mxtoken_proto::{
    API_PREFIX, ApiError, CheckRequest, CreateLease, ErrorCode, LeaseList, Lock, MAX_BODY_BYTES,
    PROTOCOL_VERSION, RenewLease, Stopped, SweepRequest, Unlock, VERSION_HEADER,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::{Notify, Semaphore};

/// Limits on the socket server.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections served at once; more wait in the accept queue.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// After shutdown, how long requests in flight get to finish (so a
    /// lease being minted is answered, and `mxtoken stop` gets its answer).
    pub drain_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
        }
    }
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
        let peer = match stream.peer_cred() {
            Ok(c) => Peer {
                uid: c.uid(),
                pid: c.pid().and_then(|p| u32::try_from(p).ok()),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read peer credentials; dropping connection");
                continue;
            }
        };
        let allowed = peer.uid == own_uid;
        if !allowed {
            tracing::warn!(peer_uid = peer.uid, peer_pid = ?peer.pid, "refused a connection from another user");
        }
        let broker = broker.clone();
        let stop = stop.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let broker = broker.clone();
                let stop = stop.clone();
                async move {
                    let resp = if allowed {
                        route(&broker, &stop, peer, req).await
                    } else {
                        error_response(
                            StatusCode::FORBIDDEN,
                            &ApiError::new(
                                ErrorCode::Forbidden,
                                "this broker serves only its owner's uid",
                            ),
                        )
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
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

async fn route(
    broker: &Broker,
    stop: &Notify,
    peer: Peer,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
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
            let body: CreateLease = match read_json(req).await {
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
            let body: CheckRequest = match read_json(req).await {
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
            let body: RenewLease = match read_json(req).await {
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
            let body: SweepRequest = match read_json(req).await {
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
            match tokio::spawn(async move { broker.release(peer, &id).await }).await {
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
            let body: Lock = match read_json(req).await {
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
            let body: Unlock = match read_json(req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let passphrase = body.passphrase.map(mxtoken_proto::Passphrase::into_secret);
            match broker.unlock(&name, passphrase).await {
                Ok(state) => json_response(StatusCode::OK, &state),
                Err(e) => api_error(&e),
            }
        }
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

async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, Response<Full<Bytes>>> {
    let bytes = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
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

fn internal(message: &str) -> Response<Full<Bytes>> {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &ApiError::new(ErrorCode::Internal, message),
    )
}

fn api_error(e: &ApiError) -> Response<Full<Bytes>> {
    error_response(status_for(e.code), e)
}

fn error_response(status: StatusCode, e: &ApiError) -> Response<Full<Bytes>> {
    json_response(status, e)
}

fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| {
        br#"{"code":"internal","message":"could not encode the response"}"#.to_vec()
    });
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        VERSION_HEADER,
        hyper::header::HeaderValue::from(PROTOCOL_VERSION),
    );
    resp
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
