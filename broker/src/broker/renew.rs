//! Extending a lease, and rotating the token of an `admin-api` lease.
//!
//! A lease can be extended up to `max_ttl` after its creation, never beyond.
//! A `login` token has no server-side expiry, so extending moves only the
//! broker's timer. An `admin-api` token expires on the server at the time it
//! was minted with, which cannot be moved: renewing such a lease needs
//! `rotate`, which mints a replacement that expires at the new end and
//! revokes the old token.

use super::{Broker, Peer, mint_error, requested_ttl, unknown_lease as unknown};
use crate::journal::LeaseRecord;
use crate::revoke::Target;
use mxtoken_proto::{ApiError, ErrorCode, MintKind, RenewLease, Renewed, Timestamp};
use std::time::SystemTime;

impl Broker {
    /// `POST /v1/leases/{id}/renew`.
    pub async fn renew(&self, peer: Peer, id: &str, req: RenewLease) -> Result<Renewed, ApiError> {
        let info = {
            let leases = self.leases();
            let lease = leases.get(id).ok_or_else(|| unknown(id))?;
            if lease.info.peer_uid != peer.uid {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!("lease {id} belongs to another user"),
                ));
            }
            lease.info.clone()
        };
        let minter = self.minter(Some(&info.profile))?;
        let profile = minter.profile();
        let ttl = requested_ttl(req.ttl.as_deref(), profile)?;
        let now = Timestamp::from_system_time(SystemTime::now());
        let expires_at = now.saturating_add(ttl);
        let limit = info.created_at.saturating_add(profile.max_ttl);
        if expires_at > limit {
            return Err(ApiError::new(
                ErrorCode::TtlTooLong,
                format!(
                    "ttl: renewing lease {id} by {} would end it after {limit}, more than max_ttl ({}) after its creation; ask for less or take a new lease",
                    humantime::format_duration(ttl),
                    humantime::format_duration(profile.max_ttl)
                ),
            ));
        }
        if expires_at < info.expires_at {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!(
                    "ttl: renewing lease {id} by {} would end it at {expires_at}, earlier than it ends now ({}); renewal only extends (release the lease when you are done)",
                    humantime::format_duration(ttl),
                    info.expires_at
                ),
            ));
        }
        match (info.mint, req.rotate) {
            (MintKind::AdminApi, false) => {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!(
                        "lease {id} is an admin-api lease: its token expires on the homeserver at {} and that cannot be moved; renew with --rotate to get a replacement token",
                        info.expires_at
                    ),
                ));
            }
            (MintKind::Login, true) => {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!(
                        "lease {id} is a login lease, whose token has no server-side expiry; renew it without --rotate"
                    ),
                ));
            }
            _ => {}
        }
        // The journal learns the new end first: recovery must know how long
        // the token (or its replacement) may live.
        let record = LeaseRecord {
            lease: info.id.clone(),
            profile: info.profile.clone(),
            user: profile.user.clone(),
            device_id: info.device_id.clone(),
            mint: info.mint,
            created_at: info.created_at,
            expires_at: expires_at.max(info.expires_at),
        };
        let journal = self.inner.journal.clone();
        journal.begin(record).await.map_err(|e| {
            ApiError::new(
                ErrorCode::Internal,
                format!("{e}; the lease was not renewed"),
            )
        })?;
        let replacement = if req.rotate {
            let minted = minter
                .mint(id, info.purpose.as_deref(), expires_at)
                .await
                .map_err(|e| mint_error(&e, minter))?;
            Some(minted.token)
        } else {
            None
        };
        let updated = {
            let mut leases = self.leases();
            leases.get_mut(id).map(|lease| {
                lease.info.expires_at = expires_at;
                let remaining = expires_at
                    .to_system_time()
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                lease
                    .deadline
                    .send_replace(tokio::time::Instant::now() + remaining);
                let old = replacement
                    .clone()
                    .map(|t| std::mem::replace(&mut lease.token, t));
                (lease.info.clone(), old)
            })
        };
        let Some((renewed, old_token)) = updated else {
            // The lease ended while we minted: its replacement must die too.
            if let Some(t) = replacement {
                let _ = crate::revoke::logout(minter.homeserver(), &t).await;
            }
            return Err(unknown(id));
        };
        if let Some(old) = old_token {
            let rotated = format!("{id} (rotated out)");
            let target = Target {
                lease_id: &rotated,
                profile: &info.profile,
                overdue_after: profile.max_ttl,
                ends_lease: false,
            };
            self.inner
                .revoker
                .revoke(target, minter.homeserver(), old)
                .await;
        }
        tracing::info!(lease = %id, expires_at = %expires_at, rotated = req.rotate, "lease renewed");
        Ok(Renewed {
            lease: renewed,
            token: replacement,
        })
    }
}
