//! The HTTP machinery every shipgate network call shares.
//!
//! - [`build_client`]: a reqwest client on rustls with the ring provider (the one crypto
//!   provider of the workspace), the platform's trust store, a connect timeout, and a redirect
//!   policy that follows redirects on the same origin only. A redirect to another host is an
//!   error ([`CrossOriginRedirect`]): a health check that lands on a login page elsewhere must
//!   not pass.
//! - [`read_body_capped`]: reads a response body chunk by chunk and stops at a byte cap, so an
//!   endless or huge body costs at most the cap.
//! - [`retry_after`], [`is_retryable_status`] and [`Backoff`]: what is worth retrying and how
//!   long to wait (constant or exponential with jitter, never less than a server's
//!   `Retry-After`).
//!
//! Nothing here prints or reads the process environment.

use std::time::{Duration, SystemTime};

use backon::BackoffBuilder;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How to build a client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Time allowed to open a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Accept any certificate. Only for explicitly insecure targets.
    pub accept_invalid_certs: bool,
    /// Same-origin redirects followed before giving up; 0 disables redirects.
    pub max_redirects: usize,
    /// Idle connections kept per host for reuse.
    pub max_idle_per_host: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            user_agent: concat!("shipgate/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(10),
            accept_invalid_certs: false,
            max_redirects: 5,
            max_idle_per_host: 64,
        }
    }
}

/// Errors building a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// reqwest refused the configuration (for instance the platform trust store is unusable).
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// A redirect left the origin (scheme, host and port) of the request.
#[derive(Debug, thiserror::Error)]
#[error(
    "redirected from {from} to another origin ({to}); shipgate follows same-origin redirects only"
)]
pub struct CrossOriginRedirect {
    /// The URL that redirected.
    pub from: String,
    /// Where it pointed.
    pub to: String,
}

/// More redirects than [`ClientOptions::max_redirects`].
#[derive(Debug, thiserror::Error)]
#[error("more than {0} redirects")]
pub struct TooManyRedirects(pub usize);

/// Installs ring as the process's rustls provider unless one is installed already. reqwest is
/// built without a provider of its own so that the workspace has exactly one.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: a provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Builds a client. Clone the result to share its connection pool.
pub fn build_client(options: &ClientOptions) -> Result<reqwest::Client, HttpError> {
    ensure_crypto_provider();
    let max_redirects = options.max_redirects;
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max_redirects {
            return attempt.error(TooManyRedirects(max_redirects));
        }
        let Some(first) = attempt.previous().first() else {
            return attempt.follow();
        };
        if first.origin() == attempt.url().origin() {
            attempt.follow()
        } else {
            let error = CrossOriginRedirect {
                from: first.as_str().to_owned(),
                to: attempt.url().as_str().to_owned(),
            };
            attempt.error(error)
        }
    });
    reqwest::Client::builder()
        .user_agent(options.user_agent.clone())
        .connect_timeout(options.connect_timeout)
        .tls_danger_accept_invalid_certs(options.accept_invalid_certs)
        .redirect(policy)
        .pool_max_idle_per_host(options.max_idle_per_host)
        .tcp_nodelay(true)
        .build()
        .map_err(HttpError::Build)
}

/// A body read up to a cap.
#[derive(Debug, Clone, Default)]
pub struct CappedBody {
    /// The bytes read (at most the cap).
    pub bytes: Vec<u8>,
    /// The body had more bytes than the cap; the rest was not read.
    pub truncated: bool,
}

