//! Deploy notifications: Slack incoming webhooks and generic JSON webhooks signed with
//! HMAC-SHA256, delivered through the ledger's outbox so a failed delivery is retried later
//! (by the next run, `shipgate notify deliver`, or the monitor) instead of being lost.
//!
//! Payloads are built from the run's redacted summary; channel secrets (the Slack URL, which
//! embeds its token, and the signing key) are never stored in the ledger: the outbox keeps the
//! channel's name only.
//!
//! ## Webhook signatures
//! Every webhook POST carries `Shipgate-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
//! HMAC-SHA256 over `<t>.<raw body>` with the shared key. A receiver recomputes it, compares in
//! constant time, and rejects timestamps older than a few minutes ([`verify`] does exactly
//! this).

use shipgate_core::{MonitorNotice, Outcome};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;
use shipgate_core::{Redactor, Secret};
use shipgate_http::{RetryPolicy, retry_after, send_with_retry};
use shipgate_ledger::{Ledger, LedgerError, OutboxMessage, now_ms};

/// The signature header of webhook deliveries.
pub const SIGNATURE_HEADER: &str = "Shipgate-Signature";

/// Attempts before a message is left for good (it stays in the outbox, marked with its error).
pub const MAX_ATTEMPTS: i64 = 10;

/// Where notifications go.
#[derive(Debug, Clone)]
pub enum Channel {
    /// A Slack incoming webhook.
    Slack {
        /// Its name in the outbox (`slack`, `slack-2`).
        name: String,
        /// The webhook URL (a secret: it embeds the token).
        url: Secret,
        /// Outcomes that notify; empty means all.
        on: Vec<String>,
    },
    /// A JSON webhook signed with HMAC-SHA256.
    Webhook {
        /// Its name in the outbox.
        name: String,
        /// Where to POST.
        url: String,
        /// The signing key.
        key: Secret,
        /// Outcomes that notify; empty means all.
        on: Vec<String>,
    },
}

impl Channel {
    /// The channel's name.
    pub fn name(&self) -> &str {
        match self {
            Channel::Slack { name, .. } | Channel::Webhook { name, .. } => name,
        }
    }

    fn wants(&self, outcome: &str) -> bool {
        let on = match self {
            Channel::Slack { on, .. } | Channel::Webhook { on, .. } => on,
        };
        on.is_empty() || on.iter().any(|o| o == outcome)
    }
}

/// What a notification says (the webhook body; Slack gets a text rendering of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Notification {
    /// Body version.
    pub schema_version: u32,
    /// What it is about: a [`shipgate_core::NotificationEvent`] word (`deploy`, `monitor`).
    pub event: String,
    /// The run.
    pub run_id: String,
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// The image tag deployed.
    pub image_tag: String,
    /// An [`Outcome`] word for a deploy (`succeeded`, `rolled_back`, …), a [`MonitorNotice`]
    /// word for the monitor (`alerting`, `recovered`).
    pub outcome: String,
    /// The exit code.
    pub exit_code: u8,
    /// The one-line message.
    pub message: String,
    /// Why a rollback happened and what it chose.
    #[serde(default)]
    pub rollback_reasons: Vec<String>,
    /// A link to the CI run, when known.
    #[serde(default)]
    pub run_url: Option<String>,
    /// For a deploy: the strategy that ran (`rolling`, `bluegreen`, `canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// For a canary: each step, its traffic share and its analysis, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
}

impl Notification {
    fn slack_text(&self) -> String {
        let good = self.outcome == Outcome::Succeeded.as_str()
            || self.outcome == MonitorNotice::Recovered.as_str();
        let icon = if good {
            ":white_check_mark:"
        } else if self.outcome == Outcome::RolledBack.as_str() {
            ":leftwards_arrow_with_hook:"
        } else {
            ":rotating_light:"
        };
        let mut text = format!(
            "{icon} *{}* `{}` → {}: *{}* — {}",
            self.app, self.image_tag, self.environment, self.outcome, self.message
        );
        if let Some(strategy) = self.strategy.as_deref().filter(|s| *s != "rolling") {
            text.push_str(&format!(" ({strategy})"));
        }
        for step in &self.steps {
            text.push_str(&format!("\n• {step}"));
        }
        for reason in &self.rollback_reasons {
            text.push_str(&format!("\n• {reason}"));
        }
        if let Some(url) = &self.run_url {
            text.push_str(&format!("\n<{url}|CI run>"));
        }
        text
    }
}

