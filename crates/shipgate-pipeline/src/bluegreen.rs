//! The blue-green flow: every target stages the release beside the live one; the smoke gate
//! runs against the staged release before any user request reaches it; then traffic moves,
//! the gate runs again on the live release, and a failure moves traffic back to the old
//! release at once (it was never stopped). Promotion retires the old release.

use std::collections::BTreeMap;
use std::time::Instant;

use shipgate_core::{DeploymentKind, ImageRef, ServiceName, StepResult};
use shipgate_ledger::now_ms;
use shipgate_provider::{DeployRequest, StageOutcome, Staged, Verdict};
use shipgate_smoke::SmokeRunner;
use tokio_util::sync::CancellationToken;

use super::{
    Outcome, PipelineEvent, Plan, Recorder, RollbackSummary, TargetSummary, Throttle,
    describe_live, failing_checks, gate_detail, read_back, retrying, target_names, verdict_detail,
    verdict_word,
};

/// Stages, gates before traffic, switches, gates again, then promotes or aborts.
pub(super) async fn deploy(
    plan: &Plan,
    rec: &mut Recorder<'_>,
    runner: &mut SmokeRunner,
    request: &DeployRequest,
    cancel: &CancellationToken,
) -> (Outcome, String) {
    let mut staged: Vec<(usize, Staged)> = Vec::new();
    for (index, target) in plan.targets.iter().enumerate() {
        let started = now_ms();
        let from: BTreeMap<ServiceName, ImageRef> = match target.provider.current().await {
            Ok(running) => running.into_iter().map(|r| (r.service, r.image)).collect(),
            Err(err) => {
                let why = format!("{}: cannot read what runs: {err}", target.name);
                rec.step(
                    &format!("stage {}", target.name),
                    started,
                    StepResult::Failed,
                    why.clone(),
                )
                .await;
                let back = abort_all(plan, rec, &staged).await;
                return (Outcome::Failed, format!("{why}; {back}"));
            }
        };
        (rec.events)(&PipelineEvent::Deploying {
            target: target.name.clone(),
            images: format!(
                "{} (staged beside the live release, no user traffic)",
                shipgate_rollback::describe_images(&request.images)
            ),
        });
        let throttle = Throttle::new(rec.events);
        let progress = |p: &shipgate_provider::WaitProgress| {
            throttle.report(&target.name, "staging", p);
        };
        let outcome = target
            .provider
            .stage(request, Instant::now() + target.timeout, &progress, cancel)
            .await;
        match outcome {
            Ok(StageOutcome::Staged(release)) => {
                rec.deployment(
                    &target.name,
                    DeploymentKind::Deploy,
                    &from,
                    &release.deployment,
                    verdict_word(&Verdict::Healthy),
                )
                .await;
                rec.summary.targets.push(TargetSummary::new(
                    &target.name,
                    &from,
                    &release.deployment,
                    &Verdict::Healthy,
                ));
                let endpoints: Vec<String> = release
                    .endpoints
                    .iter()
                    .map(|(service, url)| format!("{service} at {url}"))
                    .collect();
                rec.step(
                    &format!("stage {}", target.name),
                    started,
                    StepResult::Ok,
                    format!(
                        "healthy beside the live release, no user traffic: {}",
                        endpoints.join(", ")
                    ),
                )
                .await;
                staged.push((index, release));
            }
            Ok(StageOutcome::NotHealthy(deployment, verdict)) => {
                rec.deployment(
                    &target.name,
                    DeploymentKind::Deploy,
                    &from,
                    &deployment,
                    verdict_word(&verdict),
                )
                .await;
                rec.summary.targets.push(TargetSummary::new(
                    &target.name,
                    &from,
                    &deployment,
                    &verdict,
                ));
                rec.step(
                    &format!("stage {}", target.name),
                    started,
                    StepResult::Failed,
                    verdict_detail(&verdict),
                )
                .await;
                let seen = read_back(target).await;
                if let Some(summary) = rec.summary.targets.last_mut() {
                    summary.set_read_back(&seen);
                }
                let back = abort_all(plan, rec, &staged).await;
                let outcome = if verdict == Verdict::Cancelled {
                    Outcome::Aborted
                } else {
                    Outcome::Failed
                };
                return (
                    outcome,
                    format!(
                        "{}: the new release did not become healthy ({}); no user request reached it; read back, it runs {}; {back}",
                        target.name,
                        verdict_detail(&verdict),
                        describe_live(&seen, deployment.request.images.keys())
                    ),
                );
            }
            Err(err) => {
                rec.step(
                    &format!("stage {}", target.name),
                    started,
                    StepResult::Failed,
                    err.to_string(),
                )
                .await;
                let back = abort_all(plan, rec, &staged).await;
                return (
                    Outcome::Failed,
                    format!("{}: staging refused: {err}; {back}", target.name),
                );
            }
        }
    }

    // The pre-traffic gate: the smoke spec against the staged release's own endpoint.
    if let Some(spec) = &plan.smoke {
        let endpoint = plan.images.iter().find_map(|(service, _)| {
            staged
                .iter()
                .find_map(|(_, release)| release.endpoints.get(service))
        });
        let Some(staged_spec) = endpoint.and_then(|url| spec.at_origin(url)) else {
            let back = abort_all(plan, rec, &staged).await;
            return (
                Outcome::Failed,
                format!(
                    "no staged endpoint to test before traffic (the targets gave none); {back}"
                ),
            );
        };
        let started = now_ms();
        (rec.events)(&PipelineEvent::Smoke {
            checks: staged_spec.len(),
            base_url: staged_spec.base_url().to_string(),
        });
        let report = runner.run(&staged_spec, cancel).await;
        let (passed, detail, failing, report) = match report {
            Ok(report) => (
                report.passed,
                gate_detail(&report),
                failing_checks(&report),
                Some(report),
            ),
            Err(err) => (false, err.to_string(), err.to_string(), None),
        };
        rec.step(
            "smoke before traffic",
            started,
            StepResult::from_passed(passed),
            detail,
        )
        .await;
        rec.summary.smoke_before_traffic = report;
        if cancel.is_cancelled() {
            let back = abort_all(plan, rec, &staged).await;
            return (
                Outcome::Aborted,
                format!("interrupted before traffic moved; {back}"),
            );
        }
        if !passed {
            rec.failed_at = Some(Instant::now());
            let why = format!("smoke gate failed on the staged release: {failing}");
            let back = abort_all(plan, rec, &staged).await;
            record_abort(rec, &why);
            return (
                Outcome::RolledBack,
                format!(
                    "{} {why}; no user request reached it; {back}",
                    plan.image_tag
                ),
            );
        }
    }

    // Traffic moves, all at once per target.
    for (index, release) in &staged {
        let target = &plan.targets[*index];
        let started = now_ms();
        let shifted = retrying(|| target.provider.shift(&release.deployment, 100)).await;
        match shifted {
            Ok(()) => {
                rec.step(
                    &format!("switch {}", target.name),
                    started,
                    StepResult::Ok,
                    "all new user traffic on the new release; the previous one still runs"
                        .to_owned(),
                )
                .await;
                (rec.events)(&PipelineEvent::Switched {
                    target: target.name.clone(),
                    revision: release.deployment.revision.to_string(),
                });
            }
            Err(err) => {
                rec.step(
                    &format!("switch {}", target.name),
                    started,
                    StepResult::Failed,
                    err.to_string(),
                )
                .await;
                let why = format!("{}: traffic could not move: {err}", target.name);
                let back = abort_all(plan, rec, &staged).await;
                record_abort(rec, &why);
                return (Outcome::RolledBack, format!("{why}; {back}"));
            }
        }
    }

    // The post-traffic gate, as in a rolling deploy.
    if let Some(spec) = &plan.smoke {
        let started = now_ms();
        (rec.events)(&PipelineEvent::Smoke {
            checks: spec.len(),
            base_url: spec.base_url().to_string(),
        });
        let report = runner.run(spec, cancel).await;
        let (passed, detail, failing, report) = match report {
            Ok(report) => (
                report.passed,
                gate_detail(&report),
                failing_checks(&report),
                Some(report),
            ),
            Err(err) => (false, err.to_string(), err.to_string(), None),
        };
        rec.step("smoke", started, StepResult::from_passed(passed), detail)
            .await;
        rec.summary.smoke = report;
        if !passed || cancel.is_cancelled() {
            rec.failed_at = Some(Instant::now());
            let why = if passed {
                "interrupted during the smoke gate".to_owned()
            } else {
                format!("smoke gate failed: {failing}")
            };
            let back = abort_all(plan, rec, &staged).await;
            record_abort(rec, &why);
            let outcome = if cancel.is_cancelled() {
                Outcome::Aborted
            } else {
                Outcome::RolledBack
            };
            return (outcome, format!("{} {why}; {back}", plan.image_tag));
        }
    }

    // Promotion: the previous release is retired.
    for (index, release) in &staged {
        let target = &plan.targets[*index];
        let started = now_ms();
        match retrying(|| target.provider.promote(&release.deployment)).await {
            Ok(()) => {
                rec.step(
                    &format!("promote {}", target.name),
                    started,
                    StepResult::Ok,
                    "the previous release is retired".to_owned(),
                )
                .await;
            }
            Err(err) => {
                // Users are on the new release; only the retirement of the old one failed.
                rec.step(
                    &format!("promote {}", target.name),
                    started,
                    StepResult::Failed,
                    err.to_string(),
                )
                .await;
                (rec.events)(&PipelineEvent::Warning {
                    message: format!(
                        "{}: the previous release could not be retired: {err}",
                        target.name
                    ),
                });
            }
        }
    }
    let gated = if plan.smoke.is_some() {
        " and passed the smoke gate before traffic and again live"
    } else {
        ""
    };
    (
        Outcome::Succeeded,
        format!(
            "{} is live on {} (bluegreen){gated}",
            plan.image_tag,
            target_names(plan)
        ),
    )
}

