//! User traffic as a provider observes it: requests, server errors and latency per release,
//! for a canary's analysis between steps.
//!
//! Counts are cumulative since the release started taking traffic; an analysis takes two
//! observations and looks at the difference ([`TrafficCounts::since`]).
//!
//! ```
//! use std::time::Duration;
//! use shipgate_provider::TrafficCounts;
//!
//! let mut before = TrafficCounts::default();
//! before.record(200, Duration::from_millis(12));
//! let mut after = before.clone();
//! after.record(503, Duration::from_millis(40));
//! after.record(200, Duration::from_millis(8));
//! let step = after.since(&before);
//! assert_eq!((step.requests, step.errors), (2, 1));
//! assert_eq!(step.error_percent(), Some(50.0));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Upper bounds of the latency buckets, in milliseconds; a last bucket holds the rest.
pub const LATENCY_BOUNDS_MS: [u64; 12] =
    [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];

/// Requests one release answered: how many, how many were server errors (a 5xx status, or no
/// answer at all), and how long each took to its response head.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficCounts {
    /// Requests answered or failed.
    pub requests: u64,
    /// Of those, 5xx responses and requests the release never answered.
    pub errors: u64,
    /// Requests per latency bucket ([`LATENCY_BOUNDS_MS`], then one for anything slower).
    pub latency_buckets: Vec<u64>,
}

impl TrafficCounts {
    /// Counts one request: `status` 0 means no answer (a refused connection, a reset).
    pub fn record(&mut self, status: u16, latency: Duration) {
        self.requests += 1;
        if status == 0 || status >= 500 {
            self.errors += 1;
        }
        let millis = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|&bound| millis <= bound)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        if self.latency_buckets.len() <= LATENCY_BOUNDS_MS.len() {
            self.latency_buckets.resize(LATENCY_BOUNDS_MS.len() + 1, 0);
        }
        self.latency_buckets[bucket] += 1;
    }

    /// What happened between `earlier` and these counts (saturating: a restarted counter
    /// reads as nothing new rather than a negative).
    pub fn since(&self, earlier: &TrafficCounts) -> TrafficCounts {
        let buckets = (0..self.latency_buckets.len())
            .map(|i| {
                self.latency_buckets[i]
                    .saturating_sub(earlier.latency_buckets.get(i).copied().unwrap_or(0))
            })
            .collect();
        TrafficCounts {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            latency_buckets: buckets,
        }
    }

    /// Adds `other` (several services of one release).
    pub fn add(&mut self, other: &TrafficCounts) {
        self.requests += other.requests;
        self.errors += other.errors;
        if self.latency_buckets.len() < other.latency_buckets.len() {
            self.latency_buckets.resize(other.latency_buckets.len(), 0);
        }
        for (mine, theirs) in self.latency_buckets.iter_mut().zip(&other.latency_buckets) {
            *mine += theirs;
        }
    }

    /// Server errors as a percentage of requests; `None` without requests.
    #[allow(clippy::cast_precision_loss)]
    pub fn error_percent(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 * 100.0 / self.requests as f64)
    }

    /// The upper bound of the bucket holding the 95th percentile of latency; `None` without
    /// requests, or when it lies beyond the last bound.
    pub fn p95(&self) -> Option<Duration> {
        let total: u64 = self.latency_buckets.iter().sum();
        if total == 0 {
            return None;
        }
        // The smallest bucket at which at least 95 % of requests are counted.
        let needed = total - total / 20;
        let mut seen = 0;
        for (index, count) in self.latency_buckets.iter().enumerate() {
            seen += count;
            if seen >= needed {
                return LATENCY_BOUNDS_MS
                    .get(index)
                    .map(|&ms| Duration::from_millis(ms));
            }
        }
        None
    }
}

/// User traffic a staged release and the release beside it received, as one observation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficObservation {
    /// The staged (new) release.
    pub staged: TrafficCounts,
    /// The release that served before.
    pub stable: TrafficCounts,
}

impl TrafficObservation {
    /// What happened between `earlier` and this observation.
    pub fn since(&self, earlier: &TrafficObservation) -> TrafficObservation {
        TrafficObservation {
            staged: self.staged.since(&earlier.staged),
            stable: self.stable.since(&earlier.stable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_errors_and_no_answers() {
        let mut counts = TrafficCounts::default();
        counts.record(200, Duration::from_millis(1));
        counts.record(404, Duration::from_millis(1));
        counts.record(500, Duration::from_millis(1));
        counts.record(0, Duration::from_millis(1));
        assert_eq!((counts.requests, counts.errors), (4, 2));
        assert_eq!(counts.error_percent(), Some(50.0));
        assert_eq!(TrafficCounts::default().error_percent(), None);
    }

    #[test]
    fn p95_is_the_bucket_holding_the_95th_request() {
        let mut counts = TrafficCounts::default();
        for _ in 0..95 {
            counts.record(200, Duration::from_millis(3));
        }
        for _ in 0..5 {
            counts.record(200, Duration::from_millis(400));
        }
        assert_eq!(counts.p95(), Some(Duration::from_millis(5)));
        counts.record(200, Duration::from_millis(400));
        assert_eq!(counts.p95(), Some(Duration::from_millis(500)));
        let mut slow = TrafficCounts::default();
        slow.record(200, Duration::from_secs(60));
        assert_eq!(slow.p95(), None);
    }

    #[test]
    fn since_and_add_are_per_bucket_and_saturate() {
        let mut before = TrafficCounts::default();
        before.record(200, Duration::from_millis(1));
        let mut after = before.clone();
        after.record(502, Duration::from_millis(700));
        let step = after.since(&before);
        assert_eq!((step.requests, step.errors), (1, 1));
        assert_eq!(step.p95(), Some(Duration::from_millis(1000)));
        assert_eq!(before.since(&after).requests, 0);
        let mut sum = TrafficCounts::default();
        sum.add(&before);
        sum.add(&step);
        assert_eq!(sum, after);
    }
}
