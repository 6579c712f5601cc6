//! Rollout status through the Kubernetes API, with kubectl's decision order
//! (`kubectl rollout status`, re-implemented), and pod-level diagnostics for failure reports.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

/// Where one workload's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Rolled out.
    Done,
    /// Still rolling out: what it waits for.
    Waiting(String),
    /// Will not finish by itself.
    Failed(String),
}

/// A Deployment's rollout, in kubectl's order: the spec must be observed; a
/// `ProgressDeadlineExceeded` condition is terminal; then updated, old and available replicas.
pub fn deployment_rollout(d: &Deployment) -> Rollout {
    let name = d.metadata.name.as_deref().unwrap_or("?");
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = &d.status else {
        return Rollout::Waiting(format!(
            "deployment {name}: waiting for the spec update to be observed"
        ));
    };
    if generation > status.observed_generation.unwrap_or(0) {
        return Rollout::Waiting(format!(
            "deployment {name}: waiting for the spec update to be observed"
        ));
    }
    let exceeded = status.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if exceeded {
        return Rollout::Failed(format!("deployment {name} exceeded its progress deadline"));
    }
    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < wanted {
        return Rollout::Waiting(format!(
            "deployment {name}: {updated} of {wanted} new replicas updated"
        ));
    }
    if replicas > updated {
        return Rollout::Waiting(format!(
            "deployment {name}: {} old replicas pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return Rollout::Waiting(format!(
            "deployment {name}: {available} of {updated} updated replicas available"
        ));
    }
    Rollout::Done
}

/// A StatefulSet's rollout: observed, all replicas ready, on the update revision.
pub fn statefulset_rollout(s: &StatefulSet) -> Rollout {
    let name = s.metadata.name.as_deref().unwrap_or("?");
    let Some(status) = &s.status else {
        return Rollout::Waiting(format!(
            "statefulset {name}: waiting for the spec update to be observed"
        ));
    };
    if s.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Rollout::Waiting(format!(
            "statefulset {name}: waiting for the spec update to be observed"
        ));
    }
    let wanted = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    if ready < wanted {
        return Rollout::Waiting(format!(
            "statefulset {name}: {ready} of {wanted} replicas ready"
        ));
    }
    if status.update_revision.is_some() && status.update_revision != status.current_revision {
        return Rollout::Waiting(format!(
            "statefulset {name}: pods not yet on the update revision"
        ));
    }
    Rollout::Done
}

/// Container reasons that explain a stuck rollout.
const WAITING_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
];

/// What is wrong with these pods: waiting containers with a telling reason, unschedulable pods.
/// Returns (lines, pods worth reading logs of).
pub fn pod_problems(pods: &[Pod]) -> (Vec<String>, Vec<(String, String)>) {
    let mut lines = Vec::new();
    let mut crashing = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(status) = &pod.status else { continue };
        for condition in status.conditions.iter().flatten() {
            if condition.type_ == "PodScheduled" && condition.status == "False" {
                lines.push(format!(
                    "pod {name}: not scheduled: {} {}",
                    condition.reason.as_deref().unwrap_or(""),
                    condition.message.as_deref().unwrap_or("")
                ));
            }
        }
        for container in status.container_statuses.iter().flatten() {
            let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let reason = waiting.reason.as_deref().unwrap_or("");
            if WAITING_REASONS.contains(&reason) {
                lines.push(format!(
                    "pod {name}: container {} {reason}: {}",
                    container.name,
                    waiting.message.as_deref().unwrap_or("")
                ));
                if reason == "CrashLoopBackOff" {
                    crashing.push((name.clone(), container.name.clone()));
                }
            }
        }
    }
    (lines, crashing)
}