/// HMAC-SHA256 of `<timestamp>.<body>` as the header value `t=…,v1=…`.
pub fn sign(key: &Secret, timestamp: u64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Why a signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The header is not `t=…,v1=…`.
    #[error("malformed {SIGNATURE_HEADER} header")]
    Malformed,
    /// The timestamp is too far from now (a replay, or a wrong clock).
    #[error("timestamp outside the tolerance")]
    Stale,
    /// The MAC does not match.
    #[error("signature mismatch")]
    Mismatch,
}

/// Verifies a delivery the way a receiver should: parse `t` and `v1`, reject timestamps
/// further than `tolerance` from `now`, compare the MAC in constant time.
pub fn verify(
    key: &Secret,
    header: &str,
    body: &str,
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut given = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<u64>().ok(),
            Some(("v1", v)) => given = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(timestamp), Some(given)) = (timestamp, given) else {
        return Err(SignatureError::Malformed);
    };
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if now.abs_diff(timestamp) > tolerance.as_secs() {
        return Err(SignatureError::Stale);
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose().as_bytes())
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

/// What a delivery round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Delivered now: (channel, run id).
    pub delivered: Vec<(String, String)>,
    /// Failed now and queued for a retry: (channel, run id, error).
    pub failed: Vec<(String, String, String)>,
}

/// The channels and the client that delivers to them.
#[derive(Debug, Clone)]
pub struct Notifier {
    channels: Vec<Channel>,
    http: reqwest::Client,
    redactor: Redactor,
}

/// The wait before attempt `attempts + 1`: 1 min, doubling, at most 1 h.
fn backoff(attempts: i64) -> Duration {
    let minutes = 1u64 << attempts.clamp(0, 6);
    Duration::from_secs((minutes * 60).min(3600))
}

impl Notifier {
    /// A notifier for `channels`; their secrets are added to `redactor`. Fails only when the
    /// HTTP client cannot be set up (no TLS roots).
    pub fn new(
        channels: Vec<Channel>,
        redactor: Redactor,
    ) -> Result<Notifier, shipgate_http::HttpError> {
        for channel in &channels {
            match channel {
                Channel::Slack { url, .. } => redactor.add(url),
                Channel::Webhook { key, .. } => redactor.add(key),
            }
        }
        let http = shipgate_http::build_client(&shipgate_http::ClientOptions::default())?;
        Ok(Notifier {
            channels,
            http,
            redactor,
        })
    }

    /// Queues `notification` for every channel that wants its outcome.
    pub async fn enqueue(
        &self,
        ledger: &Ledger,
        notification: &Notification,
    ) -> Result<usize, LedgerError> {
        let body = serde_json::to_string(notification).unwrap_or_default();
        let body = self.redactor.redact(&body).into_owned();
        let mut queued = 0;
        for channel in self
            .channels
            .iter()
            .filter(|c| c.wants(&notification.outcome))
        {
            ledger
                .enqueue(
                    &OutboxMessage {
                        id: format!("{}:{}", notification.run_id, channel.name()),
                        run_id: notification.run_id.clone(),
                        channel: channel.name().to_owned(),
                        payload: body.clone(),
                    },
                    now_ms(),
                )
                .await?;
            queued += 1;
        }
        Ok(queued)
    }

