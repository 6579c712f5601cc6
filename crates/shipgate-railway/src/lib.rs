//! The Railway provider: deploys a pinned image to one Railway service through Railway's public
//! GraphQL API (no CLI), waits on the deployment's own status with a deadline, and rolls back
//! with `deploymentRollback` or by re-pinning the previous image.
//!
//! One [`RailwayProvider`] drives one service in one environment (the seeds' api and worker
//! services are two providers, deployed in order). Every operation it sends is a file in
//! `graphql/`, validated against Railway's schema in the tests.
//!
//! What it does differently from `railway up` and the usual scripts:
//! - the verdict comes from the deployment status, never from a log stream ending;
//! - a `SUCCESS` deployment whose `meta.image` is not the requested image is a failure (a
//!   redeploy of the old image looks green otherwise);
//! - `NEEDS_APPROVAL` stops the wait with a clear message instead of hanging;
//! - a deployment shipgate stops waiting for is cancelled, so it cannot go live later;
//! - variables are written with `skipDeploys: true`, so Railway starts no racing deployment.

mod client;
mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde_json::{Value, json};
use shipgate_core::{ImageRef, Redactor, Secret, ServiceName, quote_outside};
use shipgate_provider::{
    DeployRequest, Deployment, PlannedChange, Poll, ProgressSink, Provider, ProviderError,
    Readiness, Revision, RevisionId, RevisionStatus, Running, Verdict, wait_until,
};
use tokio_util::sync::CancellationToken;

pub use client::RailwayToken;
use client::{Client, ops};
pub use status::{Phase, phase};

/// Errors talking to Railway. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RailwayError {
    /// The configuration cannot work (names that match nothing or several things, a
    /// GitHub-sourced service, both token kinds). Nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// Railway refused the token for this operation.
    #[error(
        "Railway refused {operation}: {message}. shipgate sent {token}; check that the token is valid and that its scope covers this project and environment (a project token covers one environment; `apiToken` and workspace listing need an account or workspace token)"
    )]
    NotAuthorized {
        /// The operation.
        operation: &'static str,
        /// Which token kind and header were used.
        token: &'static str,
        /// Railway's message.
        message: String,
    },
    /// The workspace requires two-factor authentication for this token's user.
    #[error(
        "Railway refused {operation}: workspace `{workspace}` requires two-factor authentication; enable 2FA for the token's user or use a workspace token"
    )]
    TwoFactorRequired {
        /// The operation.
        operation: &'static str,
        /// The workspace.
        workspace: String,
    },
    /// What was asked for does not exist.
    #[error("Railway {operation}: {message}")]
    NotFound {
        /// The operation.
        operation: &'static str,
        /// Railway's message.
        message: String,
    },
    /// 429 beyond the retries.
    #[error("Railway {operation}: {message}")]
    RateLimited {
        /// The operation.
        operation: &'static str,
        /// When to try again.
        message: String,
    },
    /// Any other GraphQL error.
    #[error("Railway {operation} failed: {message}")]
    Graphql {
        /// The operation.
        operation: &'static str,
        /// Railway's message.
        message: String,
    },
    /// No usable answer (network, 5xx, unreadable body) after the retries.
    #[error("Railway {operation} unavailable: {message}")]
    Unavailable {
        /// The operation.
        operation: &'static str,
        /// Why.
        message: String,
    },
}

impl From<RailwayError> for ProviderError {
    fn from(err: RailwayError) -> Self {
        let kind: fn(String) -> ProviderError = match &err {
            RailwayError::Invalid(_) => ProviderError::invalid,
            RailwayError::NotAuthorized { .. } | RailwayError::TwoFactorRequired { .. } => {
                ProviderError::unauthorized
            }
            RailwayError::NotFound { .. } => ProviderError::not_found,
            RailwayError::RateLimited { .. } | RailwayError::Unavailable { .. } => {
                ProviderError::unavailable
            }
            RailwayError::Graphql { .. } => ProviderError::platform,
        };
        kind(err.to_string()).caused_by(err)
    }
}

