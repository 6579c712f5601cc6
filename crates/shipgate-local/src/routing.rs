//! The two small files between the local provider and a service's router
//! (`shipgate-local-router`), both in `STATE_DIR/SERVICE/`:
//!
//! - `backend`, written by the provider: where requests go. One line `PORT` sends all of them
//!   to one process; lines `PORT PERCENT` split them (a canary: `41002 90` and `41007 10`).
//!   The router reads it for every request, so a change takes effect at the next request.
//! - `stats.json`, written by the router: requests, server errors and latency per backend
//!   port since the router started ([`RouterStats`]), rewritten at most every
//!   [`STATS_INTERVAL`] while traffic flows.
//!
//! ```
//! use shipgate_local::routing::Route;
//!
//! let route = Route::split(41002, 41007, 10);
//! assert_eq!(route.render(), "41002 90\n41007 10\n");
//! let parsed = Route::parse(&route.render()).unwrap();
//! let to_canary = (0..100).filter(|&n| parsed.pick(n) == Some(41007)).count();
//! assert_eq!(to_canary, 10);
//! assert_eq!(Route::parse("41002").unwrap().pick(7), Some(41002));
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shipgate_provider::TrafficCounts;

/// How often, at most, the router rewrites its stats file.
pub const STATS_INTERVAL: Duration = Duration::from_millis(50);

/// One backend of a route and its share of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// The process's port on 127.0.0.1.
    pub port: u16,
    /// Its share of requests, in percent.
    pub percent: u8,
}

/// Where a router sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    backends: Vec<Backend>,
}

impl Route {
    /// Every request to `port`.
    pub fn single(port: u16) -> Route {
        Route {
            backends: vec![Backend { port, percent: 100 }],
        }
    }

    /// `percent` of requests to `staged`, the rest to `stable` (0 and 100 give one backend).
    pub fn split(stable: u16, staged: u16, percent: u8) -> Route {
        match percent {
            0 => Route::single(stable),
            100.. => Route::single(staged),
            p => Route {
                backends: vec![
                    Backend {
                        port: stable,
                        percent: 100 - p,
                    },
                    Backend {
                        port: staged,
                        percent: p,
                    },
                ],
            },
        }
    }

    /// Reads a backend file's text; `None` when it is not one (shares must add up to 100).
    pub fn parse(text: &str) -> Option<Route> {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if let [only] = lines.as_slice()
            && let Ok(port) = only.trim().parse::<u16>()
        {
            return Some(Route::single(port));
        }
        let mut backends = Vec::new();
        for line in lines {
            let mut words = line.split_whitespace();
            let port = words.next()?.parse().ok()?;
            let percent = words.next()?.parse().ok()?;
            if words.next().is_some() {
                return None;
            }
            backends.push(Backend { port, percent });
        }
        let total: u32 = backends.iter().map(|b| u32::from(b.percent)).sum();
        (total == 100).then_some(Route { backends })
    }

    /// The backend file's text.
    pub fn render(&self) -> String {
        if let [only] = self.backends.as_slice() {
            return format!("{}\n", only.port);
        }
        self.backends
            .iter()
            .map(|b| format!("{} {}\n", b.port, b.percent))
            .collect()
    }

    /// The backends and their shares.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// Where request number `n` goes. Each run of 100 consecutive requests is split exactly
    /// by the shares, interleaved (slot `n × 61 mod 100`; 61 is prime to 100, so each run
    /// visits every slot once), so a 10 % canary sees every tenth request or so, from the
    /// first hundred on.
    pub fn pick(&self, n: u64) -> Option<u16> {
        let slot = (n % 100) * 61 % 100;
        let mut upto = 0;
        for backend in &self.backends {
            upto += u64::from(backend.percent);
            if slot < upto {
                return Some(backend.port);
            }
        }
        None
    }
}

/// The router's counts per backend port since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterStats {
    /// Backend port → what it answered.
    pub backends: BTreeMap<u16, TrafficCounts>,
}

impl RouterStats {
    /// Reads a stats file; a missing file is no traffic yet.
    pub fn read(path: &Path) -> std::io::Result<RouterStats> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(RouterStats::default()),
            Err(err) => Err(err),
        }
    }

    /// What `port` answered (nothing when it took no traffic).
    pub fn of(&self, port: u16) -> TrafficCounts {
        self.backends.get(&port).cloned().unwrap_or_default()
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a reader sees the
/// old text or the new one, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_hold_over_every_hundred_requests() {
        for percent in [1u8, 10, 25, 50, 99] {
            let route = Route::split(1, 2, percent);
            for start in [0u64, 100, 1_000_000] {
                let staged = (start..start + 100)
                    .filter(|&n| route.pick(n) == Some(2))
                    .count();
                assert_eq!(staged, usize::from(percent), "{percent}% from {start}");
            }
        }
        // The canary's share is spread out, not a burst at the end of each hundred.
        let route = Route::split(1, 2, 10);
        let first_twenty = (0..20).filter(|&n| route.pick(n) == Some(2)).count();
        assert!(first_twenty >= 1, "{first_twenty}");
    }

    #[test]
    fn parse_refuses_what_is_not_a_route() {
        for bad in ["", "x", "1 50", "1 50\n2 40", "1 50 3\n2 50", "70000"] {
            assert_eq!(Route::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Route::parse(" 8080 \n"), Some(Route::single(8080)));
        assert_eq!(
            Route::parse("1 0\n2 100").map(|r| r.backends().len()),
            Some(2)
        );
        assert_eq!(Route::split(1, 2, 0), Route::single(1));
        assert_eq!(Route::split(1, 2, 100), Route::single(2));
    }
}
