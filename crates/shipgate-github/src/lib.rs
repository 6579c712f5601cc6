//! GitHub for shipgate: a small typed REST client ([`GithubClient`]: pagination by `Link`,
//! GitHub's rate-limit rules, typed errors that never show the token) and the CI gate
//! ([`run_gate`]) that replaces seed 004's `check-ci-status` job, plus what shipgate writes:
//! deployments and their statuses, the sticky pull-request comment, alert issues.

mod client;
mod gate;
mod repo;

pub use client::{GithubClient, GithubError, next_link, rate_limit_wait};
pub use gate::{
    CheckFailure, CheckRun, CommitStatus, GateOutcome, GateSpec, GateState, evaluate, run_gate,
};
pub use repo::{
    CreatedIssue, DeploymentState, Issue, NewDeployment, PullRequest, STATUS_DESCRIPTION_MAX,
    StatusUpdate, Sticky, truncate,
};

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
