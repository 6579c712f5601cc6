//! `shipgate doctor` for the Helm target: helm's version, the cluster, the namespace, and
//! whether the identity may do what helm and the rollout check do (SelfSubjectAccessReview;
//! creating a review changes nothing in the cluster).

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use shipgate_provider::Readiness;

use crate::MIN_VERSION;

/// (verb, API group, resource) that a deploy needs in the release's namespace: helm keeps its
/// release records in Secrets and patches the chart's workloads; the rollout check reads
/// Deployments, StatefulSets and their Pods.
pub(crate) const NEEDED: &[(&str, &str, &str)] = &[
    ("get", "", "secrets"),
    ("list", "", "secrets"),
    ("create", "", "secrets"),
    ("update", "", "secrets"),
    ("get", "apps", "deployments"),
    ("list", "apps", "deployments"),
    ("patch", "apps", "deployments"),
    ("list", "apps", "statefulsets"),
    ("list", "", "pods"),
];

/// The readiness lines of helm `version` and the cluster behind `kube`.
pub(crate) async fn check(
    version: &str,
    kube: Option<&kube::Client>,
    namespace: &str,
) -> Vec<Readiness> {
    let mut out = vec![Readiness::ready(
        "helm",
        format!(
            "{version} (shipgate supports {}.{} and later, and helm 4)",
            MIN_VERSION.0, MIN_VERSION.1
        ),
    )];
    let Some(kube) = kube else {
        out.push(Readiness::not_ready(
            "cluster",
            "no kubeconfig: KUBE_CONFIG_DATA is unset and none was found ($KUBECONFIG, ~/.kube/config, a pod's service account)",
            "set KUBE_CONFIG_DATA (base64 or plain YAML) or [targets.helm] kubeconfig_path",
        ));
        return out;
    };
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    match namespaces.get_opt(namespace).await {
        Ok(Some(_)) => out.push(Readiness::ready(
            "namespace",
            format!("`{namespace}` exists"),
        )),
        Ok(None) => out.push(Readiness::not_ready(
            "namespace",
            format!("`{namespace}` does not exist"),
            format!(
                "create it (kubectl create namespace {namespace}) or set HELM_NAMESPACE / [targets.helm] namespace to the release's"
            ),
        )),
        Err(kube::Error::Api(status)) if status.code == 403 => out.push(Readiness::unknown(
            "namespace",
            format!(
                "the identity may not read namespace `{namespace}` (403), so its existence is unknown; helm needs only the namespaced rights below"
            ),
        )),
        Err(err) => {
            out.push(Readiness::not_ready(
                "cluster",
                format!("the Kubernetes API does not answer: {err}"),
                "check the kubeconfig's server, certificate and credentials (KUBE_CONFIG_DATA)",
            ));
            return out;
        }
    }
    let reviews: Api<SelfSubjectAccessReview> = Api::all(kube.clone());
    let mut allowed = Vec::new();
    for (verb, group, resource) in NEEDED {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_owned()),
                    verb: Some((*verb).to_owned()),
                    group: Some((*group).to_owned()),
                    resource: Some((*resource).to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let what = format!("{verb} {resource}");
        match reviews.create(&PostParams::default(), &review).await {
            Ok(answer) => match answer.status {
                Some(status) if status.allowed => allowed.push(what),
                Some(status) => out.push(Readiness::not_ready(
                    format!("may {what}"),
                    format!(
                        "the identity may not {what} in `{namespace}`{}",
                        status
                            .reason
                            .filter(|r| !r.is_empty())
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ),
                    format!(
                        "grant it with a Role and RoleBinding in `{namespace}`: {verb} on {}",
                        if group.is_empty() {
                            (*resource).to_owned()
                        } else {
                            format!("{resource}.{group}")
                        }
                    ),
                )),
                None => out.push(Readiness::unknown(
                    format!("may {what}"),
                    "the access review came back without a status",
                )),
            },
            Err(err) => out.push(Readiness::unknown(
                format!("may {what}"),
                format!("the access review failed: {err}"),
            )),
        }
    }
    if !allowed.is_empty() {
        out.push(Readiness::ready(
            "rights",
            format!("in `{namespace}` the identity may {}", allowed.join(", ")),
        ));
    }
    out
}
