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

/// The longest duration shipgate accepts (a year and a day): every wait, timeout, interval
/// and retention it configures is far shorter, and a larger value (`500000000 years`) is a
/// typo that would overflow the clock arithmetic of a wait.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

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
        let error = |reason: String| DurationError {
            input: crate::excerpt(s, crate::EXCERPT_CHARS).into_owned(),
            reason,
        };
        let duration = humantime::parse_duration(s.trim()).map_err(|e| error(e.to_string()))?;
        if duration > MAX_DURATION {
            return Err(error(
                "longer than 366 days, the most shipgate accepts".to_owned(),
            ));
        }
        Ok(HumanDuration(duration))
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
        let huge = "9".repeat(1_000_000);
        for bad in [
            "",
            "5",
            "five seconds",
            "5 parsecs",
            "-1s",
            "500000000 years",
            "367days",
            &huge,
        ] {
            let err = bad.parse::<HumanDuration>().unwrap_err().to_string();
            assert!(err.contains("write it like") && err.len() < 500, "{err}");
        }
        assert!("366days".parse::<HumanDuration>().is_ok());
        assert!(
            "500000000 years"
                .parse::<HumanDuration>()
                .unwrap_err()
                .to_string()
                .contains("longer than 366 days, the most shipgate accepts")
        );
    }
}
