//! Issue 8 §4 and §5: many concurrent lease holders (admin-api), the CPU the
//! broker spends against the homeserver's, what is left afterwards, the
//! broker's memory across rounds, and its CPU when idle.

use crate::lab::{API, Lab, Site};
use crate::procfs;
use crate::report::Report;
use anyhow::{Context, Result};
use mxtoken_proto::{CreateLease, Revocation};
use std::time::{Duration, Instant};

/// What one round of concurrent holders did.
#[derive(Debug, Clone)]
pub struct Round {
    /// Holders started.
    pub holders: usize,
    /// Leases that failed to be granted or released, or left a revocation pending.
    pub failures: usize,
    /// Seconds until every holder held its lease.
    pub grant_s: f64,
    /// Seconds until every lease was released (revoked).
    pub release_s: f64,
    /// Broker CPU time over the round (grant and release), seconds.
    pub broker_cpu_s: f64,
    /// Homeserver CPU time over the round, seconds.
    pub homeserver_cpu_s: f64,
    /// Broker RSS the moment every lease was granted, KiB: what the burst
    /// of concurrent requests left behind.
    pub rss_burst_kib: u64,
    /// Broker RSS while all leases were live, once its socket had been
    /// quiet for `SETTLE`, KiB.
    pub rss_live_kib: u64,
    /// Broker RSS after the round, KiB.
    pub rss_after_kib: u64,
    /// Sampled tokens still accepted after release (must be 0).
    pub alive_after: usize,
    /// Live leases the broker reported at the peak.
    pub live_at_peak: usize,
    /// What the first failure said, for the progress log.
    pub first_error: Option<String>,
}

/// How long the benchmark lets the broker's socket stay quiet before it
/// reads the broker's memory: the broker returns freed heap to the OS after
/// 1 s without connections (`server::trim_when_quiet`).
const SETTLE: Duration = Duration::from_secs(2);

/// Tokens checked for death after each round.
const SPOT_CHECK: usize = 25;

/// One round: `holders` clients take an admin-api lease at once, hold it
/// until all hold one, then all release.
pub async fn round(site: &Site, holders: usize) -> Result<Round> {
    let (broker, hs) = (site.broker_pid(), site.synapse.pid());
    let (b0, h0) = (procfs::cpu_time(broker)?, procfs::cpu_time(hs)?);
    let req = CreateLease {
        profile: Some(API.to_owned()),
        purpose: Some("benchmark holder".to_owned()),
        ..CreateLease::default()
    };
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..holders {
        let (client, req) = (site.client.clone(), req.clone());
        set.spawn(async move { client.create_lease(&req).await });
    }
    let mut held = Vec::with_capacity(holders);
    let mut failures = 0;
    let mut first_error = None;
    let mut failed = |what: String| {
        failures += 1;
        first_error.get_or_insert(what);
    };
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(g)) => held.push((g.lease.id, g.token)),
            Ok(Err(e)) => failed(format!("create_lease: {e}")),
            Err(e) => failed(format!("create_lease task: {e}")),
        }
    }
    let grant_s = t.elapsed().as_secs_f64();
    let rss_burst_kib = procfs::rss_kib(broker)?;
    let live_at_peak = site.client.status().await?.live_leases;
    tokio::time::sleep(SETTLE).await;
    let rss_live_kib = procfs::rss_kib(broker)?;

    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (id, _) in &held {
        let (client, id) = (site.client.clone(), id.clone());
        set.spawn(async move { client.release(&id).await });
    }
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(rel)) if rel.revocation == Revocation::Revoked => {}
            Ok(Ok(rel)) => failed(format!("release: revocation {:?}", rel.revocation)),
            Ok(Err(e)) => failed(format!("release: {e}")),
            Err(e) => failed(format!("release task: {e}")),
        }
    }
    let release_s = t.elapsed().as_secs_f64();
    let (b1, h1) = (procfs::cpu_time(broker)?, procfs::cpu_time(hs)?);
    let mut alive_after = 0;
    let step = (held.len() / SPOT_CHECK).max(1);
    for (_, token) in held.iter().step_by(step) {
        alive_after += usize::from(site.direct.alive(token).await?);
    }
    drop(held);
    tokio::time::sleep(SETTLE).await;
    Ok(Round {
        holders,
        failures,
        grant_s,
        release_s,
        broker_cpu_s: (b1 - b0).as_secs_f64(),
        homeserver_cpu_s: (h1 - h0).as_secs_f64(),
        rss_burst_kib,
        rss_live_kib,
        rss_after_kib: procfs::rss_kib(broker)?,
        alive_after,
        live_at_peak,
        first_error,
    })
}

