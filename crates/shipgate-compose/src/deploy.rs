//! The deploy: a plan built from the configuration, run by the pipeline, reported to GitHub
//! and the notification channels; and the dry run that shows what it would do.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;
use shipgate_config::TargetKind;
use shipgate_pipeline::{Events, PipelineEvent, Plan, Summary, Target};
use shipgate_provider::{DeployRequest, PlannedChange, Revision};
use shipgate_rollback::ImageCheck;
use shipgate_smoke::SmokeRunner;
use tokio_util::sync::CancellationToken;

use crate::github_report::Reporter;
use crate::{ComposeError, Composition, Release};

/// Choices of one deploy beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// The run's id; `None`: a new one ([`run_id`]).
    pub run_id: Option<String>,
    /// Deploy even when the ledger says the release is older than the live one.
    pub allow_older: bool,
}

/// A new run id: the UTC time and a random-looking suffix, `20261123T101500Z-4f2a1c`.
pub fn run_id() -> String {
    let now = SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace(['-', ':'], "");
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{stamp}-{:06x}", (nanos ^ std::process::id()) & 0xff_ffff)
}

/// What a deploy would do, per target; nothing was changed to find out.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// The format's version.
    pub schema_version: u32,
    /// One entry per target, in deploy order.
    pub targets: Vec<TargetPlan>,
}

/// What a deploy would change on one target, and where a failure would roll back to.
#[derive(Debug, Clone, Serialize)]
pub struct TargetPlan {
    /// The target.
    pub target: String,
    /// Per service: what runs and what would.
    pub changes: Vec<PlannedChange>,
    /// The revision a failed release would roll back to, when one qualifies.
    pub rollback_candidate: Option<Revision>,
    /// Whether the candidate could be decided: `false` when the target's history could not
    /// be read (then no candidate is known, which is not the same as "none qualifies").
    pub rollback_candidate_known: bool,
    /// Why candidates were skipped, and what could not be read.
    pub rollback_reasons: Vec<String>,
}

impl Composition {
    /// The registry check of rollback candidates (`[rollback] verify_image`), when it applies:
    /// local images are process versions, not registry images, so a release with a local
    /// target has none.
    pub async fn image_check(&self) -> Result<Option<Box<dyn ImageCheck>>, ComposeError> {
        let config = self.config();
        if config.rollback.verify_image && !config.targets.enabled().contains(&TargetKind::Local) {
            self.registry_check().await.map(Some)
        } else {
            Ok(None)
        }
    }

    /// The canary of `[deploy]` (steps, pause) and `[analysis]` (thresholds, the Prometheus
    /// query when configured).
    pub fn canary(&self) -> Result<shipgate_pipeline::Canary, ComposeError> {
        let config = self.config();
        let analysis = &config.analysis;
        let metric = match &analysis.prometheus {
            Some(prometheus) => {
                let client = shipgate_http::build_client(&shipgate_http::ClientOptions::default())
                    .map_err(|e| ComposeError::setup_caused(e.to_string(), e))?;
                let query = shipgate_pipeline::PrometheusQuery::new(
                    client,
                    &prometheus.url,
                    prometheus.query.clone(),
                    prometheus.max,
                    prometheus.timeout.as_duration(),
                )
                .map_err(|e| {
                    ComposeError::setup(format!(
                        "[analysis.prometheus] url `{}` is not a URL: {e}",
                        shipgate_core::redact_userinfo(&prometheus.url)
                    ))
                })?;
                Some(Box::new(query) as Box<dyn shipgate_pipeline::MetricQuery>)
            }
            None => None,
        };
        Ok(shipgate_pipeline::Canary {
            steps: config.deploy.steps.clone(),
            pause: config.deploy.pause.as_duration(),
            analysis: shipgate_pipeline::Analysis {
                max_error_percent: analysis.max_error_percent,
                max_p95: analysis.max_p95.map(|d| d.as_duration()),
                min_requests: analysis.min_requests,
                metric,
            },
        })
    }

