//! A read-only web dashboard over the shipgate ledger: what each environment runs now and
//! its delivery figures (overview), every run on a time axis (timeline), one run's steps,
//! targets, smoke reports and rollback decision (run page), weekly DORA charts (delivery) and
//! the monitor's targets with their check latencies (health). Pages are HTML rendered on the
//! server with compile-time checked templates (maud) and charts as inline SVG: no script, no
//! asset from elsewhere, a strict Content-Security-Policy. Each page has a JSON twin under
//! `/api/`.
//!
//! See the README (its examples are compiled as doctests) and docs/dashboard.md.

mod access;
pub mod model;
mod pages;
mod server;
mod svg;

use std::net::SocketAddr;

pub use access::{Access, Refusal};
pub use axum::http::HeaderName;
pub use server::{CONTENT_SECURITY_POLICY, Dashboard};

/// Why the dashboard cannot serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// A non-loopback address without an access rule.
    #[error(
        "the dashboard would serve the ledger to anyone who can reach {address}: bind 127.0.0.1, or set an access rule in [dashboard] (token, basic_user + basic_password, or trust_proxy_header)"
    )]
    NoAccessRule {
        /// The address asked for.
        address: SocketAddr,
    },
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