/// How to reach and identify one Railway service.
#[derive(Debug, Clone)]
pub struct RailwaySettings {
    /// GraphQL endpoint (`https://backboard.railway.com/graphql/v2`).
    pub api_url: String,
    /// The token, whose kind decides the header.
    pub token: RailwayToken,
    /// Project ID or name (`RAILWAY_PROJECT`). A project token knows its own; given anyway, it
    /// must match.
    pub project: Option<String>,
    /// Environment ID or name (`RAILWAY_ENVIRONMENT`); as for `project`.
    pub environment: Option<String>,
    /// Workspace ID or name (`RAILWAY_WORKSPACE`), to narrow a project name lookup.
    pub workspace: Option<String>,
    /// shipgate's name for the service (the key in deploy requests).
    pub service: ServiceName,
    /// The Railway service's ID or name (`RAILWAY_API_SERVICE`).
    pub railway_service: String,
    /// Disconnect a GitHub-sourced service's repo and point it at the image. Off by default:
    /// such a service is refused with guidance.
    pub switch_source_to_image: bool,
    /// What a deploy ships to this service: a pinned image, or a commit of its repo.
    pub source: ServiceSource,
    /// Refuse images that are not pinned (production-like environments).
    pub require_pinned: bool,
    /// Time between status polls (Railway's CLI polls every 5 s).
    pub poll_interval: Duration,
    /// How long a deployment must stay live (`SUCCESS`, and the service's active deployment)
    /// before it is called healthy: a deployment can crash moments after `SUCCESS`.
    pub stable_for: Duration,
    /// Masks the token and every secret the run knows in messages and logs.
    pub redactor: Redactor,
}

/// What a deploy ships to a Railway service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceSource {
    /// A pinned container image, set as the service's source (`serviceInstanceUpdate`) and
    /// deployed (`serviceInstanceDeployV2`).
    Image,
    /// A commit of the service's connected GitHub repo, built and deployed by Railway
    /// (`serviceInstanceDeployV2(commitSha)`). The release's image tag is the commit SHA;
    /// what runs is reported as `repository:COMMIT`, with `repository` the name shipgate uses
    /// for the service's releases, so that releases and read-backs compare.
    Repo {
        /// The name of the service's releases (`backend-backend`).
        repository: String,
    },
}

/// The IDs and names a [`RailwayProvider`] resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedService {
    /// Project ID.
    pub project_id: String,
    /// Project name.
    pub project_name: String,
    /// Environment ID.
    pub environment_id: String,
    /// Environment name.
    pub environment_name: String,
    /// Service ID.
    pub service_id: String,
    /// Service name.
    pub service_name: String,
    /// The GitHub repo it deploys from, when it is GitHub-sourced.
    pub repo: Option<String>,
}

/// The Railway provider for one service.
pub struct RailwayProvider {
    client: Client,
    service: ServiceName,
    resolved: ResolvedService,
    switch_source_to_image: bool,
    source: ServiceSource,
    require_pinned: bool,
    poll_interval: Duration,
    stable_for: Duration,
}

impl std::fmt::Debug for RailwayProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RailwayProvider")
            .field("service", &self.service)
            .field("resolved", &self.resolved)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named {
    id: String,
    name: String,
    #[serde(default)]
    deleted_at: Option<String>,
    #[serde(default = "yes")]
    can_access: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct Edges<T> {
    edges: Vec<Edge<T>>,
}

#[derive(Debug, Deserialize)]
struct Edge<T> {
    node: T,
}

/// A deployment as shipgate reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentNode {
    id: String,
    status: String,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    can_rollback: bool,
    #[serde(default)]
    deployment_stopped: bool,
    #[serde(default)]
    meta: Option<Value>,
}

impl DeploymentNode {
    fn image(&self) -> Option<ImageRef> {
        self.meta.as_ref()?.get("image")?.as_str()?.parse().ok()
    }

    /// The commit a GitHub-sourced deployment built (`meta.commitHash`).
    fn commit(&self) -> Option<&str> {
        self.meta.as_ref()?.get("commitHash")?.as_str()
    }

    fn phase(&self) -> Phase {
        phase(&self.status, self.deployment_stopped)
    }
}

