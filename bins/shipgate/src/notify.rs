//! `[notify]` for `deploy` and `shipgate notify deliver`: channels built from the config with
//! their secrets from the secret sources, notifications queued in the ledger's outbox and
//! delivered at once; what fails stays queued for `notify deliver` (or the monitor).

use std::collections::BTreeMap;

use shipgate_config::Config;
use shipgate_ledger::Ledger;
use shipgate_notify::{Channel, Notification, Notifier};
use shipgate_pipeline::Summary;

use crate::{log_redactor, platforms, usage_error};

/// The configured channels, or `None` when there are none. Names: `slack`, `slack-2`, …,
/// `webhook`, `webhook-2`, … in configuration order.
pub(crate) fn notifier(
    config: &Config,
    vars: &BTreeMap<String, String>,
    rt: &tokio::runtime::Runtime,
) -> Result<Option<Notifier>, u8> {
    let notify = &config.notify;
    if notify.slack.is_empty() && notify.webhooks.is_empty() {
        return Ok(None);
    }
    let resolver = crate::secrets::resolver(config, vars)?;
    let secret = |name: &str, what: &str| {
        rt.block_on(platforms::optional_secret(&resolver, name))
            .map_err(usage_error)?
            .ok_or_else(|| usage_error(format!("{what} needs secret {name}, which no source has")))
    };
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
            url: secret(&slack.webhook_secret, "[[notify.slack]]")?,
            on: slack.on.clone(),
        });
    }
    for (i, hook) in notify.webhooks.iter().enumerate() {
        channels.push(Channel::Webhook {
            name: numbered("webhook", i),
            url: hook.url.clone(),
            key: secret(&hook.signing_secret, "[[notify.webhooks]]")?,
            on: hook.on.clone(),
        });
    }
    Notifier::new(channels, log_redactor().clone())
        .map(Some)
        .map_err(usage_error)
}

/// The notification for a finished run.
pub(crate) fn notification(summary: &Summary, vars: &BTreeMap<String, String>) -> Notification {
    Notification {
        schema_version: 1,
        event: "deploy".into(),
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
        run_url: crate::actions_run_url(vars),
    }
}

/// Queues the run's notification and delivers what is due; problems are warnings.
pub(crate) async fn after_deploy(
    notifier: &Notifier,
    ledger: &Ledger,
    notification: &Notification,
    warn: &(dyn Fn(&str) + Sync),
) {
    if let Err(err) = notifier.enqueue(ledger, notification).await {
        warn(&format!("notifications not queued: {err}"));
        return;
    }
    match notifier.deliver_due(ledger, 50).await {
        Ok(report) => {
            for (channel, run, error) in &report.failed {
                warn(&format!(
                    "notification to {channel} for {run} failed ({error}); it stays queued: run `shipgate notify deliver` to retry"
                ));
            }
        }
        Err(err) => warn(&format!("notifications not delivered: {err}")),
    }
}

/// `shipgate notify …`.
#[derive(Debug, clap::Subcommand)]
pub enum NotifyCommand {
    /// Deliver queued notifications that are due (failed earlier, or queued by another run).
    ///
    /// Exit codes: 0 nothing failed this round, 1 a delivery failed (it stays queued), 2 usage.
    Deliver {
        /// Configuration file (for [notify] and [ledger] url).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
}

/// Runs `notify deliver`.
pub(crate) fn run(command: NotifyCommand, vars: &BTreeMap<String, String>) -> u8 {
    let NotifyCommand::Deliver { config } = command;
    let config = match crate::load_config(config, None, vars) {
        Ok((loaded, _)) => loaded.config,
        Err(code) => return code,
    };
    let rt = match crate::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let notifier = match notifier(&config, vars, &rt) {
        Ok(Some(notifier)) => notifier,
        Ok(None) => return usage_error("[notify] has no slack or webhooks channel"),
        Err(code) => return code,
    };
    let report = rt.block_on(async {
        let ledger = Ledger::open(&config.ledger.url).await?;
        notifier.deliver_due(&ledger, 500).await
    });
    match report {
        Ok(report) => {
            say!(
                "{} delivered, {} failed",
                report.delivered.len(),
                report.failed.len()
            );
            for (channel, run, error) in &report.failed {
                say!("  {channel} {run}: {}", error);
            }
            if report.failed.is_empty() {
                shipgate_core::exit_code::OK
            } else {
                shipgate_core::exit_code::CHECK_FAILED
            }
        }
        Err(err) => usage_error(err.to_string()),
    }
}