/// Says on stderr what went wrong in a round, so a failed run can be read.
fn note_failures(r: &Round) {
    if let Some(e) = &r.first_error {
        eprintln!(
            "mxtoken-bench: {} of {} holders failed; the first: {e}",
            r.failures, r.holders
        );
    }
}

/// The lease user's and the minter's devices, through the harness's auditor.
fn devices(lab: &Lab) -> Vec<String> {
    let hs = mxtoken_tests::Matrix::new(&lab.main.synapse.url);
    let auditor = lab.main.synapse.auditor_token();
    let mut v = hs.device_ids(auditor, &lab.lease_user);
    v.extend(hs.device_ids(auditor, &lab.minter.user));
    v
}

fn report_round(rep: &mut Report, key: &str, what: &str, r: &Round) {
    let h = r.holders;
    rep.scalar(
        &format!("{key}.holders"),
        &format!("{what}: concurrent holders"),
        h as f64,
        "",
    );
    rep.scalar(
        &format!("{key}.failures"),
        &format!("{what}: failures"),
        r.failures as f64,
        "",
    );
    rep.scalar(
        &format!("{key}.live_at_peak"),
        &format!("{what}: live leases at the peak"),
        r.live_at_peak as f64,
        "",
    );
    rep.scalar(
        &format!("{key}.grant_throughput"),
        &format!("{what}: grants until all held"),
        h as f64 / r.grant_s,
        "leases/s",
    );
    rep.scalar(
        &format!("{key}.release_throughput"),
        &format!("{what}: releases (revoked) until all done"),
        h as f64 / r.release_s,
        "leases/s",
    );
    rep.scalar(
        &format!("{key}.broker_cpu"),
        &format!("{what}: broker CPU"),
        r.broker_cpu_s * 1e3,
        "ms",
    );
    rep.scalar(
        &format!("{key}.homeserver_cpu"),
        &format!("{what}: homeserver CPU (baseline)"),
        r.homeserver_cpu_s * 1e3,
        "ms",
    );
    rep.scalar(
        &format!("{key}.cpu_ratio"),
        &format!("{what}: broker CPU / homeserver CPU"),
        100.0 * r.broker_cpu_s / r.homeserver_cpu_s.max(1e-9),
        "%",
    );
    rep.scalar(
        &format!("{key}.alive_after"),
        &format!("{what}: sampled tokens alive after release"),
        r.alive_after as f64,
        "",
    );
}

/// §4 and the memory half of §5. `sizes` are the concurrency rounds
/// reported on their own (200 and 1000 in full mode); then `rounds` rounds of
/// the largest size track RSS for growth.
pub fn concurrency_and_memory(
    rep: &mut Report,
    lab: &Lab,
    rt: &tokio::runtime::Runtime,
    sizes: &[usize],
    rounds: usize,
) -> Result<()> {
    let site = &lab.main;
    let before = devices(lab);
    let mut worst_ratio: f64 = 0.0;
    let mut failures = 0;
    let mut alive = 0;
    for &n in sizes {
        let r = rt.block_on(round(site, n))?;
        note_failures(&r);
        report_round(
            rep,
            &format!("concurrency.{n}"),
            &format!("{n} holders"),
            &r,
        );
        worst_ratio = worst_ratio.max(r.broker_cpu_s / r.homeserver_cpu_s.max(1e-9));
        failures += r.failures;
        alive += r.alive_after;
    }
    let biggest = sizes.iter().copied().max().unwrap_or(0);
    let mut after = Vec::new();
    let mut live = Vec::new();
    let mut burst = Vec::new();
    for _ in 0..rounds {
        let r = rt.block_on(round(site, biggest))?;
        note_failures(&r);
        failures += r.failures;
        alive += r.alive_after;
        live.push(r.rss_live_kib);
        burst.push(r.rss_burst_kib);
        after.push(r.rss_after_kib);
    }
    let after_devices = devices(lab);
    let leftover = rt.block_on(site.client.status())?;
    rep.scalar(
        "concurrency.total_failures",
        "all rounds: failures",
        failures as f64,
        "",
    );
    rep.scalar(
        "concurrency.total_alive_after",
        "all rounds: sampled tokens alive after release",
        alive as f64,
        "",
    );
    rep.scalar(
        "concurrency.devices_changed",
        "lease user + minter devices changed by the rounds",
        f64::from(u8::from(before != after_devices)),
        "",
    );
    rep.scalar(
        "concurrency.live_after",
        "live leases + pending revocations afterwards",
        (leftover.live_leases + leftover.pending_revocations) as f64,
        "",
    );
    rep.target(
        "concurrent leases (all rounds): failures",
        failures as f64,
        0.0,
        "",
    );
    rep.target(
        "tokens alive after release (sampled)",
        alive as f64,
        0.0,
        "",
    );
    rep.target(
        "broker CPU < 20% of homeserver CPU (worst round)",
        100.0 * worst_ratio,
        20.0,
        "%",
    );
    if !live.is_empty() {
        let kib = |v: u64| v as f64 / 1024.0;
        let peak = live.iter().copied().max().unwrap_or(0);
        rep.scalar(
            "memory.rss_live_max",
            &format!(
                "broker RSS with {biggest} live leases, socket quiet {} s (max of {rounds} rounds)",
                SETTLE.as_secs()
            ),
            kib(peak),
            "MiB",
        );
        rep.scalar(
            "memory.rss_burst_max",
            &format!("broker RSS as the {biggest}-lease burst ends (max of {rounds} rounds)"),
            kib(burst.iter().copied().max().unwrap_or(0)),
            "MiB",
        );
        for (i, v) in after.iter().enumerate() {
            rep.scalar(
                &format!("memory.rss_after_round_{}", i + 1),
                &format!("broker RSS after round {}", i + 1),
                kib(*v),
                "MiB",
            );
        }
        // The allocator settles in the first rounds; growth after that is a leak.
        let settled = after[after.len().min(2) - 1];
        let growth = kib(after[after.len() - 1]) - kib(settled);
        rep.scalar(
            "memory.rss_growth",
            "RSS growth, round 2 -> last round",
            growth,
            "MiB",
        );
        rep.target(
            &format!("RSS with {biggest} live leases <= 25 MiB"),
            kib(peak),
            25.0,
            "MiB",
        );
        rep.target(
            "RSS growth across rounds (no leak) <= 1 MiB",
            growth,
            1.0,
            "MiB",
        );
    }
    Ok(())
}

