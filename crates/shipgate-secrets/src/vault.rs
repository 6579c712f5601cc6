//! HashiCorp Vault, KV secrets engine version 2, over its HTTP API.
//!
//! `GET {address}/v1/{mount}/data/{path}[?version=N]` with `X-Vault-Token` (and
//! `X-Vault-Namespace` for Vault Enterprise namespaces). The answer's `data.data` map holds the
//! fields; `data.metadata.version` the version read. 404 means the path (or the version) does
//! not exist: every key is missing. 403 is "permission denied"; other errors carry
//! `{"errors": [...]}`. The secret is read once per run and cached.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use shipgate_core::{Redactor, Secret};
use shipgate_http::{RetryPolicy, send_with_retry};
use tokio::sync::OnceCell;

use crate::{Lookup, SecretSource};

/// A Vault KV v2 secret as a source: each field is a key.
pub struct VaultSource {
    name: String,
    client: reqwest::Client,
    url: String,
    namespace: Option<String>,
    token: Secret,
    policy: RetryPolicy,
    fields: OnceCell<Result<BTreeMap<String, Secret>, String>>,
}

impl std::fmt::Debug for VaultSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSource")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Where a Vault secret lives.
#[derive(Debug, Clone)]
pub struct VaultLocation {
    /// `https://vault.example.com:8200`.
    pub address: String,
    /// The KV v2 mount (`secret`).
    pub mount: String,
    /// The secret's path under the mount.
    pub path: String,
    /// A Vault Enterprise namespace.
    pub namespace: Option<String>,
    /// A version to read instead of the latest.
    pub version: Option<u64>,
}

impl VaultSource {
    /// A source reading `location` with `token`.
    pub fn new(
        name: &str,
        client: reqwest::Client,
        location: &VaultLocation,
        token: Secret,
        policy: RetryPolicy,
    ) -> VaultSource {
        let trim = |s: &str| s.trim_matches('/').to_owned();
        let mut url = format!(
            "{}/v1/{}/data/{}",
            location.address.trim_end_matches('/'),
            trim(&location.mount),
            trim(&location.path)
        );
        if let Some(version) = location.version {
            url.push_str(&format!("?version={version}"));
        }
        VaultSource {
            name: name.to_owned(),
            client,
            url,
            namespace: location.namespace.clone(),
            token,
            policy,
            fields: OnceCell::new(),
        }
    }

    async fn read(&self) -> Result<BTreeMap<String, Secret>, String> {
        let redactor = Redactor::default();
        redactor.add(&self.token);
        let fetched = send_with_retry(
            || {
                let mut request = self
                    .client
                    .get(&self.url)
                    .header("X-Vault-Token", self.token.expose())
                    .header("X-Vault-Request", "true");
                if let Some(namespace) = &self.namespace {
                    request = request.header("X-Vault-Namespace", namespace);
                }
                request
            },
            &self.policy,
        )
        .await
        .map_err(|e| {
            redactor
                .redact(&format!("Vault at {} unreachable: {e}", self.url))
                .into_owned()
        })?;
        let body: serde_json::Value =
            serde_json::from_slice(&fetched.body.bytes).unwrap_or_default();
        let errors = || {
            body["errors"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "no error message".to_owned())
        };
        let failure = match fetched.status {
            StatusCode::OK => None,
            StatusCode::NOT_FOUND => return Ok(BTreeMap::new()),
            StatusCode::FORBIDDEN => Some(format!(
                "permission denied reading {} (403: {})",
                self.url,
                errors()
            )),
            status => Some(format!(
                "Vault answered {status} for {}: {}",
                self.url,
                errors()
            )),
        };
        if let Some(message) = failure {
            return Err(redactor.redact(&message).into_owned());
        }
        let Some(data) = body["data"]["data"].as_object() else {
            return Err(format!(
                "Vault's answer for {} has no data.data object (is the mount KV version 2?)",
                self.url
            ));
        };
        Ok(data
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), Secret::new(text))
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl SecretSource for VaultSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "vault"
    }

    async fn lookup<'a>(&'a self, key: &'a str, field: Option<&'a str>) -> Lookup {
        tracing::debug!(url = %self.url, "reading Vault KV v2 secret");
        match self.fields.get_or_init(|| self.read()).await {
            Ok(fields) => match fields.get(field.unwrap_or(key)) {
                Some(value) => Lookup::Found(value.clone()),
                None => Lookup::Missing,
            },
            Err(reason) => Lookup::Failed(reason.clone()),
        }
    }
}
