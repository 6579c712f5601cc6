//! Documented process exit codes shared by every shipgate binary (docs/exit-codes.md).
//!
//! Later commands add their own codes here, in one place, so that the contract with CI
//! pipelines stays in one file.

/// Everything checked passed.
pub const OK: u8 = 0;
/// A check ran and found problems (check-env: a required variable is missing or invalid).
pub const CHECK_FAILED: u8 = 1;
/// The command line, a configuration file or an input file is invalid; nothing was checked
/// or changed.
pub const USAGE: u8 = 2;
/// Interrupted by SIGINT or SIGTERM: waiting stopped, nothing was left half-done.
pub const ABORTED: u8 = 130;
/// deploy: the new release failed its gate and the previous one is back and passed its smoke.
pub const ROLLED_BACK: u8 = 3;
/// deploy: the new release failed and the rollback failed too: production may be broken.
pub const ROLLBACK_FAILED: u8 = 4;
/// deploy: the new release failed its gate and rollback is disabled: it is live, unhealthy.
pub const UNHEALTHY: u8 = 5;
