//! When a target is checked: an interval (`15m`, `30s`) or a five-field cron expression in UTC
//! (`0 2 * * *`). Intervals are aligned to the Unix epoch like cron: `15m` runs at :00, :15,
//! :30 and :45, so every replica and every `--once` invocation agrees on which slot is due.
//! [`Schedule::next_after_spread`] shifts each target's slots by an offset derived from its
//! id (within the interval; within the first minute for cron), so 10,000 targets on one
//! interval are checked evenly over it instead of all at the same instant, and replicas
//! still agree.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `Duration`, aligned to the epoch.
    Every(Duration),
    /// A cron expression, evaluated in UTC.
    Cron(Box<Cron>),
}

/// Why a schedule was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "schedule `{input}` is neither an interval like `15m` nor a cron expression like `0 2 * * *`: {reason}"
)]
pub struct ScheduleError {
    /// What was given.
    pub input: String,
    /// Why it does not parse.
    pub reason: String,
}

/// The shortest interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(input: &str) -> Result<Schedule, ScheduleError> {
        let input = input.trim();
        let error = |reason: String| ScheduleError {
            input: input.to_owned(),
            reason,
        };
        if input.split_whitespace().count() == 1 {
            let every = humantime::parse_duration(input).map_err(|e| error(e.to_string()))?;
            if every < MIN_INTERVAL {
                return Err(error("the shortest interval is 1s".into()));
            }
            return Ok(Schedule::Every(every));
        }
        if input.split_whitespace().count() != 5 {
            return Err(error(
                "a cron expression has five fields: minute hour day-of-month month day-of-week"
                    .into(),
            ));
        }
        Cron::from_str(input)
            .map(|cron| Schedule::Cron(Box::new(cron)))
            .map_err(|e| error(e.to_string()))
    }
}

impl Schedule {
    /// The first slot strictly after `now_ms` (unix milliseconds).
    pub fn next_after(&self, now_ms: i64) -> i64 {
        match self {
            Schedule::Every(every) => {
                let step = i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1);
                (now_ms.div_euclid(step) + 1).saturating_mul(step)
            }
            Schedule::Cron(cron) => DateTime::<Utc>::from_timestamp_millis(now_ms)
                .and_then(|now| cron.find_next_occurrence(&now, false).ok())
                .map_or(i64::MAX, |next| next.timestamp_millis()),
        }
    }

    /// The first of `key`'s slots strictly after `now_ms`: the schedule's slots shifted by an
    /// offset that `key` (the target's id) fixes, below the interval (below a minute for
    /// cron), so targets that share a schedule spread over it.
    pub fn next_after_spread(&self, now_ms: i64, key: &str) -> i64 {
        let window = match self {
            Schedule::Every(every) => i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1),
            Schedule::Cron(_) => 60_000,
        };
        let offset = i64::try_from(stable_hash(key) % window.unsigned_abs()).unwrap_or(0);
        self.next_after(now_ms.saturating_sub(offset))
            .saturating_add(offset)
    }

    /// The longest gap between two slots (for an interval, the interval; for cron, measured
    /// over the next slots), used to size claims and to describe the schedule.
    pub fn period_hint(&self, now_ms: i64) -> Duration {
        match self {
            Schedule::Every(every) => *every,
            Schedule::Cron(_) => {
                let first = self.next_after(now_ms);
                let second = self.next_after(first);
                Duration::from_millis(u64::try_from(second - first).unwrap_or(0))
            }
        }
    }
}

/// FNV-1a: the same on every replica, every build and every platform (std's hasher is
/// randomised per process).
fn stable_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T0: i64 = 1_795_000_000_000; // 2026-11-18T09:46:40Z

    #[test]
    fn intervals_are_aligned_to_the_epoch() {
        let every: Schedule = "15m".parse().unwrap();
        let next = every.next_after(T0);
        assert_eq!(next % (15 * 60_000), 0);
        assert!(next > T0 && next - T0 <= 15 * 60_000);
        // Exactly on a slot: the next one, never the same.
        assert_eq!(every.next_after(next), next + 15 * 60_000);
    }

    #[test]
    fn targets_on_one_interval_spread_over_it_the_same_way_everywhere() {
        let every: Schedule = "15s".parse().unwrap();
        let slots: Vec<i64> = (0..1_000)
            .map(|i| every.next_after_spread(T0, &format!("app/prod/t{i}")))
            .collect();
        for (i, slot) in slots.iter().enumerate() {
            assert!(*slot > T0 && slot - T0 <= 15_000, "{slot}");
            // The next slot is one interval later, and the same key always gets the same.
            let key = format!("app/prod/t{i}");
            assert_eq!(every.next_after_spread(*slot, &key), slot + 15_000);
            assert_eq!(every.next_after_spread(T0, &key), *slot);
        }
        // Spread: every second of the interval gets some, none gets a crowd.
        let mut per_second = [0_u32; 15];
        for slot in &slots {
            per_second[usize::try_from((slot - T0 - 1) / 1_000).unwrap()] += 1;
        }
        assert!(
            per_second.iter().all(|&n| (30..=110).contains(&n)),
            "{per_second:?}"
        );

        let nightly: Schedule = "0 2 * * *".parse().unwrap();
        let slot = nightly.next_after_spread(T0, "app/prod/t1");
        let at = DateTime::<Utc>::from_timestamp_millis(slot).unwrap();
        assert_eq!(at.format("%H:%M").to_string(), "02:00");
    }

    #[test]
    fn cron_expressions_run_in_utc() {
        let nightly: Schedule = "0 2 * * *".parse().unwrap();
        let next = nightly.next_after(T0);
        let at = DateTime::<Utc>::from_timestamp_millis(next).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-19T02:00:00+00:00");
        assert_eq!(nightly.period_hint(T0), Duration::from_secs(86_400));
    }

    #[test]
    fn bad_schedules_say_what_is_expected() {
        for bad in ["", "soon", "0 2 * *", "0 25 * * *", "500ms"] {
            let err = bad.parse::<Schedule>().unwrap_err();
            assert!(err.to_string().contains("cron expression like"), "{err}");
        }
    }
}
