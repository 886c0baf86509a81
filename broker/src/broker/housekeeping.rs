//! The broker's housekeeping: start-up recovery, the sweep, and on-demand
//! checks of each profile's accounts.

use super::{Broker, lock, mint_error};
use crate::homeserver::HsError;
use crate::journal::LeaseRecord;
use mxtoken_proto::{
    ApiError, CheckReport, DEVICE_PREFIX, MintKind, ProfileCheck, Recovered, RecoveryOutcome,
    SweepReport, Timestamp,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

impl Broker {
    /// Recovers the leases a previous run left unresolved (see
    /// [`crate::recovery`]). Profiles the homeserver does not answer for keep
    /// retrying in the background and grant no leases until done. Then runs
    /// the start-up sweep where it costs no extra login.
    pub async fn recover(&self, unresolved: impl IntoIterator<Item = LeaseRecord>) {
        let mut by_profile: BTreeMap<String, Vec<LeaseRecord>> = BTreeMap::new();
        for r in unresolved {
            by_profile.entry(r.profile.clone()).or_default().push(r);
        }
        let mut set = tokio::task::JoinSet::new();
        for (profile, records) in by_profile {
            if !self.inner.minters.contains_key(&profile) {
                tracing::error!(profile = %profile, leases = records.len(), "the journal has leases of a profile that is no longer configured; their tokens cannot be revoked until it is back");
                self.note_recovery(&records, |_| RecoveryOutcome::Orphaned);
                continue;
            }
            lock(&self.inner.recovering).insert(profile.clone());
            let this = self.clone();
            let (tried, first_attempt) = tokio::sync::oneshot::channel();
            tokio::spawn(async move { this.recover_until_done(profile, records, tried).await });
            set.spawn(first_attempt);
        }
        // Wait for the first attempt of each profile only; failures go on
        // retrying in the background while the broker serves (the profile
        // refuses leases until done, with a message saying why).
        while set.join_next().await.is_some() {}
        for m in self
            .inner
            .minters
            .values()
            .filter(|m| m.profile().mint == MintKind::AdminApi)
        {
            let (this, name) = (self.clone(), m.profile().name.clone());
            tokio::spawn(async move { this.startup_sweep(&name).await });
        }
    }

    async fn recover_until_done(
        &self,
        profile: String,
        records: Vec<LeaseRecord>,
        tried: tokio::sync::oneshot::Sender<()>,
    ) {
        let mut tried = Some(tried);
        let Some(minter) = self.inner.minters.get(&profile) else {
            return;
        };
        let mut delay = Duration::from_secs(1);
        loop {
            let now = Timestamp::from_system_time(SystemTime::now());
            match crate::recovery::recover_profile(minter, &records, now).await {
                Ok(outcomes) => {
                    let outcomes: HashMap<String, RecoveryOutcome> = outcomes.into_iter().collect();
                    for (id, outcome) in &outcomes {
                        if *outcome != RecoveryOutcome::Orphaned {
                            self.inner.journal.end(id);
                        }
                    }
                    lock(&self.inner.recovering).remove(&profile);
                    self.note_recovery(&records, |id| {
                        outcomes
                            .get(id)
                            .copied()
                            .unwrap_or(RecoveryOutcome::Pending)
                    });
                    tracing::info!(profile = %profile, leases = records.len(), "recovered leases left by the previous run");
                    if let Some(t) = tried.take() {
                        let _ = t.send(());
                    }
                    if minter.profile().mint == MintKind::Login {
                        // Recovery needed a login anyway; the sweep reuses the budget well.
                        self.startup_sweep(&profile).await;
                    }
                    return;
                }
                Err(e) => {
                    if let Some(t) = tried.take() {
                        self.note_recovery(&records, |_| RecoveryOutcome::Pending);
                        let _ = t.send(());
                    }
                    tracing::warn!(profile = %profile, error = %e, "cannot recover leases left by the previous run yet; will retry");
                    let wait = match &e {
                        HsError::RateLimited {
                            retry_after: Some(d),
                            ..
                        } => (*d).max(delay),
                        _ => delay,
                    };
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    fn note_recovery(&self, records: &[LeaseRecord], outcome: impl Fn(&str) -> RecoveryOutcome) {
        let mut notes = lock(&self.inner.recovery);
        for r in records {
            let entry = Recovered {
                lease_id: r.lease.clone(),
                profile: r.profile.clone(),
                mint: r.mint,
                expires_at: r.expires_at,
                outcome: outcome(&r.lease),
            };
            match notes.iter_mut().find(|n| n.lease_id == r.lease) {
                Some(n) => *n = entry,
                None => notes.push(entry),
            }
        }
    }

    async fn startup_sweep(&self, profile: &str) {
        match self.sweep(Some(profile), false).await {
            Ok(r) if !r.stale_devices.is_empty() => {
                tracing::info!(
                    profile,
                    deleted = r.stale_devices.len(),
                    "start-up sweep deleted leftover broker devices"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(profile, error = %e, "start-up sweep failed; run `mxtoken sweep` later")
            }
        }
    }

    /// Deletes the devices this broker created on the profile's account that
    /// belong to no live lease, lease being minted, or session of ours.
    pub async fn sweep(
        &self,
        profile: Option<&str>,
        dry_run: bool,
    ) -> Result<SweepReport, ApiError> {
        let minter = self.minter(profile)?;
        let p = minter.profile();
        let hs_err = |e: HsError| mint_error(&e, minter);
        let session = minter.admin_session().await.map_err(hs_err)?;
        let busy = super::BusyDevice::new(self, Some(session.device_id.clone()));
        let result = async {
            let all = minter.homeserver().devices(&session.token, &p.user).await?;
            let mut keep: HashSet<String> = self
                .leases()
                .values()
                .filter_map(|l| l.info.device_id.clone())
                .collect();
            keep.extend(lock(&self.inner.busy_devices).iter().cloned());
            // Profiles may share an account: spare every profile's root session.
            for m in self.inner.minters.values() {
                keep.extend(m.root_device().await);
            }
            // Only this broker's own devices: another broker may use the same
            // account, and its devices carry its own tag.
            let tag = crate::ids::device_tag();
            let stale: Vec<String> = all
                .into_iter()
                .filter(|(id, name)| {
                    id.starts_with(DEVICE_PREFIX)
                        && !keep.contains(id)
                        && name
                            .as_deref()
                            .is_some_and(|n| !tag.is_empty() && n.ends_with(&tag))
                })
                .map(|(id, _)| id)
                .collect();
            if !dry_run && !stale.is_empty() {
                crate::recovery::delete_in_batches(minter, &session.token, &stale).await?;
            }
            Ok(stale)
        }
        .await;
        drop(busy);
        minter.end_admin_session(session).await;
        let stale_devices = result.map_err(hs_err)?;
        Ok(SweepReport {
            profile: p.name.clone(),
            user_id: p.user.clone(),
            stale_devices,
            dry_run,
        })
    }

    /// `POST /v1/check`: logs in as each profile's account and proves it
    /// can do what leases need, reporting each failure in words.
    pub async fn check(&self, profile: Option<&str>) -> Result<CheckReport, ApiError> {
        let names: Vec<String> = match profile {
            Some(p) => vec![self.minter(Some(p))?.profile().name.clone()],
            None => self.inner.minters.keys().cloned().collect(),
        };
        let mut profiles = Vec::new();
        for name in names {
            let minter = self.minter(Some(&name))?;
            let p = minter.profile();
            let result: Result<String, HsError> = async {
                let session = minter.admin_session().await?;
                let outcome = match p.mint {
                    MintKind::AdminApi => {
                        let until = Timestamp::from_system_time(SystemTime::now())
                            .saturating_add(Duration::from_secs(60));
                        let probe = minter
                            .homeserver()
                            .admin_login_as(&session.token, &p.lease_user, until.unix_ms())
                            .await;
                        if let Ok(t) = &probe {
                            let _ = crate::revoke::logout(minter.homeserver(), t).await;
                        }
                        probe.map(|_| {
                            format!(
                                "{} can log in, is a server admin, and can mint tokens for {}",
                                p.user, p.lease_user
                            )
                        })
                    }
                    MintKind::Login => minter
                        .homeserver()
                        .check_admin(&session.token, &p.user)
                        .await
                        .map(|()| format!("{} can log in and is a server admin", p.user)),
                };
                minter.end_admin_session(session).await;
                outcome
            }
            .await;
            profiles.push(match result {
                Ok(checked) => ProfileCheck {
                    profile: name,
                    error: None,
                    checked,
                },
                Err(e) => ProfileCheck {
                    profile: name,
                    error: Some(mint_error(&e, minter)),
                    checked: String::new(),
                },
            });
        }
        Ok(CheckReport { profiles })
    }
}
