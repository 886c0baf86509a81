//! The commands that print: `env`, `get`, `release`, `leases`, `status`.

use crate::api::BrokerClient;
use crate::cli::{EnvArgs, GetArgs};
use crate::error::ClientError;
use crate::shell;
use mxtoken_proto::{
    CheckRequest, LeaseInfo, RecoveryOutcome, RenewLease, Revocation, SweepRequest, Timestamp,
};
use std::time::SystemTime;

/// `mxtoken env`.
pub async fn env(client: &BrokerClient, args: EnvArgs) -> Result<String, ClientError> {
    let g = crate::lease::take(client, &args.lease, false, args.bind_pid, "env".into()).await?;
    let vars = [
        (g.token_env.as_str(), g.token.expose()),
        ("MATRIX_HOMESERVER_URL", g.lease.homeserver.as_str()),
        ("MATRIX_ADMIN_USER", g.lease.user_id.as_str()),
        ("MXTOKEN_LEASE_ID", g.lease.id.as_str()),
    ];
    Ok(shell::render(args.shell, &vars))
}

/// `mxtoken get`.
pub async fn get(client: &BrokerClient, args: GetArgs) -> Result<String, ClientError> {
    let g = crate::lease::take(client, &args.lease, false, args.bind_pid, "get".into()).await?;
    if args.json {
        let v = serde_json::json!({
            "token": g.token.expose(),
            "lease_id": g.lease.id,
            "expires_at": g.lease.expires_at,
            "homeserver": g.lease.homeserver,
            "user_id": g.lease.user_id,
        });
        Ok(format!("{v}\n"))
    } else {
        Ok(format!("{}\n", g.token.expose()))
    }
}

/// `mxtoken release`: reports on stderr, prints nothing.
pub async fn release(client: &BrokerClient, id: &str) -> Result<String, ClientError> {
    let r = client.release(id).await?;
    match r.revocation {
        Revocation::Revoked => eprintln!(
            "mxtoken: lease {} released; its token is revoked",
            r.lease_id
        ),
        Revocation::Pending => eprintln!(
            "mxtoken: lease {} released; the homeserver is unreachable, the broker keeps retrying the revocation",
            r.lease_id
        ),
    }
    Ok(String::new())
}

/// `mxtoken leases`.
pub async fn leases(client: &BrokerClient, json: bool) -> Result<String, ClientError> {
    let list = client.leases().await?;
    if json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&list).map_err(|e| ClientError::Other(e.to_string()))?
        ));
    }
    if list.leases.is_empty() {
        return Ok("no live leases\n".into());
    }
    let mut out = format!(
        "{:<22} {:<12} {:<10} {:<30} {:<24} {}\n",
        "LEASE", "PROFILE", "EXPIRES", "USER", "REQUESTED BY", "PURPOSE"
    );
    for l in &list.leases {
        out.push_str(&format!(
            "{:<22} {:<12} {:<10} {:<30} {:<24} {}\n",
            l.id,
            l.profile,
            time_left(l),
            l.user_id,
            requester(l),
            l.purpose.as_deref().unwrap_or("")
        ));
    }
    Ok(out)
}

/// `uid 1000 pid 42 /usr/bin/python3`: who asked for a lease.
fn requester(l: &LeaseInfo) -> String {
    let mut s = format!("uid {}", l.peer_uid);
    if let Some(pid) = l.peer_pid {
        s.push_str(&format!(" pid {pid}"));
    }
    if let Some(exe) = &l.peer_exe {
        s.push_str(&format!(" {exe}"));
    }
    s
}

fn time_left(l: &LeaseInfo) -> String {
    let now = Timestamp::from_system_time(SystemTime::now());
    let secs = l.expires_at.unix_ms().saturating_sub(now.unix_ms()) / 1000;
    format!(
        "in {}",
        humantime::format_duration(std::time::Duration::from_secs(secs))
    )
}