/// The idle half of §5: CPU time and wakeups of each broker over `window`,
/// with no client talking to it. CPU time comes from `/proc/PID/stat`
/// (10 ms ticks, counts threads that ended); wakeups and sub-tick CPU from
/// the threads alive throughout.
pub fn idle(rep: &mut Report, lab: &Lab, window: Duration) -> Result<()> {
    let pids = [
        ("main", lab.main.broker_pid()),
        ("stock", lab.stock.broker_pid()),
    ];
    let start: Vec<(Duration, procfs::Threads)> = pids
        .iter()
        .map(|(_, p)| Ok((procfs::cpu_time(*p)?, procfs::threads(*p)?)))
        .collect::<Result<_>>()?;
    std::thread::sleep(window);
    let secs = window.as_secs_f64();
    let mut worst: f64 = 0.0;
    for ((name, pid), (cpu0, threads0)) in pids.iter().zip(start) {
        let cpu = procfs::cpu_time(*pid)?.saturating_sub(cpu0).as_secs_f64() * 1e3;
        let (on_cpu, wakeups, churn) = procfs::threads(*pid)?.since(&threads0);
        let what = format!("idle broker ({name}), {secs:.0} s");
        rep.scalar(
            &format!("idle.{name}.cpu"),
            &format!("{what}: CPU (10 ms ticks)"),
            cpu,
            "ms",
        );
        rep.scalar(
            &format!("idle.{name}.on_cpu"),
            &format!("{what}: on-CPU time of lasting threads"),
            on_cpu.as_secs_f64() * 1e3,
            "ms",
        );
        rep.scalar(
            &format!("idle.{name}.wakeups"),
            &format!("{what}: context switches"),
            wakeups as f64,
            "",
        );
        rep.scalar(
            &format!("idle.{name}.thread_churn"),
            &format!("{what}: threads ended/started"),
            churn as f64,
            "",
        );
        worst = worst.max(cpu.max(on_cpu.as_secs_f64() * 1e3) / secs * 60.0);
    }
    rep.target(
        "idle CPU ~ 0 (ms per 60 s, worst broker)",
        worst,
        10.0,
        "ms",
    );
    Ok(())
}

/// Idle RSS of the main broker now.
pub fn idle_rss(rep: &mut Report, lab: &Lab, id: &str, label: &str) -> Result<f64> {
    let mib = procfs::rss_kib(lab.main.broker_pid()).context("broker RSS")? as f64 / 1024.0;
    rep.scalar(id, label, mib, "MiB");
    Ok(mib)
}
