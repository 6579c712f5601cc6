//! The monitor end to end: a real loopback target that flaps, the fake GitHub API (GitHub's
//! example bodies; issue de-duplication, dropped labels, closing), a signed webhook receiver
//! fed through the ledger's outbox, a restart in the middle of an alert, on SQLite and
//! Postgres ledgers. Time is walked with `run_due_at`; the checks and API calls are real.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};
use shipgate_core::{Redactor, Secret};
use shipgate_github::GithubClient;
use shipgate_ledger::{DeploymentRecord, Ledger, NewRun};
use shipgate_monitor::alert::{AlertState, Thresholds};
use shipgate_monitor::watch::{
    Inspect, Inspection, IssueTracker, Monitor, MonitorEventKind, MonitorOptions, MonitorParts,
    WatchTarget, health_check_spec,
};
use shipgate_notify::{Channel, Notifier};
use shipgate_smoke::SmokeRunner;
use shipgate_testkit::Canary;
use shipgate_testkit::fakes::FakeGithub;

const REPO: &str = "acme/shop";
const TOKEN: &str = "ghs_monitor_token";
/// 2027-01-15T08:00:00Z (a whole minute).
const T0: i64 = 1_800_000_000_000;
const MINUTE: i64 = 60_000;

/// A health endpoint whose status the test sets; a failing answer echoes a secret, which
/// must come out redacted everywhere.
async fn flapping_target(secret: &str) -> (String, Arc<AtomicU16>) {
    let status = Arc::new(AtomicU16::new(200));
    let current = Arc::clone(&status);
    let secret = secret.to_owned();
    let app = Router::new().route(
        "/healthz",
        get(move || {
            let code = current.load(Ordering::SeqCst);
            let secret = secret.clone();
            async move {
                let code = StatusCode::from_u16(code).unwrap();
                let body = if code.is_success() {
                    json!({"status": "ok"})
                } else {
                    json!({"status": "down", "dsn": format!("postgres://app:{secret}@db/shop")})
                };
                (code, axum::Json(body))
            }
        }),
    );
    let addr = shipgate_testkit::serve(app).await;
    (format!("http://{addr}/healthz"), status)
}

/// A webhook receiver recording each body.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&bodies);
    let app = Router::new().route(
        "/hook",
        post(move |body: String| {
            seen.lock().unwrap().push(body);
            async { StatusCode::NO_CONTENT }
        }),
    );
    let addr = shipgate_testkit::serve(app).await;
    (format!("http://{addr}/hook"), bodies)
}

struct Provider;

#[async_trait::async_trait]
impl Inspect for Provider {
    async fn inspect(&self, environment: &str) -> Inspection {
        Inspection {
            running: vec![format!(
                "api = ghcr.io/acme/shop-api:v1.4.2 ({environment})"
            )],
            logs: vec!["api: panic: connection pool exhausted".into()],
        }
    }
}

fn target(name: &str, url: &str, open_after: u32) -> WatchTarget {
    WatchTarget {
        name: name.into(),
        environment: "production".into(),
        schedule: "1m".parse().unwrap(),
        spec: health_check_spec(url, Duration::from_secs(5), false, false).unwrap(),
        thresholds: Thresholds {
            open_after,
            resolve_after: 2,
        },
        issue_title: "Production Deployment Health Check Failed".into(),
        issue_labels: vec!["deployment-alert".into(), "urgent".into()],
        comment_every: Duration::from_secs(600),
    }
}

struct Harness {
    github: FakeGithub,
    /// One client for every monitor of a test: its writes stay a second apart across the
    /// restart, as a real restart (seconds) would leave them.
    client: GithubClient,
    events: Arc<Mutex<Vec<MonitorEventKind>>>,
    redactor: Redactor,
}

impl Harness {
    async fn new(canary: &Canary) -> Harness {
        let github = FakeGithub::new(REPO, TOKEN);
        let github_url = github.clone().start().await;
        let redactor = Redactor::default();
        redactor.add(&Secret::new(canary.value()));
        Harness {
            github,
            client: GithubClient::new(&github_url, Some(Secret::new(TOKEN))).unwrap(),
            events: Arc::default(),
            redactor,
        }
    }

