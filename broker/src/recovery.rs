//! Killing tokens a previous run left behind, without having the tokens.
//!
//! - `login` leases: their devices were named before the login, so an admin
//!   session deletes them (which deletes their tokens).
//! - `admin-api` leases: a token minted through the admin API can only be
//!   logged out with itself — or by logging the minter out everywhere, which
//!   is allowed only when the profile says `dedicated_minter = true`. Without
//!   it, an unexpired token is reported as orphaned until its server-side
//!   expiry.

use crate::homeserver::HsError;
use crate::journal::LeaseRecord;
use crate::mint::Minter;
use mxtoken_proto::{MintKind, RecoveryOutcome, Timestamp};

/// Recovers one profile's unresolved leases; the outcome for each lease id.
/// An `Err` means the homeserver could not be asked: try again later.
pub async fn recover_profile(
    minter: &Minter,
    records: &[LeaseRecord],
    now: Timestamp,
) -> Result<Vec<(String, RecoveryOutcome)>, HsError> {
    let p = minter.profile();
    let mut outcomes = Vec::with_capacity(records.len());
    let devices: Vec<String> = records
        .iter()
        .filter(|r| r.mint == MintKind::Login)
        .filter_map(|r| r.device_id.clone())
        .collect();
    if !devices.is_empty() {
        let session = minter.admin_session().await?;
        let result = delete_in_batches(minter, &session.token, &devices).await;
        minter.end_admin_session(session).await;
        result?;
    }
    let live_admin_api = records
        .iter()
        .any(|r| r.mint == MintKind::AdminApi && r.expires_at > now);
    if live_admin_api && p.dedicated_minter {
        minter.logout_everywhere().await?;
    }
    for r in records {
        let outcome = match r.mint {
            MintKind::Login => RecoveryOutcome::Revoked,
            MintKind::AdminApi if r.expires_at <= now => RecoveryOutcome::Expired,
            MintKind::AdminApi if p.dedicated_minter => RecoveryOutcome::Revoked,
            MintKind::AdminApi => RecoveryOutcome::Orphaned,
        };
        outcomes.push((r.lease.clone(), outcome));
    }
    Ok(outcomes)
}

/// Synapse's bulk delete takes a list; keep each request a sensible size.
const BATCH: usize = 500;

/// Deletes devices of the profile's `user` in batches.
pub async fn delete_in_batches(
    minter: &Minter,
    admin: &mxtoken_proto::AccessToken,
    ids: &[String],
) -> Result<(), HsError> {
    for chunk in ids.chunks(BATCH) {
        minter
            .homeserver()
            .delete_devices(admin, &minter.profile().user, chunk)
            .await?;
    }
    Ok(())
}
