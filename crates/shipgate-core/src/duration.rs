//! Human-readable durations (`5s`, `10m`, `1h 30m`) for configuration files.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the way people write it: `500ms`, `5s`, `10m`, `1h 30m`.
///
/// ```
/// use shipgate_core::HumanDuration;
/// let d: HumanDuration = "1m 30s".parse().unwrap();
/// assert_eq!(d.as_duration().as_secs(), 90);
/// assert_eq!(d.to_string(), "1m 30s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(Duration);

/// Why a string is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a duration ({reason}); write it like `500ms`, `10s`, `5m` or `1h 30m`")]
pub struct DurationError {
    input: String,
    reason: String,
}

impl HumanDuration {
    /// Wraps a [`Duration`].
    pub const fn new(duration: Duration) -> HumanDuration {
        HumanDuration(duration)
    }

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> HumanDuration {
        HumanDuration(Duration::from_secs(secs))
    }

    /// The wrapped [`Duration`].
    pub const fn as_duration(self) -> Duration {
        self.0
    }
}

impl From<HumanDuration> for Duration {
    fn from(value: HumanDuration) -> Duration {
        value.0
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim())
            .map(HumanDuration)
            .map_err(|e| DurationError {
                input: s.to_owned(),
                reason: e.to_string(),
            })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        for (input, secs) in [("5s", 5), ("10m", 600), ("1h 30m", 5400), (" 2s ", 2)] {
            let d: HumanDuration = input.parse().unwrap();
            assert_eq!(d.as_duration().as_secs(), secs);
            assert_eq!(d.to_string().parse::<HumanDuration>().unwrap(), d);
        }
        assert_eq!(
            "250ms"
                .parse::<HumanDuration>()
                .unwrap()
                .as_duration()
                .as_millis(),
            250
        );
    }

    #[test]
    fn rejects_with_a_hint() {
        for bad in ["", "5", "five seconds", "5 parsecs", "-1s"] {
            let err = bad.parse::<HumanDuration>().unwrap_err().to_string();
            assert!(err.contains("write it like"), "{err}");
        }
    }
}
