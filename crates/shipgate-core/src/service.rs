//! Service names: the units a deploy puts live (`api`, `worker`, …).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// A service name: a lowercase DNS label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63
/// characters), so it is valid as a Kubernetes name, a Helm value key and a Fly process group.
///
/// ```
/// use shipgate_core::ServiceName;
/// assert!("api".parse::<ServiceName>().is_ok());
/// assert!("Api".parse::<ServiceName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ServiceName(String);

/// Why a string is not a valid service name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "service name `{0}` is invalid: use 1-63 lowercase letters, digits or `-`, starting and ending with a letter or digit"
)]
pub struct ServiceNameError(pub String);

impl ServiceName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ServiceName {
    type Err = ServiceNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let ok = !b.is_empty()
            && b.len() <= 63
            && edge(b[0])
            && edge(b[b.len() - 1])
            && b.iter().all(|&c| edge(c) || c == b'-');
        if ok {
            Ok(ServiceName(s.to_owned()))
        } else {
            Err(ServiceNameError(s.to_owned()))
        }
    }
}

impl<'de> Deserialize<'de> for ServiceName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ServiceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels_only() {
        for ok in ["api", "worker", "a", "api-v2", "0x"] {
            assert!(ok.parse::<ServiceName>().is_ok(), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "Api",
            "-api",
            "api-",
            "api_v2",
            "api.v2",
            "ap i",
            long.as_str(),
        ] {
            assert!(bad.parse::<ServiceName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn deserializes_with_validation() {
        let ok: ServiceName = serde_json::from_str("\"api\"").unwrap();
        assert_eq!(ok.as_str(), "api");
        let err = serde_json::from_str::<ServiceName>("\"API\"").unwrap_err();
        assert!(err.to_string().contains("service name `API` is invalid"));
    }
}
