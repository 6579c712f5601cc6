//! The deploy targets: one provider per enabled kind (per service for Railway and Fly), each
//! connected and checked; nothing is changed while they are built.

use shipgate_config::TargetKind;
use shipgate_pipeline::Target;

use crate::{ComposeError, Composition, ServiceImage};

impl Composition {
    /// One target per enabled kind, in the configuration's order, for these services. A
    /// platform that does not answer usably is [`ComposeError::Unavailable`]; a configuration
    /// or credential that cannot work is [`ComposeError::Setup`].
    pub async fn targets(&self, services: &[ServiceImage]) -> Result<Vec<Target>, ComposeError> {
        let mut targets = Vec::new();
        let production_like = self.environment().kind().is_prod_like();
        for kind in self.config().targets.enabled() {
            match kind {
                TargetKind::Local => targets.push(self.local_target()?),
                TargetKind::Helm => targets.push(self.helm_target(services).await?),
                TargetKind::Railway => {
                    targets.extend(self.railway_targets(services, production_like).await?)
                }
                TargetKind::Fly => {
                    targets.extend(self.fly_targets(services, production_like).await?);
                }
            }
        }
        Ok(targets)
    }

    /// The local provider of `[targets.local]`.
    #[cfg(feature = "local")]
    pub fn local_provider(&self) -> Result<shipgate_local::LocalProvider, ComposeError> {
        let options = match &self.options.local_router {
            Some(router) => shipgate_local::LocalOptions {
                router: router.clone(),
                shipgate: self.options.shipgate_exe.clone(),
            },
            None => shipgate_local::LocalOptions::beside_current_exe().map_err(|e| {
                ComposeError::setup_caused(
                    format!("cannot locate shipgate's own executable: {e}"),
                    e,
                )
            })?,
        };
        shipgate_local::LocalProvider::new(&self.config().targets.local, options)
            .map_err(|e| ComposeError::setup_caused(format!("[targets.local]: {e}"), e))
    }

    #[cfg(feature = "local")]
    fn local_target(&self) -> Result<Target, ComposeError> {
        Ok(Target {
            name: "local".into(),
            provider: Box::new(self.local_provider()?),
            timeout: self.config().targets.local.timeout.as_duration(),
        })
    }

    #[cfg(not(feature = "local"))]
    fn local_target(&self) -> Result<Target, ComposeError> {
        Err(not_built("local"))
    }

    /// The kubeconfig of `[targets.helm]`: the variable named by `kubeconfig_env` (plain YAML
    /// or base64, seed 000's KUBE_CONFIG_DATA), else `kubeconfig_path`, else none (the default
    /// kubeconfig or the pod's service account).
    pub fn kubeconfig_yaml(&self) -> Result<Option<String>, ComposeError> {
        let helm = &self.config().targets.helm;
        match self
            .vars()
            .get(&helm.kubeconfig_env)
            .filter(|v| !v.trim().is_empty())
        {
            Some(raw) => shipgate_env::kubeconfig_text(raw)
                .map(|(text, _)| Some(text))
                .map_err(|e| ComposeError::setup_caused(format!("{} {e}", helm.kubeconfig_env), e)),
            None => match &helm.kubeconfig_path {
                Some(path) => std::fs::read_to_string(path).map(Some).map_err(|e| {
                    ComposeError::setup_caused(
                        format!("[targets.helm]: cannot read {}: {e}", path.display()),
                        e,
                    )
                }),
                None => Ok(None),
            },
        }
    }

