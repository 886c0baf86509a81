//! Issue 8 §1 and §2: how long a lease takes through the broker (in-process
//! API and the `mxtoken get` process) and what `mxtoken exec -- true` costs,
//! each alternated with the same mint done directly, iteration by iteration,
//! so a busy machine slows both alike.

use crate::direct::unix_ms_now;
use crate::lab::{Account, Site};
use crate::report::Report;
use crate::stats::{ms, summarize, summarize_ms};
use anyhow::{Context, Result, ensure};
use mxtoken_proto::{AccessToken, CreateLease, Revocation};
use std::time::{Duration, Instant};

/// Iterations run first and thrown away (connections, caches, page faults).
const WARMUP: usize = 3;

/// Warm-up iterations for a series of `n`: fewer for the tiny quick series.
fn warmup(n: usize) -> usize {
    WARMUP.min(n.div_ceil(4))
}

/// How the direct baseline mints.
#[derive(Debug, Clone, Copy)]
pub enum Mint<'a> {
    /// `POST /_synapse/admin/v1/users/{lease_user}/login` with a root token.
    AdminApi {
        /// The minter's session.
        root: &'a AccessToken,
        /// Whom the tokens act as.
        lease_user: &'a str,
    },
    /// A password `/login`.
    Login(&'a Account),
}

/// A broker profile and its direct equivalent.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Id fragment, e.g. `admin-api`.
    pub id: &'static str,
    /// Label fragment for the table.
    pub label: &'static str,
    /// Where it runs.
    pub site: &'a Site,
    /// The broker profile.
    pub profile: &'static str,
    /// The direct equivalent.
    pub mint: Mint<'a>,
}

impl Subject<'_> {
    /// One direct mint, as the broker would do it.
    pub async fn direct_mint(&self, i: usize) -> Result<AccessToken> {
        match self.mint {
            Mint::AdminApi { root, lease_user } => {
                let until = unix_ms_now() + 300_000;
                self.site.direct.admin_mint(root, lease_user, until).await
            }
            Mint::Login(a) => {
                let device = format!("BENCH_{}_{i}", self.id.replace('-', "_").to_uppercase());
                self.site.direct.login(&a.user, &a.password, &device).await
            }
        }
    }

    fn request(&self) -> CreateLease {
        CreateLease {
            profile: Some(self.profile.to_owned()),
            purpose: Some("benchmark".to_owned()),
            ..CreateLease::default()
        }
    }

    /// `mxtoken ARGS` of this broker, as a tokio command.
    pub fn mxtoken(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = self.site.env.mxtoken();
        cmd.args(args).stdin(std::process::Stdio::null());
        tokio::process::Command::from(cmd)
    }
}

fn paired(a: &[Duration], b: &[Duration]) -> crate::stats::Summary {
    summarize_ms(a.iter().zip(b).map(|(x, y)| ms(*x) - ms(*y)).collect())
}

/// §1: lease latency, release latency and the `mxtoken get` process.
pub async fn lease_latency(rep: &mut Report, s: &Subject<'_>, n: usize) -> Result<()> {
    let (mut dm, mut dl, mut ac, mut ar, mut gp) = (vec![], vec![], vec![], vec![], vec![]);
    let req = s.request();
    let warm = warmup(n);
    for i in 0..n + warm {
        let keep = i >= warm;
        let t = Instant::now();
        let token = s.direct_mint(i).await.context("direct mint")?;
        let mint = t.elapsed();
        let t = Instant::now();
        s.site
            .direct
            .logout(&token)
            .await
            .context("direct logout")?;
        let logout = t.elapsed();

        let t = Instant::now();
        let granted = s.site.client.create_lease(&req).await?;
        let create = t.elapsed();
        let t = Instant::now();
        let released = s.site.client.release(&granted.lease.id).await?;
        let release = t.elapsed();
        ensure!(
            released.revocation == Revocation::Revoked,
            "a release left its revocation pending"
        );

        let t = Instant::now();
        let out = s
            .mxtoken(&["get", "--json", "--profile", s.profile])
            .output()
            .await?;
        let get = t.elapsed();
        ensure!(
            out.status.success(),
            "mxtoken get failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let id = v["lease_id"].as_str().context("no lease_id")?.to_owned();
        drop(v);
        s.site.client.release(&id).await?;
        if keep {
            dm.push(mint);
            dl.push(logout);
            ac.push(create);
            ar.push(release);
            gp.push(get);
        }
    }
    let (id, label) = (s.id, s.label);
    rep.baseline(
        &format!("lease.{id}.direct_mint"),
        &format!("{label}: direct mint (keep-alive HTTP)"),
        summarize(&dm),
    );
    rep.measured(
        &format!("lease.{id}.broker_api"),
        &format!("{label}: broker create_lease (in-process client)"),
        &format!("lease.{id}.direct_mint"),
        summarize(&ac),
        Some(paired(&ac, &dm)),
    );
    rep.measured(
        &format!("lease.{id}.get_process"),
        &format!("{label}: `mxtoken get` (whole process)"),
        &format!("lease.{id}.direct_mint"),
        summarize(&gp),
        Some(paired(&gp, &dm)),
    );
    rep.baseline(
        &format!("release.{id}.direct_logout"),
        &format!("{label}: direct /logout"),
        summarize(&dl),
    );
    rep.measured(
        &format!("release.{id}.broker_api"),
        &format!("{label}: broker release (revokes before answering)"),
        &format!("release.{id}.direct_logout"),
        summarize(&ar),
        Some(paired(&ar, &dl)),
    );
    Ok(())
}

/// §2: `mxtoken exec -- true` against `true` plus a direct mint and logout.
pub async fn exec_overhead(rep: &mut Report, s: &Subject<'_>, n: usize) -> Result<()> {
    let (mut base, mut exec) = (vec![], vec![]);
    let warm = warmup(n);
    for i in 0..n + warm {
        let t = Instant::now();
        let st = tokio::process::Command::new("true").status().await?;
        ensure!(st.success(), "true failed");
        let token = s.direct_mint(i).await?;
        s.site.direct.logout(&token).await?;
        let b = t.elapsed();

        let t = Instant::now();
        let st = s
            .mxtoken(&["exec", "--profile", s.profile, "--", "true"])
            .status()
            .await?;
        let e = t.elapsed();
        ensure!(st.success(), "mxtoken exec -- true failed: {st}");
        if i >= warm {
            base.push(b);
            exec.push(e);
        }
    }
    let (id, label) = (s.id, s.label);
    rep.baseline(
        &format!("exec.{id}.direct"),
        &format!("{label}: `true` + direct mint + /logout"),
        summarize(&base),
    );
    rep.measured(
        &format!("exec.{id}.mxtoken_exec"),
        &format!("{label}: `mxtoken exec -- true`"),
        &format!("exec.{id}.direct"),
        summarize(&exec),
        Some(paired(&exec, &base)),
    );
    Ok(())
}
