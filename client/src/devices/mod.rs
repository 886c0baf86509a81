//! `mxtoken devices`: audit and prune a user's devices through the Synapse
//! admin API, with a lease of its own (a superset of Ansible's
//! `synapse_device_info`).
//!
//! Like a command run by `exec`, this talks to the homeserver itself with a
//! leased token; the broker stays the only holder of the password.

mod admin;
mod device;
pub mod filter;
mod progress;
mod report;

use crate::api::BrokerClient;
use crate::cli::LeaseArgs;
use crate::error::ClientError;
use clap::Args;
use filter::{BrokerDevices, Filter, Selection};
use mxtoken_proto::{LeaseGranted, Timestamp};
use report::Action;
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

/// Device ids per `delete_devices` call: large enough that 10,000 devices
/// take a handful of calls, small enough that one call stays well inside
/// the request timeout and progress moves.
pub const BATCH: usize = 1000;

/// `mxtoken devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// The user whose devices to audit, e.g. @bot:example.com (a local user).
    #[arg(long, value_name = "USER_ID", value_parser = parse_user_id)]
    pub user: String,
    /// Only devices whose last user agent contains TEXT (any case).
    #[arg(long, value_name = "TEXT")]
    pub user_agent: Option<String>,
    /// Only devices whose display name contains TEXT (any case).
    #[arg(long, value_name = "TEXT")]
    pub display_name: Option<String>,
    /// Only devices last seen at least this long ago, e.g. 30d (never-seen devices excluded).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub older_than: Option<Duration>,
    /// Ansible synapse_device_info's older_than_days: 0 = only never-seen devices, N = last seen at least N days ago.
    #[arg(long, value_name = "N")]
    pub older_than_days: Option<u32>,
    /// Only devices never seen (no authenticated request yet).
    #[arg(long)]
    pub never_used: bool,
    /// Leave out devices created by mxtokend (ids starting with MXTOKEN_).
    #[arg(long, conflicts_with = "only_broker")]
    pub exclude_broker: bool,
    /// Only devices created by mxtokend (ids starting with MXTOKEN_).
    #[arg(long)]
    pub only_broker: bool,
    /// Delete the matching devices (and so their access tokens).
    #[arg(long)]
    pub revoke: bool,
    /// With --revoke: show what would be deleted, delete nothing.
    #[arg(long, requires = "revoke")]
    pub dry_run: bool,
    /// Print {devices, matched_devices, total_devices, matched_count, revoked_devices, changed}.
    #[arg(long)]
    pub json: bool,
}

fn parse_user_id(s: &str) -> Result<String, String> {
    match s.strip_prefix('@').and_then(|r| r.split_once(':')) {
        Some((local, server)) if !local.is_empty() && !server.is_empty() => Ok(s.to_owned()),
        _ => Err(format!(
            "{s:?} is not a Matrix user id; write it as @name:server"
        )),
    }
}

impl DevicesArgs {
    fn filter(&self) -> Filter {
        Filter {
            user_agent: self.user_agent.clone(),
            display_name: self.display_name.clone(),
            older_than: self.older_than,
            older_than_days: self.older_than_days,
            never_used: self.never_used,
            broker: if self.exclude_broker {
                BrokerDevices::Exclude
            } else if self.only_broker {
                BrokerDevices::Only
            } else {
                BrokerDevices::Any
            },
        }
    }
}

/// Runs `mxtoken devices`; returns what to print on stdout.
pub async fn run(client: &BrokerClient, args: DevicesArgs) -> Result<String, ClientError> {
    // Bound to this process: if mxtoken is killed mid-run, the broker ends
    // the lease and revokes the token anyway.
    let granted = crate::lease::take(client, &args.lease, true, None, "devices".into()).await?;
    let result = audit(client, &args, &granted).await;
    if let Err(e) = client.release(&granted.lease.id).await {
        eprintln!(
            "mxtoken: could not release lease {} ({e}); the broker ends it at its TTL",
            granted.lease.id
        );
    }
    result
}

async fn audit(
    client: &BrokerClient,
    args: &DevicesArgs,
    granted: &LeaseGranted,
) -> Result<String, ClientError> {
    let lease = &granted.lease;
    let api = admin::AdminApi::new(&lease.homeserver, granted.token.clone())?;
    let devices = api.list_devices(&args.user).await?;
    // Asked after the listing: a lease whose device is in the listing existed
    // before the listing ended, so it is in this answer unless it has ended.
    let live: HashSet<String> = client
        .leases()
        .await?
        .leases
        .into_iter()
        .filter(|l| l.user_id == args.user)
        .filter_map(|l| l.device_id)
        .collect();
    let own = lease
        .device_id
        .as_deref()
        .filter(|_| lease.user_id == args.user);
    let now = Timestamp::from_system_time(SystemTime::now()).unix_ms();
    let sel = Selection::new(devices, &args.filter(), now, own, &live);
    let action = match (args.revoke, args.dry_run) {
        (false, _) => Action::Listed,
        (true, true) => Action::WouldRevoke,
        (true, false) => {
            revoke(&api, &args.user, &sel).await?;
            Action::Revoked
        }
    };
    Ok(if args.json {
        report::json(&sel, action)
    } else {
        let tz = jiff::tz::TimeZone::system();
        report::table(&sel, action, now, &tz)
    })
}

async fn revoke(api: &admin::AdminApi, user: &str, sel: &Selection) -> Result<(), ClientError> {
    let ids: Vec<&str> = sel
        .matched_devices()
        .map(|d| d.device_id.as_str())
        .collect();
    let progress = progress::Progress::new(ids.len(), BATCH);
    let mut done = 0;
    for chunk in ids.chunks(BATCH) {
        if let Err(e) = api.delete_devices(user, chunk).await {
            progress.finish();
            return Err(match e {
                ClientError::Homeserver { kind, message } => ClientError::Homeserver {
                    kind,
                    message: format!("{message} (after revoking {done} of {} devices)", ids.len()),
                },
                other => other,
            });
        }
        done += chunk.len();
        progress.update(done);
    }
    progress.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_checked_before_any_lease_is_taken() {
        assert!(parse_user_id("@bot:example.com").is_ok());
        for bad in ["bot", "@bot", "@:x", "@bot:", "bot:example.com", ""] {
            assert!(parse_user_id(bad).is_err(), "{bad}");
        }
    }
}