    /// The registry check; GHCR is asked with GITHUB_TOKEN (it accepts the workflow's token
    /// for pulls of the repository's packages), other registries anonymously.
    pub async fn registry_check(&self) -> Result<Box<dyn ImageCheck>, ComposeError> {
        let logins = match self.github_token().await? {
            Some(token) => vec![shipgate_rollback::RegistryLogin {
                host: "ghcr.io".into(),
                username: self
                    .actions()
                    .actor
                    .clone()
                    .unwrap_or_else(|| "shipgate".into()),
                password: token,
            }],
            None => Vec::new(),
        };
        shipgate_rollback::OciRegistry::new(logins, self.redactor().clone())
            .map(|r| Box::new(r) as Box<dyn ImageCheck>)
            .map_err(|e| ComposeError::setup_caused(e.to_string(), e))
    }

    /// The pipeline's plan for `release`: the targets connected, the smoke gate compiled, the
    /// check-env step run, the CI gate and the migration set up, the rollback's image check.
    /// Nothing is changed on any target.
    pub async fn plan(
        &self,
        release: &Release,
        options: &DeployOptions,
    ) -> Result<Plan, ComposeError> {
        let config = self.config();
        let targets = self.targets(&release.services).await?;
        let image_check = self.image_check().await?;
        let production_like = release.environment.kind().is_prod_like();
        let smoke = if config.smoke.enabled {
            Some(self.smoke_spec(production_like).await?)
        } else {
            None
        };
        let run_id = options.run_id.clone().unwrap_or_else(run_id);
        let migration = self.migration(release, &run_id).await?;
        let ci_gate = self.ci_gate(release).await?;
        // check-env first (seed 002's check-prod-env): a failure stops the run, nothing changed.
        let check_env = self.preflight().await?;
        Ok(Plan {
            run_id,
            app: self.app(),
            environment: self.environment_name(),
            image_tag: release.tag.clone(),
            images: release.images.clone(),
            targets,
            smoke,
            preflight: vec![check_env],
            ci_gate,
            migration,
            redactor: self.redactor().clone(),
            auto_rollback: config.rollback.auto,
            smoke_after_rollback: config.rollback.smoke,
            image_check,
            owner: self.actions().owner(),
            host: self.options.host.clone(),
            pid: self.options.pid,
            lock_timeout: config.ledger.lock_timeout.as_duration(),
            lock_ttl: config.ledger.lock_ttl.as_duration(),
            commit_ms: self.actions().commit_time_ms(&release.tag),
            allow_older: options.allow_older,
            strategy: match config.deploy.strategy {
                shipgate_config::DeployStrategy::Rolling => shipgate_pipeline::Strategy::Rolling,
                shipgate_config::DeployStrategy::Bluegreen => {
                    shipgate_pipeline::Strategy::Bluegreen
                }
                shipgate_config::DeployStrategy::Canary => shipgate_pipeline::Strategy::Canary,
            },
            canary: self.canary()?,
            links: self.actions().links(&release.tag),
        })
    }

    /// The CI gate of `[ci_gate]`, when enabled: the commit's required checks must pass.
    async fn ci_gate(
        &self,
        release: &Release,
    ) -> Result<Option<shipgate_pipeline::CiGate>, ComposeError> {
        let config = self.config();
        if !config.ci_gate.enabled {
            return Ok(None);
        }
        let repository = config.github.repository.clone().ok_or_else(|| {
            ComposeError::setup(
                "the CI gate ([ci_gate] enabled) needs the repository: set [github] repository or GITHUB_REPOSITORY",
            )
        })?;
        let sha = self.actions().full_sha(&release.tag).ok_or_else(|| {
            ComposeError::setup(
                "the CI gate needs the full 40-character commit SHA: set GITHUB_SHA, or deploy a full SHA as the image tag",
            )
        })?;
        Ok(Some(shipgate_pipeline::CiGate {
            client: self.github_client().await?,
            repository,
            sha,
            spec: shipgate_github::GateSpec {
                required: config.ci_gate.required_checks.clone(),
                allow_neutral: config.ci_gate.allow_neutral,
                allow_skipped: config.ci_gate.allow_skipped,
                timeout: config.ci_gate.timeout.as_duration(),
                interval: config.ci_gate.interval.as_duration(),
            },
        }))
    }