/// Matches `wanted` against `candidates` by exact ID or case-insensitive name; the error
/// lists what exists, or the candidates when several match.
fn pick<'a>(kind: &str, wanted: &str, candidates: &'a [Named]) -> Result<&'a Named, RailwayError> {
    let live: Vec<&Named> = candidates
        .iter()
        .filter(|c| c.deleted_at.is_none())
        .collect();
    if let Some(by_id) = live.iter().find(|c| c.id == wanted) {
        return Ok(by_id);
    }
    let matches: Vec<&&Named> = live
        .iter()
        .filter(|c| c.name.eq_ignore_ascii_case(wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            let known: Vec<String> = live.iter().map(|c| format!("`{}`", c.name)).collect();
            Err(RailwayError::Invalid(format!(
                "no Railway {kind} named `{wanted}`; there are: {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )))
        }
        many => {
            let listed: Vec<String> = many
                .iter()
                .map(|c| format!("`{}` ({})", c.name, c.id))
                .collect();
            Err(RailwayError::Invalid(format!(
                "the Railway {kind} name `{wanted}` is ambiguous: {}; use the ID instead",
                listed.join(", ")
            )))
        }
    }
}

impl RailwayProvider {
    /// Connects and resolves project, environment and service (by ID or name), and checks
    /// that the service deploys from an image. Changes nothing.
    pub async fn connect(settings: RailwaySettings) -> Result<RailwayProvider, RailwayError> {
        let client = Client::new(
            &settings.api_url,
            settings.token.clone(),
            settings.redactor.clone(),
        )?;
        let (project_id, environment_wanted) = match client.token() {
            RailwayToken::Project(_) => {
                let (project_id, environment_id) =
                    resolve_project_token(&client, &settings).await?;
                (project_id, environment_id)
            }
            RailwayToken::Account(_) => {
                let project = settings.project.as_deref().ok_or_else(|| {
                    RailwayError::Invalid("an account or workspace token needs the project: set RAILWAY_PROJECT (ID or name) or targets.railway.project".into())
                })?;
                let environment = settings.environment.clone().ok_or_else(|| {
                    RailwayError::Invalid("an account or workspace token needs the environment: set RAILWAY_ENVIRONMENT (ID or name) or targets.railway.environment".into())
                })?;
                (
                    resolve_project(&client, project, settings.workspace.as_deref()).await?,
                    environment,
                )
            }
        };

        #[derive(Deserialize)]
        struct Topology {
            project: Project,
        }
        #[derive(Deserialize)]
        struct Project {
            name: String,
            environments: Edges<Named>,
            services: Edges<Named>,
        }
        let topology: Topology = client
            .run(ops::ProjectTopology, json!({"projectId": project_id}))
            .await?;
        let environments: Vec<Named> = topology
            .project
            .environments
            .edges
            .into_iter()
            .map(|e| e.node)
            .collect();
        let environment = pick("environment", &environment_wanted, &environments)?;
        if !environment.can_access {
            return Err(RailwayError::Invalid(format!(
                "Railway environment `{}` is restricted for this token; ask a workspace admin for access",
                environment.name
            )));
        }
        let services: Vec<Named> = topology
            .project
            .services
            .edges
            .into_iter()
            .map(|e| e.node)
            .collect();
        let service = pick("service", &settings.railway_service, &services)?;

        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct InstanceData {
            service_instance: Instance,
        }
        #[derive(Deserialize)]
        struct Instance {
            source: Option<Source>,
        }
        #[derive(Deserialize)]
        struct Source {
            image: Option<String>,
            repo: Option<String>,
        }
        let instance: InstanceData = client
            .run(
                ops::ServiceInstance,
                json!({"environmentId": environment.id, "serviceId": service.id}),
            )
            .await
            .map_err(|e| match e {
                RailwayError::NotFound { .. } => RailwayError::Invalid(format!(
                    "Railway service `{}` does not exist in environment `{}`; add it to the environment first",
                    service.name, environment.name
                )),
                other => other,
            })?;
        let source = instance.service_instance.source;
        let configured_image = source.as_ref().and_then(|s| s.image.clone());
        let repo = source.filter(|s| s.image.is_none()).and_then(|s| s.repo);
        if matches!(settings.source, ServiceSource::Repo { .. }) && repo.is_none() {
            return Err(RailwayError::Invalid(format!(
                "Railway service `{}` (environment `{}`) is not connected to a GitHub repo{}; targets.railway.source = \"repo\" deploys commits of the connected repo. Connect the repo in Railway (Settings → Source), or set source = \"image\" to deploy pinned images",
                service.name,
                environment.name,
                configured_image
                    .map(|i| format!(" (it deploys image `{i}`)"))
                    .unwrap_or_default()
            )));
        }
        if let Some(repo) = &repo
            && settings.source == ServiceSource::Image
            && !settings.switch_source_to_image
        {
            return Err(RailwayError::Invalid(format!(
                "Railway service `{}` (environment `{}`) deploys from GitHub repo `{repo}`, not from a container image; shipgate deploys pinned images. Set targets.railway.source = \"repo\" to deploy the commit being shipped from that repo, point the service at an image in Railway (Settings → Source), or set targets.railway.switch_source_to_image = true to have shipgate disconnect the repo and set the image on the next deploy",
                service.name, environment.name
            )));
        }
        Ok(RailwayProvider {
            resolved: ResolvedService {
                project_id,
                project_name: topology.project.name,
                environment_id: environment.id.clone(),
                environment_name: environment.name.clone(),
                service_id: service.id.clone(),
                service_name: service.name.clone(),
                repo,
            },
            client,
            service: settings.service,
            switch_source_to_image: settings.switch_source_to_image,
            source: settings.source,
            require_pinned: settings.require_pinned,
            poll_interval: settings.poll_interval,
            stable_for: settings.stable_for,
        })
    }

    /// What [`RailwayProvider::connect`] resolved.
    pub fn resolved(&self) -> &ResolvedService {
        &self.resolved
    }

    /// Sets the service's variables in its environment without starting a deployment
    /// (`skipDeploys: true`); the next deploy picks them up. Values are sent, never logged.
    pub async fn upsert_variables(
        &self,
        variables: &BTreeMap<String, Secret>,
    ) -> Result<(), RailwayError> {
        let values: serde_json::Map<String, Value> = variables
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.expose().to_owned())))
            .collect();
        for secret in variables.values() {
            self.client.redactor().add(secret);
        }
        let ok: BoolField = self
            .client
            .run(
                ops::UpsertVariables,
                json!({"input": {
                    "projectId": self.resolved.project_id,
                    "environmentId": self.resolved.environment_id,
                    "serviceId": self.resolved.service_id,
                    "variables": values,
                    "skipDeploys": true,
                }}),
            )
            .await?;
        ok.check("variableCollectionUpsert")
    }

    async fn deployments(&self) -> Result<Vec<DeploymentNode>, RailwayError> {
        #[derive(Deserialize)]
        struct Data {
            deployments: Edges<DeploymentNode>,
        }
        let data: Data = self
            .client
            .run(
                ops::Deployments,
                json!({
                    "projectId": self.resolved.project_id,
                    "environmentId": self.resolved.environment_id,
                    "serviceId": self.resolved.service_id,
                    "first": 50,
                }),
            )
            .await?;
        let mut list: Vec<DeploymentNode> =
            data.deployments.edges.into_iter().map(|e| e.node).collect();
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Ok(list)
    }

    async fn deployment(&self, id: &str) -> Result<DeploymentNode, RailwayError> {
        #[derive(Deserialize)]
        struct Data {
            deployment: DeploymentNode,
        }
        let data: Data = self.client.run(ops::Deployment, json!({"id": id})).await?;
        Ok(data.deployment)
    }

    /// The service's active (deployed and running) deployments in this environment, newest
    /// first: what it runs now, as Railway itself says.
    async fn active(&self) -> Result<Vec<DeploymentNode>, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            service_instance: Instance,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Instance {
            active_deployments: Vec<DeploymentNode>,
        }
        let data: Data = self
            .client
            .run(ops::ActiveDeployments, self.instance_variables())
            .await?;
        let mut list = data.service_instance.active_deployments;
        list.retain(|d| d.phase() == Phase::Live);
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Ok(list)
    }

    /// What a deployment runs, as shipgate names releases: its image, or for a GitHub-sourced
    /// service `repository:COMMIT`.
    fn release_of(&self, node: &DeploymentNode) -> Option<ImageRef> {
        match &self.source {
            ServiceSource::Image => node.image(),
            ServiceSource::Repo { repository } => {
                format!("{repository}:{}", node.commit()?).parse().ok()
            }
        }
    }

    /// Deploys commit `image`'s tag of the connected repo (a GitHub-sourced service).
    async fn deploy_commit(
        &self,
        image: &ImageRef,
        description: &str,
    ) -> Result<Deployment, RailwayError> {
        let commit = image.tag().unwrap_or_default();
        if commit.len() < 7 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(RailwayError::Invalid(format!(
                "`{commit}` is not a commit SHA; a GitHub-sourced Railway service deploys the commit being shipped (image_tag, IMAGE_TAG or GITHUB_SHA)"
            )));
        }
        let mut variables = self.instance_variables();
        variables["commitSha"] = json!(commit);
        self.start_deployment(ops::DeployCommit, variables, image, description)
            .await
            .map_err(|e| match e {
                RailwayError::Graphql { message, .. } | RailwayError::NotFound { message, .. }
                    if message.contains("Commit not found") =>
                {
                    RailwayError::Invalid(format!(
                        "Railway cannot find commit {commit} in {}: push it to the repo the service is connected to before deploying it",
                        self.resolved.repo.as_deref().unwrap_or("the connected repo")
                    ))
                }
                other => other,
            })
    }

    /// `serviceId` and `environmentId` of this service, the variables of most operations.
    fn instance_variables(&self) -> Value {
        json!({
            "serviceId": self.resolved.service_id,
            "environmentId": self.resolved.environment_id,
        })
    }

    /// Runs a `serviceInstanceDeployV2` operation and returns the deployment it started, as
    /// the deployment of `image`.
    async fn start_deployment(
        &self,
        operation: client::Operation,
        variables: Value,
        image: &ImageRef,
        description: &str,
    ) -> Result<Deployment, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Deployed {
            service_instance_deploy_v2: String,
        }
        let deployed: Deployed = self.client.run(operation, variables).await?;
        tracing::info!(service = %self.service, deployment = %deployed.service_instance_deploy_v2, %image, "Railway deployment started");
        Ok(Deployment {
            revision: RevisionId(deployed.service_instance_deploy_v2),
            request: DeployRequest {
                images: BTreeMap::from([(self.service.clone(), image.clone())]),
                description: description.to_owned(),
            },
        })
    }

    /// Sets the service's configured source image in this environment (no deployment).
    async fn set_source_image(&self, image: &ImageRef) -> Result<(), RailwayError> {
        let updated: BoolField = self
            .client
            .run(ops::SetImage, {
                let mut variables = self.instance_variables();
                variables["input"] = json!({"source": {"image": image.to_string()}});
                variables
            })
            .await?;
        updated.check("serviceInstanceUpdate")
    }

    /// Points the service at `image` in this environment and deploys it.
    async fn deploy_image(
        &self,
        image: &ImageRef,
        description: &str,
    ) -> Result<Deployment, RailwayError> {
        if matches!(self.source, ServiceSource::Repo { .. }) {
            return self.deploy_commit(image, description).await;
        }
        if self.require_pinned && !image.pinning(&[]).is_pinned() {
            return Err(RailwayError::Invalid(format!(
                "image `{image}` is not pinned; production-like environments deploy a commit SHA tag or a digest"
            )));
        }
        if let Some(repo) = &self.resolved.repo
            && self.switch_source_to_image
        {
            tracing::warn!(service = %self.resolved.service_name, %repo, "disconnecting the GitHub repo to deploy an image (targets.railway.switch_source_to_image)");
            let _: Value = self
                .client
                .run(
                    ops::ServiceDisconnect,
                    json!({"id": self.resolved.service_id}),
                )
                .await?;
        }
        self.set_source_image(image).await?;
        self.start_deployment(ops::DeployV2, self.instance_variables(), image, description)
            .await
    }

    /// One look at deployment `id`. Live is not yet healthy: it must stay live for
    /// `stable_for` (since the first live sighting, kept in `live_since`) and then be among the
    /// service's active deployments.
    async fn poll(
        &self,
        id: &str,
        expected: Option<&ImageRef>,
        live_since: &std::sync::Mutex<Option<Instant>>,
    ) -> Poll<Result<Verdict, RailwayError>> {
        let node = match self.deployment(id).await {
            Ok(node) => node,
            Err(
                RailwayError::Unavailable { message, .. }
                | RailwayError::RateLimited { message, .. },
            ) => {
                return Poll::Waiting(format!("{}: Railway unreachable ({message})", self.service));
            }
            Err(err) => return Poll::Ready(Err(err)),
        };
        match node.phase() {
            Phase::InProgress(what) => {
                Poll::Waiting(format!("{}: deployment {id} {what}", self.service))
            }
            Phase::Live => {
                let ran = self.release_of(&node);
                match (expected, ran) {
                    (Some(want), Some(ran)) if &ran != want => {
                        return Poll::Ready(Ok(Verdict::Failed {
                            reason: match self.source {
                                ServiceSource::Image => format!(
                                    "Railway deployment {id} is live with image `{ran}`, not the requested `{want}`; the service's source did not take the new image"
                                ),
                                ServiceSource::Repo { .. } => format!(
                                    "Railway deployment {id} is live having built commit {}, not the requested {}",
                                    ran.tag().unwrap_or_default(),
                                    want.tag().unwrap_or_default()
                                ),
                            },
                            diagnostics: Vec::new(),
                        }));
                    }
                    _ => {}
                }
                let first = *live_since
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get_or_insert_with(Instant::now);
                if first.elapsed() < self.stable_for {
                    return Poll::Waiting(format!(
                        "{}: deployment {id} is live; watching that it stays up for {} s",
                        self.service,
                        self.stable_for.as_secs_f64().ceil()
                    ));
                }
                // Read back what the service runs: the verdict is about the service.
                match self.active().await {
                    Ok(active) if active.iter().any(|d| d.id == id) => {
                        Poll::Ready(Ok(Verdict::Healthy))
                    }
                    Ok(active) => Poll::Ready(Ok(Verdict::Failed {
                        reason: format!(
                            "Railway deployment {id} went live, but the service's active deployment is now {}",
                            active.first().map_or_else(
                                || "none".to_owned(),
                                |d| format!("{} ({})", d.id, d.status)
                            )
                        ),
                        diagnostics: Vec::new(),
                    })),
                    Err(
                        RailwayError::Unavailable { message, .. }
                        | RailwayError::RateLimited { message, .. },
                    ) => Poll::Waiting(format!(
                        "{}: Railway unreachable while reading the active deployment ({message})",
                        self.service
                    )),
                    Err(err) => Poll::Ready(Err(err)),
                }
            }
            Phase::Blocked(why) | Phase::Failed(why) => Poll::Ready(Ok(Verdict::Failed {
                reason: format!("Railway deployment {id} {why}"),
                diagnostics: Vec::new(),
            })),
        }
    }

    /// Cancels a deployment shipgate stopped waiting for; failures are logged, not raised.
    async fn cancel(&self, id: &str) {
        let result: Result<Value, _> = self.client.run(ops::Cancel, json!({"id": id})).await;
        if let Err(err) = result {
            tracing::warn!(
                deployment = id,
                "could not cancel the Railway deployment: {err}"
            );
        }
    }

    async fn logs(&self, id: &str) -> Result<Vec<String>, RailwayError> {
        let mut lines = Vec::new();
        match self.deployment(id).await {
            Ok(node) => lines.push(format!("deployment {id}: status {}", node.status)),
            Err(err) => lines.push(format!("deployment {id}: status unavailable: {err}")),
        }

        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Events {
            deployment_events: Edges<Event>,
        }
        #[derive(Deserialize)]
        struct Event {
            step: String,
            payload: Option<Payload>,
        }
        #[derive(Deserialize)]
        struct Payload {
            error: Option<String>,
            reason: Option<String>,
        }
        // Each part is best-effort on its own: one failing query does not hide the others.
        match self
            .client
            .run::<Events>(ops::DeploymentEvents, json!({"id": id}))
            .await
        {
            Ok(events) => {
                for event in events.deployment_events.edges {
                    if let Some(payload) = event.node.payload
                        && let Some(error) = payload.error.or(payload.reason)
                    {
                        lines.push(format!("{}: {error}", event.node.step));
                    }
                }
            }
            Err(err) => lines.push(format!("deployment events unavailable: {err}")),
        }

        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Logs {
            deployment_logs: Vec<Log>,
        }
        #[derive(Deserialize)]
        struct Log {
            timestamp: String,
            message: String,
        }
        match self
            .client
            .run::<Logs>(
                ops::DeploymentLogs,
                json!({"deploymentId": id, "limit": 50}),
            )
            .await
        {
            Ok(logs) => lines.extend(
                logs.deployment_logs
                    .into_iter()
                    .map(|l| format!("{} {}", l.timestamp, l.message)),
            ),
            Err(err) => lines.push(format!("deployment logs unavailable: {err}")),
        }
        let redactor = self.client.redactor();
        Ok(lines
            .into_iter()
            .map(|l| quote_outside(&redactor.redact(&l)))
            .collect())
    }
}

