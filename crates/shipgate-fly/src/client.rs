//! Fly's Machines REST API: the token in the header its kind requires, a per-machine,
//! per-action rate limiter (Fly documents 1 req/s sustained with bursts of 3 per action, and
//! 5 req/s with bursts of 10 for reading a machine), `Retry-After` honoured, typed errors with
//! Fly's request id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shipgate_core::{Redactor, Secret, quote_outside};
use shipgate_http::{Backoff, RetryPolicy, send_with_retry};
use tokio::sync::Mutex;

use crate::FlyError;

/// A Fly API token, normalised: schemes stripped, comma-separated parts classified.
#[derive(Clone)]
pub struct FlyToken {
    header: Secret,
    macaroon: bool,
}

impl std::fmt::Debug for FlyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.macaroon {
            "FlyToken(FlyV1 macaroon)"
        } else {
            "FlyToken(Bearer)"
        })
    }
}

impl FlyToken {
    /// Reads `FLY_API_TOKEN`'s value: `FlyV1 fm2_…` (deploy tokens from `fly tokens create
    /// deploy`), a bare macaroon, a comma-separated list, or a legacy `Bearer` token. Macaroons
    /// are sent as `Authorization: FlyV1 …`, anything else as `Authorization: Bearer …`.
    pub fn parse(raw: &Secret) -> Result<FlyToken, FlyError> {
        let mut rest = raw.expose().trim();
        // Strip `Bearer` / `FlyV1` schemes, repeatedly, as flyctl does.
        loop {
            let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("flyv1") {
                rest = after.trim_start();
            } else {
                break;
            }
        }
        let parts: Vec<&str> = rest
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return Err(FlyError::Invalid(
                "FLY_API_TOKEN is empty; create a deploy token with `fly tokens create deploy -a APP`".into(),
            ));
        }
        let is_macaroon = |p: &&str| {
            matches!(
                p.split_once('_').map(|(prefix, _)| prefix),
                Some("fm1r" | "fm1a" | "fm2")
            )
        };
        let macaroons: Vec<&str> = parts.iter().copied().filter(is_macaroon).collect();
        let (header, macaroon) = if macaroons.is_empty() {
            (format!("Bearer {}", parts.join(",")), false)
        } else {
            (format!("FlyV1 {}", macaroons.join(",")), true)
        };
        Ok(FlyToken {
            header: Secret::new(header),
            macaroon,
        })
    }

    /// `Authorization: FlyV1` (macaroon) or `Authorization: Bearer`.
    pub fn scheme(&self) -> &'static str {
        if self.macaroon { "FlyV1" } else { "Bearer" }
    }
}

/// A token bucket per (machine, action).
#[derive(Debug, Default)]
struct Limiter {
    buckets: HashMap<(String, &'static str), (f64, Instant)>,
}

impl Limiter {
    /// How long to wait before spending a token of `key`'s bucket.
    fn reserve(&mut self, key: (String, &'static str), rate: f64, burst: f64) -> Duration {
        let now = Instant::now();
        let (tokens, last) = self.buckets.entry(key).or_insert((burst, now));
        let refilled = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *tokens = refilled - 1.0;
        *last = now;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-*tokens / rate)
        }
    }
}

/// A call's answer: status, body, Fly's request id.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// A Machines API client for one app.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: url::Url,
    token: FlyToken,
    redactor: Redactor,
    limiter: Arc<Mutex<Limiter>>,
}