    /// The migration of `[migrate]`, when configured: a command here with its secrets, or a
    /// Kubernetes Job running the release's image.
    async fn migration(
        &self,
        release: &Release,
        run_id: &str,
    ) -> Result<Option<shipgate_pipeline::Migration>, ComposeError> {
        let Some(migrate) = &self.config().migrate else {
            return Ok(None);
        };
        if migrate.kubernetes.is_some() && !migrate.secrets.is_empty() {
            return Err(ComposeError::setup(
                "[migrate] secrets are for command migrations; a Kubernetes Job gets its secrets from the cluster: set [migrate.kubernetes] env_from_secret to a Secret's name",
            ));
        }
        let mut env = Vec::new();
        for name in &migrate.secrets {
            match self.secrets()?.resolve(name).await {
                shipgate_secrets::Resolution::Found { secret, .. } => {
                    self.redactor().add(&secret);
                    env.push((name.clone(), secret));
                }
                shipgate_secrets::Resolution::Missing { searched } => {
                    return Err(ComposeError::setup(format!(
                        "the migration needs secret {name}, which no source has (searched: {})",
                        searched.join(", ")
                    )));
                }
                shipgate_secrets::Resolution::SourceFailed { source, reason } => {
                    return Err(ComposeError::setup(format!(
                        "the migration's secret {name} could not be read from {source}: {reason}"
                    )));
                }
            }
        }
        let image = release
            .images
            .first()
            .map(|(_, image)| image.to_string())
            .unwrap_or_default();
        let argv = substitute(&migrate.command, &image, &release.tag);
        let job = match &migrate.kubernetes {
            Some(job) => Some(
                self.kubernetes_job(job, argv.clone(), &image, run_id)
                    .await?,
            ),
            None => None,
        };
        Ok(Some(shipgate_pipeline::Migration {
            argv,
            env,
            timeout: migrate.timeout.as_duration(),
            job,
        }))
    }

    /// The migration Job: named after the app and run (DNS-1123, at most 63 characters), in
    /// the Helm namespace by default, running the release's image.
    #[cfg(feature = "helm")]
    async fn kubernetes_job(
        &self,
        job: &shipgate_config::MigrateJobConfig,
        command: Vec<String>,
        image: &str,
        run_id: &str,
    ) -> Result<Box<dyn shipgate_provider::MigrationJob>, ComposeError> {
        let config = self.config();
        let app = self.app();
        let namespace = job
            .namespace
            .clone()
            .or_else(|| config.targets.helm.namespace.clone())
            .unwrap_or_else(|| app.clone());
        let kubeconfig = self.kubeconfig_yaml()?;
        let job = shipgate_helm::KubernetesJob::new(
            kubeconfig.as_deref(),
            config.targets.helm.context.as_deref(),
            &namespace,
            &job_name(&app, run_id),
            job.image.as_deref().unwrap_or(image),
            command,
            job.env_from_secret.clone(),
        )
        .await
        .map_err(|e| ComposeError::setup(format!("[migrate.kubernetes]: {e}")))?;
        Ok(Box::new(job))
    }

    #[cfg(not(feature = "helm"))]
    async fn kubernetes_job(
        &self,
        _job: &shipgate_config::MigrateJobConfig,
        _command: Vec<String>,
        _image: &str,
        _run_id: &str,
    ) -> Result<Box<dyn shipgate_provider::MigrationJob>, ComposeError> {
        Err(ComposeError::setup(
            "[migrate.kubernetes] needs the `helm` feature of shipgate-compose",
        ))
    }

