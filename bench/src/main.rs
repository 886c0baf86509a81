//! `mxtoken-bench`: issue 8's benchmark. Starts its own Synapses and brokers
//! on 127.0.0.1, measures every figure next to its direct baseline, prints a
//! table and writes JSON. A benchmark, not a test: it fails only when
//! something does not work, never on a time.

mod audit;
mod direct;
mod lab;
mod latency;
mod load;
mod procfs;
mod report;
mod revocation;
mod stats;

use anyhow::Result;
use clap::Parser;
use latency::{Mint, Subject};
use report::{Meta, Report};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Measures the mxtoken broker against a local Synapse (see BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(name = "mxtoken-bench")]
struct Args {
    /// Few iterations, only to prove everything still works (CI).
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Seconds to watch an idle broker [default: 60, quick: 3].
    #[arg(long, value_name = "SECS")]
    idle_secs: Option<u64>,
    /// Run only these sections (1-6; repeat or separate with commas), e.g.
    /// `--only 4` to profile the concurrency rounds [default: all].
    #[arg(long, value_name = "N", value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=6))]
    only: Vec<u8>,
}

impl Args {
    fn runs(&self, section: u8) -> bool {
        self.only.is_empty() || self.only.contains(&section)
    }
}

/// Iteration counts of one mode.
#[derive(Debug, Clone, Copy)]
struct Plan {
    lease: usize,
    lease_stock: usize,
    exec: usize,
    exits: usize,
    kills: usize,
    ttls: usize,
    sizes: [usize; 2],
    rounds: usize,
    idle: Duration,
    devices: usize,
}

const FULL: Plan = Plan {
    lease: 200,
    lease_stock: 200,
    exec: 200,
    exits: 200,
    kills: 30,
    ttls: 20,
    sizes: [200, 1000],
    rounds: 10,
    idle: Duration::from_secs(60),
    devices: 10_000,
};

const QUICK: Plan = Plan {
    lease: 10,
    lease_stock: 2,
    exec: 5,
    exits: 5,
    kills: 2,
    ttls: 1,
    sizes: [20, 100],
    rounds: 2,
    idle: Duration::from_secs(3),
    devices: 300,
};

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some(revocation::CHILD_ARG) {
        return revocation::stamp_child();
    }
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mxtoken-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn progress(what: &str) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("mxtoken-bench: [{t:>6.1} s] {what}");
}

