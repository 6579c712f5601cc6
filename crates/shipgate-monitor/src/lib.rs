//! Watching releases after they ship.
//!
//! - [`watch`]: `shipgate monitor` — targets checked on a schedule ([`schedule`]), an alert
//!   state machine per target ([`alert`]) persisted in the ledger, one de-duplicated GitHub
//!   issue per alert, notifications through the ledger's outbox, replicas sharing the targets
//!   through claims in the ledger.
//! - [`metrics`] and [`http`]: Prometheus `/metrics` and `/healthz`.
//! - [`report`]: the delivery report (DORA metrics) behind `shipgate report`.
//!
//! The crate never prints: the monitor reports what happens through an event callback.

pub mod alert;
#[cfg(feature = "server")]
pub mod http;
pub mod metrics;
pub mod report;
pub mod schedule;
pub mod watch;

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