impl Client {
    pub(crate) fn new(
        api_url: &str,
        token: FlyToken,
        redactor: Redactor,
    ) -> Result<Client, FlyError> {
        let base = url::Url::parse(api_url)
            .map_err(|e| FlyError::Invalid(format!("targets.fly.api_url `{api_url}`: {e}")))?;
        let http = shipgate_http::build_client(&shipgate_http::ClientOptions::default())
            .map_err(|e| FlyError::Invalid(e.to_string()))?;
        redactor.add(&token.header);
        Ok(Client {
            http,
            base,
            token,
            redactor,
            limiter: Arc::default(),
        })
    }

    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The `Authorization` value this client sends (for `POST /v1/tokens/authorize`, which
    /// verifies a token header given in its body).
    pub(crate) fn token_header(&self) -> &Secret {
        &self.token.header
    }

    /// Sends one call. `action` and `machine` pick the rate-limit bucket; `idempotent` decides
    /// whether a 5xx or a broken connection is retried (a 429 always is). `timeout` covers one
    /// attempt (a `/wait` call blocks up to 60 s by design).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        nonce: Option<&str>,
        action: &'static str,
        machine: Option<&str>,
        timeout: Duration,
    ) -> Result<Answer, FlyError> {
        let (rate, burst) = if action == "get" {
            (5.0, 10.0)
        } else {
            (1.0, 3.0)
        };
        let wait = self.limiter.lock().await.reserve(
            (machine.unwrap_or("app").to_owned(), action),
            rate,
            burst,
        );
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let mut url = self
            .base
            .join(path)
            .map_err(|e| FlyError::Invalid(e.to_string()))?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let payload = body.map(Value::to_string);
        let policy = RetryPolicy {
            // `/wait` is retried by the provider's own loop within its deadline; retrying its
            // 408 here as well multiplied the wait past that deadline.
            attempts: if action == "wait" { 1 } else { 4 },
            backoff: Backoff::Exponential {
                initial: Duration::from_millis(250),
                max: Duration::from_secs(5),
            },
            timeout,
            max_wait: Duration::from_secs(30),
            idempotent: method == Method::GET || method == Method::DELETE,
            ..RetryPolicy::default()
        };
        let build = || {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(reqwest::header::AUTHORIZATION, self.token.header.expose());
            if let Some(nonce) = nonce {
                request = request.header("fly-machine-lease-nonce", nonce);
            }
            if let Some(payload) = &payload {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(payload.clone());
            }
            request
        };
        let what = format!("{method} {path}");
        let fetched = send_with_retry(build, &policy)
            .await
            .map_err(|e| FlyError::Unavailable {
                call: what.clone(),
                message: self.redactor.redact(&e.to_string()).into_owned(),
            })?;
        let status = fetched.status.as_u16();
        let request_id = fetched
            .headers
            .get("fly-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = String::from_utf8_lossy(&fetched.body.bytes);
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| Value::String(text.chars().take(300).collect()))
        };
        if (200..300).contains(&status) || status == 408 {
            return Ok(Answer { status, body });
        }
        let message = body["error"]
            .as_str()
            .or(body["message"].as_str())
            .or(body.as_str())
            .unwrap_or("(no message)");
        let message = quote_outside(&self.redactor.redact(message));
        let message = match request_id {
            Some(id) => format!("{message} (fly-request-id {id})"),
            None => message,
        };
        Err(match status {
            401 | 403 => FlyError::Unauthorized {
                call: what,
                scheme: self.token.scheme(),
                message,
            },
            404 => FlyError::NotFound {
                call: what,
                message,
            },
            409 => FlyError::Conflict {
                call: what,
                message,
            },
            429 | 500..=599 => FlyError::Unavailable {
                call: what,
                message: format!("HTTP {status}: {message}"),
            },
            _ => FlyError::Rejected {
                call: what,
                status,
                message,
            },
        })
    }

    /// A GET that answers JSON of type `T`.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        machine: Option<&str>,
    ) -> Result<T, FlyError> {
        let answer = self
            .call(
                Method::GET,
                path,
                query,
                None,
                None,
                "get",
                machine,
                Duration::from_secs(30),
            )
            .await?;
        serde_json::from_value(answer.body).map_err(|e| FlyError::Unavailable {
            call: format!("GET {path}"),
            message: format!("unexpected response: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_normalised_and_classified() {
        let t = FlyToken::parse(&Secret::new("FlyV1 fm2_abc,fm2_def")).unwrap();
        assert_eq!(t.header.expose(), "FlyV1 fm2_abc,fm2_def");
        let t = FlyToken::parse(&Secret::new("fm1r_xyz")).unwrap();
        assert_eq!(t.header.expose(), "FlyV1 fm1r_xyz");
        let t = FlyToken::parse(&Secret::new("Bearer personal123")).unwrap();
        assert_eq!(t.header.expose(), "Bearer personal123");
        assert!(FlyToken::parse(&Secret::new("FlyV1 ")).is_err());
        assert_eq!(format!("{t:?}"), "FlyToken(Bearer)");
    }

    #[test]
    fn the_limiter_allows_a_burst_then_spaces_calls() {
        let mut limiter = Limiter::default();
        let key = || ("m1".to_owned(), "update");
        for _ in 0..3 {
            assert_eq!(limiter.reserve(key(), 1.0, 3.0), Duration::ZERO);
        }
        let wait = limiter.reserve(key(), 1.0, 3.0);
        assert!(wait > Duration::from_millis(900), "{wait:?}");
        assert_eq!(
            limiter.reserve(("m2".to_owned(), "update"), 1.0, 3.0),
            Duration::ZERO
        );
    }
}