    /// Deploys `release` as `shipgate deploy` does: the plan, then the pipeline (lock, CI gate,
    /// migration, rollout, verdicts, smoke gate, rollback), the GitHub deployment and PR
    /// comment, and the notifications. Events go to `events` as they happen; `cancel` stops
    /// the run cleanly (an `aborted` outcome, with what each target runs read back).
    ///
    /// `Err` only when the deploy could not start (nothing was changed); every run that
    /// started ends in a [`Summary`], whatever its outcome.
    pub async fn deploy(
        &self,
        release: &Release,
        options: &DeployOptions,
        events: Events<'_>,
        cancel: &CancellationToken,
    ) -> Result<Summary, ComposeError> {
        let mut plan = self.plan(release, options).await?;
        let notifier = self.notifier().await?;
        let config = self.config();
        let reporting = if config.notify.github_deployments || config.notify.github_pr_comment {
            let sha = self.actions().full_sha(&release.tag).ok_or_else(|| {
                ComposeError::setup(
                    "[notify] github_deployments / github_pr_comment need the full 40-character commit SHA: set GITHUB_SHA, or deploy a full SHA as the image tag",
                )
            })?;
            Some((self.github_client().await?, sha))
        } else {
            None
        };
        let warn = |message: String| events(&PipelineEvent::Warning { message });
        let reporter = match reporting {
            Some((client, sha)) => Some(
                Reporter::start(
                    config,
                    client,
                    sha,
                    plan.environment.clone(),
                    release.environment.kind().is_prod_like(),
                    self.actions(),
                    &warn,
                )
                .await?,
            ),
            None => None,
        };
        plan.links
            .extend(reporter.as_ref().and_then(Reporter::link));
        let ledger = self.ledger().await?;
        let mut runner = SmokeRunner::new(self.redactor().clone())
            .map_err(|e| ComposeError::setup_caused(e.to_string(), e))?;
        let mut summary =
            shipgate_pipeline::run(&plan, &ledger, &mut runner, events, cancel).await?;
        if let Some(reporter) = &reporter {
            let markdown = self.redactor().redact(&summary.to_markdown()).into_owned();
            if let Some(pr) = reporter.finish(&summary, &markdown, &warn).await {
                // The pull request is known once the comment is posted: the stored summary
                // (the dashboard's run page) gets its link too.
                summary.links.push(pr);
                if let Ok(json) = serde_json::to_string(&summary)
                    && let Err(err) = ledger
                        .record_summary(&summary.run_id, &self.redactor().redact(&json))
                        .await
                {
                    warn(format!(
                        "the summary's pull request link was not stored: {err}"
                    ));
                }
            }
        }
        if let Some(notifier) = &notifier {
            let notification = self.notification(&summary);
            crate::after_deploy(notifier, &ledger, &notification, &warn).await;
        }
        Ok(summary)
    }

    /// What deploying `release` would change on each target, and the rollback candidate the
    /// real run would choose if it failed (the same choice:
    /// [`shipgate_rollback::choose_revision`], with the ledger's gate verdicts and the
    /// registry check). Changes nothing.
    pub async fn dry_run(&self, release: &Release) -> Result<DryRun, ComposeError> {
        let targets = self.targets(&release.services).await?;
        let image_check = self.image_check().await?;
        let request = DeployRequest {
            images: release.images.iter().cloned().collect::<BTreeMap<_, _>>(),
            description: "dry run".into(),
        };
        let ledger = self.ledger().await;
        let record = ledger
            .as_ref()
            .ok()
            .map(|ledger| shipgate_rollback::LedgerVerdicts {
                ledger: ledger.clone(),
                app: self.app(),
                environment: self.environment_name(),
            });
        let mut plans = Vec::new();
        for target in &targets {
            plans.push(
                plan_target(
                    target,
                    &request,
                    ledger.as_ref().err(),
                    record
                        .as_ref()
                        .map(|r| r as &dyn shipgate_rollback::GateRecord),
                    image_check.as_deref(),
                )
                .await?,
            );
        }
        Ok(DryRun {
            schema_version: 1,
            targets: plans,
        })
    }
}

