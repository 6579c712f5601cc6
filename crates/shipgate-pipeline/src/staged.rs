//! The staged flows, blue-green and canary: every target stages the release beside the live
//! one; the smoke gate runs against the staged release before any user request reaches it;
//! then traffic moves (blue-green: all at once; canary: in steps, each followed by a pause and
//! an analysis), the gate runs again on the live release, and any failure moves traffic back
//! to the old release at once (it was never stopped). Promotion retires the old release.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shipgate_core::{DeploymentKind, DeploymentVerdict, ImageRef, ServiceName, StepResult};
use shipgate_ledger::now_ms;
use shipgate_provider::{DeployRequest, StageOutcome, Staged, TrafficObservation, Verdict};
use shipgate_smoke::SmokeRunner;
use tokio_util::sync::CancellationToken;

use super::{
    Outcome, PipelineEvent, Plan, Recorder, RollbackSummary, Strategy, TargetSummary, Throttle,
    describe_live, failing_checks, gate_detail, read_back, retrying, target_names, verdict_detail,
};
use crate::analysis;

/// Stages, gates before traffic, moves traffic (at once, or in canary steps with an analysis
/// after each), gates again, then promotes or aborts.
pub(super) async fn deploy(
    plan: &Plan,
    strategy: Strategy,
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
        // What an interrupted run left (orphaned green machines, a pending release) goes first.
        if let Err((outcome, why)) = super::recover(rec, target, request).await {
            let back = abort_all(plan, rec, &staged).await;
            return (outcome, format!("{why}; {back}"));
        }
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
                rec.deployed(&target.name, &from, &release.deployment, &Verdict::Healthy)
                    .await;
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
                rec.deployed(&target.name, &from, &deployment, &verdict)
                    .await;
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
        let Some(staged_spec) = staged_spec(plan, spec, &staged) else {
            let back = abort_all(plan, rec, &staged).await;
            return (
                Outcome::Failed,
                format!(
                    "no staged endpoint to test before traffic (the targets gave none); {back}"
                ),
            );
        };
        let (passed, failing, report) =
            run_gate(rec, runner, &staged_spec, "smoke before traffic", cancel).await;
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
            record_abort(rec, rec.summary.strategy, &why);
            return (
                Outcome::RolledBack,
                format!(
                    "{} {why}; no user request reached it; {back}",
                    plan.image_tag
                ),
            );
        }
    }

    // Traffic moves: all at once (blue-green), or step by step with an analysis after each
    // (canary).
    let canary = strategy == Strategy::Canary;
    let mut steps = if canary {
        plan.canary.steps.clone()
    } else {
        Vec::new()
    };
    if steps.last() != Some(&100) {
        steps.push(100);
    }
    let analysed = if canary { plan.canary.steps.len() } else { 0 };
    for (number, &percent) in steps.iter().enumerate() {
        let before = if number < analysed {
            Some(observe_all(plan, &staged).await)
        } else {
            None
        };
        let reached = match shift_all(plan, rec, &staged, percent).await {
            Ok(reached) => reached,
            Err(result) => return result,
        };
        let Some(before) = before else { continue };
        if !pause(plan, rec, percent, cancel).await {
            let back = abort_all(plan, rec, &staged).await;
            return (
                Outcome::Aborted,
                format!("interrupted during the canary step at {percent}%; {back}"),
            );
        }
        let mut step = analyse(plan, runner, &staged, percent, &before, cancel).await;
        step.reached = reached;
        let started = now_ms();
        rec.step(
            &format!("canary {percent}%"),
            started,
            StepResult::from_passed(step.passed),
            step.describe(),
        )
        .await;
        (rec.events)(&PipelineEvent::Analysed { step: step.clone() });
        let passed = step.passed;
        let why = format!(
            "the canary analysis at {percent}% failed: {}",
            step.describe()
        );
        rec.summary.canary.push(step);
        if cancel.is_cancelled() {
            let back = abort_all(plan, rec, &staged).await;
            return (
                Outcome::Aborted,
                format!("interrupted during the canary step at {percent}%; {back}"),
            );
        }
        if !passed {
            rec.failed_at = Some(Instant::now());
            let back = abort_all(plan, rec, &staged).await;
            record_abort(rec, rec.summary.strategy, &why);
            return (
                Outcome::RolledBack,
                format!("{} {why}; {back}", plan.image_tag),
            );
        }
    }

    // The post-traffic gate, as in a rolling deploy.
    if let Some(spec) = &plan.smoke {
        let (passed, failing, report) = run_gate(rec, runner, spec, "smoke", cancel).await;
        rec.summary.smoke = report;
        if !passed || cancel.is_cancelled() {
            rec.failed_at = Some(Instant::now());
            let why = if passed {
                "interrupted during the smoke gate".to_owned()
            } else {
                format!("smoke gate failed: {failing}")
            };
            let back = abort_all(plan, rec, &staged).await;
            record_abort(rec, rec.summary.strategy, &why);
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
    let how = if canary {
        // The shares the platform reached at each analysed step, then all traffic.
        let mut shares: Vec<String> = rec
            .summary
            .canary
            .iter()
            .map(|step| format!("{}%", step.reached))
            .collect();
        if rec
            .summary
            .canary
            .last()
            .is_none_or(|step| step.reached != 100)
        {
            shares.push("100%".to_owned());
        }
        format!("canary {}", shares.join(" → "))
    } else {
        "bluegreen".to_owned()
    };
    (
        Outcome::Succeeded,
        format!(
            "{} is live on {} ({how}){gated}",
            plan.image_tag,
            target_names(plan)
        ),
    )
}

/// Runs the smoke gate `spec` as step `name`: whether it passed, what failed, the report.
async fn run_gate(
    rec: &mut Recorder<'_>,
    runner: &mut SmokeRunner,
    spec: &shipgate_smoke::Spec,
    name: &str,
    cancel: &CancellationToken,
) -> (bool, String, Option<shipgate_smoke::SmokeReport>) {
    let started = now_ms();
    (rec.events)(&PipelineEvent::Smoke {
        checks: spec.len(),
        base_url: spec.base_url().to_string(),
    });
    let (passed, detail, failing, report) = match runner.run(spec, cancel).await {
        Ok(report) => (
            report.passed,
            gate_detail(&report),
            failing_checks(&report),
            Some(report),
        ),
        Err(err) => (false, err.to_string(), err.to_string(), None),
    };
    rec.step(name, started, StepResult::from_passed(passed), detail)
        .await;
    (passed, failing, report)
}

/// Moves `percent` of every staged target's new user traffic to its staged release, in
/// order; a failure aborts every staged target.
async fn shift_all(
    plan: &Plan,
    rec: &mut Recorder<'_>,
    staged: &[(usize, Staged)],
    percent: u8,
) -> Result<u8, (Outcome, String)> {
    let mut reached_everywhere = percent;
    for (index, release) in staged {
        let target = &plan.targets[*index];
        let started = now_ms();
        let name = if percent == 100 {
            format!("switch {}", target.name)
        } else {
            format!("shift {} to {percent}%", target.name)
        };
        match retrying(|| target.provider.shift(&release.deployment, percent)).await {
            Ok(_) if percent == 100 => {
                rec.step(
                    &name,
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
            Ok(reached) => {
                let near = if reached == percent {
                    String::new()
                } else {
                    format!(" (asked {percent}%: as near as the platform splits)")
                };
                rec.step(
                    &name,
                    started,
                    StepResult::Ok,
                    format!("{reached}% of new user traffic on the new release{near}, the rest on the previous one"),
                )
                .await;
                (rec.events)(&PipelineEvent::Shifted {
                    target: target.name.clone(),
                    percent: reached,
                });
                reached_everywhere = reached_everywhere.min(reached);
            }
            Err(err) => {
                rec.step(&name, started, StepResult::Failed, err.to_string())
                    .await;
                rec.failed_at = Some(Instant::now());
                let why = format!("{}: traffic could not move: {err}", target.name);
                let back = abort_all(plan, rec, staged).await;
                record_abort(rec, rec.summary.strategy, &why);
                return Err((Outcome::RolledBack, format!("{why}; {back}")));
            }
        }
    }
    Ok(reached_everywhere)
}

/// What every staged target has observed of user traffic so far (`None` per target that
/// cannot observe it; an error is kept to fail the analysis).
async fn observe_all(
    plan: &Plan,
    staged: &[(usize, Staged)],
) -> Vec<Result<Option<TrafficObservation>, String>> {
    let mut seen = Vec::new();
    for (index, release) in staged {
        let target = &plan.targets[*index];
        seen.push(
            retrying(|| target.provider.observe(&release.deployment))
                .await
                .map_err(|e| format!("{}: cannot read user traffic: {e}", target.name)),
        );
    }
    seen
}

/// Lets a canary step run for the configured pause, reporting the time left about every
/// 10 s. False when the run was interrupted.
async fn pause(plan: &Plan, rec: &Recorder<'_>, percent: u8, cancel: &CancellationToken) -> bool {
    let until = Instant::now() + plan.canary.pause;
    loop {
        let remaining = until.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return true;
        }
        (rec.events)(&PipelineEvent::Observing { percent, remaining });
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(remaining.min(Duration::from_secs(10))) => {}
        }
    }
}

/// A step's analysis: the smoke spec against the staged release, the user traffic since
/// `before`, and the metric.
async fn analyse(
    plan: &Plan,
    runner: &mut SmokeRunner,
    staged: &[(usize, Staged)],
    percent: u8,
    before: &[Result<Option<TrafficObservation>, String>],
    cancel: &CancellationToken,
) -> crate::CanaryStep {
    let smoke_passed = match plan
        .smoke
        .as_ref()
        .and_then(|spec| staged_spec(plan, spec, staged))
    {
        Some(spec) => Some(
            runner
                .run(&spec, cancel)
                .await
                .is_ok_and(|report| report.passed),
        ),
        None => None,
    };
    let after = observe_all(plan, staged).await;
    let mut traffic: Option<TrafficObservation> = None;
    let mut unreadable = Vec::new();
    for (earlier, now) in before.iter().zip(&after) {
        match (earlier, now) {
            (Ok(Some(earlier)), Ok(Some(now))) => {
                let step = now.since(earlier);
                let sum = traffic.get_or_insert_with(TrafficObservation::default);
                sum.staged.add(&step.staged);
                sum.stable.add(&step.stable);
            }
            (Err(why), _) | (_, Err(why)) => unreadable.push(why.clone()),
            _ => {}
        }
    }
    let metric = match &plan.canary.analysis.metric {
        Some(metric) => Some((metric.query(), metric.max(), metric.value(cancel).await)),
        None => None,
    };
    let mut step = analysis::judge(
        &plan.canary.analysis,
        percent,
        smoke_passed,
        traffic.as_ref(),
        metric,
    );
    if !unreadable.is_empty() {
        step.passed = false;
        step.notes.extend(unreadable);
    }
    step
}

/// The smoke spec aimed at the staged release's own endpoint (the first service's).
fn staged_spec(
    plan: &Plan,
    spec: &shipgate_smoke::Spec,
    staged: &[(usize, Staged)],
) -> Option<shipgate_smoke::Spec> {
    let endpoint = plan.images.iter().find_map(|(service, _)| {
        staged
            .iter()
            .find_map(|(_, release)| release.endpoints.get(service))
    })?;
    spec.at_origin(endpoint)
}

/// Puts every staged target's traffic back on the release that served before, last staged
/// first, and reads back what each runs. Returns what to say about it.
async fn abort_all(plan: &Plan, rec: &mut Recorder<'_>, staged: &[(usize, Staged)]) -> String {
    if staged.is_empty() {
        return "nothing else was staged".to_owned();
    }
    let mut said = Vec::new();
    let first_action_ms = rec.failed_at.map(elapsed_ms);
    for (index, release) in staged.iter().rev() {
        let target = &plan.targets[*index];
        let started = now_ms();
        (rec.events)(&PipelineEvent::Aborting {
            target: target.name.clone(),
        });
        let aborted = retrying(|| target.provider.abort(&release.deployment)).await;
        let seen = read_back(target).await;
        let what = describe_live(&seen, release.deployment.request.images.keys());
        // What users are back on, as read back: the summary's "to", and, after an abort that
        // returned, the ledger's rollback rows (what runs now, for the dashboard and the
        // next run).
        let back = seen.as_ref().ok().map(|now| {
            let mut back = release.deployment.clone();
            back.request.images = release
                .deployment
                .request
                .images
                .keys()
                .filter_map(|s| now.get(s).map(|i| (s.clone(), i.clone())))
                .collect::<BTreeMap<ServiceName, ImageRef>>();
            back
        });
        let mut summary = TargetSummary::new(
            &target.name,
            &release.deployment.request.images,
            back.as_ref().unwrap_or(&release.deployment),
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
                if let Some(back) = &back {
                    rec.deployment(
                        &target.name,
                        DeploymentKind::Rollback,
                        &release.deployment.request.images,
                        back,
                        DeploymentVerdict::Healthy,
                    )
                    .await;
                }
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
    // Every abort returned: users are back on the previous release.
    let traffic_back_ms = rec.failed_at.map(elapsed_ms);
    if let Some(rollback) = rec.summary.rollback.as_mut() {
        rollback.first_action_ms = rollback.first_action_ms.or(first_action_ms);
        rollback.traffic_back_ms = rollback.traffic_back_ms.or(traffic_back_ms);
    }
    format!(
        "traffic back on the previous release; read back, {}",
        said.join("; ")
    )
}

/// Milliseconds since `at`, to the microsecond.
fn elapsed_ms(at: Instant) -> f64 {
    (at.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// The abort's reasons in the summary's rollback section.
fn record_abort(rec: &mut Recorder<'_>, strategy: Strategy, why: &str) {
    let rollback = rec.summary.rollback.get_or_insert_with(|| {
        let mut rollback = RollbackSummary::declined(Vec::new());
        rollback.performed = true;
        rollback
    });
    rollback.reasons = vec![
        why.to_owned(),
        format!(
            "{}: traffic went back to the previous release at once (it was never stopped)",
            strategy.word()
        ),
    ];
}
