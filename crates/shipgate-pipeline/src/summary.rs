//! The run summary: versioned JSON, always written, and the markdown for CI step summaries.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use shipgate_core::{ImageRef, ServiceName, exit_code};
use shipgate_provider::{Deployment, Verdict};
use shipgate_smoke::SmokeReport;

use crate::Plan;

/// The JSON schema version of [`Summary`].
pub const SCHEMA_VERSION: u32 = 1;

/// How a run ended. Exactly one per run; each is one exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Live and (when gated) passed the smoke gate. Exit 0.
    Succeeded,
    /// Stopped before anything live changed (or a new release never became healthy and the
    /// previous one still serves). Exit 1.
    #[default]
    Failed,
    /// The new release failed; the previous one is back and passed its smoke. Exit 3.
    RolledBack,
    /// The new release failed and so did the rollback: production may be broken. Exit 4.
    RollbackFailed,
    /// The gate failed and rollback is disabled: the unhealthy release is live. Exit 5.
    Unhealthy,
    /// Interrupted (SIGINT/SIGTERM). Exit 130.
    Aborted,
    /// The deploy lock was not obtained before `[ledger] lock_timeout`; nothing changed.
    /// Exit 6.
    LockTimeout,
    /// A newer deploy of the same app and environment queued behind this one or finished while
    /// it waited, or the release is older than the live one; nothing changed. Exit 7.
    Superseded,
}

impl Outcome {
    /// `succeeded`, `failed`, `rolled_back`, `rollback_failed`, `unhealthy`, `aborted`,
    /// `lock_timeout`, `superseded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled_back",
            Outcome::RollbackFailed => "rollback_failed",
            Outcome::Unhealthy => "unhealthy",
            Outcome::Aborted => "aborted",
            Outcome::LockTimeout => "lock_timeout",
            Outcome::Superseded => "superseded",
        }
    }

    /// The outcome named by [`Outcome::as_str`], if any.
    pub fn parse(name: &str) -> Option<Outcome> {
        [
            Outcome::Succeeded,
            Outcome::Failed,
            Outcome::RolledBack,
            Outcome::RollbackFailed,
            Outcome::Unhealthy,
            Outcome::Aborted,
            Outcome::LockTimeout,
            Outcome::Superseded,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
    }

    /// The documented exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Succeeded => exit_code::OK,
            Outcome::Failed => exit_code::CHECK_FAILED,
            Outcome::RolledBack => exit_code::ROLLED_BACK,
            Outcome::RollbackFailed => exit_code::ROLLBACK_FAILED,
            Outcome::Unhealthy => exit_code::UNHEALTHY,
            Outcome::Aborted => exit_code::ABORTED,
            Outcome::LockTimeout => exit_code::LOCK_TIMEOUT,
            Outcome::Superseded => exit_code::SUPERSEDED,
        }
    }
}

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
            Verdict::Healthy => ("healthy", None, Vec::new()),
            Verdict::Failed {
                reason,
                diagnostics,
            } => ("failed", Some(reason.clone()), diagnostics.clone()),
            Verdict::TimedOut {
                waiting_for,
                diagnostics,
            } => (
                "timed_out",
                Some(format!("waiting for {waiting_for}")),
                diagnostics.clone(),
            ),
            Verdict::Cancelled => ("cancelled", None, Vec::new()),
        };
        TargetSummary {
            target: target.to_owned(),
            revision: deployment.revision.to_string(),
            verdict: word.to_owned(),
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
