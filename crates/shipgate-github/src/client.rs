//! The GitHub REST client: `Accept: application/vnd.github+json`, API version 2022-11-28,
//! pagination by the `Link` header, GitHub's documented rate-limit rules (Retry-After, then
//! `x-ratelimit-reset` when the remaining count is 0, then at least a minute for secondary
//! limits), retries of 5xx with jitter, and typed errors for 401/403/404/422.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use shipgate_core::{Redactor, Secret, quote_outside};
use shipgate_http::{Backoff, header_u64, read_body_capped, retry_after};

/// Bodies are read up to this size (a PR list embeds whole repositories).
const BODY_CAP: usize = 4 * 1024 * 1024;
/// Attempts per request.
const ATTEMPTS: u32 = 5;

/// GitHub API errors. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GithubError {
    /// 401: the token is missing, expired or wrong.
    #[error("GitHub refused the token (401) for {path}: {message}; check GITHUB_TOKEN")]
    Unauthorized {
        /// The request path.
        path: String,
        /// GitHub's message.
        message: String,
    },
    /// 403 that is not a rate limit: the token lacks a permission.
    #[error("GitHub denied {path} (403): {message}; the token needs {scope}")]
    Forbidden {
        /// The request path.
        path: String,
        /// GitHub's message.
        message: String,
        /// The permission the operation needs.
        scope: String,
    },
    /// 404: the repository, commit or object does not exist (or the token cannot see it).
    #[error(
        "GitHub has no {path} (404): check the repository name, the SHA, and the token's access"
    )]
    NotFound {
        /// The request path.
        path: String,
    },
    /// 422: GitHub rejected the request.
    #[error("GitHub rejected {path} (422): {message}")]
    Unprocessable {
        /// The request path.
        path: String,
        /// GitHub's message.
        message: String,
    },
    /// Rate limited past the caller's deadline.
    #[error("GitHub rate limit on {path}: {message}")]
    RateLimited {
        /// The request path.
        path: String,
        /// When it resets, or what GitHub said.
        message: String,
    },
    /// No usable answer (network, 5xx after retries, unreadable body).
    #[error("GitHub request {path} failed: {message}")]
    Unavailable {
        /// The request path.
        path: String,
        /// Why.
        message: String,
    },
}

/// A GitHub API client for one token.
#[derive(Clone)]
pub struct GithubClient {
    http: reqwest::Client,
    base: url::Url,
    token: Option<Secret>,
    redactor: Redactor,
    /// When the last write was sent: GitHub asks for at least a second between writes.
    last_write: std::sync::Arc<tokio::sync::Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Whether a 403/429 is a rate limit, and how long to wait if so.
pub fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    now: SystemTime,
) -> Option<Duration> {
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && (headers.contains_key(reqwest::header::RETRY_AFTER)
                || header_u64(headers, "x-ratelimit-remaining") == Some(0)
                || message.to_ascii_lowercase().contains("rate limit")));
    if !limited {
        return None;
    }
    if let Some(wait) = retry_after(headers, now) {
        return Some(wait);
    }
    if header_u64(headers, "x-ratelimit-remaining") == Some(0)
        && let Some(reset) = header_u64(headers, "x-ratelimit-reset")
    {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        return Some(Duration::from_secs(reset.saturating_sub(now)));
    }
    // A secondary limit: GitHub asks for at least a minute.
    Some(Duration::from_secs(60))
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

impl GithubClient {
    /// A client for `api_url` (`https://api.github.com`, or GitHub Enterprise's
    /// `https://HOST/api/v3`).
    pub fn new(api_url: &str, token: Option<Secret>) -> Result<GithubClient, GithubError> {
        let unavailable = |message: String| GithubError::Unavailable {
            path: api_url.to_owned(),
            message,
        };
        let mut base = url::Url::parse(api_url)
            .map_err(|e| unavailable(format!("`{api_url}` is not a URL: {e}")))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = shipgate_http::build_client(&shipgate_http::ClientOptions::default())
            .map_err(|e| unavailable(e.to_string()))?;
        let redactor = Redactor::default();
        if let Some(token) = &token {
            redactor.add(token);
        }
        Ok(GithubClient {
            http,
            base,
            token,
            redactor,
            last_write: std::sync::Arc::default(),
        })
    }

