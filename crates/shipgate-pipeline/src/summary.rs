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
    /// With `bluegreen`: the smoke gate run against the staged release before any user
    /// request reached it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke_before_traffic: Option<SmokeReport>,
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
        }
        out
    }
}