/// Checks every Deployment and StatefulSet of a Helm release (label
/// `app.kubernetes.io/instance=RELEASE`) and explains what is not rolled out.
pub(crate) async fn check(
    client: &kube::Client,
    namespace: &str,
    release: &str,
) -> Result<(Rollout, Vec<String>), kube::Error> {
    let selector = format!("app.kubernetes.io/instance={release}");
    let params = ListParams::default().labels(&selector);
    let mut verdicts = Vec::new();
    let mut selectors: Vec<BTreeMap<String, String>> = Vec::new();
    for d in Api::<Deployment>::namespaced(client.clone(), namespace)
        .list(&params)
        .await?
        .items
    {
        let rollout = deployment_rollout(&d);
        if rollout != Rollout::Done
            && let Some(labels) = d
                .spec
                .as_ref()
                .and_then(|s| s.selector.match_labels.clone())
        {
            selectors.push(labels);
        }
        verdicts.push(rollout);
    }
    for s in Api::<StatefulSet>::namespaced(client.clone(), namespace)
        .list(&params)
        .await?
        .items
    {
        let rollout = statefulset_rollout(&s);
        if rollout != Rollout::Done
            && let Some(labels) = s
                .spec
                .as_ref()
                .and_then(|s| s.selector.match_labels.clone())
        {
            selectors.push(labels);
        }
        verdicts.push(rollout);
    }
    let overall = verdicts
        .iter()
        .find(|r| matches!(r, Rollout::Failed(_)))
        .or_else(|| verdicts.iter().find(|r| matches!(r, Rollout::Waiting(_))))
        .cloned()
        .unwrap_or(Rollout::Done);
    let mut diagnostics = Vec::new();
    let pods_api = Api::<Pod>::namespaced(client.clone(), namespace);
    for labels in selectors {
        let selector = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let pods = pods_api
            .list(&ListParams::default().labels(&selector))
            .await?
            .items;
        let (lines, crashing) = pod_problems(&pods);
        diagnostics.extend(lines);
        for (pod, container) in crashing.into_iter().take(3) {
            let params = LogParams {
                container: Some(container.clone()),
                tail_lines: Some(20),
                previous: false,
                ..LogParams::default()
            };
            if let Ok(Ok(log)) =
                tokio::time::timeout(Duration::from_secs(10), pods_api.logs(&pod, &params)).await
            {
                diagnostics.push(format!("last log lines of {pod}/{container}:"));
                diagnostics.extend(log.lines().map(|l| format!("  {l}")));
            }
        }
    }
    Ok((overall, diagnostics))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(json: serde_json::Value) -> Deployment {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn deployments_follow_kubectls_order() {
        let unobserved = deployment(
            serde_json::json!({"metadata": {"name": "web", "generation": 3}, "spec": {"replicas": 2, "selector": {}, "template": {}}, "status": {"observedGeneration": 2}}),
        );
        assert!(
            matches!(deployment_rollout(&unobserved), Rollout::Waiting(m) if m.contains("spec update"))
        );
        let exceeded = deployment(
            serde_json::json!({"metadata": {"name": "web", "generation": 3}, "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 3, "updatedReplicas": 1, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}}),
        );
        assert_eq!(
            deployment_rollout(&exceeded),
            Rollout::Failed("deployment web exceeded its progress deadline".into())
        );
        let updating = deployment(
            serde_json::json!({"metadata": {"name": "web", "generation": 3}, "spec": {"replicas": 2, "selector": {}, "template": {}}, "status": {"observedGeneration": 3, "updatedReplicas": 1, "replicas": 2}}),
        );
        assert!(
            matches!(deployment_rollout(&updating), Rollout::Waiting(m) if m.contains("1 of 2 new replicas"))
        );
        let old = deployment(
            serde_json::json!({"metadata": {"name": "web", "generation": 3}, "spec": {"replicas": 2, "selector": {}, "template": {}}, "status": {"observedGeneration": 3, "updatedReplicas": 2, "replicas": 3}}),
        );
        assert!(
            matches!(deployment_rollout(&old), Rollout::Waiting(m) if m.contains("1 old replicas"))
        );
        let unavailable = deployment(
            serde_json::json!({"metadata": {"name": "web", "generation": 3}, "spec": {"replicas": 2, "selector": {}, "template": {}}, "status": {"observedGeneration": 3, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 1}}),
        );
        assert!(
            matches!(deployment_rollout(&unavailable), Rollout::Waiting(m) if m.contains("1 of 2 updated replicas available"))
        );
        let done = deployment(
            serde_json::json!({"metadata": {"name": "web", "generation": 3}, "spec": {"replicas": 2, "selector": {}, "template": {}}, "status": {"observedGeneration": 3, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}}),
        );
        assert_eq!(deployment_rollout(&done), Rollout::Done);
    }

    #[test]
    fn statefulsets_need_ready_replicas_on_the_update_revision() {
        let s: StatefulSet = serde_json::from_value(serde_json::json!({"metadata": {"name": "db", "generation": 1}, "spec": {"replicas": 2, "selector": {}, "serviceName": "db", "template": {}},
            "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "b"}})).unwrap();
        assert!(
            matches!(statefulset_rollout(&s), Rollout::Waiting(m) if m.contains("update revision"))
        );
    }

    #[test]
    fn pod_problems_name_the_reason() {
        let pods: Vec<Pod> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "web-1"}, "status": {"containerStatuses": [{"name": "api", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"ghcr.io/acme/api:nope\""}}}]}},
            {"metadata": {"name": "web-2"}, "status": {"containerStatuses": [{"name": "api", "image": "x", "imageID": "", "ready": false, "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}}]}},
            {"metadata": {"name": "web-3"}, "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available"}]}}
        ])).unwrap();
        let (lines, crashing) = pod_problems(&pods);
        assert!(
            lines[0].contains("web-1: container api ImagePullBackOff"),
            "{lines:?}"
        );
        assert!(lines[1].contains("CrashLoopBackOff"));
        assert!(lines[2].contains("not scheduled: Unschedulable"));
        assert_eq!(crashing, [("web-2".to_owned(), "api".to_owned())]);
    }
}
