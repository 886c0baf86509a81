//! Summaries of timed samples: median, p99 and N, in milliseconds.

use serde::Serialize;
use std::time::Duration;

/// The summary of one series of samples.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Median (nearest rank), in ms.
    pub median_ms: f64,
    /// 99th percentile (nearest rank), in ms.
    pub p99_ms: f64,
    /// Largest sample, in ms.
    pub max_ms: f64,
}

/// Nearest-rank percentile `q` (0..=1) of sorted `v`; NaN if empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank: the smallest value with at least q·n samples at or below it.
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Summarises samples given in milliseconds.
pub fn summarize_ms(mut ms: Vec<f64>) -> Summary {
    ms.sort_by(f64::total_cmp);
    Summary {
        n: ms.len(),
        median_ms: percentile(&ms, 0.5),
        p99_ms: percentile(&ms, 0.99),
        max_ms: ms.last().copied().unwrap_or(f64::NAN),
    }
}

/// Summarises durations.
pub fn summarize(samples: &[Duration]) -> Summary {
    summarize_ms(samples.iter().map(|d| ms(*d)).collect())
}

/// A duration in (fractional) milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s = summarize_ms((1..=200).map(f64::from).collect());
        assert_eq!(
            (s.n, s.median_ms, s.p99_ms, s.max_ms),
            (200, 100.0, 198.0, 200.0)
        );
        let one = summarize_ms(vec![3.0]);
        assert_eq!((one.median_ms, one.p99_ms), (3.0, 3.0));
        assert!(summarize_ms(Vec::new()).median_ms.is_nan());
    }
}