/// A mutation answering `Boolean!`.
#[derive(Deserialize)]
struct BoolField(BTreeMap<String, bool>);

impl BoolField {
    fn check(&self, field: &'static str) -> Result<(), RailwayError> {
        if self.0.get(field).copied().unwrap_or(false) {
            Ok(())
        } else {
            Err(RailwayError::Graphql {
                operation: field,
                message: "Railway answered false".into(),
            })
        }
    }
}

async fn resolve_project_token(
    client: &Client,
    settings: &RailwaySettings,
) -> Result<(String, String), RailwayError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        project_token: Scope,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Scope {
        project_id: String,
        environment_id: String,
        project: Named,
        environment: Named,
    }
    let data: Data = client.run(ops::ProjectToken, json!({})).await?;
    let scope = data.project_token;
    for (kind, wanted, bound) in [
        ("project", &settings.project, &scope.project),
        ("environment", &settings.environment, &scope.environment),
    ] {
        if let Some(wanted) = wanted
            && wanted != &bound.id
            && !wanted.eq_ignore_ascii_case(&bound.name)
        {
            return Err(RailwayError::Invalid(format!(
                "RAILWAY_TOKEN is a project token for {kind} `{}` ({}), but the configuration names {kind} `{wanted}`; use a token of that {kind} or fix the name",
                bound.name, bound.id
            )));
        }
    }
    Ok((scope.project_id, scope.environment_id))
}

