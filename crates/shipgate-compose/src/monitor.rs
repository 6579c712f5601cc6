//! The monitor's parts: `[[monitor.targets]]` as watch targets, the GitHub issue tracker for
//! alerts, and the inspector that shows what the deploy targets run in an alert's issue.

use std::time::Duration;

use shipgate_core::Environment;
use shipgate_monitor::alert::Thresholds;
use shipgate_monitor::watch::{Inspect, Inspection, IssueTracker, WatchTarget, health_check_spec};
use shipgate_pipeline::Target;
use shipgate_provider::{DeployRequest, Deployment};

use crate::{ComposeError, Composition};

/// Whether alerts can open GitHub issues, and why not.
#[derive(Debug)]
#[non_exhaustive]
pub enum IssueTrackerChoice {
    /// Alerts open issues in this repository.
    Tracker(IssueTracker),
    /// No repository is configured (`[github] repository`, GITHUB_REPOSITORY).
    NoRepository,
    /// No secret source has GITHUB_TOKEN.
    NoToken,
}

impl Composition {
    /// One watch target per `[[monitor.targets]]` entry: its health URL as a one-check spec,
    /// or the `[smoke]` spec (compiled once, with its API key from the secret sources).
    pub async fn watch_targets(&self) -> Result<Vec<WatchTarget>, ComposeError> {
        let config = self.config();
        let mut smoke_spec: Option<shipgate_smoke::Spec> = None;
        let mut targets = Vec::new();
        for (i, target) in config.monitor.targets.iter().enumerate() {
            let key = format!("monitor.targets.{i}");
            let environment = target
                .environment
                .clone()
                .or_else(|| config.environment.clone())
                .unwrap_or_else(|| "production".to_owned());
            let production_like = Environment::classify(Some(&environment))
                .kind()
                .is_prod_like();
            let schedule = target
                .schedule
                .parse()
                .map_err(|e| ComposeError::setup_caused(format!("{key}.schedule: {e}"), e))?;
            let spec = if let Some(url) = &target.url {
                health_check_spec(
                    url,
                    config.smoke.timeout.as_duration(),
                    config.smoke.allow_insecure,
                    production_like,
                )
                .map_err(|e| {
                    ComposeError::spec("a monitor target's health check is invalid", key, e)
                })?
            } else if let Some(spec) = &smoke_spec {
                spec.clone()
            } else {
                let spec = self.smoke_spec(production_like).await?;
                smoke_spec = Some(spec.clone());
                spec
            };
            targets.push(WatchTarget {
                name: target.name.clone(),
                environment,
                schedule,
                spec,
                thresholds: Thresholds {
                    open_after: target.open_after,
                    resolve_after: target.resolve_after,
                },
                issue_title: target.issue_title.clone(),
                issue_labels: target.issue_labels.clone(),
                comment_every: target.comment_every.as_duration(),
            });
        }
        Ok(targets)
    }

    /// The GitHub issue tracker for alerts, or why there is none.
    pub async fn issue_tracker(&self) -> Result<IssueTrackerChoice, ComposeError> {
        let config = self.config();
        let Some(repository) = config.github.repository.clone() else {
            return Ok(IssueTrackerChoice::NoRepository);
        };
        let Some(token) = self.github_token().await? else {
            return Ok(IssueTrackerChoice::NoToken);
        };
        let client = shipgate_github::GithubClient::new(&config.github.api_url, Some(token))
            .map_err(|e| ComposeError::setup_caused(e.to_string(), e))?;
        Ok(IssueTrackerChoice::Tracker(IssueTracker {
            client,
            repository,
        }))
    }

    /// The inspector of the enabled deploy targets (`None` when none is enabled): built as a
    /// deploy builds them, for the configured services, and only ever read.
    pub async fn inspector(&self) -> Result<Option<ProviderInspector>, ComposeError> {
        if self.config().targets.enabled().is_empty() {
            return Ok(None);
        }
        Ok(Some(ProviderInspector {
            environment: self.environment_name(),
            targets: self.targets(&self.services()).await?,
        }))
    }
}

/// Reads what each deploy target runs and its recent logs, for an alert's issue: built like
/// the deploy's targets, only ever read.
pub struct ProviderInspector {
    environment: String,
    targets: Vec<Target>,
}

impl std::fmt::Debug for ProviderInspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderInspector")
            .field("environment", &self.environment)
            .field("targets", &self.targets)
            .finish()
    }
}

/// A provider that does not answer within this is reported as unavailable.
/// How long a platform may take to say what runs, or to give its logs.
const INSPECTION_TIMEOUT: Duration = Duration::from_secs(20);

#[async_trait::async_trait]
impl Inspect for ProviderInspector {
    async fn inspect(&self, environment: &str) -> Inspection {
        let mut inspection = Inspection::default();
        if environment != self.environment {
            return inspection;
        }
        for target in &self.targets {
            let name = &target.name;
            let running =
                match tokio::time::timeout(INSPECTION_TIMEOUT, target.provider.current()).await {
                    Ok(Ok(running)) if !running.is_empty() => running,
                    Ok(Ok(_)) => {
                        inspection.running.push(format!("{name}: nothing running"));
                        continue;
                    }
                    Ok(Err(err)) => {
                        inspection
                            .running
                            .push(format!("{name}: unavailable ({err})"));
                        continue;
                    }
                    Err(_) => {
                        inspection.running.push(format!(
                            "{name}: no answer within {} s",
                            INSPECTION_TIMEOUT.as_secs()
                        ));
                        continue;
                    }
                };
            for r in &running {
                inspection.running.push(format!(
                    "{name}: {} = {} (revision {})",
                    r.service, r.image, r.revision
                ));
            }
            let deployment = Deployment {
                revision: running[0].revision.clone(),
                request: DeployRequest {
                    images: running
                        .iter()
                        .map(|r| (r.service.clone(), r.image.clone()))
                        .collect(),
                    description: "monitor".into(),
                },
            };
            match tokio::time::timeout(INSPECTION_TIMEOUT, target.provider.diagnostics(&deployment))
                .await
            {
                Ok(Ok(lines)) => {
                    let skip = lines.len().saturating_sub(MAX_LOG_LINES);
                    inspection
                        .logs
                        .extend(lines.into_iter().skip(skip).map(|l| format!("{name}: {l}")));
                }
                Ok(Err(err)) => inspection.logs.push(format!("{name}: no logs ({err})")),
                Err(_) => inspection.logs.push(format!(
                    "{name}: no logs within {} s",
                    INSPECTION_TIMEOUT.as_secs()
                )),
            }
        }
        inspection
    }
}

/// Log lines per target in an alert issue.
/// The newest log lines an issue shows, per target.
const MAX_LOG_LINES: usize = 40;