    /// The Helm target: release and namespace default to the app name, the kubeconfig as
    /// [`Composition::kubeconfig_yaml`] finds it, the binary from `helm_bin` / HELM_BIN, else
    /// `helm` on PATH.
    #[cfg(feature = "helm")]
    async fn helm_target(&self, services: &[ServiceImage]) -> Result<Target, ComposeError> {
        let helm = &self.config().targets.helm;
        let app = self.app();
        let chart = helm.chart.clone().ok_or_else(|| {
            ComposeError::setup("[targets.helm] needs `chart` (a chart directory or repo/chart)")
        })?;
        let kubeconfig = self.kubeconfig_yaml()?;
        let tag_paths = services
            .iter()
            .map(|s| {
                let path = helm
                    .image_tag_paths
                    .get(&s.service)
                    .cloned()
                    .unwrap_or_else(|| format!("{}.image.tag", s.service));
                (s.service.clone(), path)
            })
            .collect();
        let repositories = services
            .iter()
            .map(|s| (s.service.clone(), s.repository.clone()))
            .collect();
        let settings = shipgate_helm::HelmSettings {
            bin: helm
                .helm_bin
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from("helm")),
            release: helm.release.clone().unwrap_or_else(|| app.clone()),
            namespace: helm.namespace.clone().unwrap_or(app),
            chart,
            chart_version: helm.chart_version.clone(),
            values_files: helm.values_files.clone(),
            tag_paths,
            repositories,
            values: match helm.values_strategy {
                shipgate_config::ValuesStrategy::ResetThenReuse => {
                    shipgate_helm::Values::ResetThenReuse
                }
                shipgate_config::ValuesStrategy::Reuse => shipgate_helm::Values::Reuse,
                shipgate_config::ValuesStrategy::Reset => shipgate_helm::Values::Reset,
            },
            timeout: helm.timeout.as_duration(),
            rollback_on_failure: helm.helm_rollback_on_failure,
            recover_pending: true,
            kubeconfig,
            context: helm.context.clone(),
            env: Vec::new(),
            rollout: helm.rollout.clone(),
        };
        let provider = shipgate_helm::HelmProvider::new(settings)
            .await
            .map_err(|e| ComposeError::setup_caused(format!("[targets.helm]: {e}"), e))?;
        Ok(Target {
            name: "helm".into(),
            provider: Box::new(provider),
            timeout: helm.timeout.as_duration(),
        })
    }

    #[cfg(not(feature = "helm"))]
    async fn helm_target(&self, _services: &[ServiceImage]) -> Result<Target, ComposeError> {
        Err(not_built("helm"))
    }

    /// One Railway target per service named in `[targets.railway] services`, in deploy order.
    #[cfg(feature = "railway")]
    async fn railway_targets(
        &self,
        services: &[ServiceImage],
        production_like: bool,
    ) -> Result<Vec<Target>, ComposeError> {
        let railway = &self.config().targets.railway;
        if railway.services.is_empty() {
            return Err(ComposeError::setup(
                "[targets.railway] names no service: set services.api = \"ID or name\" (RAILWAY_API_SERVICE, RAILWAY_WORKER_SERVICE)",
            ));
        }
        let token = shipgate_railway::RailwayToken::from_values(
            self.secret("RAILWAY_TOKEN").await?,
            self.secret("RAILWAY_API_TOKEN").await?,
        )
        .map_err(|e| ComposeError::setup_caused(e.to_string(), e))?;
        let mut targets = Vec::new();
        for ServiceImage {
            service,
            repository,
        } in services
        {
            let Some(railway_service) = railway.services.get(service) else {
                continue;
            };
            let source = match railway.source {
                shipgate_config::RailwaySource::Image => shipgate_railway::ServiceSource::Image,
                shipgate_config::RailwaySource::Repo => shipgate_railway::ServiceSource::Repo {
                    repository: repository.clone(),
                },
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
                source,
                require_pinned: production_like,
                poll_interval: railway.poll_interval.as_duration(),
                stable_for: railway.stable_for.as_duration(),
                redactor: self.redactor().clone(),
            };
            let provider = shipgate_railway::RailwayProvider::connect(settings)
                .await
                .map_err(|e| {
                    let message = format!("[targets.railway] service `{service}`: {e}");
                    match e {
                        shipgate_railway::RailwayError::Unavailable { .. }
                        | shipgate_railway::RailwayError::RateLimited { .. } => {
                            ComposeError::Unavailable {
                                message,
                                source: Box::new(e),
                            }
                        }
                        _ => ComposeError::setup_caused(message, e),
                    }
                })?;
            targets.push(Target {
                name: format!("railway:{service}"),
                provider: Box::new(provider),
                timeout: railway.timeout.as_duration(),
            });
        }
        if targets.is_empty() {
            return Err(ComposeError::setup(format!(
                "[targets.railway] services ({}) match none of the deployed services",
                railway
                    .services
                    .keys()
                    .map(shipgate_core::ServiceName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(targets)
    }

    #[cfg(not(feature = "railway"))]
    async fn railway_targets(
        &self,
        _services: &[ServiceImage],
        _production_like: bool,
    ) -> Result<Vec<Target>, ComposeError> {
        Err(not_built("railway"))
    }

    /// One Fly target per service: its process group from `process_groups`, or the service
    /// name when none is configured.
    #[cfg(feature = "fly")]
    async fn fly_targets(
        &self,
        services: &[ServiceImage],
        production_like: bool,
    ) -> Result<Vec<Target>, ComposeError> {
        let fly = &self.config().targets.fly;
        let app = fly.app.clone().ok_or_else(|| {
            ComposeError::setup("[targets.fly] needs the app: set app = \"NAME\" or FLY_APP")
        })?;
        let raw = self.secret("FLY_API_TOKEN").await?.ok_or_else(|| {
            ComposeError::setup(
                "FLY_API_TOKEN is not set: create a deploy token with `fly tokens create deploy -a APP` and store it as a secret",
            )
        })?;
        let token = shipgate_fly::FlyToken::parse(&raw)
            .map_err(|e| ComposeError::setup_caused(e.to_string(), e))?;
        let mut targets = Vec::new();
        for ServiceImage { service, .. } in services {
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
                    shipgate_config::FlyStrategy::Rolling => shipgate_fly::Strategy::Rolling {
                        max_unavailable: fly.max_unavailable,
                    },
                    shipgate_config::FlyStrategy::Immediate => shipgate_fly::Strategy::Immediate,
                },
                lease_ttl: fly.lease_ttl.as_duration(),
                poll_interval: std::time::Duration::from_secs(2),
                require_pinned: production_like,
                redactor: self.redactor().clone(),
                staged_url: fly.staged_url.clone(),
            };
            let provider = shipgate_fly::FlyProvider::connect(settings)
                .await
                .map_err(|e| {
                    let message = format!("[targets.fly] service `{service}`: {e}");
                    match e {
                        shipgate_fly::FlyError::Unavailable { .. } => ComposeError::Unavailable {
                            message,
                            source: Box::new(e),
                        },
                        _ => ComposeError::setup_caused(message, e),
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

    #[cfg(not(feature = "fly"))]
    async fn fly_targets(
        &self,
        _services: &[ServiceImage],
        _production_like: bool,
    ) -> Result<Vec<Target>, ComposeError> {
        Err(not_built("fly"))
    }
}

/// A target kind whose provider this build leaves out.
#[cfg(not(all(
    feature = "local",
    feature = "helm",
    feature = "railway",
    feature = "fly"
)))]
fn not_built(kind: &str) -> ComposeError {
    ComposeError::setup(format!(
        "[targets.{kind}] is enabled, but this build of shipgate-compose has no `{kind}` feature: build it with that feature, or disable the target"
    ))
}