async fn resolve_project(
    client: &Client,
    wanted: &str,
    workspace: Option<&str>,
) -> Result<String, RailwayError> {
    // An ID answers directly; "Project not found" means it was a name.
    #[derive(Deserialize)]
    struct ById {
        project: Named,
    }
    match client
        .run::<ById>(ops::ProjectTopology, json!({"projectId": wanted}))
        .await
    {
        Ok(found) if found.project.deleted_at.is_none() => return Ok(found.project.id),
        Ok(_) | Err(RailwayError::NotFound { .. }) => {}
        Err(err) => return Err(err),
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Token {
        api_token: Workspaces,
    }
    #[derive(Deserialize)]
    struct Workspaces {
        workspaces: Vec<Named>,
    }
    let token: Token = client.run(ops::ApiTokenWorkspaces, json!({})).await?;
    let mut workspaces = token.api_token.workspaces;
    if let Some(only) = workspace {
        let chosen = pick("workspace", only, &workspaces)?;
        let id = chosen.id.clone();
        workspaces.retain(|w| w.id == id);
    }
    #[derive(Deserialize)]
    struct Page {
        projects: Connection,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Connection {
        edges: Vec<Edge<Named>>,
        page_info: PageInfo,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PageInfo {
        has_next_page: bool,
        end_cursor: Option<String>,
    }
    let mut projects = Vec::new();
    for ws in &workspaces {
        let mut after: Option<String> = None;
        for _ in 0..20 {
            let page: Page = client
                .run(
                    ops::WorkspaceProjects,
                    json!({"workspaceId": ws.id, "after": after}),
                )
                .await?;
            projects.extend(page.projects.edges.into_iter().map(|e| e.node));
            match (
                page.projects.page_info.has_next_page,
                page.projects.page_info.end_cursor,
            ) {
                (true, Some(cursor)) => after = Some(cursor),
                _ => break,
            }
        }
    }
    pick("project", wanted, &projects).map(|p| p.id.clone())
}

#[async_trait::async_trait]
impl Provider for RailwayProvider {
    fn kind(&self) -> &'static str {
        "railway"
    }

    /// What `connect` established, said for people: the token's kind and what it sees, and
    /// the service's source against `source`. (`connect` refuses a token that cannot see the
    /// project, environment or service, and a source that does not match.)
    async fn readiness(&self) -> Vec<Readiness> {
        let r = &self.resolved;
        let source = match (&self.source, &r.repo) {
            (ServiceSource::Repo { .. }, Some(repo)) => {
                format!(
                    "builds from GitHub repo {repo}; shipgate deploys the commit (source = \"repo\")"
                )
            }
            (ServiceSource::Image, Some(repo)) => format!(
                "connected to GitHub repo {repo}; shipgate disconnects it and deploys the image (switch_source_to_image)"
            ),
            (_, None) => "deploys container images (source = \"image\")".to_owned(),
        };
        vec![
            Readiness::ready(
                "token",
                format!(
                    "{}; it sees project `{}` and environment `{}`",
                    match self.client.token() {
                        RailwayToken::Project(_) => "a project token (RAILWAY_TOKEN)",
                        RailwayToken::Account(_) =>
                            "an account or workspace token (RAILWAY_API_TOKEN)",
                    },
                    r.project_name,
                    r.environment_name
                ),
            ),
            Readiness::ready("service", format!("`{}` {source}", r.service_name)),
        ]
    }

    async fn current(&self) -> Result<Vec<Running>, ProviderError> {
        let active = self.active().await?;
        Ok(active
            .first()
            .and_then(|d| {
                Some(Running {
                    service: self.service.clone(),
                    image: self.release_of(d)?,
                    revision: RevisionId(d.id.clone()),
                })
            })
            .into_iter()
            .collect())
    }

    async fn plan(&self, request: &DeployRequest) -> Result<Vec<PlannedChange>, ProviderError> {
        let Some(to) = request.images.get(&self.service) else {
            return Ok(Vec::new());
        };
        let from = self.current().await?.into_iter().next().map(|r| r.image);
        Ok(vec![PlannedChange {
            service: self.service.clone(),
            from,
            to: to.clone(),
        }])
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<Deployment, ProviderError> {
        let image = request.images.get(&self.service).ok_or_else(|| {
            ProviderError::invalid(format!(
                "the deploy names no image for service `{}`",
                self.service
            ))
        })?;
        Ok(self.deploy_image(image, &request.description).await?)
    }

    async fn wait<'a>(
        &'a self,
        deployment: &'a Deployment,
        deadline: Instant,
        progress: &'a (dyn ProgressSink + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<Verdict, ProviderError> {
        let id = deployment.revision.0.as_str();
        let expected = deployment.request.images.get(&self.service);
        let live_since = std::sync::Mutex::new(None);
        let outcome = wait_until(
            deadline,
            self.poll_interval,
            self.poll_interval * 2,
            progress,
            cancel,
            || self.poll(id, expected, &live_since),
        )
        .await;
        match outcome {
            Ok(Some(Ok(Verdict::Failed { reason, .. }))) => Ok(Verdict::Failed {
                reason,
                diagnostics: self.logs(id).await.unwrap_or_else(|e| vec![e.to_string()]),
            }),
            Ok(Some(verdict)) => Ok(verdict?),
            Ok(None) => {
                self.cancel(id).await;
                Ok(Verdict::Cancelled)
            }
            Err(waiting_for) => {
                self.cancel(id).await;
                Ok(Verdict::TimedOut {
                    waiting_for: format!("{waiting_for} (cancelled so it cannot go live later)"),
                    diagnostics: self.logs(id).await.unwrap_or_else(|e| vec![e.to_string()]),
                })
            }
        }
    }

    async fn history(&self) -> Result<Vec<Revision>, ProviderError> {
        let deployments = self.deployments().await?;
        let mut live_seen = false;
        Ok(deployments
            .into_iter()
            .map(|d| {
                let status = match d.phase() {
                    Phase::Live if !live_seen => {
                        live_seen = true;
                        RevisionStatus::Deployed
                    }
                    Phase::Live => RevisionStatus::Superseded,
                    Phase::InProgress(_) | Phase::Blocked(_) => RevisionStatus::Pending,
                    Phase::Failed(_) if status::was_live(&d.status) => RevisionStatus::Superseded,
                    Phase::Failed(_) => RevisionStatus::Failed,
                };
                Revision {
                    id: RevisionId(d.id.clone()),
                    images: self
                        .release_of(&d)
                        .map(|i| BTreeMap::from([(self.service.clone(), i)]))
                        .unwrap_or_default(),
                    status,
                    created_at: humantime::parse_rfc3339_weak(d.created_at.trim_end_matches('Z'))
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                    description: format!("Railway deployment ({})", d.status),
                }
            })
            .collect())
    }

    async fn rollback(&self, to: &RevisionId) -> Result<Deployment, ProviderError> {
        let target = self.deployment(&to.0).await?;
        if matches!(target.phase(), Phase::Failed(_)) && !status::was_live(&target.status) {
            return Err(ProviderError::invalid(format!(
                "Railway deployment {to} ended {}; roll back to one that was live",
                target.status
            )));
        }
        let image = self.release_of(&target);
        if !target.can_rollback {
            let image = image.ok_or_else(|| {
                ProviderError::invalid(format!(
                    "Railway deployment {to} cannot be rolled back (its image is past the plan's retention) and its image is unknown"
                ))
            })?;
            return Ok(self
                .deploy_image(&image, &format!("rollback to {to}"))
                .await?);
        }
        let before: BTreeSet<String> = self
            .deployments()
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        let ok: BoolField = self.client.run(ops::Rollback, json!({"id": to.0})).await?;
        ok.check("deploymentRollback")?;
        // The mutation answers a Boolean: the new deployment is the one that was not there
        // before (with the target's image, when Railway reports it).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = self.deployments().await?.into_iter().find(|d| {
                !before.contains(&d.id) && (image.is_none() || self.release_of(d) == image)
            });
            if let Some(found) = found {
                // deploymentRollback leaves the service's configured source naming the failed
                // image, which the next redeploy or variable change would bring back. (A
                // GitHub-sourced service's source is its repo: nothing to restore.)
                if let Some(image) = image
                    .as_ref()
                    .filter(|_| self.source == ServiceSource::Image)
                {
                    self.set_source_image(image).await?;
                }
                return Ok(Deployment {
                    revision: RevisionId(found.id),
                    request: DeployRequest {
                        images: image
                            .map(|i| BTreeMap::from([(self.service.clone(), i)]))
                            .unwrap_or_default(),
                        description: format!("rollback to {to}"),
                    },
                });
            }
            if Instant::now() >= deadline {
                return Err(ProviderError::platform(format!(
                    "Railway accepted the rollback to {to} but no new deployment appeared within 60 s"
                )));
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    async fn diagnostics(&self, deployment: &Deployment) -> Result<Vec<String>, ProviderError> {
        Ok(self.logs(&deployment.revision.0).await?)
    }
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