async fn plan_target(
    target: &Target,
    request: &DeployRequest,
    ledger_error: Option<&ComposeError>,
    record: Option<&dyn shipgate_rollback::GateRecord>,
    image_check: Option<&dyn ImageCheck>,
) -> Result<TargetPlan, ComposeError> {
    let changes = target
        .provider
        .plan(request)
        .await
        .map_err(|e| ComposeError::setup_caused(format!("{}: {e}", target.name), e))?;
    let mut reasons = Vec::new();
    if let Some(err) = ledger_error {
        reasons.push(format!(
            "ledger unavailable ({err}); the platform's statuses alone decide"
        ));
    }
    let (history, known) = match target.provider.history().await {
        Ok(history) => (history, true),
        Err(err) => {
            reasons.push(format!("{}: cannot read history: {err}", target.name));
            (Vec::new(), false)
        }
    };
    let live = match target.provider.current().await {
        Ok(running) => running.into_iter().next().map(|r| r.revision),
        Err(err) => {
            reasons.push(format!("{}: cannot read what runs: {err}", target.name));
            None
        }
    };
    let choice = shipgate_rollback::choose_revision(
        shipgate_rollback::rollback_candidates(&history, None, live.as_ref()),
        &target.name,
        record,
        image_check,
    )
    .await;
    reasons.extend(choice.reasons);
    Ok(TargetPlan {
        target: target.name.clone(),
        changes,
        rollback_candidate: choice.chosen,
        rollback_candidate_known: known,
        rollback_reasons: reasons,
    })
}

/// `{image}` and `{tag}` in a command's arguments.
fn substitute(argv: &[String], image: &str, tag: &str) -> Vec<String> {
    argv.iter()
        .map(|a| a.replace("{image}", image).replace("{tag}", tag))
        .collect()
}

/// `APP-migrate-RUN`, lowercased, other characters as `-`, at most 63 characters (DNS-1123).
#[cfg_attr(not(feature = "helm"), allow(dead_code))]
fn job_name(app: &str, run_id: &str) -> String {
    let mut name: String = format!("{app}-migrate-{run_id}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shipgate_provider::{MockProvider, ProviderError};

    /// A dry run whose target cannot read its history says the rollback candidate is
    /// unknown, and why; it never reports "none" as if none qualified.
    #[tokio::test]
    async fn a_history_that_cannot_be_read_makes_the_candidate_unknown_not_none() {
        let mut provider = MockProvider::new();
        provider.expect_plan().returning(|_| Ok(Vec::new()));
        provider
            .expect_history()
            .returning(|| Err(ProviderError::unavailable("503 from the API server")));
        provider.expect_current().returning(|| Ok(Vec::new()));
        let target = Target {
            name: "helm".into(),
            provider: Box::new(provider),
            timeout: std::time::Duration::from_secs(5),
        };
        let request = DeployRequest {
            images: BTreeMap::new(),
            description: "dry run".into(),
        };
        let plan = plan_target(&target, &request, None, None, None)
            .await
            .unwrap();
        assert!(plan.rollback_candidate.is_none());
        assert!(!plan.rollback_candidate_known);
        assert!(
            plan.rollback_reasons
                .iter()
                .any(|r| r.contains("cannot read history") && r.contains("503")),
            "{:?}",
            plan.rollback_reasons
        );
    }

    #[test]
    fn job_names_are_dns_labels() {
        let name = job_name("Shop_API", "20261123T101500Z-4f2a1c");
        assert_eq!(name, "shop-api-migrate-20261123t101500z-4f2a1c");
        let long = job_name(&"a".repeat(80), "r");
        assert!(long.len() <= 63 && !long.ends_with('-'));
    }

    #[test]
    fn run_ids_are_time_ordered_text() {
        let id = run_id();
        assert_eq!(id.len(), "20261123T101500Z-4f2a1c".len());
        assert!(id.as_bytes()[8] == b'T' && id.contains("Z-"));
    }
}
