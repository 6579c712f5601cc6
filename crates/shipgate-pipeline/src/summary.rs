//! The run summary: versioned JSON, always written, and the markdown for CI step summaries.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
pub use shipgate_core::Outcome;
use shipgate_core::{DeploymentVerdict, ImageRef, ServiceName};
use shipgate_provider::{Deployment, Verdict};
use shipgate_smoke::SmokeReport;

use crate::Plan;

/// The JSON schema version of [`Summary`].
pub const SCHEMA_VERSION: u32 = 1;

/// One step with its timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepSummary {
    /// `lock`, `deploy local`, `smoke`, `rollback local`, `smoke after rollback`.
    pub name: String,
    /// `ok` or `failed`.
    pub outcome: String,
    /// How long it took.
    pub duration_ms: i64,
    /// A sentence.
    pub detail: String,
}

/// One service of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceSummary {
    /// The service.
    pub service: String,
    /// What ran before.
    pub from: Option<String>,
    /// What was put live.
    pub to: String,
}

/// One target's deployment (or rollback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetSummary {
    /// `local`, `helm`, …
    pub target: String,
    /// The provider's revision.
    pub revision: String,
    /// `healthy`, `failed`, `timed_out`, `cancelled`.
    pub verdict: String,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Logs or events of a failure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<String>,
    /// Per service.
    pub services: Vec<ServiceSummary>,
    /// What the target ran when it was read back after a failure (service → image): the
    /// ground the run's message stands on. Absent when nothing failed there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_back: Option<BTreeMap<String, String>>,
    /// Why the target could not be read back, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_back_error: Option<String>,
}

impl TargetSummary {
    /// Records what a read-back after a failure saw.
    pub(crate) fn set_read_back(&mut self, seen: &crate::LiveNow) {
        match seen {
            Ok(images) => {
                self.read_back = Some(
                    images
                        .iter()
                        .map(|(s, i)| (s.to_string(), i.to_string()))
                        .collect(),
                );
            }
            Err(err) => self.read_back_error = Some(err.clone()),
        }
    }

    pub(crate) fn new(
        target: &str,
        from: &BTreeMap<ServiceName, ImageRef>,
        deployment: &Deployment,
        verdict: &Verdict,
    ) -> TargetSummary {
        let (word, reason, diagnostics) = match verdict {
            Verdict::Healthy => (DeploymentVerdict::Healthy, None, Vec::new()),
            Verdict::Failed {
                reason,
                diagnostics,
            } => (
                DeploymentVerdict::Failed,
                Some(reason.clone()),
                diagnostics.clone(),
            ),
            Verdict::TimedOut {
                waiting_for,
                diagnostics,
            } => (
                DeploymentVerdict::TimedOut,
                Some(format!("waiting for {waiting_for}")),
                diagnostics.clone(),
            ),
            Verdict::Cancelled => (DeploymentVerdict::Cancelled, None, Vec::new()),
        };
        TargetSummary {
            target: target.to_owned(),
            revision: deployment.revision.to_string(),
            verdict: word.as_str().to_owned(),
            reason,
            diagnostics,
            services: deployment
                .request
                .images
                .iter()
                .map(|(service, image)| ServiceSummary {
                    service: service.to_string(),
                    from: from.get(service).map(ToString::to_string),
                    to: image.to_string(),
                })
                .collect(),
            read_back: None,
            read_back_error: None,
        }
    }
}

/// The rollback decision and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackSummary {
    /// Whether a rollback was carried out.
    pub performed: bool,
    /// Why, step by step: the failure, the switch, the candidate and why it was chosen.
    pub reasons: Vec<String>,
    /// Milliseconds from the failing smoke result (or verdict) to the first rollback action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_action_ms: Option<f64>,
    /// With a staged release: milliseconds from the failure to every user's traffic back on
    /// the previous release (every target's abort returned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_back_ms: Option<f64>,
    /// Each target's rollback.
    pub targets: Vec<TargetSummary>,
    /// The smoke report of the rolled-back release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeReport>,
}

impl RollbackSummary {
    pub(crate) fn declined(reasons: Vec<String>) -> RollbackSummary {
        RollbackSummary {
            performed: false,
            reasons,
            first_action_ms: None,
            traffic_back_ms: None,
            targets: Vec::new(),
            smoke: None,
        }
    }

    pub(crate) fn with_reasons(mut self, reasons: Vec<String>) -> RollbackSummary {
        self.reasons = reasons;
        self
    }
}

/// Everything about one run. Written as JSON after every run, whatever happened.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Summary {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The run.
    pub run_id: String,
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// The tag deployed.
    pub image_tag: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The process exit code for the outcome.
    pub exit_code: u8,
    /// One sentence: what happened and what is live.
    pub message: String,
    /// Start, unix milliseconds.
    pub started_ms: i64,
    /// Wall time.
    pub duration_ms: i64,
    /// Steps with timings.
    pub steps: Vec<StepSummary>,
    /// Each target's deployment.
    pub targets: Vec<TargetSummary>,
    /// The smoke gate's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeReport>,
    /// The rollback decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackSummary>,
    /// How the release reached users: `rolling` or `bluegreen`.
    pub strategy: Strategy,
    /// Why the strategy that ran is not the one asked for (a target that cannot stage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy_note: Option<String>,
    /// With `bluegreen` or `canary`: the smoke gate run against the staged release before
    /// any user request reached it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke_before_traffic: Option<SmokeReport>,
    /// With `canary`: each step that ran, with its traffic share and analysis.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub canary: Vec<CanaryStep>,
    /// Where to read more: the CI run, the commit, the GitHub deployment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

/// A labelled link of a run (`Actions run` → its URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// What it points to.
    pub label: String,
    /// The URL.
    pub url: String,
}

