//! Building the configured sources (`[[secrets.sources]]`) from the configuration and the
//! variables the binary passes in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shipgate_config::{SecretSourceConfig, SecretsConfig, secret_source_name};
use shipgate_core::{Environment, Secret};
use shipgate_http::RetryPolicy;

use crate::files::DotenvSourceError;
use crate::vault::VaultLocation;
use crate::{DirSource, DotenvSource, EnvSource, SecretSource, VaultSource};

/// What building the sources needs besides the configuration.
#[derive(Debug, Clone)]
pub struct BuildContext<'a> {
    /// The process environment snapshot (the `env` source, and the variables naming tokens
    /// and credentials of remote sources).
    pub vars: &'a BTreeMap<String, String>,
    /// The target environment: dotenv sources are refused when it is production-like.
    pub environment: &'a Environment,
    /// Relative paths are relative to this directory (the configuration file's).
    pub base_dir: &'a Path,
    /// The HTTP client remote sources share.
    pub client: reqwest::Client,
    /// Retries of remote sources.
    pub policy: RetryPolicy,
}

/// A source that cannot be built. Names the source and what is missing; never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A dotenv source in a production-like environment, or an unreadable dotenv file.
    #[error("secret source `{source_name}`: {error}")]
    Dotenv {
        /// The source.
        source_name: String,
        /// Why.
        #[source]
        error: DotenvSourceError,
    },
    /// A variable the source needs (a token, credentials, a region) is not set.
    #[error("secret source `{source_name}` needs {variable}, which is not set ({hint})")]
    MissingVariable {
        /// The source.
        source_name: String,
        /// The variable.
        variable: String,
        /// How to provide it.
        hint: String,
    },
    /// The source is configured wrongly or its kind is not compiled in.
    #[error("secret source `{source_name}`: {message}")]
    Invalid {
        /// The source.
        source_name: String,
        /// Why.
        message: String,
    },
}

fn resolve_path(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

fn variable<'a>(
    ctx: &BuildContext<'a>,
    source: &str,
    name: &str,
    hint: &str,
) -> Result<&'a str, BuildError> {
    ctx.vars
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| BuildError::MissingVariable {
            source_name: source.to_owned(),
            variable: name.to_owned(),
            hint: hint.to_owned(),
        })
}

/// Builds every configured source, in order. The first error stops: a misconfigured source
/// must be fixed, not skipped.
pub fn build_sources(
    config: &SecretsConfig,
    ctx: &BuildContext<'_>,
) -> Result<Vec<Box<dyn SecretSource>>, BuildError> {
    let mut sources: Vec<Box<dyn SecretSource>> = Vec::new();
    for source in &config.sources {
        let name = secret_source_name(source).to_owned();
        let built: Box<dyn SecretSource> = match source {
            SecretSourceConfig::Env { .. } => Box::new(EnvSource::new(&name, ctx.vars)),
            SecretSourceConfig::Dir { path, .. } => {
                Box::new(DirSource::new(&name, &resolve_path(ctx.base_dir, path)))
            }
            SecretSourceConfig::Dotenv { path, .. } => Box::new(
                DotenvSource::open(&name, &resolve_path(ctx.base_dir, path), ctx.environment)
                    .map_err(|error| BuildError::Dotenv {
                        source_name: name.clone(),
                        error,
                    })?,
            ),
            SecretSourceConfig::Vault {
                address,
                mount,
                path,
                namespace,
                token_env,
                version,
                ..
            } => {
                let token = variable(
                    ctx,
                    &name,
                    token_env,
                    "a Vault token with read access to the path",
                )?;
                let location = VaultLocation {
                    address: address.clone(),
                    mount: mount.clone(),
                    path: path.clone(),
                    namespace: namespace.clone(),
                    version: *version,
                };
                Box::new(VaultSource::new(
                    &name,
                    ctx.client.clone(),
                    &location,
                    Secret::new(token),
                    ctx.policy,
                ))
            }
            SecretSourceConfig::AwsSecretsManager {
                secret_id,
                region,
                endpoint,
                ..
            } => aws_source(
                &name,
                secret_id,
                region.as_deref(),
                endpoint.as_deref(),
                ctx,
            )?,
            SecretSourceConfig::Kubernetes {
                namespace,
                secret,
                kubeconfig_env,
                ..
            } => crate::kubernetes::source(&name, namespace, secret, kubeconfig_env, ctx)?,
        };
        sources.push(built);
    }
    Ok(sources)
}

#[cfg(feature = "aws")]
fn aws_source(
    name: &str,
    secret_id: &str,
    region: Option<&str>,
    endpoint: Option<&str>,
    ctx: &BuildContext<'_>,
) -> Result<Box<dyn SecretSource>, BuildError> {
    let region_hint = "set `region` on the source, AWS_REGION or AWS_DEFAULT_REGION";
    let region = match region {
        Some(region) => region,
        None => variable(ctx, name, "AWS_REGION", region_hint)
            .or_else(|_| variable(ctx, name, "AWS_DEFAULT_REGION", region_hint))?,
    };
    let credentials = crate::AwsCredentials {
        access_key_id: variable(
            ctx,
            name,
            "AWS_ACCESS_KEY_ID",
            "static or temporary AWS credentials",
        )?
        .to_owned(),
        secret_access_key: Secret::new(variable(
            ctx,
            name,
            "AWS_SECRET_ACCESS_KEY",
            "static or temporary AWS credentials",
        )?),
        session_token: ctx
            .vars
            .get("AWS_SESSION_TOKEN")
            .filter(|v| !v.is_empty())
            .map(|v| Secret::new(v.clone())),
    };
    let endpoint = endpoint.or(ctx
        .vars
        .get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .map(String::as_str));
    crate::AwsSecretsManagerSource::new(
        name,
        ctx.client.clone(),
        secret_id,
        region,
        endpoint,
        credentials,
        ctx.policy,
    )
    .map(|s| Box::new(s) as Box<dyn SecretSource>)
    .map_err(|message| BuildError::Invalid {
        source_name: name.to_owned(),
        message,
    })
}

#[cfg(not(feature = "aws"))]
fn aws_source(
    name: &str,
    _secret_id: &str,
    _region: Option<&str>,
    _endpoint: Option<&str>,
    _ctx: &BuildContext<'_>,
) -> Result<Box<dyn SecretSource>, BuildError> {
    Err(BuildError::Invalid {
        source_name: name.to_owned(),
        message: "this build of shipgate has no AWS support (cargo feature `aws`)".to_owned(),
    })
}