/// `mxtoken status`.
pub async fn status(client: &BrokerClient, json: bool, check: bool) -> Result<String, ClientError> {
    let s = client.status().await?;
    if !check {
        return if json {
            to_json(&s)
        } else {
            Ok(status_text(client, &s))
        };
    }
    let report = client.check(&CheckRequest::default()).await?;
    let out = if json {
        to_json(&serde_json::json!({ "status": s, "check": report }))?
    } else {
        let mut text = status_text(client, &s);
        text.push_str("checks:\n");
        for c in &report.profiles {
            match &c.error {
                None => text.push_str(&format!("  {}: ok: {}\n", c.profile, c.checked)),
                Some(e) => text.push_str(&format!("  {}: FAILED: {}\n", c.profile, e.message)),
            }
        }
        text
    };
    if let Some(e) = report.profiles.iter().find_map(|c| c.error.clone()) {
        // The report is the requested output; the exit code tells scripts.
        print!("{out}");
        return Err(ClientError::Api(e));
    }
    Ok(out)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, ClientError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| ClientError::Other(e.to_string()))?;
    Ok(format!("{text}\n"))
}

/// `mxtoken renew`: prints the replacement token when rotating, else nothing.
pub async fn renew(
    client: &BrokerClient,
    id: &str,
    ttl: Option<String>,
    rotate: bool,
) -> Result<String, ClientError> {
    let r = client.renew(id, &RenewLease { ttl, rotate }).await?;
    eprintln!(
        "mxtoken: lease {} now ends at {}",
        r.lease.id, r.lease.expires_at
    );
    Ok(r.token
        .map(|t| format!("{}\n", t.expose()))
        .unwrap_or_default())
}

fn status_text(client: &BrokerClient, s: &mxtoken_proto::Status) -> String {
    let secs = |n: u64| humantime::format_duration(std::time::Duration::from_secs(n)).to_string();
    let mut out = format!(
        "mxtokend {} (protocol {}, pid {}) on {}\nprofiles:\n",
        s.broker_version,
        s.protocol_version,
        s.pid,
        client.socket().display()
    );
    for p in &s.profiles {
        let default = if p.name == s.default_profile {
            " (default)"
        } else {
            ""
        };
        let locked = match (p.locked, p.needs_passphrase) {
            (true, true) => ", locked (mxtoken unlock asks for its passphrase)",
            (true, false) => ", locked (mxtoken unlock)",
            (false, _) => ", unlocked",
        };
        out.push_str(&format!(
            "  {}{default}: {} as {} via {} mint, ttl {} (max {}){locked}\n",
            p.name,
            p.homeserver,
            p.lease_user,
            p.mint,
            secs(p.default_ttl_secs),
            secs(p.max_ttl_secs),
        ));
    }
    out.push_str(&format!(
        "live leases: {}\npending revocations: {}\n",
        s.live_leases, s.pending_revocations
    ));
    let now = Timestamp::from_system_time(SystemTime::now()).unix_ms();
    for p in &s.pending {
        let overdue = if p.overdue {
            " [OVERDUE: failing for longer than max_ttl]"
        } else {
            ""
        };
        out.push_str(&format!(
            "  lease {} ({}): failing for {}, {} attempt(s), last error: {}{overdue}\n",
            p.lease_id,
            p.profile,
            secs(now.saturating_sub(p.since.unix_ms()) / 1000),
            p.attempts,
            p.last_error,
        ));
    }
    if !s.recovery.is_empty() {
        let count = |o: RecoveryOutcome| s.recovery.iter().filter(|r| r.outcome == o).count();
        out.push_str(&format!(
            "recovered from the last run: {} revoked, {} already expired, {} pending, {} orphaned\n",
            count(RecoveryOutcome::Revoked),
            count(RecoveryOutcome::Expired),
            count(RecoveryOutcome::Pending),
            count(RecoveryOutcome::Orphaned)
        ));
        for r in s
            .recovery
            .iter()
            .filter(|r| r.outcome == RecoveryOutcome::Orphaned)
        {
            out.push_str(&format!(
                "  orphaned: lease {} ({}) may stay valid until {}; set dedicated_minter = true to let the broker revoke such tokens\n",
                r.lease_id, r.profile, r.expires_at
            ));
        }
    }
    out
}

/// `mxtoken sweep`: prints the deleted (or, with `--dry-run`, stale) device ids.
pub async fn sweep(
    client: &BrokerClient,
    profile: Option<String>,
    dry_run: bool,
) -> Result<String, ClientError> {
    let r = client.sweep(&SweepRequest { profile, dry_run }).await?;
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    eprintln!(
        "mxtoken: {verb} {} stale broker device(s) of {} (profile {})",
        r.stale_devices.len(),
        r.user_id,
        r.profile
    );
    Ok(r.stale_devices.iter().map(|d| format!("{d}\n")).collect())
}
