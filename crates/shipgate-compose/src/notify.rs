//! `[notify]`: channels built from the configuration with their secrets from the secret
//! sources; notifications queued in the ledger's outbox and delivered at once.

use shipgate_ledger::Ledger;
use shipgate_notify::{Channel, Notification, Notifier};
use shipgate_pipeline::Summary;

use crate::{ComposeError, Composition};

impl Composition {
    /// The configured channels, or `None` when there are none. Names: `slack`, `slack-2`, …,
    /// `webhook`, `webhook-2`, … in configuration order.
    pub async fn notifier(&self) -> Result<Option<Notifier>, ComposeError> {
        let notify = &self.config().notify;
        if notify.slack.is_empty() && notify.webhooks.is_empty() {
            return Ok(None);
        }
        let numbered = |base: &str, i: usize| {
            if i == 0 {
                base.to_owned()
            } else {
                format!("{base}-{}", i + 1)
            }
        };
        let mut channels = Vec::new();
        for (i, slack) in notify.slack.iter().enumerate() {
            channels.push(Channel::Slack {
                name: numbered("slack", i),
                url: self
                    .required_secret(&slack.webhook_secret, "[[notify.slack]]")
                    .await?,
                on: slack.on.clone(),
            });
        }
        for (i, hook) in notify.webhooks.iter().enumerate() {
            channels.push(Channel::Webhook {
                name: numbered("webhook", i),
                url: hook.url.clone(),
                key: self
                    .required_secret(&hook.signing_secret, "[[notify.webhooks]]")
                    .await?,
                on: hook.on.clone(),
            });
        }
        Notifier::new(channels, self.redactor().clone())
            .map(Some)
            .map_err(|e| ComposeError::setup_caused(e.to_string(), e))
    }

    /// The notification of a finished run.
    pub fn notification(&self, summary: &Summary) -> Notification {
        Notification {
            schema_version: 1,
            event: shipgate_core::NotificationEvent::Deploy.as_str().into(),
            run_id: summary.run_id.clone(),
            app: summary.app.clone(),
            environment: summary.environment.clone(),
            image_tag: summary.image_tag.clone(),
            outcome: summary.outcome.as_str().to_owned(),
            exit_code: summary.exit_code,
            message: summary.message.clone(),
            rollback_reasons: summary
                .rollback
                .as_ref()
                .map(|r| r.reasons.clone())
                .unwrap_or_default(),
            run_url: self.actions().run_url(),
            strategy: Some(summary.strategy.word().to_owned()),
            steps: summary
                .canary
                .iter()
                .map(|step| format!("canary at {}%: {}", step.percent, step.describe()))
                .collect(),
        }
    }
}

/// Queues a run's notification and delivers what is due; problems are passed to `warn`
/// (what fails stays queued for `shipgate notify deliver` or the monitor).
pub async fn after_deploy(
    notifier: &Notifier,
    ledger: &Ledger,
    notification: &Notification,
    warn: &(dyn Fn(String) + Send + Sync),
) {
    if let Err(err) = notifier.enqueue(ledger, notification).await {
        warn(format!("notifications not queued: {err}"));
        return;
    }
    match notifier.deliver_due(ledger, 50).await {
        Ok(report) => {
            for (channel, run, error) in &report.failed {
                warn(format!(
                    "notification to {channel} for {run} failed ({error}); it stays queued: run `shipgate notify deliver` to retry"
                ));
            }
        }
        Err(err) => warn(format!("notifications not delivered: {err}")),
    }
}
