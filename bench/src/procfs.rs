//! What `/proc` says about a process: CPU time, resident memory, wakeups.

use anyhow::{Context, Result};
use std::time::Duration;

/// CPU time (user + system) a process has used, from `/proc/PID/stat`
/// (fields 14 and 15, in ticks of 10 ms).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; fields after ')' are plain.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so utime (14) is index 11.
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("short /proc stat")?
            .parse::<u64>()
            .context("bad /proc stat field")
    };
    let total = ticks(11)? + ticks(12)?;
    // /proc reports in USER_HZ, which Linux fixes at 100 whatever the kernel's HZ.
    Ok(Duration::from_millis(total * 10))
}

/// Per-thread counters: on-CPU time (ns, from `schedstat`) and context
/// switches (voluntary + involuntary; each wakeup of an idle thread adds one).
#[derive(Debug, Clone, Default)]
pub struct Threads(pub std::collections::HashMap<u32, (u64, u64)>);

/// Reads [`Threads`] of `pid` from `/proc/PID/task/*`.
pub fn threads(pid: u32) -> Result<Threads> {
    let mut map = std::collections::HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?;
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let ns = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let mut switches = 0;
        if let Ok(text) = std::fs::read_to_string(task.path().join("status")) {
            for line in text.lines() {
                if let Some(v) = line
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    switches += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
        map.insert(tid, (ns, switches));
    }
    Ok(Threads(map))
}

impl Threads {
    /// Since `earlier`: on-CPU time and context switches of the threads alive
    /// at both ends, and how many threads ended or started in between
    /// (threads that come and go are activity too).
    pub fn since(&self, earlier: &Threads) -> (Duration, u64, usize) {
        let (mut ns, mut sw, mut churn) = (0, 0, 0);
        for (tid, (n1, s1)) in &self.0 {
            match earlier.0.get(tid) {
                Some((n0, s0)) => {
                    ns += n1.saturating_sub(*n0);
                    sw += s1.saturating_sub(*s0);
                }
                None => churn += 1,
            }
        }
        churn += earlier.0.keys().filter(|t| !self.0.contains_key(t)).count();
        (Duration::from_nanos(ns), sw, churn)
    }
}

/// Resident set size in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}

/// Raises the soft open-file limit to the hard one: a thousand lease holders
/// each hold a socket, and children (the broker) inherit the limit.
pub fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
}

/// The 1-minute load average, to record how busy the machine was.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
