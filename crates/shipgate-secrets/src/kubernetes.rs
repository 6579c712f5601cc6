//! A Kubernetes Secret as a source (cargo feature `kubernetes`): `data` values are base64 in
//! the API and decoded by kube; `stringData` (write-only in a real API server, but present in
//! manifests and some fakes) is read when `data` lacks the key. A missing Secret means every
//! key is missing; 403 and an unreachable API server are failures. The kubeconfig comes from a
//! variable (`KUBE_CONFIG_DATA` by default), plain YAML or base64, like seed 000's.

use crate::SecretSource;
use crate::build::{BuildContext, BuildError};

#[cfg(feature = "kubernetes")]
pub(crate) use imp::KubernetesSource;

#[cfg(feature = "kubernetes")]
pub(crate) fn source(
    name: &str,
    namespace: &str,
    secret: &str,
    kubeconfig_env: &str,
    ctx: &BuildContext<'_>,
) -> Result<Box<dyn SecretSource>, BuildError> {
    let raw = ctx
        .vars
        .get(kubeconfig_env)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| BuildError::MissingVariable {
            source_name: name.to_owned(),
            variable: kubeconfig_env.to_owned(),
            hint: "a kubeconfig, plain YAML or base64, with get access to the Secret".to_owned(),
        })?;
    KubernetesSource::from_kubeconfig(name, namespace, secret, raw)
        .map(|s| Box::new(s) as Box<dyn SecretSource>)
        .map_err(|message| BuildError::Invalid {
            source_name: name.to_owned(),
            message,
        })
}

#[cfg(not(feature = "kubernetes"))]
pub(crate) fn source(
    name: &str,
    _namespace: &str,
    _secret: &str,
    _kubeconfig_env: &str,
    _ctx: &BuildContext<'_>,
) -> Result<Box<dyn SecretSource>, BuildError> {
    Err(BuildError::Invalid {
        source_name: name.to_owned(),
        message: "this build of shipgate has no Kubernetes support (cargo feature `kubernetes`)"
            .to_owned(),
    })
}

#[cfg(feature = "kubernetes")]
mod imp {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use k8s_openapi::api::core::v1::Secret as KubeSecret;
    use kube::api::Api;
    use kube::config::{KubeConfigOptions, Kubeconfig};
    use shipgate_core::Secret;
    use tokio::sync::OnceCell;

    use crate::{Lookup, SecretSource};

    /// One Kubernetes Secret.
    pub(crate) struct KubernetesSource {
        name: String,
        namespace: String,
        secret: String,
        config: kube::Config,
        values: OnceCell<Result<BTreeMap<String, Secret>, String>>,
    }

    impl KubernetesSource {
        /// From a kubeconfig given as YAML or base64 (its current context).
        pub(crate) fn from_kubeconfig(
            name: &str,
            namespace: &str,
            secret: &str,
            raw: &str,
        ) -> Result<Self, String> {
            let (text, _) =
                shipgate_env::kubeconfig_text(raw).map_err(|e| format!("the kubeconfig {e}"))?;
            // Parse errors quote the input; report only that it failed.
            let kubeconfig = Kubeconfig::from_yaml(&text)
                .map_err(|_| "the kubeconfig is not valid YAML".to_owned())?;
            let options = KubeConfigOptions::default();
            // Building the config is async. On a multi-threaded runtime, block this worker in
            // place; anywhere else (no runtime, or a current-thread one, where blocking in
            // place would panic), on a thread of its own with a small runtime.
            let config = match tokio::runtime::Handle::try_current() {
                Ok(handle)
                    if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread =>
                {
                    tokio::task::block_in_place(|| {
                        handle.block_on(kube::Config::from_custom_kubeconfig(kubeconfig, &options))
                    })
                    .map_err(|e| e.to_string())
                }
                _ => std::thread::scope(|scope| {
                    scope
                        .spawn(|| {
                            tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .map_err(|e| e.to_string())?
                                .block_on(kube::Config::from_custom_kubeconfig(
                                    kubeconfig, &options,
                                ))
                                .map_err(|e| e.to_string())
                        })
                        .join()
                        .unwrap_or_else(|_| Err("reading it failed".to_owned()))
                }),
            }
            .map_err(|e| format!("the kubeconfig cannot be used: {e}"))?;
            Ok(KubernetesSource {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
                secret: secret.to_owned(),
                config,
                values: OnceCell::new(),
            })
        }

        async fn fetch(&self) -> Result<BTreeMap<String, Secret>, String> {
            let mut config = self.config.clone();
            config.connect_timeout = Some(Duration::from_secs(10));
            config.read_timeout = Some(Duration::from_secs(15));
            let client = kube::Client::try_from(config)
                .map_err(|e| format!("cannot build the Kubernetes client: {e}"))?;
            let api: Api<KubeSecret> = Api::namespaced(client, &self.namespace);
            let where_ = format!("Secret {}/{}", self.namespace, self.secret);
            let mut last = String::new();
            for attempt in 1..=3u32 {
                match api.get_opt(&self.secret).await {
                    Ok(None) => return Ok(BTreeMap::new()),
                    Ok(Some(secret)) => return decode(secret, &where_),
                    Err(kube::Error::Api(status)) if status.code == 403 || status.code == 401 => {
                        return Err(format!(
                            "permission denied reading {where_} ({}: {})",
                            status.code, status.reason
                        ));
                    }
                    Err(err) => {
                        last = format!("cannot read {where_}: {err}");
                        if attempt < 3 {
                            tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt)))
                                .await;
                        }
                    }
                }
            }
            Err(format!("{last} (after 3 attempts)"))
        }
    }

    fn decode(secret: KubeSecret, where_: &str) -> Result<BTreeMap<String, Secret>, String> {
        let mut values = BTreeMap::new();
        for (key, value) in secret.string_data.unwrap_or_default() {
            values.insert(key, Secret::new(value));
        }
        for (key, bytes) in secret.data.unwrap_or_default() {
            let text = String::from_utf8(bytes.0)
                .map_err(|_| format!("{where_}: key `{key}` is not UTF-8 text"))?;
            values.insert(key, Secret::new(text));
        }
        Ok(values)
    }

    #[async_trait::async_trait]
    impl SecretSource for KubernetesSource {
        fn name(&self) -> &str {
            &self.name
        }

        fn kind(&self) -> &'static str {
            "kubernetes"
        }

        async fn lookup<'a>(&'a self, key: &'a str, field: Option<&'a str>) -> Lookup {
            tracing::debug!(namespace = %self.namespace, secret = %self.secret, "reading Kubernetes Secret");
            match self.values.get_or_init(|| self.fetch()).await {
                Ok(values) => match values.get(field.unwrap_or(key)) {
                    Some(value) => Lookup::Found(value.clone()),
                    None => Lookup::Missing,
                },
                Err(reason) => Lookup::Failed(reason.clone()),
            }
        }
    }
}
