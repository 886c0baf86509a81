//! Collecting results: a table for people, JSON (numbers and labels only,
//! never a token) for machines. Each figure sits next to its baseline.

use crate::stats::Summary;
use serde::Serialize;
use std::fmt::Write as _;

/// How and where the run happened.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// `quick` or `full`.
    pub mode: &'static str,
    /// `release` or `debug` (debug numbers mean nothing).
    pub build: &'static str,
    /// The Synapse release measured against.
    pub synapse_version: String,
    /// CPUs the machine has.
    pub cpus: usize,
    /// 1-minute load average when the run started and ended.
    pub loadavg_start: Option<f64>,
    /// See `loadavg_start`.
    pub loadavg_end: Option<f64>,
    /// Start of the run, Unix seconds.
    pub started_unix_s: u64,
    /// Wall time of the whole run, seconds.
    pub duration_s: f64,
}

/// One timed series.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesRow {
    /// Stable id, e.g. `lease.admin-api.broker_api`.
    pub id: String,
    /// What was timed.
    pub label: String,
    /// Id of the series this one is compared with, if it is not a baseline.
    pub baseline: Option<String>,
    /// The numbers.
    #[serde(flatten)]
    pub summary: Summary,
}

/// A measured series against its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Id of the measured series.
    pub measured: String,
    /// Id of the baseline series.
    pub baseline: String,
    /// median(measured) − median(baseline), ms.
    pub overhead_median_ms: f64,
    /// Median of per-iteration differences (the series are interleaved, so
    /// this cancels slow drift of a busy machine), ms, when paired.
    pub paired_overhead_median_ms: Option<f64>,
    /// median(measured) / median(baseline).
    pub ratio_median: f64,
}

/// A single number (throughput, memory, CPU, counts).
#[derive(Debug, Clone, Serialize)]
pub struct Scalar {
    /// Stable id.
    pub id: String,
    /// What it is.
    pub label: String,
    /// Its value.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
}

/// A target of issue 8 and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRow {
    /// The target in words.
    pub target: String,
    /// The figure it is judged on.
    pub measured: f64,
    /// The limit.
    pub limit: f64,
    /// Unit of both.
    pub unit: &'static str,
    /// Whether `measured` is within `limit`.
    pub met: bool,
}

/// Everything one run found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Run facts.
    pub meta: Meta,
    /// Timed series.
    pub series: Vec<SeriesRow>,
    /// Series against their baselines.
    pub comparisons: Vec<Comparison>,
    /// Single figures.
    pub scalars: Vec<Scalar>,
    /// Targets, met or not.
    pub targets: Vec<TargetRow>,
    #[serde(skip)]
    table: String,
}

impl Report {
    /// An empty report.
    pub fn new(meta: Meta) -> Self {
        Self {
            meta,
            series: Vec::new(),
            comparisons: Vec::new(),
            scalars: Vec::new(),
            targets: Vec::new(),
            table: String::new(),
        }
    }

    /// Starts a section of the table.
    pub fn section(&mut self, title: &str) {
        let _ = write!(
            self.table,
            "\n## {title}\n{:<72} {:>10} {:>10} {:>6}\n",
            "", "median ms", "p99 ms", "N"
        );
    }

    /// Adds a baseline series.
    pub fn baseline(&mut self, id: &str, label: &str, s: Summary) {
        self.push_series(id, label, None, s, String::new());
    }

    /// Adds a series that is neither a baseline nor compared with one.
    pub fn info(&mut self, id: &str, label: &str, s: Summary) {
        self.push_series(id, label, None, s, "  (resolution)".to_owned());
    }

    /// Adds a series measured against `baseline` (an id added before);
    /// `paired` holds per-iteration differences when the runs alternated.
    pub fn measured(
        &mut self,
        id: &str,
        label: &str,
        baseline: &str,
        s: Summary,
        paired: Option<Summary>,
    ) {
        let Some(base) = self
            .series
            .iter()
            .find(|r| r.id == baseline)
            .map(|r| r.summary)
        else {
            self.push_series(id, label, None, s, String::new());
            return;
        };
        let c = Comparison {
            measured: id.to_owned(),
            baseline: baseline.to_owned(),
            overhead_median_ms: s.median_ms - base.median_ms,
            paired_overhead_median_ms: paired.map(|p| p.median_ms),
            ratio_median: s.median_ms / base.median_ms,
        };
        let note = match c.paired_overhead_median_ms {
            Some(p) => format!(
                "  {:+.2} ms (paired {:+.2}), {:.2}x",
                c.overhead_median_ms, p, c.ratio_median
            ),
            None => format!("  {:+.2} ms, {:.2}x", c.overhead_median_ms, c.ratio_median),
        };
        self.comparisons.push(c);
        self.push_series(id, label, Some(baseline.to_owned()), s, note);
    }

    fn push_series(
        &mut self,
        id: &str,
        label: &str,
        baseline: Option<String>,
        s: Summary,
        note: String,
    ) {
        let mark = if baseline.is_some() { "  " } else { "= " };
        let _ = writeln!(
            self.table,
            "{mark}{label:<70} {:>10.2} {:>10.2} {:>6}{note}",
            s.median_ms, s.p99_ms, s.n
        );
        self.series.push(SeriesRow {
            id: id.to_owned(),
            label: label.to_owned(),
            baseline,
            summary: s,
        });
    }

    /// Adds a single figure.
    pub fn scalar(&mut self, id: &str, label: &str, value: f64, unit: &'static str) {
        let _ = writeln!(self.table, "  {label:<70} {value:>10.2} {unit}");
        self.scalars.push(Scalar {
            id: id.to_owned(),
            label: label.to_owned(),
            value,
            unit,
        });
    }

    /// Judges a target: met when `measured <= limit`.
    pub fn target(&mut self, target: &str, measured: f64, limit: f64, unit: &'static str) {
        self.targets.push(TargetRow {
            target: target.to_owned(),
            measured,
            limit,
            unit,
            met: measured <= limit,
        });
    }

    /// The finished table, with the targets at the end.
    pub fn table(&self) -> String {
        let m = &self.meta;
        let mut out = format!(
            "mxtoken benchmark: {} mode, {} build, Synapse {}, {} CPUs, load {:.2} -> {:.2}, {:.0} s\n\
             ('=' rows are baselines; others show overhead over their baseline and the ratio)\n",
            m.mode,
            m.build,
            m.synapse_version,
            m.cpus,
            m.loadavg_start.unwrap_or(f64::NAN),
            m.loadavg_end.unwrap_or(f64::NAN),
            m.duration_s
        );
        out.push_str(&self.table);
        out.push_str("\n## Targets (issue 8)\n");
        for t in &self.targets {
            let _ = writeln!(
                out,
                "  [{:<7}] {:<60} {:>10.2} {} (limit {})",
                if t.met { "met" } else { "NOT met" },
                t.target,
                t.measured,
                t.unit,
                t.limit
            );
        }
        out
    }

    /// The value of the scalar `id`, if it was measured.
    pub fn scalar_value(&self, id: &str) -> Option<f64> {
        self.scalars.iter().find(|s| s.id == id).map(|s| s.value)
    }

    /// Looks up a series' summary by id.
    pub fn get(&self, id: &str) -> Option<Summary> {
        self.series.iter().find(|r| r.id == id).map(|r| r.summary)
    }

    /// Looks up a comparison by its measured id.
    pub fn comparison(&self, measured: &str) -> Option<&Comparison> {
        self.comparisons.iter().find(|c| c.measured == measured)
    }
}
