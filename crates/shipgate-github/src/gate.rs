//! The CI gate: refuse to deploy a commit unless its required checks passed.
//!
//! It reads both GitHub Actions-style **check runs** and legacy **commit statuses** for the exact
//! SHA (Kamal's sample gate reads only statuses and misses check runs). Required names match
//! exactly or by glob (`Run Tests (shards *)`). A required name that matches nothing is "not
//! reported yet", which is different from "pending"; a failed required check fails the gate at
//! once; a conclusion shipgate does not know never counts as success.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::client::{GithubClient, GithubError};

/// A check run (`GET /repos/{o}/{r}/commits/{ref}/check-runs`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckRun {
    /// Id (newer runs have larger ids).
    pub id: u64,
    /// Name.
    pub name: String,
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested`, `pending`.
    pub status: String,
    /// `success`, `failure`, `neutral`, `cancelled`, `skipped`, `timed_out`,
    /// `action_required`, or another value; `None` until completed.
    pub conclusion: Option<String>,
    /// The run's page.
    pub html_url: Option<String>,
}

/// One commit status (`GET /repos/{o}/{r}/commits/{ref}/status`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommitStatus {
    /// The context (`continuous-integration/jenkins`).
    pub context: String,
    /// `success`, `pending`, `failure`, `error`.
    pub state: String,
    /// Description.
    pub description: Option<String>,
    /// Link.
    pub target_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct CombinedStatus {
    statuses: Vec<CommitStatus>,
    #[serde(default)]
    total_count: usize,
}

/// What the gate requires.
#[derive(Debug, Clone)]
pub struct GateSpec {
    /// Required names, exact or glob; empty means every reported check must pass (and at
    /// least one must be reported).
    pub required: Vec<String>,
    /// Count `neutral` as passing.
    pub allow_neutral: bool,
    /// Count `skipped` as passing.
    pub allow_skipped: bool,
    /// How long to wait for the checks.
    pub timeout: Duration,
    /// How long between polls.
    pub interval: Duration,
}

/// A failed required check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckFailure {
    /// The check's name.
    pub name: String,
    /// Its conclusion or state.
    pub reason: String,
    /// Its page, when GitHub gave one.
    pub url: Option<String>,
}

/// The gate's state at one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateState {
    /// Every required check passed: their names.
    Passed(Vec<String>),
    /// A required check failed.
    Failed(Vec<CheckFailure>),
    /// Still waiting: what for; `no_checks` when nothing at all has been reported for the SHA.
    Waiting {
        /// Each awaited check and why.
        waiting: Vec<String>,
        /// Nothing has been reported for this commit yet.
        no_checks: bool,
    },
}

enum Light {
    Green,
    Red(String),
    Pending(String),
}

fn check_light(run: &CheckRun, spec: &GateSpec) -> Light {
    if run.status != "completed" {
        return Light::Pending(run.status.clone());
    }
    match run.conclusion.as_deref() {
        Some("success") => Light::Green,
        Some("neutral") if spec.allow_neutral => Light::Green,
        Some("skipped") if spec.allow_skipped => Light::Green,
        Some(other) => Light::Red(other.to_owned()),
        None => Light::Red("completed without a conclusion".to_owned()),
    }
}

fn status_light(status: &CommitStatus) -> Light {
    match status.state.as_str() {
        "success" => Light::Green,
        "pending" => Light::Pending("pending".to_owned()),
        other => Light::Red(other.to_owned()),
    }
}

fn matches(pattern: &str, name: &str) -> bool {
    pattern == name || glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name))
}

/// Judges check runs and statuses against the spec.
pub fn evaluate(spec: &GateSpec, runs: &[CheckRun], statuses: &[CommitStatus]) -> GateState {
    // The newest run per name; statuses are already the latest per context.
    let mut newest: BTreeMap<&str, &CheckRun> = BTreeMap::new();
    for run in runs {
        let slot = newest.entry(run.name.as_str()).or_insert(run);
        if run.id > slot.id {
            *slot = run;
        }
    }
    let mut reported: Vec<(String, Light, Option<String>)> = newest
        .values()
        .map(|run| {
            (
                run.name.clone(),
                check_light(run, spec),
                run.html_url.clone(),
            )
        })
        .collect();
    reported.extend(
        statuses
            .iter()
            .map(|s| (s.context.clone(), status_light(s), s.target_url.clone())),
    );
    let no_checks = reported.is_empty();

    let patterns: Vec<String> = if spec.required.is_empty() {
        reported.iter().map(|(name, ..)| name.clone()).collect()
    } else {
        spec.required.clone()
    };
    let mut failures = Vec::new();
    let mut waiting = Vec::new();
    let mut passed = Vec::new();
    if patterns.is_empty() {
        waiting.push("no checks have been reported for this commit yet".to_owned());
    }
    for pattern in &patterns {
        let hits: Vec<&(String, Light, Option<String>)> = reported
            .iter()
            .filter(|(name, ..)| matches(pattern, name))
            .collect();
        if hits.is_empty() {
            waiting.push(format!("{pattern}: not reported yet"));
        }
        for (name, light, url) in hits {
            match light {
                Light::Green => passed.push(name.clone()),
                Light::Red(reason) => failures.push(CheckFailure {
                    name: name.clone(),
                    reason: reason.clone(),
                    url: url.clone(),
                }),
                Light::Pending(state) => waiting.push(format!("{name}: {state}")),
            }
        }
    }
    if !failures.is_empty() {
        GateState::Failed(failures)
    } else if !waiting.is_empty() {
        GateState::Waiting { waiting, no_checks }
    } else {
        passed.sort();
        passed.dedup();
        GateState::Passed(passed)
    }
}

/// How a gate run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutcome {
    /// Every required check passed.
    Passed(Vec<String>),
    /// A required check failed.
    Failed(Vec<CheckFailure>),
    /// The deadline passed while waiting.
    TimedOut {
        /// What was still awaited.
        waiting: Vec<String>,
        /// Nothing was ever reported for the commit.
        no_checks: bool,
    },
    /// Cancelled.
    Cancelled,
}

/// Polls the commit's check runs and statuses until the gate passes, fails, or `timeout`
/// passes, reporting each waiting state.
pub async fn run_gate(
    client: &GithubClient,
    repository: &str,
    sha: &str,
    spec: &GateSpec,
    progress: &(dyn Fn(&str) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<GateOutcome, GithubError> {
    let deadline = Instant::now() + spec.timeout;
    loop {
        let runs: Vec<CheckRun> = client
            .get_all(
                &format!("repos/{repository}/commits/{sha}/check-runs?filter=latest&per_page=100"),
                deadline,
                |page| page.get("check_runs").and_then(|v| v.as_array().cloned()),
            )
            .await?;
        let statuses = statuses(client, repository, sha, deadline).await?;
        let (waiting, no_checks) = match evaluate(spec, &runs, &statuses) {
            GateState::Passed(names) => return Ok(GateOutcome::Passed(names)),
            GateState::Failed(failures) => return Ok(GateOutcome::Failed(failures)),
            GateState::Waiting { waiting, no_checks } => (waiting, no_checks),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(GateOutcome::TimedOut { waiting, no_checks });
        }
        progress(&format!(
            "waiting ({} s left): {}",
            left.as_secs(),
            waiting.join("; ")
        ));
        tokio::select! {
            () = tokio::time::sleep(spec.interval.min(left)) => {}
            () = cancel.cancelled() => return Ok(GateOutcome::Cancelled),
        }
    }
}

/// Every status of the commit (the combined endpoint has no `Link`: page by `total_count`).
async fn statuses(
    client: &GithubClient,
    repository: &str,
    sha: &str,
    deadline: Instant,
) -> Result<Vec<CommitStatus>, GithubError> {
    let mut all = Vec::new();
    for page in 1..=10 {
        let (combined, _): (CombinedStatus, _) = client
            .get(
                &format!("repos/{repository}/commits/{sha}/status?per_page=100&page={page}"),
                deadline,
            )
            .await?;
        let got = combined.statuses.len();
        all.extend(combined.statuses);
        if got == 0 || all.len() >= combined.total_count {
            break;
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: u64, name: &str, status: &str, conclusion: Option<&str>) -> CheckRun {
        CheckRun {
            id,
            name: name.into(),
            status: status.into(),
            conclusion: conclusion.map(str::to_owned),
            html_url: Some(format!("https://github.com/runs/{id}")),
        }
    }

    fn spec(required: &[&str]) -> GateSpec {
        GateSpec {
            required: required.iter().map(|s| (*s).to_owned()).collect(),
            allow_neutral: false,
            allow_skipped: false,
            timeout: Duration::from_secs(1),
            interval: Duration::from_millis(10),
        }
    }

    #[test]
    fn globs_match_sharded_checks_and_all_must_pass() {
        let runs = vec![
            run(1, "Run Tests (shards 1)", "completed", Some("success")),
            run(2, "Run Tests (shards 2)", "in_progress", None),
            run(3, "Code Quality Checks", "completed", Some("success")),
        ];
        match evaluate(
            &spec(&["Run Tests (shards *)", "Code Quality Checks"]),
            &runs,
            &[],
        ) {
            GateState::Waiting { waiting, no_checks } => {
                assert_eq!(waiting, ["Run Tests (shards 2): in_progress"]);
                assert!(!no_checks);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_required_check_fails_fast_and_unknown_conclusions_are_not_success() {
        let runs = vec![
            run(1, "build", "completed", Some("startup_failure")),
            run(2, "test", "queued", None),
        ];
        match evaluate(&spec(&["build", "test"]), &runs, &[]) {
            GateState::Failed(f) => assert_eq!(
                (f[0].name.as_str(), f[0].reason.as_str()),
                ("build", "startup_failure")
            ),
            other => panic!("{other:?}"),
        }
        for conclusion in [
            "failure",
            "cancelled",
            "timed_out",
            "action_required",
            "stale",
            "neutral",
            "skipped",
        ] {
            let state = evaluate(
                &spec(&["build"]),
                &[run(1, "build", "completed", Some(conclusion))],
                &[],
            );
            assert!(matches!(state, GateState::Failed(_)), "{conclusion}");
        }
        let lenient = GateSpec {
            allow_neutral: true,
            allow_skipped: true,
            ..spec(&["a", "b"])
        };
        let state = evaluate(
            &lenient,
            &[
                run(1, "a", "completed", Some("neutral")),
                run(2, "b", "completed", Some("skipped")),
            ],
            &[],
        );
        assert_eq!(state, GateState::Passed(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn nothing_reported_is_not_pending_and_never_passes() {
        assert!(matches!(
            evaluate(&spec(&[]), &[], &[]),
            GateState::Waiting {
                no_checks: true,
                ..
            }
        ));
        match evaluate(&spec(&["build"]), &[], &[]) {
            GateState::Waiting { waiting, no_checks } => {
                assert_eq!(waiting, ["build: not reported yet"]);
                assert!(no_checks);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_newest_run_of_a_name_counts_and_statuses_count_too() {
        let runs = vec![
            run(1, "build", "completed", Some("failure")),
            run(9, "build", "completed", Some("success")),
        ];
        let statuses = vec![CommitStatus {
            context: "ci/jenkins".into(),
            state: "success".into(),
            description: None,
            target_url: None,
        }];
        assert_eq!(
            evaluate(&spec(&[]), &runs, &statuses),
            GateState::Passed(vec!["build".into(), "ci/jenkins".into()])
        );
        let red = vec![CommitStatus {
            context: "ci/jenkins".into(),
            state: "error".into(),
            description: None,
            target_url: None,
        }];
        assert!(matches!(
            evaluate(&spec(&["ci/*"]), &[], &red),
            GateState::Failed(_)
        ));
    }
}