/// One canary step: the traffic share it reached and what its analysis saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CanaryStep {
    /// The share of new user traffic on the staged release the step asked for, in percent.
    pub percent: u8,
    /// The share the platform reached (as near to `percent` as it can split).
    pub reached: u8,
    /// Whether the analysis passed (every configured source passed).
    pub passed: bool,
    /// The smoke spec against the staged release: `Some(passed)`, `None` without a spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke_passed: Option<bool>,
    /// User traffic on the staged release during the step, where the platform observes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<StepTraffic>,
    /// The Prometheus query, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<StepMetric>,
    /// Why the step failed, or what it could not judge.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl CanaryStep {
    /// One line: `passed (smoke passed; 40 user requests, 0 failed, p95 ≤ 5 ms)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.reached != self.percent && self.reached != 0 {
            parts.push(format!("{}% of traffic reached", self.reached));
        }
        if let Some(passed) = self.smoke_passed {
            parts.push(format!(
                "smoke {}",
                if passed { "passed" } else { "failed" }
            ));
        }
        match &self.traffic {
            Some(t) => parts.push(format!(
                "{} user requests, {} failed{}",
                t.requests,
                t.errors,
                t.p95_ms
                    .map(|ms| format!(", p95 ≤ {ms} ms"))
                    .unwrap_or_default()
            )),
            None => parts.push("user traffic not observed on this platform".to_owned()),
        }
        if let Some(metric) = &self.metric {
            parts.push(match metric.value {
                Some(value) => format!("{} = {value} (max {})", metric.query, metric.max),
                None => format!("{}: no value", metric.query),
            });
        }
        parts.extend(self.notes.iter().cloned());
        format!(
            "{} ({})",
            if self.passed { "passed" } else { "failed" },
            parts.join("; ")
        )
    }
}

/// The user requests a canary step saw on the staged release.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StepTraffic {
    /// Requests to the staged release during the step.
    pub requests: u64,
    /// Of those, server errors and requests never answered.
    pub errors: u64,
    /// `errors` as a percentage of `requests` (absent without requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_percent: Option<f64>,
    /// The upper bound of the latency bucket holding the 95th percentile, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<u64>,
    /// Requests to the previous release during the step, for comparison.
    pub stable_requests: u64,
    /// Of those, server errors.
    pub stable_errors: u64,
}

/// A metric query's result in a canary step.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StepMetric {
    /// The query.
    pub query: String,
    /// Its value (absent when it gave none or failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The largest passing value.
    pub max: f64,
}

/// How a release reaches users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Strategy {
    /// Live first, then the smoke gate; a failure rolls back.
    #[default]
    Rolling,
    /// Staged beside the live release and smoke-tested before any user request reaches it,
    /// then switched at once, then gated again; a failure moves traffic back to the old
    /// release at once, without restarting it.
    Bluegreen,
    /// Staged and smoke-tested like `Bluegreen`, then traffic moves in steps with an
    /// analysis after each; a failed analysis moves traffic back at once.
    Canary,
}

impl Strategy {
    /// The word in the summary and the configuration: `rolling`, `bluegreen`, `canary`.
    pub fn word(self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::Bluegreen => "bluegreen",
            Strategy::Canary => "canary",
        }
    }
}

impl Summary {
    pub(crate) fn new(plan: &Plan) -> Summary {
        Summary {
            schema_version: SCHEMA_VERSION,
            run_id: plan.run_id.clone(),
            app: plan.app.clone(),
            environment: plan.environment.clone(),
            image_tag: plan.image_tag.clone(),
            started_ms: shipgate_ledger::now_ms(),
            links: plan.links.clone(),
            ..Summary::default()
        }
    }

    /// Markdown for `$GITHUB_STEP_SUMMARY` and PR comments.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### shipgate deploy: {} `{}` to {} — **{}**\n",
            self.app,
            self.image_tag,
            self.environment,
            self.outcome.as_str()
        );
        let _ = writeln!(out, "{}\n", self.message);
        if self.strategy != Strategy::Rolling || self.strategy_note.is_some() {
            let _ = writeln!(out, "Strategy: **{}**", self.strategy.word());
            if let Some(note) = &self.strategy_note {
                let _ = writeln!(out, "({note})");
            }
            for step in &self.canary {
                let _ = writeln!(out, "- canary at {}%: {}", step.percent, step.describe());
            }
            out.push('\n');
        }
        let _ = writeln!(out, "| step | outcome | time | detail |\n|---|---|---|---|");
        for step in &self.steps {
            let _ = writeln!(
                out,
                "| {} | {} | {} ms | {} |",
                step.name,
                step.outcome,
                step.duration_ms,
                step.detail.replace('|', "\\|")
            );
        }
        for target in self
            .targets
            .iter()
            .chain(self.rollback.iter().flat_map(|r| r.targets.iter()))
        {
            for service in &target.services {
                let _ = writeln!(
                    out,
                    "\n- {} `{}`: {} → {} (revision {}, {})",
                    target.target,
                    service.service,
                    service.from.as_deref().unwrap_or("nothing"),
                    service.to,
                    target.revision,
                    target.verdict
                );
            }
        }
        if let Some(rollback) = &self.rollback {
            let _ = writeln!(
                out,
                "\n**Rollback** ({}):",
                if rollback.performed {
                    "performed"
                } else {
                    "not performed"
                }
            );
            for reason in &rollback.reasons {
                let _ = writeln!(out, "- {reason}");
            }
            if let Some(ms) = rollback.traffic_back_ms {
                let _ = writeln!(
                    out,
                    "- every user back on the previous release {ms} ms after the failure"
                );
            }
        }
        out
    }
}
