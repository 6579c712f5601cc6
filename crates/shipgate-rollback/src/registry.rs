//! Does an image exist? The OCI distribution API: `HEAD /v2/<name>/manifests/<tag|digest>`,
//! with the registry's token flow when it answers 401 (`WWW-Authenticate: Bearer realm=…,
//! service=…, scope=…`; anonymous, or basic credentials such as a GitHub token for GHCR).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use shipgate_core::{ImageRef, Redactor, Secret};
use shipgate_http::{RetryPolicy, send_with_retry};

use crate::{Existence, ImageCheck, RollbackError};

/// Credentials for one registry host.
#[derive(Debug, Clone)]
pub struct RegistryLogin {
    /// The registry host (`ghcr.io`).
    pub host: String,
    /// User name (any non-empty value for GHCR with a token).
    pub username: String,
    /// Password or token.
    pub password: Secret,
}

/// The OCI distribution API client.
#[derive(Debug, Clone)]
pub struct OciRegistry {
    http: reqwest::Client,
    logins: Vec<RegistryLogin>,
    redactor: Redactor,
}

/// Media types a manifest HEAD accepts: OCI index and manifest, Docker v2 list and manifest.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

impl OciRegistry {
    /// A client with `logins` for private registries; others are asked anonymously.
    pub fn new(
        logins: Vec<RegistryLogin>,
        redactor: Redactor,
    ) -> Result<OciRegistry, RollbackError> {
        for login in &logins {
            redactor.add(&login.password);
        }
        let http =
            shipgate_http::build_client(&shipgate_http::ClientOptions::default()).map_err(|e| {
                RollbackError::Registry {
                    message: format!("cannot set up the registry client: {e}"),
                    source: Some(Box::new(e)),
                }
            })?;
        Ok(OciRegistry {
            http,
            logins,
            redactor,
        })
    }

    fn base(image: &ImageRef) -> (String, String) {
        let host = image.registry().unwrap_or("docker.io");
        let api_host = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let loopback = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .any(|l| api_host == *l || api_host.starts_with(&format!("{l}:")));
        // Loopback registries (tests, local mirrors) speak plain HTTP; everything else HTTPS.
        let scheme = if loopback { "http" } else { "https" };
        (host.to_owned(), format!("{scheme}://{api_host}"))
    }

    fn login(&self, host: &str) -> Option<&RegistryLogin> {
        self.logins.iter().find(|l| l.host == host)
    }

    async fn head(&self, url: &str, bearer: Option<&str>) -> Result<reqwest::Response, String> {
        let mut request = self
            .http
            .head(url)
            .header(ACCEPT, MANIFEST_TYPES)
            .timeout(Duration::from_secs(20));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .map_err(|e| shipgate_http::classify_error(&e).1)
    }

    /// The registry's token flow for a 401 challenge.
    async fn token(&self, host: &str, challenge: &str, repository: &str) -> Result<String, String> {
        let params = parse_challenge(challenge);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                format!(
                    "registry {host} asked for authentication without a token realm: {challenge}"
                )
            })?;
        let mut url = url::Url::parse(&realm).map_err(|e| format!("token realm `{realm}`: {e}"))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
                query.append_pair("service", service);
            }
            let scope = params.iter().find(|(k, _)| k == "scope").map_or_else(
                || format!("repository:{repository}:pull"),
                |(_, v)| v.clone(),
            );
            query.append_pair("scope", &scope);
        }
        let login = self.login(host).cloned();
        let policy = RetryPolicy::default();
        let fetched = send_with_retry(
            || {
                let request = self.http.get(url.clone());
                match &login {
                    Some(l) => request.basic_auth(&l.username, Some(l.password.expose())),
                    None => request,
                }
            },
            &policy,
        )
        .await
        .map_err(|e| e.to_string())?;
        if !fetched.status.is_success() {
            return Err(format!(
                "registry {host} refused a pull token ({}){}",
                fetched.status,
                if login.is_none() {
                    "; the repository may be private: configure credentials"
                } else {
                    "; check the credentials"
                }
            ));
        }
        let body: serde_json::Value = serde_json::from_slice(&fetched.body.bytes)
            .map_err(|_| format!("registry {host}'s token endpoint did not answer JSON"))?;
        body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("registry {host}'s token endpoint answered no token"))
    }
}

/// `Bearer realm="…",service="…",scope="…"` → pairs.
fn parse_challenge(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| challenge.trim().strip_prefix("bearer "))
        .unwrap_or(challenge);
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        if key.is_empty() {
            break;
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let v: String = chars.by_ref().take_while(|c| *c != '"').collect();
            v
        } else {
            chars.by_ref().take_while(|c| *c != ',').collect()
        };
        out.push((key, value));
    }
    out
}

#[async_trait]
impl ImageCheck for OciRegistry {
    async fn exists(&self, image: &ImageRef) -> Result<Existence, RollbackError> {
        self.ask(image)
            .await
            .map_err(|e| RollbackError::registry(self.redactor.redact(&e)))
    }
}

impl OciRegistry {
    /// The manifest HEAD, with the token flow; an error in words (masked by the caller).
    async fn ask(&self, image: &ImageRef) -> Result<Existence, String> {
        let (host, base) = Self::base(image);
        let repository = image.repository().to_owned();
        let repository = if host == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let reference = image
            .digest()
            .or(image.tag())
            .unwrap_or("latest")
            .to_owned();
        let url = format!("{base}/v2/{repository}/manifests/{reference}");
        let mut response = self.head(&url, None).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let token = self.token(&host, &challenge, &repository).await?;
            self.redactor.add(&Secret::new(token.clone()));
            response = self.head(&url, Some(&token)).await?;
        }
        let status = response.status();
        let is_html = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.contains("text/html"));
        let digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match status.as_u16() {
            200 if !is_html => Ok(Existence::Exists(digest)),
            404 => Ok(Existence::Missing),
            _ if is_html => Err(format!(
                "{host} answered an HTML page ({status}), not the OCI distribution API: is `{host}` a registry?"
            )),
            401 | 403 => Err(format!(
                "registry {host} refused access to {repository} ({status}); configure credentials for it"
            )),
            _ => Err(format!("registry {host} answered {status} for {image}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed() {
        let pairs = parse_challenge(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/api:pull""#,
        );
        assert_eq!(
            pairs,
            vec![
                ("realm".to_owned(), "https://ghcr.io/token".to_owned()),
                ("service".to_owned(), "ghcr.io".to_owned()),
                ("scope".to_owned(), "repository:acme/api:pull".to_owned()),
            ]
        );
    }

    #[test]
    fn hosts_map_to_api_urls() {
        let base = |s: &str| OciRegistry::base(&s.parse().unwrap()).1;
        assert_eq!(base("ghcr.io/acme/api:1"), "https://ghcr.io");
        assert_eq!(base("nginx:1"), "https://registry-1.docker.io");
        assert_eq!(base("127.0.0.1:5000/acme/api:1"), "http://127.0.0.1:5000");
    }
}