    async fn monitor(
        &self,
        ledger: &Ledger,
        targets: Vec<WatchTarget>,
        notifier: Option<Notifier>,
    ) -> Arc<Monitor> {
        let events = Arc::clone(&self.events);
        Monitor::new(
            ledger.clone(),
            MonitorOptions::new("shop", "test-replica"),
            targets,
            MonitorParts {
                runner: SmokeRunner::new(self.redactor.clone()).unwrap(),
                github: Some(IssueTracker {
                    client: self.client.clone(),
                    repository: REPO.into(),
                }),
                notifier,
                inspector: Some(Arc::new(Provider)),
                redactor: self.redactor.clone(),
                events: Arc::new(move |event| events.lock().unwrap().push(event.clone())),
            },
        )
        .await
        .unwrap()
    }

    fn issues(&self) -> Vec<Value> {
        self.github
            .repo
            .lock()
            .unwrap()
            .issues
            .iter()
            .filter(|i| i.get("pull_request").is_none())
            .cloned()
            .collect()
    }

    fn comments(&self, number: u64) -> Vec<String> {
        self.github
            .repo
            .lock()
            .unwrap()
            .comments
            .iter()
            .filter(|(n, _)| *n == number)
            .map(|(_, body)| body.clone())
            .collect()
    }

    fn warnings(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                MonitorEventKind::Warning(w) => Some(w.clone()),
                _ => None,
            })
            .collect()
    }
}

async fn seed_deploy(ledger: &Ledger) {
    ledger
        .start_run(&NewRun {
            id: "20270115T070000Z-ab12".into(),
            app: "shop".into(),
            environment: "production".into(),
            image_tag: "v1.4.2".into(),
            owner: "ci".into(),
            host: "runner".into(),
            pid: 1,
            started_ms: T0 - 3_600_000,
        })
        .await
        .unwrap();
    ledger
        .record_deployment(&DeploymentRecord {
            run_id: "20270115T070000Z-ab12".into(),
            target: "local".into(),
            service: "api".into(),
            from_image: None,
            to_image: "ghcr.io/acme/shop-api:v1.4.2".into(),
            revision: "7".into(),
            kind: "deploy".into(),
            verdict: "healthy".into(),
        })
        .await
        .unwrap();
    ledger
        .finish_run("20270115T070000Z-ab12", "succeeded", T0 - 3_500_000, None)
        .await
        .unwrap();
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("ledger.db").display())
}

async fn step(monitor: &Arc<Monitor>, at: i64, expect: AlertState) {
    let results = monitor.run_due_at(at).await.unwrap();
    assert_eq!(results.len(), 1, "one target due at {at}: {results:?}");
    assert_eq!(results[0].state, expect, "{results:?}");
}

#[tokio::test]
async fn an_alert_opens_one_issue_survives_a_restart_comments_once_per_period_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        sqlite_url(&dir),
        shipgate_testkit::postgres_database().await,
    ] {
        lifecycle(&url).await;
    }
}