    /// Delivers every due message (up to `limit`), each claimed so that concurrent workers
    /// never send one twice; failures are rescheduled with backoff (honouring `Retry-After`).
    pub async fn deliver_due(
        &self,
        ledger: &Ledger,
        limit: i64,
    ) -> Result<DeliveryReport, LedgerError> {
        let mut report = DeliveryReport::default();
        for item in ledger.claim_due(now_ms(), limit, 60_000).await? {
            let Some(channel) = self.channels.iter().find(|c| c.name() == item.channel) else {
                let error = format!("channel `{}` is no longer configured", item.channel);
                ledger
                    .delivery_failed(&item.id, &error, now_ms() + 24 * 3600 * 1000)
                    .await?;
                report.failed.push((item.channel, item.run_id, error));
                continue;
            };
            match self.send(channel, &item.payload).await {
                Ok(()) => {
                    ledger.delivered(&item.id, now_ms()).await?;
                    report.delivered.push((item.channel, item.run_id));
                }
                Err((error, server_wait)) => {
                    let wait = server_wait
                        .unwrap_or_else(|| backoff(item.attempts))
                        .max(backoff(item.attempts));
                    let next = if item.attempts + 1 >= MAX_ATTEMPTS {
                        i64::MAX // kept for inspection, never retried
                    } else {
                        now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)
                    };
                    ledger.delivery_failed(&item.id, &error, next).await?;
                    report.failed.push((item.channel, item.run_id, error));
                }
            }
        }
        Ok(report)
    }

    async fn send(
        &self,
        channel: &Channel,
        payload: &str,
    ) -> Result<(), (String, Option<Duration>)> {
        let policy = RetryPolicy {
            attempts: 1,
            timeout: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let (url, body, signature) = match channel {
            Channel::Slack { url, .. } => {
                let text = serde_json::from_str::<Notification>(payload)
                    .map_or_else(|_| payload.to_owned(), |n| n.slack_text());
                (
                    url.expose().to_owned(),
                    serde_json::json!({ "text": text }).to_string(),
                    None,
                )
            }
            Channel::Webhook { url, key, .. } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                (
                    url.clone(),
                    payload.to_owned(),
                    Some(sign(key, now, payload)),
                )
            }
        };
        let build = || {
            let mut request = self
                .http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some(signature) = &signature {
                request = request.header(SIGNATURE_HEADER, signature);
            }
            request
        };
        match send_with_retry(build, &policy).await {
            Ok(fetched) if fetched.status.is_success() => Ok(()),
            Ok(fetched) => Err((
                format!("HTTP {}", fetched.status),
                retry_after(&fetched.headers, SystemTime::now()),
            )),
            Err(failed) => Err((self.redactor.redact(&failed.to_string()).into_owned(), None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The webhook body and the Slack text are contracts with receivers: pinned.
    #[test]
    fn the_webhook_payload_and_the_slack_text_are_pinned() {
        let notification = Notification {
            schema_version: 1,
            event: "deploy".into(),
            run_id: "20261123T101500Z-4f2a1c".into(),
            app: "shop".into(),
            environment: "production".into(),
            image_tag: "3f2c1a9".into(),
            outcome: "rolled_back".into(),
            exit_code: 3,
            message: "3f2c1a9 failed and was rolled back".into(),
            rollback_reasons: vec!["smoke gate failed: 1 critical check(s) failed: orders".into()],
            run_url: Some("https://github.com/acme/shop/actions/runs/42".into()),
            strategy: None,
            steps: Vec::new(),
        };
        insta::assert_json_snapshot!("webhook_payload", notification);
        insta::assert_snapshot!("slack_text", notification.slack_text());
    }

    #[test]
    fn signatures_verify_and_tampering_is_caught() {
        let key = Secret::new("whsec-test-key");
        let now = SystemTime::now();
        let t = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let header = sign(&key, t, "{\"a\":1}");
        assert!(header.starts_with(&format!("t={t},v1=")));
        let tolerance = Duration::from_secs(300);
        verify(&key, &header, "{\"a\":1}", now, tolerance).unwrap();
        assert_eq!(
            verify(&key, &header, "{\"a\":2}", now, tolerance),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&Secret::new("other"), &header, "{\"a\":1}", now, tolerance),
            Err(SignatureError::Mismatch)
        );
        let late = now + Duration::from_secs(600);
        assert_eq!(
            verify(&key, &header, "{\"a\":1}", late, tolerance),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&key, "garbage", "{}", now, tolerance),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn backoff_doubles_from_a_minute_up_to_an_hour() {
        assert_eq!(backoff(0), Duration::from_secs(60));
        assert_eq!(backoff(1), Duration::from_secs(120));
        assert_eq!(backoff(9), Duration::from_secs(3600));
    }
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