/// Puts every staged target's traffic back on the release that served before, last staged
/// first, and reads back what each runs. Returns what to say about it.
async fn abort_all(plan: &Plan, rec: &mut Recorder<'_>, staged: &[(usize, Staged)]) -> String {
    if staged.is_empty() {
        return "nothing else was staged".to_owned();
    }
    let mut said = Vec::new();
    for (index, release) in staged.iter().rev() {
        let target = &plan.targets[*index];
        let started = now_ms();
        (rec.events)(&PipelineEvent::Aborting {
            target: target.name.clone(),
        });
        let aborted = retrying(|| target.provider.abort(&release.deployment)).await;
        let seen = read_back(target).await;
        let what = describe_live(&seen, release.deployment.request.images.keys());
        let mut summary = TargetSummary::new(
            &target.name,
            &release.deployment.request.images,
            &release.deployment,
            &Verdict::Healthy,
        );
        summary.set_read_back(&seen);
        rec.summary
            .rollback
            .get_or_insert_with(|| {
                let mut rollback = RollbackSummary::declined(Vec::new());
                rollback.performed = true;
                rollback
            })
            .targets
            .push(summary);
        match aborted {
            Ok(()) => {
                rec.step(
                    &format!("abort {}", target.name),
                    started,
                    StepResult::Ok,
                    format!("traffic back on the previous release; read back: {what}"),
                )
                .await;
                (rec.events)(&PipelineEvent::Aborted {
                    target: target.name.clone(),
                    read_back: what.clone(),
                });
                said.push(format!("{}: {what}", target.name));
            }
            Err(err) => {
                rec.step(
                    &format!("abort {}", target.name),
                    started,
                    StepResult::Failed,
                    format!("{err}; read back: {what}"),
                )
                .await;
                said.push(format!(
                    "{}: the abort failed ({err}); read back, it runs {what}",
                    target.name
                ));
            }
        }
    }
    format!(
        "traffic back on the previous release; read back, {}",
        said.join("; ")
    )
}

/// The abort's reasons in the summary's rollback section.
fn record_abort(rec: &mut Recorder<'_>, why: &str) {
    let rollback = rec.summary.rollback.get_or_insert_with(|| {
        let mut rollback = RollbackSummary::declined(Vec::new());
        rollback.performed = true;
        rollback
    });
    rollback.reasons = vec![
        why.to_owned(),
        "bluegreen: traffic went back to the previous release at once (it was never stopped)"
            .to_owned(),
    ];
}