async fn lifecycle(ledger_url: &str) {
    let canary = Canary::new("monitor");
    let harness = Harness::new(&canary).await;
    let (url, status) = flapping_target(canary.value()).await;
    let (hook_url, deliveries) = webhook_receiver().await;
    let signing_key = "whsec_monitor";
    let notifier = || {
        Notifier::new(
            vec![Channel::Webhook {
                name: "ops".into(),
                url: hook_url.clone(),
                key: Secret::new(signing_key),
                on: Vec::new(),
            }],
            harness.redactor.clone(),
        )
        .unwrap()
    };
    let ledger = Ledger::open(ledger_url).await.unwrap();
    seed_deploy(&ledger).await;
    let monitor = harness
        .monitor(
            &ledger,
            vec![target("api-health", &url, 2)],
            Some(notifier()),
        )
        .await;

    // A blip pages nobody.
    let mut at = T0;
    step(&monitor, at, AlertState::Healthy).await;
    status.store(503, Ordering::SeqCst);
    at += MINUTE;
    step(&monitor, at, AlertState::Failing).await;
    status.store(200, Ordering::SeqCst);
    at += MINUTE;
    step(&monitor, at, AlertState::Healthy).await;
    assert!(harness.issues().is_empty());
    // Not due again before the next slot.
    assert!(monitor.run_due_at(at + 1_000).await.unwrap().is_empty());

    // Two failures in a row open the alert: one issue with the report.
    status.store(503, Ordering::SeqCst);
    at += MINUTE;
    step(&monitor, at, AlertState::Failing).await;
    let first_failure = at;
    at += MINUTE;
    step(&monitor, at, AlertState::Alerting).await;
    let issues = harness.issues();
    assert_eq!(issues.len(), 1);
    let issue = &issues[0];
    assert_eq!(issue["title"], "Production Deployment Health Check Failed");
    let labels: Vec<&str> = issue["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["deployment-alert", "urgent"]);
    let body = issue["body"].as_str().unwrap();
    for expected in [
        "GET /healthz → 503",
        "First failure: 2027-01-15T",
        "image tag `v1.4.2`",
        "api = `ghcr.io/acme/shop-api:v1.4.2`",
        "Running now: api = ghcr.io/acme/shop-api:v1.4.2 (production)",
        "panic: connection pool exhausted",
        "<!-- shipgate-monitor:shop/production/api-health -->",
    ] {
        assert!(body.contains(expected), "{expected} missing from\n{body}");
    }
    let first_failure_text = time_of_day(first_failure);
    assert!(body.contains(&first_failure_text), "{body}");
    let number = issue["number"].as_u64().unwrap();

    // Still failing a minute later: no new issue, no comment (one per 10 minutes).
    at += MINUTE;
    step(&monitor, at, AlertState::Alerting).await;
    assert_eq!(harness.issues().len(), 1);
    assert!(harness.comments(number).is_empty());

    // The monitor restarts mid-alert: the state and the issue are kept.
    drop(monitor);
    drop(ledger);
    let ledger = Ledger::open(ledger_url).await.unwrap();
    let monitor = harness
        .monitor(
            &ledger,
            vec![target("api-health", &url, 2)],
            Some(notifier()),
        )
        .await;
    let row = &ledger.monitor_targets("shop").await.unwrap()[0];
    assert_eq!(row.state, "alerting");
    assert_eq!(row.issue_number, Some(i64::try_from(number).unwrap()));

    at += 10 * MINUTE;
    step(&monitor, at, AlertState::Alerting).await;
    let comments = harness.comments(number);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].starts_with("Still failing at"), "{comments:?}");
    assert_eq!(harness.issues().len(), 1, "never a second issue");

    // Two passes resolve it: a comment, then the issue is closed.
    status.store(200, Ordering::SeqCst);
    at += MINUTE;
    step(&monitor, at, AlertState::Recovering).await;
    assert_eq!(harness.issues()[0]["state"], "open");
    at += MINUTE;
    step(&monitor, at, AlertState::Healthy).await;
    let issues = harness.issues();
    assert_eq!(issues[0]["state"], "closed");
    let comments = harness.comments(number);
    assert_eq!(comments.len(), 2);
    assert!(comments[1].starts_with("Recovered"), "{comments:?}");

    // The transitions are in the ledger.
    let transitions: Vec<(String, String)> = ledger
        .monitor_events("shop/production/api-health")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.from_state, e.to_state))
        .collect();
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        transitions,
        pairs(&[
            ("healthy", "failing"),
            ("failing", "healthy"),
            ("healthy", "failing"),
            ("failing", "alerting"),
            ("alerting", "recovering"),
            ("recovering", "healthy"),
        ])
    );

    // The outbox delivered one signed notification per transition that matters.
    let delivered = deliveries.lock().unwrap().clone();
    let outcomes: Vec<String> = delivered
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["outcome"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(outcomes, ["alerting", "recovered"]);
    assert!(ledger.undelivered().await.unwrap().is_empty());

    // The secret the failing target echoed is nowhere: issue, comments, ledger, webhooks.
    let mut everything = serde_json::to_string(&harness.issues()).unwrap();
    everything.push_str(&harness.comments(number).join("\n"));
    everything.push_str(&format!(
        "{:?}",
        ledger.monitor_targets("shop").await.unwrap()
    ));
    everything.push_str(&format!(
        "{:?}",
        ledger
            .monitor_events("shop/production/api-health")
            .await
            .unwrap()
    ));
    everything.push_str(&delivered.join("\n"));
    everything.push_str(&format!("{:?}", harness.events.lock().unwrap()));
    assert!(
        everything.contains("[redacted]"),
        "the echoed secret was seen and masked"
    );
    canary.assert_absent(
        "issues, comments, ledger rows, webhooks and events",
        &everything,
    );
    assert!(harness.warnings().is_empty(), "{:?}", harness.warnings());
    assert_eq!(
        harness.github.repo.lock().unwrap().violations,
        Vec::<String>::new()
    );
}

