//! Migrations as Kubernetes Jobs: created once before the rollout, in the release's namespace,
//! with the new image; watched until they succeed or fail within the deadline; their pod's
//! last log lines reported on failure; deleted (with their pods) when they time out or the
//! deploy is interrupted, so a migration never keeps running behind a stopped deploy.

use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use serde_json::json;
use shipgate_provider::{MigrationError, MigrationJob};
use tokio_util::sync::CancellationToken;

/// A migration Job.
#[derive(Clone)]
pub struct KubernetesJob {
    client: kube::Client,
    namespace: String,
    name: String,
    image: String,
    command: Vec<String>,
    env_from_secret: Option<String>,
    poll: Duration,
}

impl std::fmt::Debug for KubernetesJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesJob")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl KubernetesJob {
    /// A Job `name` in `namespace` running `command` in `image`, with the keys of the
    /// Kubernetes Secret `env_from_secret` as environment variables (the values stay in the
    /// cluster: they never pass through shipgate or the Job spec). `kubeconfig` as for the
    /// Helm target (None: the in-cluster or default kubeconfig).
    pub async fn new(
        kubeconfig: Option<&str>,
        context: Option<&str>,
        namespace: &str,
        name: &str,
        image: &str,
        command: Vec<String>,
        env_from_secret: Option<String>,
    ) -> Result<KubernetesJob, String> {
        let client = match kubeconfig {
            Some(yaml) => crate::kube_client(yaml, context)
                .await
                .map_err(|e| e.to_string())?,
            None => {
                let config = kube::Config::infer()
                    .await
                    .map_err(|e| format!("no Kubernetes configuration: {e}"))?;
                kube::Client::try_from(config).map_err(|e| e.to_string())?
            }
        };
        if command.is_empty() {
            return Err("[migrate] command is empty".into());
        }
        Ok(KubernetesJob {
            client,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            image: image.to_owned(),
            command,
            env_from_secret,
            poll: Duration::from_secs(2),
        })
    }

    /// Polls every `poll` instead of 2 s (tests).
    pub fn with_poll(mut self, poll: Duration) -> KubernetesJob {
        self.poll = poll;
        self
    }

    fn spec(&self, timeout: Duration) -> Result<Job, String> {
        let mut container = json!({
            "name": "migrate",
            "image": self.image,
            "command": self.command,
        });
        if let Some(secret) = &self.env_from_secret {
            container["envFrom"] = json!([{"secretRef": {"name": secret}}]);
        }
        serde_json::from_value(json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": self.name, "labels": {"app.kubernetes.io/managed-by": "shipgate"}},
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": timeout.as_secs().max(1),
                "ttlSecondsAfterFinished": 86_400,
                "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
            },
        }))
        .map_err(|e| format!("cannot build the Job: {e}"))
    }

    async fn logs(&self) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let listed = pods
            .list(&ListParams::default().labels(&format!("job-name={}", self.name)))
            .await;
        let Some(pod) = listed.ok().and_then(|l| l.items.into_iter().next()) else {
            return "no pod output".into();
        };
        let name = pod.metadata.name.unwrap_or_default();
        let params = LogParams {
            tail_lines: Some(5),
            ..LogParams::default()
        };
        match pods.logs(&name, &params).await {
            Ok(text) => text.lines().collect::<Vec<_>>().join(" | "),
            Err(e) => format!("logs unavailable: {e}"),
        }
    }

    async fn delete(&self) {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        if let Err(err) = jobs.delete(&self.name, &DeleteParams::background()).await {
            tracing::warn!(job = %self.name, "could not delete the migration Job: {err}");
        }
    }
}

#[async_trait::async_trait]
impl MigrationJob for KubernetesJob {
    fn describe(&self) -> String {
        format!(
            "Kubernetes Job {} in namespace {} ({})",
            self.name, self.namespace, self.image
        )
    }

    async fn run(
        &self,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<String, MigrationError> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let spec = self.spec(timeout).map_err(MigrationError::Failed)?;
        jobs.create(&PostParams::default(), &spec)
            .await
            .map_err(|e| MigrationError::Failed(format!("cannot create Job {}: {e}", self.name)))?;
        let deadline = Instant::now() + timeout;
        loop {
            let status = jobs
                .get(&self.name)
                .await
                .ok()
                .and_then(|job| job.status)
                .unwrap_or_default();
            if status.succeeded.unwrap_or(0) > 0 {
                return Ok(format!(
                    "Job {} succeeded: {}",
                    self.name,
                    self.logs().await
                ));
            }
            let failed_condition = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Failed" && c.status == "True");
            if status.failed.unwrap_or(0) > 0 || failed_condition {
                return Err(MigrationError::Failed(format!(
                    "Job {} failed: {}",
                    self.name,
                    self.logs().await
                )));
            }
            if Instant::now() >= deadline {
                self.delete().await;
                return Err(MigrationError::TimedOut(format!(
                    "Job {} still running after {} s; deleted",
                    self.name,
                    timeout.as_secs()
                )));
            }
            tokio::select! {
                () = tokio::time::sleep(self.poll) => {}
                () = cancel.cancelled() => {
                    self.delete().await;
                    return Err(MigrationError::Interrupted(format!(
                        "interrupted; Job {} deleted",
                        self.name
                    )));
                }
            }
        }
    }
}
