//! Domain types shared by every shipgate crate.
//!
//! - [`ImageRef`]: parsed container image references and whether they are pinned;
//! - [`Environment`] / [`EnvironmentKind`]: fail-closed dev-like vs production-like;
//! - [`ServiceName`]: validated service names (`api`, `worker`);
//! - [`Secret`] / [`Redacted`]: values whose `Debug`/`Display` never show them;
//! - [`HumanDuration`]: `5s`, `10m` in configuration files;
//! - [`one_line`] / [`printable`] / [`excerpt`]: outside text made safe and short for people;
//! - [`exit_code`]: the documented process exit codes.
//!
//! This crate has no I/O: it never reads the environment, files or the network.

mod duration;
mod environment;
pub mod exit_code;
mod image;
mod redact;
mod secret;
mod service;
mod text;
mod vocabulary;

pub use duration::{DurationError, HumanDuration, MAX_DURATION};
pub use environment::{
    Classification, DEV_LIKE_NAMES, Environment, EnvironmentKind, PROD_LIKE_NAMES,
};
pub use image::{DEFAULT_MUTABLE_TAGS, ImageRef, ImageRefError, MutableReason, Pinning};
pub use redact::{MIN_REDACTED_LEN, Redactor, redact_credentials, redact_userinfo};
pub use secret::{REDACTED, Redacted, Secret};
pub use service::{ServiceName, ServiceNameError};
pub use text::{EXCERPT_CHARS, excerpt, one_line, printable, quote_outside, shorten_quoted};
pub use vocabulary::{
    AlertState, DeploymentKind, DeploymentVerdict, MonitorNotice, NotificationEvent, Outcome,
    StepResult, UnknownWord,
};

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