    fn url(&self, path: &str) -> Result<url::Url, GithubError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| GithubError::Unavailable {
                path: path.to_owned(),
                message: e.to_string(),
            })
    }

    /// GETs `path_or_url` and returns the parsed body and headers. Retries 5xx and connection
    /// errors with jittered backoff and waits out rate limits, never past `deadline`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path_or_url: &str,
        deadline: Instant,
    ) -> Result<(T, HeaderMap), GithubError> {
        let (value, headers) = self.call(Method::GET, path_or_url, None, deadline).await?;
        let value = serde_json::from_value(value).map_err(|e| GithubError::Unavailable {
            path: path_or_url.to_owned(),
            message: format!("unexpected response body: {e}"),
        })?;
        Ok((value, headers))
    }

    /// Sends a write (`POST`, `PATCH`) with a JSON body, at least a second after the previous
    /// write of this client was answered (GitHub's advice; another process with the same
    /// token is answered with a secondary rate limit, which is waited out), and returns the
    /// parsed answer. Rate limits are waited out; a 5xx is retried only
    /// for `PATCH` (sending a `POST` twice could create two issues or deployments).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
        deadline: Instant,
    ) -> Result<serde_json::Value, GithubError> {
        // One write at a time, each starting a second after the previous one was answered:
        // the spacing the server sees, however slowly it answered.
        let mut last = self.last_write.lock().await;
        if let Some(at) = *last {
            let gap = Duration::from_secs(1).saturating_sub(at.elapsed());
            tokio::time::sleep(gap).await;
        }
        let answer = self.call(method, path, Some(body), deadline).await;
        *last = Some(Instant::now());
        Ok(answer?.0)
    }

    async fn call(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<&serde_json::Value>,
        deadline: Instant,
    ) -> Result<(serde_json::Value, HeaderMap), GithubError> {
        let url = if path_or_url.starts_with("http") {
            url::Url::parse(path_or_url).map_err(|e| GithubError::Unavailable {
                path: path_or_url.to_owned(),
                message: e.to_string(),
            })?
        } else {
            self.url(path_or_url)?
        };
        let path = url.path().to_owned();
        let mut delays = Backoff::Exponential {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
        .delays(ATTEMPTS);
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .timeout(Duration::from_secs(30));
            if let Some(token) = &self.token {
                request = request.bearer_auth(token.expose());
            }
            if let Some(body) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            }
            let wait = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = read_body_capped(response, BODY_CAP).await.map_err(|e| {
                        GithubError::Unavailable {
                            path: path.clone(),
                            message: e.to_string(),
                        }
                    })?;
                    let text = String::from_utf8_lossy(&body.bytes).into_owned();
                    let message = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["message"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| text.clone());
                    let message = quote_outside(&self.redactor.redact(&message));
                    if status.is_success() {
                        let value = if text.trim().is_empty() {
                            serde_json::Value::Null
                        } else {
                            serde_json::from_str(&text).map_err(|e| GithubError::Unavailable {
                                path: path.clone(),
                                message: format!("unexpected response body: {e}"),
                            })?
                        };
                        return Ok((value, headers));
                    }
                    if let Some(wait) =
                        rate_limit_wait(status, &headers, &message, SystemTime::now())
                    {
                        last = format!("rate limited ({message})");
                        if Instant::now() + wait > deadline {
                            return Err(GithubError::RateLimited {
                                path,
                                message: format!(
                                    "{message}; it lifts in {} s, after the deadline",
                                    wait.as_secs()
                                ),
                            });
                        }
                        tracing::warn!(%path, wait_s = wait.as_secs(), "GitHub rate limit");
                        wait
                    } else {
                        match status.as_u16() {
                            401 => return Err(GithubError::Unauthorized { path, message }),
                            403 => return Err(GithubError::Forbidden { path, message, scope: if method == Method::GET { "read access to checks, statuses and contents (`checks: read`, `statuses: read` in GitHub Actions)" } else { "write access (`issues: write`, `pull-requests: write` or `deployments: write` in GitHub Actions)" }.into() }),
                            404 => return Err(GithubError::NotFound { path }),
                            422 => return Err(GithubError::Unprocessable { path, message }),
                            _ if status.is_server_error() && method != Method::POST => {
                                last = format!("{status}: {message}");
                                delays.next().unwrap_or(Duration::from_secs(1))
                            }
                            _ => return Err(GithubError::Unavailable { path, message: format!("{status}: {message}") }),
                        }
                    }
                }
                Err(err) => {
                    last = self
                        .redactor
                        .redact(&shipgate_http::classify_error(&err).1)
                        .into_owned();
                    if method == Method::POST {
                        // It may have arrived: never create twice.
                        return Err(GithubError::Unavailable {
                            path,
                            message: last,
                        });
                    }
                    delays.next().unwrap_or(Duration::from_secs(1))
                }
            };
            if Instant::now() + wait > deadline {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        Err(GithubError::Unavailable {
            path,
            message: format!("{last} (after retries)"),
        })
    }

    /// GETs every page of a list endpoint, following `Link: rel="next"`; `items` picks the
    /// array out of each page (`check_runs`, `workflow_runs`, or the page itself).
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        path: &str,
        deadline: Instant,
        items: impl Fn(serde_json::Value) -> Option<Vec<serde_json::Value>>,
    ) -> Result<Vec<T>, GithubError> {
        let mut out = Vec::new();
        let mut next = Some(path.to_owned());
        let mut pages = 0;
        while let Some(page) = next.take() {
            pages += 1;
            if pages > 50 {
                break; // 5,000 items: more than any gate needs
            }
            let (value, headers): (serde_json::Value, HeaderMap) =
                self.get(&page, deadline).await?;
            for item in items(value).unwrap_or_default() {
                let parsed =
                    serde_json::from_value(item).map_err(|e| GithubError::Unavailable {
                        path: page.clone(),
                        message: format!("unexpected item: {e}"),
                    })?;
                out.push(parsed);
            }
            next = next_link(&headers);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn next_links_are_followed() {
        let h = headers(&[(
            "link",
            "<https://api.github.com/resource?page=2>; rel=\"next\", <https://api.github.com/resource?page=5>; rel=\"last\"",
        )]);
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/resource?page=2")
        );
        let last = headers(&[(
            "link",
            "<https://api.github.com/resource?page=4>; rel=\"prev\"",
        )]);
        assert_eq!(next_link(&last), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn rate_limits_follow_githubs_rules() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let forbidden = StatusCode::FORBIDDEN;
        assert_eq!(
            rate_limit_wait(forbidden, &headers(&[("retry-after", "7")]), "", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            rate_limit_wait(
                forbidden,
                &headers(&[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1090")
                ]),
                "",
                now
            ),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            rate_limit_wait(
                forbidden,
                &HeaderMap::new(),
                "You have exceeded a secondary rate limit",
                now
            ),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            rate_limit_wait(
                forbidden,
                &HeaderMap::new(),
                "Resource not accessible by integration",
                now
            ),
            None
        );
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), "", now),
            Some(Duration::from_secs(60))
        );
    }
}
