//! What is deployed: the environment, the tag and each service's image, in deploy order.

use shipgate_core::{Environment, ImageRef, ServiceName};

use crate::{ComposeError, Composition};

/// A service and the repository its images come from (`ghcr.io/acme/shop-api`), without a
/// tag: what targets are built from, whatever release they later deploy or only inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceImage {
    /// The service.
    pub service: ServiceName,
    /// The image repository, registry and owner included.
    pub repository: String,
}

/// A release: one tag of every service, checked against the environment's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The environment deployed to.
    pub environment: Environment,
    /// The image tag.
    pub tag: String,
    /// Each service's repository, in deploy order.
    pub services: Vec<ServiceImage>,
    /// Each service's image at the tag, in deploy order.
    pub images: Vec<(ServiceName, ImageRef)>,
}

impl Composition {
    /// The services deployed, in `[services.X] order` (then name), each with its repository:
    /// `[services.X] image`, else `APP-SERVICE`, under `[image] registry` and `owner` unless
    /// it names its own registry. Without `[services]`, the local target's services.
    pub fn services(&self) -> Vec<ServiceImage> {
        let config = self.config();
        let app = self.app();
        let mut services: Vec<(u32, ServiceName, String)> = if config.services.is_empty() {
            config
                .targets
                .local
                .services
                .keys()
                .map(|name| (100, name.clone(), format!("{app}-{name}")))
                .collect()
        } else {
            config
                .services
                .iter()
                .map(|(name, s)| {
                    (
                        s.order,
                        name.clone(),
                        s.image.clone().unwrap_or_else(|| format!("{app}-{name}")),
                    )
                })
                .collect()
        };
        services.sort();
        services
            .into_iter()
            .map(|(_, service, repository)| {
                let repository = if repository.contains('/') {
                    repository
                } else {
                    [
                        config.image.registry.as_deref(),
                        config.image.owner.as_deref(),
                        Some(repository.as_str()),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("/")
                };
                ServiceImage {
                    service,
                    repository,
                }
            })
            .collect()
    }

    /// The release of `[image] tag` (the tag flag, `image_tag`, `IMAGE_TAG`, `GITHUB_SHA`):
    /// refused when no target is enabled, no tag is set, an image is invalid, or a tag is
    /// mutable in a production-like environment (unless `[image] allow_mutable`).
    pub fn release(&self) -> Result<Release, ComposeError> {
        let config = self.config();
        if config.targets.enabled().is_empty() {
            return Err(ComposeError::setup(
                "no target is enabled: set ENABLE_*_DEPLOY, runtime_target, --target, or [targets.X] enabled = true",
            ));
        }
        let Some(tag) = config.image.tag.clone() else {
            return Err(ComposeError::setup(
                "no image tag: pass --image-tag, or set image_tag / IMAGE_TAG (GITHUB_SHA in GitHub Actions)",
            ));
        };
        let environment = self.environment();
        let services = self.services();
        let mut images = Vec::with_capacity(services.len());
        for ServiceImage {
            service,
            repository,
        } in &services
        {
            let image: ImageRef = format!("{repository}:{tag}").parse().map_err(|e| {
                ComposeError::setup_caused(
                    format!("service `{service}`: image `{repository}:{tag}` is invalid: {e}"),
                    e,
                )
            })?;
            if environment.kind().is_prod_like()
                && !config.image.allow_mutable
                && !image.pinning(&config.image.mutable_tags).is_pinned()
            {
                return Err(ComposeError::setup(format!(
                    "service `{service}`: `{image}` is a mutable tag in production-like environment {environment}; deploy a commit SHA or digest (or set [image] allow_mutable = true)"
                )));
            }
            images.push((service.clone(), image));
        }
        Ok(Release {
            environment,
            tag,
            services,
            images,
        })
    }
}
