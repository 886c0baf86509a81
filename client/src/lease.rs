//! Taking a lease, waiting out a login rate limit if asked to.

use crate::api::BrokerClient;
use crate::cli::LeaseArgs;
use crate::error::{ClientError, format_wait};
use mxtoken_proto::{CreateLease, LeaseGranted};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// When the homeserver names no retry time, wait this long between tries.
const UNKNOWN_RETRY: Duration = Duration::from_secs(5);

/// Asks the broker for a lease; with `--wait`, retries after rate limits.
pub async fn take(
    client: &BrokerClient,
    args: &LeaseArgs,
    bind_to_client: bool,
    bind_pid: Option<u32>,
    default_purpose: String,
) -> Result<LeaseGranted, ClientError> {
    let req = CreateLease {
        profile: args.profile.clone(),
        ttl: args.ttl.clone(),
        purpose: Some(args.purpose.clone().unwrap_or(default_purpose)),
        bind_to_client,
        bind_pid,
    };
    loop {
        match client.create_lease(&req).await {
            Err(e) if args.wait && e.retry_after().is_some() => {
                let wait = e
                    .retry_after()
                    .filter(|d| !d.is_zero())
                    .unwrap_or(UNKNOWN_RETRY);
                countdown(wait).await;
            }
            other => return other,
        }
    }
}

/// Waits `total`, showing a countdown on a terminal and one line otherwise.
async fn countdown(total: Duration) {
    let mut err = std::io::stderr();
    if !err.is_terminal() {
        let _ = writeln!(
            err,
            "mxtoken: the homeserver is rate-limiting logins; waiting {} before retrying",
            format_wait(total)
        );
        tokio::time::sleep(total).await;
        return;
    }
    let end = Instant::now() + total;
    while let Some(left) = end
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        let _ = write!(
            err,
            "\r\x1b[Kmxtoken: rate-limited by the homeserver; retrying in {}",
            format_wait(left)
        );
        let _ = err.flush();
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
    let _ = write!(err, "\r\x1b[K");
}
