//! `shipgate doctor`: everything a deploy will need, checked with read-only calls.

use std::time::{Duration, Instant};

use serde::Serialize;
use shipgate_config::RailwaySource;

use crate::Composition;

/// How one doctor check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// What a deploy needs is there.
    Ok,
    /// A deploy would fail here.
    Failed,
    /// Not checked: not configured, or an earlier check failed first.
    Skipped,
}

/// One line of `shipgate doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorCheck {
    /// What was checked (`environment`, `release`, `ledger`, `target railway`, `registry`,
    /// `github`, `smoke target`).
    pub name: String,
    /// How it ended.
    pub status: CheckStatus,
    /// What was found, or what is wrong (redacted).
    pub detail: String,
    /// How to fix it, for a failed check.
    pub fix: Option<String>,
}

impl DoctorCheck {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> DoctorCheck {
        DoctorCheck {
            name: name.into(),
            status: CheckStatus::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn failed(name: impl Into<String>, detail: impl Into<String>, fix: &str) -> DoctorCheck {
        DoctorCheck {
            name: name.into(),
            status: CheckStatus::Failed,
            detail: detail.into(),
            fix: Some(fix.to_owned()),
        }
    }

    fn skipped(name: impl Into<String>, detail: impl Into<String>) -> DoctorCheck {
        DoctorCheck {
            name: name.into(),
            status: CheckStatus::Skipped,
            detail: detail.into(),
            fix: None,
        }
    }
}

/// How long the smoke target and GitHub may take to answer one doctor request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

impl Composition {
    /// Checks, with read-only calls, what a deploy of this configuration will need: the
    /// environment (check-env), the release, the ledger, each target (its token resolves the
    /// project, app or cluster and reads what runs), the registry tags, GitHub's check runs
    /// when the CI gate is on, and that the smoke target answers. Every check runs, so one
    /// report names every problem; messages are redacted.
    pub async fn doctor(&self) -> Vec<DoctorCheck> {
        let mut checks = Vec::new();
        let redact = |text: String| self.redactor().redact(&text).into_owned();

        checks.push(match self.preflight().await {
            Ok(preflight) if preflight.passed => DoctorCheck::ok("environment", preflight.detail),
            Ok(preflight) => DoctorCheck::failed(
                "environment",
                redact(preflight.detail),
                "set the variables (or their secret sources); `shipgate check-env` prints each with why and how",
            ),
            Err(err) => DoctorCheck::failed(
                "environment",
                redact(err.to_string()),
                "fix [env] in the configuration",
            ),
        });

        let release = self.release();
        checks.push(match &release {
            Ok(release) => DoctorCheck::ok(
                "release",
                format!(
                    "{} to {}: {}",
                    release.tag,
                    release.environment,
                    release
                        .images
                        .iter()
                        .map(|(s, i)| format!("{s} {i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Err(err) => DoctorCheck::failed(
                "release",
                redact(err.to_string()),
                "enable a target and set the tag (image_tag, IMAGE_TAG or GITHUB_SHA) to a commit SHA",
            ),
        });

        checks.push(match self.ledger().await {
            Ok(_) => DoctorCheck::ok("ledger", "opens and is migrated"),
            Err(err) => DoctorCheck::failed(
                "ledger",
                redact(err.to_string()),
                "point [ledger] url (SHIPGATE_LEDGER__URL) at a database this job can open",
            ),
        });

        match &release {
            Ok(release) => self.doctor_targets(release, &mut checks).await,
            Err(_) => checks.push(DoctorCheck::skipped(
                "targets",
                "no release to plan (see `release`)",
            )),
        }
        if let Ok(release) = &release {
            checks.push(self.doctor_registry(release).await);
        }
        checks.push(self.doctor_github().await);
        checks.push(self.doctor_smoke().await);
        for check in &mut checks {
            check.detail = redact(std::mem::take(&mut check.detail));
        }
        checks
    }

    async fn doctor_targets(&self, release: &crate::Release, checks: &mut Vec<DoctorCheck>) {
        let targets = match self.targets(&release.services).await {
            Ok(targets) => targets,
            Err(err) => {
                let fix = if err.is_unavailable() {
                    "the platform did not answer: check its status and the network, then run doctor again"
                } else {
                    "the message names the setting; check the target's token, project or app, and [targets] in the configuration"
                };
                checks.push(DoctorCheck::failed("targets", err.to_string(), fix));
                return;
            }
        };
        for target in targets {
            let name = format!("target {}", target.name);
            checks.push(match target.provider.current().await {
                Ok(running) if running.is_empty() => DoctorCheck::ok(
                    name,
                    "reachable with this token; nothing runs yet (the first deploy has no rollback candidate)",
                ),
                Ok(running) => DoctorCheck::ok(
                    name,
                    format!(
                        "reachable with this token; runs {}",
                        running
                            .iter()
                            .map(|r| format!("{} {}", r.service, r.image))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                Err(err) => DoctorCheck::failed(
                    name,
                    err.to_string(),
                    "the token must be able to read what the service runs (see docs/providers/)",
                ),
            });
        }
    }

    async fn doctor_registry(&self, release: &crate::Release) -> DoctorCheck {
        let config = self.config();
        let enabled = config.targets.enabled();
        if enabled.contains(&shipgate_config::TargetKind::Local) {
            return DoctorCheck::skipped("registry", "local releases are processes, not images");
        }
        if enabled == [shipgate_config::TargetKind::Railway]
            && config.targets.railway.source == RailwaySource::Repo
        {
            return DoctorCheck::skipped(
                "registry",
                "Railway builds the commit from the repository",
            );
        }
        let check = match self.registry_check().await {
            Ok(check) => check,
            Err(err) => {
                return DoctorCheck::failed(
                    "registry",
                    err.to_string(),
                    "set the registry credentials shipgate reads (docs/rollback.md)",
                );
            }
        };
        let mut missing = Vec::new();
        for (_, image) in &release.images {
            match check.exists(image).await {
                Ok(shipgate_rollback::Existence::Exists(_)) => {}
                Ok(shipgate_rollback::Existence::Missing) => missing.push(image.to_string()),
                Err(err) => {
                    return DoctorCheck::failed(
                        "registry",
                        format!("cannot tell whether {image} exists: {err}"),
                        "check the registry's credentials and address",
                    );
                }
            }
        }
        if missing.is_empty() {
            DoctorCheck::ok(
                "registry",
                format!("has {} image(s) at {}", release.images.len(), release.tag),
            )
        } else {
            DoctorCheck::failed(
                "registry",
                format!("no such tag: {}", missing.join(", ")),
                "publish the images for this commit first (or deploy a tag that was published)",
            )
        }
    }

    async fn doctor_github(&self) -> DoctorCheck {
        let config = self.config();
        if !config.ci_gate.enabled {
            return DoctorCheck::skipped("github", "the CI gate is off");
        }
        let repository = config
            .github
            .repository
            .clone()
            .or_else(|| self.actions().repository.clone());
        let Some(repository) = repository else {
            return DoctorCheck::failed(
                "github",
                "no repository to read check runs from",
                "set GITHUB_REPOSITORY (set by GitHub Actions) or [github] repository",
            );
        };
        let sha = self
            .release()
            .ok()
            .map(|r| r.tag)
            .or_else(|| self.actions().sha.clone())
            .unwrap_or_default();
        let client = match self.github_client().await {
            Ok(client) => client,
            Err(err) => {
                return DoctorCheck::failed(
                    "github",
                    err.to_string(),
                    "set GITHUB_TOKEN (in Actions: `GITHUB_TOKEN: ${{ github.token }}`)",
                );
            }
        };
        let path = format!("repos/{repository}/commits/{sha}/check-runs?per_page=1");
        match client
            .get::<serde_json::Value>(&path, Instant::now() + ANSWER_TIMEOUT)
            .await
        {
            Ok((body, _)) => DoctorCheck::ok(
                "github",
                format!(
                    "reads check runs of {repository}@{} ({} so far)",
                    sha.chars().take(12).collect::<String>(),
                    body["total_count"].as_u64().unwrap_or(0)
                ),
            ),
            Err(err) => DoctorCheck::failed(
                "github",
                err.to_string(),
                "the token needs `checks: read` on the repository (workflow `permissions:`), and the commit must be pushed",
            ),
        }
    }

    async fn doctor_smoke(&self) -> DoctorCheck {
        let smoke = &self.config().smoke;
        if !smoke.enabled {
            return DoctorCheck::skipped("smoke target", "the smoke gate is off");
        }
        let Some(base_url) = smoke.base_url.clone().filter(|u| !u.is_empty()) else {
            return DoctorCheck::failed(
                "smoke target",
                "no base URL",
                "set PRODUCTION_API_URL or [smoke] base_url to the URL the gate checks",
            );
        };
        let options = shipgate_http::ClientOptions {
            accept_invalid_certs: smoke.allow_insecure,
            ..shipgate_http::ClientOptions::default()
        };
        let client = match shipgate_http::build_client(&options) {
            Ok(client) => client,
            Err(err) => {
                return DoctorCheck::failed(
                    "smoke target",
                    format!("cannot build an HTTP client: {err}"),
                    "report this",
                );
            }
        };
        match client.get(&base_url).timeout(ANSWER_TIMEOUT).send().await {
            Ok(response) => DoctorCheck::ok(
                "smoke target",
                format!("{base_url} answers (HTTP {})", response.status().as_u16()),
            ),
            Err(err) => DoctorCheck::failed(
                "smoke target",
                format!(
                    "{base_url} does not answer: {}",
                    shipgate_http::classify_error(&err).1
                ),
                "check PRODUCTION_API_URL / [smoke] base_url, DNS and that the service is reachable from this runner",
            ),
        }
    }
}