/// Reads `response`'s body, at most `cap` bytes. Bytes beyond the cap are not read; the
/// connection is dropped instead of being drained.
pub async fn read_body_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<CappedBody, reqwest::Error> {
    let mut body = CappedBody::default();
    while let Some(chunk) = response.chunk().await? {
        let room = cap.saturating_sub(body.bytes.len());
        if chunk.len() > room {
            body.bytes.extend_from_slice(&chunk[..room]);
            body.truncated = true;
            break;
        }
        body.bytes.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The wait a `Retry-After` header asks for: delta-seconds or an HTTP date (relative to
/// `now`). A date in the past means no wait; an unparsable value is ignored.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A header's value as an unsigned integer (`x-ratelimit-remaining: 0`), if it is one.
pub fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// What kind of failure a request error is: decides whether another attempt can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No response in time.
    Timeout,
    /// The connection could not be opened or broke (refused, reset, DNS).
    Connect,
    /// The TLS handshake failed (certificate, protocol). Not transient.
    Tls,
    /// A redirect left the origin or looped. Not transient.
    Redirect,
    /// The response body broke off.
    Body,
    /// Anything else (for instance an invalid header value built by the caller).
    Other,
}

impl FailureKind {
    /// Whether retrying can help.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureKind::Timeout | FailureKind::Connect | FailureKind::Body
        )
    }
}

/// Classifies a request error and describes it with its whole cause chain
/// (`error sending request: connection refused`), without repeating a cause twice.
pub fn classify_error(err: &reqwest::Error) -> (FailureKind, String) {
    let mut parts: Vec<String> = Vec::new();
    let mut tls = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        let text = match find_rustls(e) {
            Some(rustls) => {
                tls = true;
                describe_tls(rustls)
            }
            None => e.to_string(),
        };
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    let kind = if err.is_redirect() {
        FailureKind::Redirect
    } else if tls {
        FailureKind::Tls
    } else if err.is_timeout() {
        FailureKind::Timeout
    } else if err.is_connect() || err.is_request() {
        FailureKind::Connect
    } else if err.is_body() || err.is_decode() {
        FailureKind::Body
    } else {
        FailureKind::Other
    };
    (kind, parts.join(": "))
}

/// The rustls error `e` is or wraps, possibly inside (nested) io::Errors: hyper-rustls
/// reports a failed handshake as io::Error(Other, io::Error(InvalidData, rustls::Error)), and
/// io::Error::source skips the wrapped error itself.
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(rustls) = err.downcast_ref::<rustls::Error>() {
            return Some(rustls);
        }
        current = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
    }
    None
}

/// A failed TLS handshake as a person would say it, with what to check (rather than rustls's
/// enum names such as `Other(OtherError(CaUsedAsEndEntity))`).
pub fn describe_tls(err: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    let certificate = |what: &str| format!("TLS: the server's certificate {what}");
    match err {
        E::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => certificate(
                "is not signed by an authority this machine trusts (self-signed, or a private \
                 CA: add the CA to the system trust store or point SSL_CERT_FILE at it)",
            ),
            C::Expired | C::ExpiredContext { .. } => certificate("has expired"),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                certificate("is not valid yet (is this machine's clock right?)")
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                certificate("is for another host name than the one in the URL")
            }
            C::Revoked => certificate("has been revoked"),
            C::BadEncoding => certificate("is malformed"),
            C::BadSignature => certificate("has a signature that does not verify"),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                certificate("is not meant for a server (its extended key usage says otherwise)")
            }
            C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                certificate("is signed with an algorithm shipgate does not accept")
            }
            C::Other(other) => {
                let detail = format!("{other:?}");
                if detail.contains("CaUsedAsEndEntity") {
                    certificate("is a CA certificate used as a server certificate; the server must present a certificate issued by that CA")
                } else if detail.contains("EndEntityUsedAsCa") {
                    certificate("chain uses a server certificate as a CA")
                } else if detail.contains("PathLenConstraintViolated") {
                    certificate("chain is longer than its CA allows")
                } else if detail.contains("NameConstraintViolation") {
                    certificate("names a host its CA may not issue for")
                } else {
                    certificate(&format!("was refused ({detail})"))
                }
            }
            other => certificate(&format!("was refused ({other:?})")),
        },
        E::InvalidMessage(_) => {
            "TLS: the server did not answer in TLS (is it plain http on this port? use http:// or the TLS port)"
                .to_owned()
        }
        E::NoCertificatesPresented => "TLS: the server presented no certificate".to_owned(),
        E::AlertReceived(alert) => format!("TLS: the server refused the handshake (alert {alert:?})"),
        E::PeerIncompatible(_) => {
            "TLS: the server offers no TLS version or cipher shipgate accepts (TLS 1.2 or 1.3)"
                .to_owned()
        }
        other => format!("TLS: the handshake failed: {other}"),
    }
}

