//! Latency samples and their percentiles.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Latencies in microseconds. Every sample is kept: a run is bounded in
/// count, and exact percentiles beat a histogram's buckets at this size.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Samples(Vec<u64>);

/// p50/p99/max of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_micros().min(u64::MAX as u128) as u64);
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn summary(&self) -> Summary {
        if self.0.is_empty() {
            return Summary::default();
        }
        let mut v = self.0.clone();
        v.sort_unstable();
        // Nearest rank: the smallest sample at or above the given fraction.
        let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0;
        Summary { count: v.len(), p50_ms: at(0.50), p99_ms: at(0.99), max_ms: *v.last().unwrap() as f64 / 1000.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for ms in 1..=100 {
            s.push(Duration::from_millis(ms));
        }
        let sum = s.summary();
        assert_eq!((sum.count, sum.p50_ms, sum.p99_ms, sum.max_ms), (100, 50.0, 99.0, 100.0));
        assert_eq!(Samples::default().summary(), Summary::default());
    }
}
