//! The smoke-test gate: the checks that decide whether a deploy stays or is rolled back.
//!
//! 1. [`compile`] turns a `[smoke]` section or spec file ([`shipgate_config::SmokeConfig`])
//!    into a [`Spec`], rejecting every malformed part (JSONPath, regex, status, placeholders)
//!    before a request is sent. [`SpecBuilder`] builds the same spec in code, without a
//!    configuration file (`examples/spec_in_code.rs`).
//! 2. [`SmokeRunner::run`] runs it: independent checks concurrently, checks that use a
//!    capture after the check that defines it, retries only where they can help (connection
//!    errors, timeouts, 5xx, 429 with `Retry-After`; any failure for a `wait_until_healthy`
//!    check), and fails closed (empty or non-JSON bodies under JSON asserts, cross-origin
//!    redirects, TLS errors, zero checks).
//! 3. [`SmokeReport`] is the verdict, serialisable as JSON and rendered as text or JUnit.
//!
//! Nothing here prints; secret values (the API key, captured values) are masked in reports.

mod builder;
mod engine;
mod report;
mod spec;
mod template;

pub use builder::{CheckBuilder, SpecBuilder};
pub use engine::{BODY_CAP, Progress, ProgressFn, RunError, SmokeRunner};
pub use report::{AssertReport, CheckOutcome, CheckReport, SCHEMA_VERSION, SmokeReport, Summary};
pub use spec::{Spec, SpecError, SpecOptions, SpecProblem, compile};

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