/// Statuses worth another attempt: 408, 429 and every 5xx. Other 4xx are final.
pub fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// How long to wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// The same interval every time.
    Constant(Duration),
    /// Doubling from `initial`, capped at `max`, each wait plus a random jitter of up to
    /// the wait itself.
    Exponential {
        /// The first wait.
        initial: Duration,
        /// The longest wait.
        max: Duration,
    },
}

impl Backoff {
    /// The waits before attempts 2, 3, … `attempts` (so `attempts - 1` values).
    pub fn delays(&self, attempts: u32) -> Box<dyn Iterator<Item = Duration> + Send> {
        let retries = attempts.saturating_sub(1) as usize;
        match *self {
            Backoff::Constant(interval) => Box::new(
                backon::ConstantBuilder::new()
                    .with_delay(interval)
                    .with_max_times(retries)
                    .build(),
            ),
            Backoff::Exponential { initial, max } => Box::new(
                backon::ExponentialBuilder::new()
                    .with_min_delay(initial)
                    .with_max_delay(max)
                    .with_max_times(retries)
                    .with_jitter()
                    .build(),
            ),
        }
    }
}

/// The wait before the next attempt: the planned backoff, or longer when the server asked for
/// it with `Retry-After`, but never past `limit` (the time left before a deadline).
pub fn next_wait(planned: Duration, server_asked: Option<Duration>, limit: Duration) -> Duration {
    planned
        .max(server_asked.unwrap_or(Duration::ZERO))
        .min(limit)
}

/// How an API client retries one call.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Waits between attempts.
    pub backoff: Backoff,
    /// Timeout of each attempt (connect, headers and body).
    pub timeout: Duration,
    /// The longest a server's `Retry-After` may make one wait.
    pub max_wait: Duration,
    /// Body bytes read at most.
    pub body_cap: usize,
    /// Whether the request may be sent again after it may have reached the server (a 5xx,
    /// a 408, a timeout, a broken connection). False for a deploy or a rollback: only a 429,
    /// which says the server did nothing, is retried then.
    pub idempotent: bool,
}

impl Default for RetryPolicy {
    /// 3 attempts, exponential backoff from 250 ms with jitter, 10 s per attempt, waits of at
    /// most 30 s, bodies up to 4 MiB, idempotent.
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Backoff::Exponential {
                initial: Duration::from_millis(250),
                max: Duration::from_secs(5),
            },
            timeout: Duration::from_secs(10),
            max_wait: Duration::from_secs(30),
            body_cap: 4 * 1024 * 1024,
            idempotent: true,
        }
    }
}

/// A response read in full (up to the cap).
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, capped.
    pub body: CappedBody,
    /// Attempts made.
    pub attempts: u32,
}

/// A call that got no usable response.
#[derive(Debug, thiserror::Error)]
#[error("{message} (after {attempts} attempt(s))")]
pub struct CallFailed {
    /// What kind of failure the last attempt had.
    pub kind: FailureKind,
    /// The last attempt's error with its causes.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
}