fn run(args: &Args) -> Result<()> {
    let mut plan = if args.quick { QUICK } else { FULL };
    if let Some(s) = args.idle_secs {
        plan.idle = Duration::from_secs(s);
    }
    if cfg!(debug_assertions) {
        progress("WARNING: debug build; its numbers mean nothing (use scripts/bench)");
    }
    procfs::raise_fd_limit();
    let started = Instant::now();
    let meta = Meta {
        mode: if args.quick { "quick" } else { "full" },
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        synapse_version: mxtoken_tests::synapse::SYNAPSE_VERSION.to_owned(),
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        loadavg_start: procfs::loadavg(),
        loadavg_end: None,
        started_unix_s: direct::unix_ms_now() / 1000,
        duration_s: 0.0,
    };
    let mut rep = Report::new(meta);
    progress("starting two Synapses and their brokers on 127.0.0.1");
    let lab = lab::Lab::start()?;
    // For attaching perf or strace to a run.
    progress(&format!(
        "brokers: main pid {}, stock pid {}; Synapses: main pid {}, stock pid {}",
        lab.main.broker_pid(),
        lab.stock.broker_pid(),
        lab.main.synapse.pid(),
        lab.stock.synapse.pid()
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let root = rt.block_on(lab.direct_root())?;

    rep.section("Fresh broker (before any lease)");
    let idle_fresh = load::idle_rss(
        &mut rep,
        &lab,
        "memory.rss_idle_fresh",
        "broker RSS at idle, freshly started",
    )?;

    let api = Subject {
        id: "admin-api",
        label: "admin-api",
        site: &lab.main,
        profile: lab::API,
        mint: Mint::AdminApi {
            root: &root,
            lease_user: &lab.lease_user,
        },
    };
    let login = Subject {
        id: "login-bcrypt4",
        label: "login (bcrypt cost 4)",
        site: &lab.main,
        profile: lab::LOGIN,
        mint: Mint::Login(&lab.login_user),
    };
    let stock = Subject {
        id: "login-stock",
        label: "login (stock bcrypt cost 12)",
        site: &lab.stock,
        profile: lab::LOGIN,
        mint: Mint::Login(&lab.stock_user),
    };

    if args.runs(1) {
        progress("1. lease latency");
        rep.section("1. Lease latency");
        rt.block_on(latency::lease_latency(&mut rep, &api, plan.lease))?;
        rt.block_on(latency::lease_latency(&mut rep, &login, plan.lease))?;
        rt.block_on(latency::lease_latency(&mut rep, &stock, plan.lease_stock))?;
    }
    if args.runs(2) {
        progress("2. exec overhead");
        rep.section("2. exec overhead");
        rt.block_on(latency::exec_overhead(&mut rep, &api, plan.exec))?;
        rt.block_on(latency::exec_overhead(&mut rep, &login, plan.exec))?;
    }
    if args.runs(3) {
        progress("3. revocation latency");
        rep.section("3. Revocation latency (ms from the lease's end to the first refusal)");
        rt.block_on(revocation::revocation(
            &mut rep, &api, plan.exits, plan.kills, plan.ttls,
        ))?;
        rt.block_on(revocation::revocation(
            &mut rep, &login, plan.exits, plan.kills, plan.ttls,
        ))?;
        rt.block_on(revocation::revocation(
            &mut rep,
            &stock,
            0,
            0,
            plan.ttls.div_ceil(2),
        ))?;
    }
    if args.runs(4) {
        progress("4. concurrency and memory rounds");
        rep.section("4. Concurrency (admin-api) and 5. memory across rounds");
        load::concurrency_and_memory(&mut rep, &lab, &rt, &plan.sizes, plan.rounds)?;
    }
    let mut idle_after = None;
    if args.runs(5) {
        progress(&format!("5. idle broker for {} s", plan.idle.as_secs()));
        rep.section("5. Idle");
        // Let the last revocations' connections settle before watching.
        std::thread::sleep(Duration::from_secs(1));
        idle_after = Some(load::idle_rss(
            &mut rep,
            &lab,
            "memory.rss_idle_after",
            "broker RSS at idle, after all rounds",
        )?);
        load::idle(&mut rep, &lab, plan.idle)?;
    }
    if args.runs(6) {
        progress(&format!("6. device audit of {} devices", plan.devices));
        rep.section("6. Device audit scale (the devices benchmark's method)");
        audit::device_audit(&mut rep, plan.devices);
    }

    rt.block_on(lab.main.direct.logout(&root))?;
    targets(&mut rep, idle_fresh, idle_after);
    rep.meta.loadavg_end = procfs::loadavg();
    rep.meta.duration_s = started.elapsed().as_secs_f64();
    print!("{}", rep.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rep)? + "\n")?;
        progress(&format!("wrote {}", path.display()));
    }
    let broken: Vec<_> = BROKEN_IF_NONZERO
        .iter()
        .filter_map(|id| {
            rep.scalar_value(id)
                .filter(|v| *v != 0.0)
                .map(|v| format!("{id} = {v}"))
        })
        .collect();
    if !broken.is_empty() {
        anyhow::bail!(
            "the broker misbehaved under load ({}); the table above has the figures",
            broken.join(", ")
        );
    }
    Ok(())
}

/// Counts that are bugs, not slowness, when they are not zero: the run
/// fails on them (and never on a time).
const BROKEN_IF_NONZERO: [&str; 4] = [
    "concurrency.total_failures",
    "concurrency.total_alive_after",
    "concurrency.live_after",
    "concurrency.devices_changed",
];

/// The targets of issue 8 that are judged on latency series.
fn targets(rep: &mut Report, idle_fresh: f64, idle_after: Option<f64>) {
    for m in ["admin-api", "login-bcrypt4", "login-stock"] {
        if let Some(c) = rep.comparison(&format!("lease.{m}.broker_api")).cloned() {
            rep.target(
                &format!("{m}: broker overhead per lease, median"),
                c.overhead_median_ms,
                0.5,
                "ms",
            );
        }
        if let Some(c) = rep.comparison(&format!("lease.{m}.get_process")).cloned() {
            rep.target(
                &format!("{m}: `mxtoken get` / direct mint, median"),
                c.ratio_median,
                2.0,
                "x",
            );
        }
    }
    for m in ["admin-api", "login-bcrypt4"] {
        if let Some(s) = rep.get(&format!("revoke.{m}.after_exit")) {
            rep.target(
                &format!("{m}: revocation after exit, median"),
                s.median_ms,
                10.0,
                "ms",
            );
            rep.target(
                &format!("{m}: revocation after exit, p99"),
                s.p99_ms,
                50.0,
                "ms",
            );
        }
        if let Some(s) = rep.get(&format!("revoke.{m}.after_sigkill")) {
            rep.target(
                &format!("{m}: revocation after SIGKILL, max"),
                s.max_ms,
                1000.0,
                "ms",
            );
        }
    }
    for m in ["admin-api", "login-bcrypt4", "login-stock"] {
        if let Some(s) = rep.get(&format!("revoke.{m}.ttl_lateness")) {
            rep.target(&format!("{m}: TTL lateness, max"), s.max_ms, 100.0, "ms");
        }
    }
    rep.target("idle RSS <= 10 MiB (fresh broker)", idle_fresh, 10.0, "MiB");
    if let Some(idle_after) = idle_after {
        rep.target(
            "idle RSS <= 10 MiB (after the load rounds)",
            idle_after,
            10.0,
            "MiB",
        );
    }
}