/// `08:03:00Z` for a whole-minute timestamp, without a date library: the issue
/// shows the first failure in RFC 3339.
fn time_of_day(ms: i64) -> String {
    let minutes_into_day = (ms / MINUTE) % (24 * 60);
    format!(
        "{:02}:{:02}:00Z",
        minutes_into_day / 60,
        minutes_into_day % 60
    )
}

#[tokio::test]
async fn an_open_issue_is_reused_dropped_labels_are_reported_and_shared_issues_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&sqlite_url(&dir)).await.unwrap();
    let canary = Canary::new("dedup");
    let harness = Harness::new(&canary).await;
    let (url_a, status_a) = flapping_target(canary.value()).await;
    let (url_b, status_b) = flapping_target(canary.value()).await;
    // Someone (or an earlier monitor) already opened the alert issue.
    harness.github.repo.lock().unwrap().issues.push(json!({
        "number": 1, "title": "Production Deployment Health Check Failed", "state": "open",
        "html_url": "https://github.com/acme/shop/issues/1", "body": "opened by hand",
        "labels": [{"name": "deployment-alert"}]
    }));
    let monitor = harness
        .monitor(
            &ledger,
            vec![target("api", &url_a, 1), target("worker", &url_b, 1)],
            None,
        )
        .await;

    // Both targets fail: both adopt issue #1 (same title and label); nothing new is opened.
    status_a.store(503, Ordering::SeqCst);
    status_b.store(502, Ordering::SeqCst);
    let results = monitor.run_due_at(T0).await.unwrap();
    assert!(
        results.iter().all(|r| r.state == AlertState::Alerting),
        "{results:?}"
    );
    assert_eq!(harness.issues().len(), 1);
    let reports = harness.comments(1);
    assert_eq!(
        reports.len(),
        2,
        "each target's report goes in as a comment"
    );
    assert!(reports.iter().any(|c| c.contains("**api**")));
    assert!(reports.iter().any(|c| c.contains("**worker**")));

    // `api` recovers first: it comments, but the issue stays open while `worker` alerts.
    status_a.store(200, Ordering::SeqCst);
    monitor.run_due_at(T0 + MINUTE).await.unwrap();
    monitor.run_due_at(T0 + 2 * MINUTE).await.unwrap();
    assert_eq!(harness.issues()[0]["state"], "open");
    assert!(harness.comments(1).last().unwrap().contains("stays open"));
    status_b.store(200, Ordering::SeqCst);
    monitor.run_due_at(T0 + 3 * MINUTE).await.unwrap();
    monitor.run_due_at(T0 + 4 * MINUTE).await.unwrap();
    assert_eq!(harness.issues()[0]["state"], "closed");

    // Without push access GitHub drops the labels: the new issue is still tracked by its
    // number, and the drop is reported.
    harness.github.repo.lock().unwrap().drop_labels = true;
    status_a.store(503, Ordering::SeqCst);
    monitor.run_due_at(T0 + 5 * MINUTE).await.unwrap();
    let issues = harness.issues();
    assert_eq!(issues.len(), 2);
    assert_eq!(issues[1]["labels"], json!([]));
    let warnings = harness.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("dropped the labels deployment-alert, urgent from issue #2")),
        "{warnings:?}"
    );
    // Past the comment period the alert comments on #2 (found by its number, not its labels).
    monitor.run_due_at(T0 + 16 * MINUTE).await.unwrap();
    assert_eq!(harness.comments(2).len(), 1);
    assert_eq!(harness.issues().len(), 2);
    status_a.store(200, Ordering::SeqCst);
    monitor.run_due_at(T0 + 17 * MINUTE).await.unwrap();
    monitor.run_due_at(T0 + 18 * MINUTE).await.unwrap();
    assert_eq!(harness.issues()[1]["state"], "closed");
    assert_eq!(
        harness.github.repo.lock().unwrap().violations,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn without_github_the_alert_still_moves_and_metrics_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&sqlite_url(&dir)).await.unwrap();
    seed_deploy(&ledger).await;
    let (url, status) = flapping_target("unused").await;
    status.store(500, Ordering::SeqCst);
    let events: Arc<Mutex<Vec<MonitorEventKind>>> = Arc::default();
    let seen = Arc::clone(&events);
    let monitor = Monitor::new(
        ledger.clone(),
        MonitorOptions::new("shop", "solo"),
        vec![target("api-health", &url, 1)],
        MonitorParts {
            runner: SmokeRunner::new(Redactor::default()).unwrap(),
            github: None,
            notifier: None,
            inspector: None,
            redactor: Redactor::default(),
            events: Arc::new(move |e| seen.lock().unwrap().push(e.clone())),
        },
    )
    .await
    .unwrap();
    let results = monitor.run_due_at(T0).await.unwrap();
    assert_eq!(results[0].state, AlertState::Alerting);
    assert!(events.lock().unwrap().iter().any(|e| matches!(
        e,
        MonitorEventKind::AlertOpened {
            issue_url: None,
            ..
        }
    )));
    let text = monitor.metrics().render();
    for expected in [
        "shipgate_monitor_checks_total{target=\"shop/production/api-health\",environment=\"production\",result=\"fail\"} 1",
        "shipgate_monitor_alert_state{target=\"shop/production/api-health\",state=\"alerting\"} 1",
        "shipgate_monitor_alert_state{target=\"shop/production/api-health\",state=\"healthy\"} 0",
        "shipgate_last_deploy_outcome{app=\"shop\",environment=\"production\",outcome=\"succeeded\"} 1",
        "shipgate_monitor_check_duration_seconds_count{target=\"shop/production/api-health\",environment=\"production\"} 1",
        "shipgate_notifications_undelivered 0",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    // The example alerting rules use only metrics the monitor exports.
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/monitor/prometheus-rules.yaml"),
    )
    .unwrap();
    let names: std::collections::BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("shipgate_"))
        .collect();
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        assert!(
            text.lines().any(|line| line.starts_with(name)),
            "the rules use {name}, which /metrics does not export"
        );
    }
}

