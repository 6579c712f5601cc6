//! The Railway and Fly.io targets of `deploy`: one provider per service, built from
//! `[targets.railway]` / `[targets.fly]`, with tokens from the configured secret sources.

use std::time::Duration;

use shipgate_config::{Config, FlyStrategy};
use shipgate_core::{Secret, ServiceName};
use shipgate_pipeline::Target;
use shipgate_secrets::{Resolution, SecretResolver};

use crate::log_redactor;

/// A secret that may be absent; a source that fails is an error naming it.
pub(crate) async fn optional_secret(
    resolver: &SecretResolver,
    name: &str,
) -> Result<Option<Secret>, String> {
    match resolver.resolve(name).await {
        Resolution::Found { secret, .. } => {
            log_redactor().add(&secret);
            Ok(Some(secret))
        }
        Resolution::Missing { .. } => Ok(None),
        Resolution::SourceFailed { source, reason } => Err(format!(
            "{name} could not be read from secret source {source}: {reason}"
        )),
    }
}

/// Why a platform's targets could not be built. Nothing was changed either way.
pub(crate) enum TargetsError {
    /// The configuration or a credential cannot work (a usage error, exit 2).
    Setup(String),
    /// The platform did not answer usably (an outage, a rate limit): the deploy failed before
    /// it changed anything (exit 1), and the configuration may well be right.
    Unavailable(String),
}

impl From<String> for TargetsError {
    fn from(message: String) -> Self {
        TargetsError::Setup(message)
    }
}

impl From<&str> for TargetsError {
    fn from(message: &str) -> Self {
        TargetsError::Setup(message.to_owned())
    }
}

/// One Railway target per service named in `[targets.railway] services`, in deploy order.
pub(crate) async fn railway_targets(
    config: &Config,
    services: &[ServiceName],
    resolver: &SecretResolver,
    production_like: bool,
) -> Result<Vec<Target>, TargetsError> {
    let railway = &config.targets.railway;
    if railway.services.is_empty() {
        return Err("[targets.railway] names no service: set services.api = \"ID or name\" (RAILWAY_API_SERVICE, RAILWAY_WORKER_SERVICE)".into());
    }
    let token = shipgate_railway::RailwayToken::from_values(
        optional_secret(resolver, "RAILWAY_TOKEN").await?,
        optional_secret(resolver, "RAILWAY_API_TOKEN").await?,
    )
    .map_err(|e| e.to_string())?;
    let mut targets = Vec::new();
    for service in services {
        let Some(railway_service) = railway.services.get(service) else {
            continue;
        };
        let settings = shipgate_railway::RailwaySettings {
            api_url: railway.api_url.clone(),
            token: token.clone(),
            project: railway.project.clone(),
            environment: railway.environment.clone(),
            workspace: railway.workspace.clone(),
            service: service.clone(),
            railway_service: railway_service.clone(),
            switch_source_to_image: railway.switch_source_to_image,
            require_pinned: production_like,
            poll_interval: railway.poll_interval.as_duration(),
            stable_for: railway.stable_for.as_duration(),
            redactor: log_redactor().clone(),
        };
        let provider = shipgate_railway::RailwayProvider::connect(settings)
            .await
            .map_err(|e| {
                let message = format!("[targets.railway] service `{service}`: {e}");
                match e {
                    shipgate_railway::RailwayError::Unavailable { .. }
                    | shipgate_railway::RailwayError::RateLimited { .. } => {
                        TargetsError::Unavailable(message)
                    }
                    _ => TargetsError::Setup(message),
                }
            })?;
        targets.push(Target {
            name: format!("railway:{service}"),
            provider: Box::new(provider),
            timeout: railway.timeout.as_duration(),
        });
    }
    if targets.is_empty() {
        return Err(TargetsError::Setup(format!(
            "[targets.railway] services ({}) match none of the deployed services",
            railway
                .services
                .keys()
                .map(ServiceName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(targets)
}

/// One Fly target per service: its process group from `process_groups`, or the service name
/// when none is configured.
pub(crate) async fn fly_targets(
    config: &Config,
    services: &[ServiceName],
    resolver: &SecretResolver,
    production_like: bool,
) -> Result<Vec<Target>, TargetsError> {
    let fly = &config.targets.fly;
    let app = fly
        .app
        .clone()
        .ok_or("[targets.fly] needs the app: set app = \"NAME\" or FLY_APP")?;
    let raw = optional_secret(resolver, "FLY_API_TOKEN").await?.ok_or(
        "FLY_API_TOKEN is not set: create a deploy token with `fly tokens create deploy -a APP` and store it as a secret",
    )?;
    let token = shipgate_fly::FlyToken::parse(&raw).map_err(|e| e.to_string())?;
    let mut targets = Vec::new();
    for service in services {
        let group = match fly.process_groups.get(service) {
            Some(group) => group.clone(),
            None if fly.process_groups.is_empty() => service.as_str().to_owned(),
            None => continue,
        };
        let settings = shipgate_fly::FlySettings {
            api_url: fly.api_url.clone(),
            token: token.clone(),
            app: app.clone(),
            service: service.clone(),
            process_group: group,
            strategy: match fly.strategy {
                FlyStrategy::Rolling => shipgate_fly::Strategy::Rolling {
                    max_unavailable: fly.max_unavailable,
                },
                FlyStrategy::Immediate => shipgate_fly::Strategy::Immediate,
            },
            lease_ttl: fly.lease_ttl.as_duration(),
            poll_interval: Duration::from_secs(2),
            require_pinned: production_like,
            redactor: log_redactor().clone(),
        };
        let provider = shipgate_fly::FlyProvider::connect(settings)
            .await
            .map_err(|e| {
                let message = format!("[targets.fly] service `{service}`: {e}");
                match e {
                    shipgate_fly::FlyError::Unavailable { .. } => {
                        TargetsError::Unavailable(message)
                    }
                    _ => TargetsError::Setup(message),
                }
            })?;
        targets.push(Target {
            name: format!("fly:{service}"),
            provider: Box::new(provider),
            timeout: fly.timeout.as_duration(),
        });
    }
    Ok(targets)
}
