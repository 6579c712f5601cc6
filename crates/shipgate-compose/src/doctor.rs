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
    /// Checked, but the platform could not tell (it does not expose the answer read-only).
    Unknown,
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

/// The `X-OAuth-Scopes` of a classic personal access token's answer.
fn oauth_scopes(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("x-oauth-scopes")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A label name as one path segment.
fn encode_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

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
        checks.extend(self.doctor_github(release.as_ref().ok()).await);
        checks.extend(self.doctor_secrets().await);
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
            for readiness in target.provider.readiness().await {
                let what = format!("{name}: {}", readiness.what);
                checks.push(match readiness.ready {
                    Some(true) => DoctorCheck::ok(what, readiness.detail),
                    Some(false) => DoctorCheck {
                        name: what,
                        status: CheckStatus::Failed,
                        detail: readiness.detail,
                        fix: readiness.fix,
                    },
                    None => DoctorCheck {
                        name: what,
                        status: CheckStatus::Unknown,
                        detail: readiness.detail,
                        fix: None,
                    },
                });
            }
            let name = format!("{name}: what runs");
            checks.push(match target.provider.current().await {
                Ok(running) if running.is_empty() => {
                    DoctorCheck::ok(name, "reachable with this token; nothing runs there now")
                }
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

    /// What GitHub features are on, and the permission each needs.
    fn github_needs(&self) -> Vec<(&'static str, &'static str)> {
        let config = self.config();
        let mut needs = Vec::new();
        if config.ci_gate.enabled {
            needs.push(("the CI gate", "checks: read"));
        }
        if config.notify.github_deployments {
            needs.push(("GitHub deployments", "deployments: write"));
        }
        if config.notify.github_pr_comment {
            needs.push(("the PR comment", "pull-requests: write"));
        }
        if config.rollback.workflow.is_some()
            && config
                .rollback
                .sources
                .contains(&shipgate_config::RollbackSource::GithubWorkflow)
        {
            needs.push(("the rollback's workflow history", "actions: read"));
        }
        if !config.monitor.targets.is_empty() {
            needs.push(("the monitor's alert issues", "issues: write"));
        }
        needs
    }

    /// GitHub's lines; `release` (when it could be made) names the commit the CI gate reads.
    async fn doctor_github(&self, release: Option<&crate::Release>) -> Vec<DoctorCheck> {
        let needs = self.github_needs();
        if needs.is_empty() {
            return vec![DoctorCheck::skipped(
                "github",
                "no GitHub feature is on (CI gate, deployments, PR comment, workflow history, alert issues)",
            )];
        }
        let config = self.config();
        let repository = config
            .github
            .repository
            .clone()
            .or_else(|| self.actions().repository.clone());
        let Some(repository) = repository else {
            return vec![DoctorCheck::failed(
                "github",
                "no repository to work with",
                "set GITHUB_REPOSITORY (set by GitHub Actions) or [github] repository",
            )];
        };
        let client = match self.github_client().await {
            Ok(client) => client,
            Err(err) => {
                return vec![DoctorCheck::failed(
                    "github",
                    err.to_string(),
                    "set GITHUB_TOKEN (in Actions: `GITHUB_TOKEN: ${{ github.token }}`)",
                )];
            }
        };
        let deadline = || Instant::now() + ANSWER_TIMEOUT;
        let mut checks = Vec::new();
        let mut scopes: Option<String> = None;
        let mut refused = false;
        if config.ci_gate.enabled {
            let sha = release
                .map(|r| r.tag.clone())
                .or_else(|| self.actions().sha.clone())
                .unwrap_or_default();
            let path = format!("repos/{repository}/commits/{sha}/check-runs?per_page=1");
            checks.push(match client.get::<serde_json::Value>(&path, deadline()).await {
                Ok((body, headers)) => {
                    scopes = oauth_scopes(&headers);
                    DoctorCheck::ok(
                        "github: checks",
                        format!(
                            "reads check runs of {repository}@{} ({} so far)",
                            sha.chars().take(12).collect::<String>(),
                            body["total_count"].as_u64().unwrap_or(0)
                        ),
                    )
                }
                Err(err) => {
                    refused = true;
                    DoctorCheck::failed(
                        "github: checks",
                        err.to_string(),
                        "the token needs `checks: read` on the repository (workflow `permissions:`), and the commit must be pushed",
                    )
                }
            });
        }
        let mut labels: Vec<&String> = config
            .monitor
            .targets
            .iter()
            .flat_map(|t| t.issue_labels.iter())
            .collect();
        labels.sort();
        labels.dedup();
        for label in labels {
            let path = format!("repos/{repository}/labels/{}", encode_path(label));
            checks.push(match client.get::<serde_json::Value>(&path, deadline()).await {
                Ok((_, headers)) => {
                    scopes = scopes.or_else(|| oauth_scopes(&headers));
                    DoctorCheck::ok(format!("github: label {label}"), "exists")
                }
                Err(shipgate_github::GithubError::NotFound { .. }) => DoctorCheck::failed(
                    format!("github: label {label}"),
                    format!("{repository} has no label `{label}`: alert issues are found again by their labels"),
                    &format!("create it: gh label create \"{label}\" --repo {repository}"),
                ),
                Err(err) => {
                    refused = true;
                    DoctorCheck::failed(
                        format!("github: label {label}"),
                        err.to_string(),
                        "the token needs `issues: read` on the repository",
                    )
                }
            });
        }
        let wanted: Vec<String> = needs
            .iter()
            .map(|(what, permission)| format!("{permission} ({what})"))
            .collect();
        if !refused {
            checks.push(match scopes {
                // A classic personal access token says what it may do on every answer.
                Some(scopes) if scopes.split(',').any(|s| matches!(s.trim(), "repo" | "public_repo")) => {
                    DoctorCheck::ok("github: rights", format!("a personal access token with scopes {scopes}"))
                }
                Some(scopes) => DoctorCheck::failed(
                    "github: rights",
                    format!("a personal access token with scopes `{scopes}`, without `repo`"),
                    "give the token the `repo` scope, or use the workflow's GITHUB_TOKEN",
                ),
                None => DoctorCheck {
                    name: "github: rights".to_owned(),
                    status: CheckStatus::Unknown,
                    detail: format!(
                        "a GITHUB_TOKEN or app token does not show its permissions read-only; the workflow's `permissions:` must grant {}",
                        wanted.join(", ")
                    ),
                    fix: None,
                },
            });
        }
        checks
    }

    /// Each configured secret source answers for the keys `[secrets.keys]` maps to it.
    async fn doctor_secrets(&self) -> Vec<DoctorCheck> {
        let config = self.config();
        // The process environment alone needs no check: check-env looked at it.
        if config.secrets.keys.is_empty()
            && config
                .secrets
                .sources
                .iter()
                .all(|s| matches!(s, shipgate_config::SecretSourceConfig::Env { .. }))
        {
            return Vec::new();
        }
        let resolver = match self.secrets() {
            Ok(resolver) => resolver,
            Err(err) => {
                return vec![DoctorCheck::failed(
                    "secrets",
                    err.to_string(),
                    "fix [secrets] sources in the configuration",
                )];
            }
        };
        let mut checks = Vec::new();
        for key in config.secrets.keys.keys() {
            let name = format!("secret {key}");
            checks.push(match resolver.resolve(key).await {
                shipgate_secrets::Resolution::Found { source, .. } => {
                    DoctorCheck::ok(name, format!("found in {source}"))
                }
                shipgate_secrets::Resolution::Missing { searched } => DoctorCheck::failed(
                    name,
                    format!("no source has it (searched: {})", searched.join(", ")),
                    "add it to its source, or fix [secrets.keys]",
                ),
                shipgate_secrets::Resolution::SourceFailed { source, reason } => {
                    DoctorCheck::failed(
                        name,
                        format!("{source} did not answer: {reason}"),
                        "check the source's address and credentials",
                    )
                }
            });
        }
        if checks.is_empty() {
            // Nothing was looked up here: say where the sources were exercised, claim no more.
            checks.push(DoctorCheck::skipped(
                "secrets",
                format!(
                    "no [secrets.keys] entry to look up; the environment check looked its variables up in {}",
                    resolver.source_names().join(", ")
                ),
            ));
        }
        checks
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