#[tokio::test]
async fn the_monitor_delivers_a_deploy_notification_that_failed_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&sqlite_url(&dir)).await.unwrap();
    // `run_due` runs on the real clock, so the retry is due a minute ago.
    let now = shipgate_ledger::now_ms();
    // A deploy queued its notification, and the receiver was down: it waits for its retry.
    ledger
        .enqueue(
            &shipgate_ledger::OutboxMessage {
                id: "20270115T070000Z-ab12:ops".into(),
                run_id: "20270115T070000Z-ab12".into(),
                channel: "ops".into(),
                payload: json!({"event": "deploy", "outcome": "rolled_back"}).to_string(),
            },
            now - 3_600_000,
        )
        .await
        .unwrap();
    ledger
        .delivery_failed("20270115T070000Z-ab12:ops", "HTTP 503", now - 60_000)
        .await
        .unwrap();
    let (hook_url, deliveries) = webhook_receiver().await;
    let (url, _status) = flapping_target("unused").await;
    let canary = Canary::new("outbox");
    let harness = Harness::new(&canary).await;
    let notifier = Notifier::new(
        vec![Channel::Webhook {
            name: "ops".into(),
            url: hook_url,
            key: Secret::new("whsec_outbox"),
            on: Vec::new(),
        }],
        harness.redactor.clone(),
    )
    .unwrap();
    let monitor = harness
        .monitor(&ledger, vec![target("api-health", &url, 2)], Some(notifier))
        .await;
    monitor.run_due().await.unwrap();
    let delivered = deliveries.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert!(delivered[0].contains("rolled_back"));
    assert!(ledger.undelivered().await.unwrap().is_empty());
    assert!(
        harness.events.lock().unwrap().iter().any(|e| matches!(
            e,
            MonitorEventKind::Delivered {
                delivered: 1,
                failed: 0
            }
        )),
        "the delivery is reported"
    );
}
