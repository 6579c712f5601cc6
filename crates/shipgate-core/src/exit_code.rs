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
/// deploy: the deploy lock of the app and environment was not obtained in time; nothing
/// changed (the summary names the holder).
pub const LOCK_TIMEOUT: u8 = 6;
/// deploy: a newer deploy of the same app and environment queued behind this one or finished
/// while it waited for the lock, or the release is older than the live one; nothing changed.
pub const SUPERSEDED: u8 = 7;
/// deploy: the run succeeded but its summary file (the promised artifact) could not be
/// written. Any other outcome keeps its own code.
pub const SUMMARY_NOT_WRITTEN: u8 = 8;