/// Sends the request `build` makes, retrying transport failures and retryable statuses
/// (408, 429, 5xx; only 429 when the policy is not idempotent) with `policy`'s backoff,
/// lengthened by `Retry-After`. Returns the first
/// non-retryable response, or the last one when attempts run out; an error only when no
/// response arrived at all. `build` is called once per attempt.
pub async fn send_with_retry<F>(build: F, policy: &RetryPolicy) -> Result<Fetched, CallFailed>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    let mut delays = policy.backoff.delays(policy.attempts);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let exchange = async {
            let response = build().timeout(policy.timeout).send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_body_capped(response, policy.body_cap).await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        let outcome = match tokio::time::timeout(policy.timeout, exchange).await {
            Ok(Ok((status, headers, body))) => Ok(Fetched {
                status,
                headers,
                body,
                attempts: attempt,
            }),
            Ok(Err(err)) => {
                let (kind, message) = classify_error(&err);
                Err(CallFailed {
                    kind,
                    message,
                    attempts: attempt,
                })
            }
            Err(_) => Err(CallFailed {
                kind: FailureKind::Timeout,
                message: format!("no complete response within {:?}", policy.timeout),
                attempts: attempt,
            }),
        };
        let (retry, server_wait) = match &outcome {
            Ok(fetched) => (
                fetched.status == StatusCode::TOO_MANY_REQUESTS
                    || (policy.idempotent && is_retryable_status(fetched.status)),
                retry_after(&fetched.headers, SystemTime::now()),
            ),
            Err(failed) => (policy.idempotent && failed.kind.is_transient(), None),
        };
        let next = if retry { delays.next() } else { None };
        let Some(planned) = next else {
            return outcome;
        };
        tokio::time::sleep(next_wait(planned, server_wait, policy.max_wait)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        assert_eq!(
            retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2026 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2026 07:27:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn tls_failures_are_said_in_words() {
        use rustls::CertificateError as C;
        let cases = [
            (
                C::UnknownIssuer,
                "not signed by an authority this machine trusts",
            ),
            (C::Expired, "has expired"),
            (C::NotValidForName, "another host name"),
            (C::NotValidYet, "clock"),
        ];
        for (error, words) in cases {
            let text = describe_tls(&rustls::Error::InvalidCertificate(error));
            assert!(
                text.starts_with("TLS: the server's certificate") && text.contains(words),
                "{text}"
            );
        }
        let text = describe_tls(&rustls::Error::NoCertificatesPresented);
        assert_eq!(text, "TLS: the server presented no certificate");
    }

    #[test]
    fn retryable_statuses() {
        for code in [500, 502, 503, 504, 429, 408] {
            assert!(is_retryable_status(StatusCode::from_u16(code).unwrap()));
        }
        for code in [200, 301, 400, 401, 403, 404, 422] {
            assert!(!is_retryable_status(StatusCode::from_u16(code).unwrap()));
        }
    }

    #[test]
    fn constant_backoff_waits_the_interval_attempts_minus_one_times() {
        let delays: Vec<_> = Backoff::Constant(Duration::from_secs(10))
            .delays(12)
            .collect();
        assert_eq!(delays, vec![Duration::from_secs(10); 11]);
        assert_eq!(
            Backoff::Constant(Duration::from_secs(1)).delays(1).count(),
            0
        );
    }

    #[test]
    fn exponential_backoff_grows_with_jitter_and_stays_under_twice_the_cap() {
        let backoff = Backoff::Exponential {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let delays: Vec<_> = backoff.delays(8).collect();
        assert_eq!(delays.len(), 7);
        assert!(delays[0] >= Duration::from_millis(100) && delays[0] < Duration::from_millis(200));
        assert!(delays.iter().all(|d| *d < Duration::from_secs(2)));
        assert!(delays[6] >= Duration::from_secs(1));
    }

    #[test]
    fn the_server_can_lengthen_a_wait_but_not_past_the_deadline() {
        let s = Duration::from_secs;
        assert_eq!(next_wait(s(1), Some(s(5)), s(60)), s(5));
        assert_eq!(next_wait(s(10), Some(s(5)), s(60)), s(10));
        assert_eq!(next_wait(s(10), Some(s(500)), s(60)), s(60));
        assert_eq!(next_wait(s(1), None, s(60)), s(1));
    }
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
