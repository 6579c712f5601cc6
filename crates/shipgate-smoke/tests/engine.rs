//! The smoke engine against a real HTTP server on loopback that misbehaves on purpose.

#![allow(clippy::unwrap_used)]

mod server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shipgate_core::{Redactor, Secret};
use shipgate_smoke::{
    CheckOutcome, Progress, SmokeReport, SmokeRunner, Spec, SpecOptions, SpecProblem, compile,
};
use tokio_util::sync::CancellationToken;

/// Writes `toml` to a spec file, loads it as `shipgate smoke --spec` does, and compiles it.
fn spec(toml: &str, options: &SpecOptions) -> Result<Spec, Vec<SpecProblem>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smoke.toml");
    std::fs::write(&path, toml).unwrap();
    let loaded = shipgate_config::load_smoke_spec(&path).unwrap();
    compile(&loaded.spec, options).map_err(|e| e.problems)
}

fn local(addr: SocketAddr) -> SpecOptions {
    SpecOptions {
        base_url: Some(format!("http://{addr}")),
        ..SpecOptions::default()
    }
}

struct Run {
    report: SmokeReport,
    progress: Vec<Progress>,
}

async fn run_with(spec: &Spec, redactor: Redactor) -> Run {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let mut runner =
        SmokeRunner::new(redactor)
            .unwrap()
            .with_progress(Arc::new(move |p: &Progress| {
                sink.lock().unwrap().push(p.clone())
            }));
    // A hang guard, not a performance assertion: every scenario here ends in seconds.
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        runner.run(spec, &CancellationToken::new()),
    )
    .await
    .expect("the run must not hang")
    .unwrap();
    let progress = seen.lock().unwrap().clone();
    Run { report, progress }
}

async fn run(toml: &str, addr: SocketAddr) -> Run {
    run_with(&spec(toml, &local(addr)).unwrap(), Redactor::default()).await
}

fn check<'a>(report: &'a SmokeReport, name: &str) -> &'a shipgate_smoke::CheckReport {
    report.checks.iter().find(|c| c.name == name).unwrap()
}

/// Every rendering of the report, for leak checks.
fn all_output(report: &SmokeReport) -> String {
    format!(
        "{}\n{}\n{}\n{report:?}",
        serde_json::to_string(report).unwrap(),
        report.to_text(),
        report.to_junit()
    )
}

#[tokio::test]
async fn seed_002_health_ready_and_critical_api_path_pass() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "healthz"
path = "/healthz"
status = 200
asserts = [{ body = true, equals = "ok" }]

[[checks]]
name = "readyz"
path = "/readyz"
asserts = [{ jsonpath = "$.status", equals = "ready" }, { jsonpath = "$.db", matches = "^ok$" }]

[[checks]]
name = "presets"
path = "/api/presets"
status = "2xx"
max_latency = "5s"
asserts = [
  { jsonpath = "$.count", equals = 2 },
  { jsonpath = "$.count", equals = "2" },
  { jsonpath = "$.presets[*].name", contains = "powder" },
  { jsonpath = "$.presets[0].id", exists = true },
  { jsonpath = "$.nothing", exists = false },
  { header = "content-type", matches = "^application/json" },
  { header = "cache-control", equals = "no-store" },
  { max_bytes = 4096 },
]
"#;
    let run = run(toml, addr).await;
    assert!(run.report.passed, "{}", run.report.to_text());
    assert_eq!(run.report.summary.passed, 3);
    for c in &run.report.checks {
        assert_eq!(c.attempts, 1);
        assert!(c.p50_ms.unwrap() > 0.0);
    }
    assert_eq!(check(&run.report, "presets").asserts.len(), 8);
}

#[tokio::test]
async fn transient_failures_are_retried_and_reported_as_progress() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "flaky"
path = "/flaky/a/2"
retry = { attempts = 3, interval = "10ms" }
"#;
    let run = run(toml, addr).await;
    assert!(run.report.passed, "{}", run.report.to_text());
    assert_eq!(check(&run.report, "flaky").attempts, 3);
    let retries: Vec<_> = run
        .progress
        .iter()
        .filter_map(|p| match p {
            Progress::Retrying {
                attempt,
                of,
                reason,
                ..
            } => Some((*attempt, *of, reason.clone())),
            Progress::Finished { .. } => None,
        })
        .collect();
    assert_eq!(retries.len(), 2);
    assert_eq!((retries[0].0, retries[0].1), (1, 3));
    assert!(retries[0].2.contains("status 503"), "{}", retries[0].2);
}

#[tokio::test]
async fn retries_run_out_and_the_gate_fails_with_the_last_reason() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "flaky"
path = "/flaky/b/5"
retry = { attempts = 2, interval = "10ms" }
"#;
    let run = run(toml, addr).await;
    assert!(!run.report.passed);
    let c = check(&run.report, "flaky");
    assert_eq!(c.attempts, 2);
    assert_eq!(c.status, Some(503));
    let failure = c.failure.as_deref().unwrap();
    assert!(
        failure.contains("status 503 (expected 2xx)") && failure.contains("after 2 attempts"),
        "{failure}"
    );
    assert_eq!(c.body_excerpt.as_deref(), Some("warming up"));
}

#[tokio::test]
async fn an_assertion_failure_on_a_good_response_is_final() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "ready"
path = "/ready-after/c/5"
retry = { attempts = 5, interval = "10ms" }
asserts = [{ jsonpath = "$.ready", equals = true }]
"#;
    let run = run(toml, addr).await;
    assert!(!run.report.passed);
    let c = check(&run.report, "ready");
    assert_eq!(c.attempts, 1);
    assert!(
        c.failure
            .as_deref()
            .unwrap()
            .contains("$.ready equals true")
    );
    assert_eq!(c.asserts[0].actual.as_deref(), Some("false"));
}

#[tokio::test]
async fn wait_until_healthy_retries_assertion_failures_seed_004() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "health"
path = "/ready-after/d/3"
wait_until_healthy = true
retry = { attempts = 12, interval = "10ms" }
asserts = [{ jsonpath = "$.ready", equals = true }]
"#;
    let run = run(toml, addr).await;
    assert!(run.report.passed, "{}", run.report.to_text());
    assert_eq!(check(&run.report, "health").attempts, 4);
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "throttled"
path = "/throttled/e"
retry = { attempts = 2, interval = "10ms" }
"#;
    let run = run(toml, addr).await;
    assert!(run.report.passed, "{}", run.report.to_text());
    let waits: Vec<Duration> = run
        .progress
        .iter()
        .filter_map(|p| match p {
            Progress::Retrying { retry_in, .. } => Some(*retry_in),
            Progress::Finished { .. } => None,
        })
        .collect();
    assert_eq!(waits, vec![Duration::from_secs(1)]);
}

#[tokio::test]
async fn non_retryable_statuses_fail_at_once() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "missing"
path = "/missing"
retry = { attempts = 3, interval = "10ms" }
"#;
    let run = run(toml, addr).await;
    let c = check(&run.report, "missing");
    assert_eq!(
        (c.outcome, c.attempts, c.status),
        (CheckOutcome::Failed, 1, Some(404))
    );
}

#[tokio::test]
async fn empty_and_non_json_bodies_fail_json_asserts() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "empty"
path = "/empty"
asserts = [{ jsonpath = "$.status", exists = false }]

[[checks]]
name = "html"
path = "/html"
asserts = [{ jsonpath = "$.status", equals = "ok" }]
"#;
    let run = run(toml, addr).await;
    assert!(!run.report.passed);
    assert!(
        check(&run.report, "empty")
            .failure
            .as_deref()
            .unwrap()
            .contains("empty body")
    );
    let html = check(&run.report, "html");
    assert!(html.failure.as_deref().unwrap().contains("not JSON"));
    assert_eq!(
        html.body_excerpt.as_deref(),
        Some("<html>maintenance</html>")
    );
}

#[tokio::test]
async fn redirects_are_followed_on_the_same_origin_only() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "moved"
path = "/moved"
asserts = [{ body = true, equals = "ok" }]

[[checks]]
name = "away"
path = "/away"
critical = false
"#;
    let run = run(toml, addr).await;
    assert!(
        run.report.passed,
        "a non-critical failure does not fail the gate"
    );
    assert_eq!(check(&run.report, "moved").outcome, CheckOutcome::Passed);
    let away = check(&run.report, "away");
    assert_eq!(away.outcome, CheckOutcome::Failed);
    assert!(
        away.failure.as_deref().unwrap().contains("another origin"),
        "{:?}",
        away.failure
    );
    assert!(run.report.to_text().contains("WARN away"));
}

#[tokio::test]
async fn hostile_servers_are_bounded_by_the_timeout_and_the_body_cap() {
    let addr = server::start().await;
    let endless = server::endless_headers().await;
    let toml = r#"
[[checks]]
name = "drip"
path = "/drip"
timeout = "500ms"

[[checks]]
name = "big"
path = "/big"
asserts = [{ max_bytes = 1000 }]

[[checks]]
name = "big-json"
path = "/big"
asserts = [{ jsonpath = "$.x", exists = true }]

[[checks]]
name = "binary"
path = "/binary"
asserts = [{ body = true, contains = "ok" }]
"#;
    let run = run(toml, addr).await;
    let drip = check(&run.report, "drip");
    assert!(
        drip.failure
            .as_deref()
            .unwrap()
            .contains("no complete response within 500.0 ms"),
        "{:?}",
        drip.failure
    );
    let big = check(&run.report, "big");
    assert_eq!(big.outcome, CheckOutcome::Failed);
    assert!(
        big.asserts[0]
            .actual
            .as_deref()
            .unwrap()
            .starts_with("more than")
    );
    assert!(
        check(&run.report, "big-json")
            .failure
            .as_deref()
            .unwrap()
            .contains("cap")
    );
    assert_eq!(check(&run.report, "binary").outcome, CheckOutcome::Passed);

    let headers = spec(
        "[[checks]]\nname = \"headers\"\npath = \"/\"\ntimeout = \"2s\"\n",
        &local(endless),
    )
    .unwrap();
    let run = run_with(&headers, Redactor::default()).await;
    let c = check(&run.report, "headers");
    assert_eq!(c.outcome, CheckOutcome::Failed);
    assert!(c.failure.is_some());
}

#[tokio::test]
async fn connection_refused_is_retried_then_fails_with_the_cause() {
    let toml = r#"
[[checks]]
name = "down"
path = "/healthz"
retry = { attempts = 2, interval = "10ms" }
"#;
    let spec = spec(toml, &local(shipgate_testkit::closed_port())).unwrap();
    let run = run_with(&spec, Redactor::default()).await;
    let c = check(&run.report, "down");
    assert_eq!(c.attempts, 2);
    assert!(c.status.is_none());
    assert!(
        c.failure.as_deref().unwrap().contains("onnect"),
        "{:?}",
        c.failure
    );
}

/// A login that captures a token, then a call that sends it.
fn login_chain(user: &str) -> String {
    r#"
[[checks]]
name = "login"
method = "POST"
path = "/login"
json = { user = "USER" }
captures = { token = "$.access_token" }

[[checks]]
name = "me"
path = "/me"
headers = { Authorization = "Bearer {{token}}" }
"#
    .replace("USER", user)
}

#[tokio::test]
async fn captures_chain_login_token_call_and_never_reach_a_report() {
    let addr = server::start().await;
    let toml = login_chain("alice")
        + r#"asserts = [{ jsonpath = "$.user", equals = "alice" }]

[[checks]]
name = "echo"
path = "/me"
headers = { Authorization = "Bearer {{token}}x" }
"#;
    let run = run(&toml, addr).await;
    assert_eq!(check(&run.report, "login").outcome, CheckOutcome::Passed);
    assert_eq!(check(&run.report, "me").outcome, CheckOutcome::Passed);
    // The server echoes the bad token into its body: the excerpt must mask it.
    let echo = check(&run.report, "echo");
    assert_eq!(echo.outcome, CheckOutcome::Failed);
    assert_eq!(
        echo.body_excerpt.as_deref(),
        Some("rejected Bearer [redacted]x")
    );
    assert!(!all_output(&run.report).contains(server::TOKEN));
}

#[tokio::test]
async fn checks_that_need_a_missing_capture_are_skipped_not_passed() {
    let addr = server::start().await;
    let toml = login_chain("mallory");
    let run = run(&toml, addr).await;
    assert!(!run.report.passed);
    let me = check(&run.report, "me");
    assert_eq!(me.outcome, CheckOutcome::Skipped);
    assert_eq!(me.attempts, 0);
    assert_eq!(run.report.summary.critical_failures, 2);
}

#[tokio::test]
async fn the_api_key_is_sent_in_its_header_and_masked_everywhere() {
    let addr = server::start().await;
    let toml = r#"
api_key_header = "X-API-Key"

[[checks]]
name = "secure"
path = "/secure"
asserts = [{ jsonpath = "$.secure", equals = true }]
"#;
    let mut options = local(addr);
    options.api_key = Some(Secret::new(server::API_KEY));
    let run = run_with(&spec(toml, &options).unwrap(), Redactor::default()).await;
    assert!(run.report.passed, "{}", run.report.to_text());

    // A wrong key that the server echoes back is masked too.
    options.api_key = Some(Secret::new("wrong-canary-key-123"));
    let run = run_with(&spec(toml, &options).unwrap(), Redactor::default()).await;
    let c = check(&run.report, "secure");
    assert_eq!(c.body_excerpt.as_deref(), Some("bad key [redacted]"));
    assert!(!all_output(&run.report).contains("wrong-canary-key-123"));
}

#[tokio::test]
async fn samples_judge_p50_and_p95() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "fast"
path = "/healthz"
samples = 5
max_latency = "5s"
max_p95_latency = "5s"

[[checks]]
name = "slow"
path = "/slow?ms=60"
samples = 3
max_p95_latency = "20ms"
"#;
    let run = run(toml, addr).await;
    let fast = check(&run.report, "fast");
    assert_eq!(
        (fast.outcome, fast.latency_ms.len()),
        (CheckOutcome::Passed, 5)
    );
    assert!(fast.p95_ms.unwrap() >= fast.p50_ms.unwrap());
    let slow = check(&run.report, "slow");
    assert_eq!(slow.outcome, CheckOutcome::Failed);
    assert!(
        slow.failure.as_deref().unwrap().contains("p95 latency"),
        "{:?}",
        slow.failure
    );
}

#[tokio::test]
async fn cancellation_stops_a_retry_wait() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "never"
path = "/flaky/z/100"
retry = { attempts = 10, interval = "60s" }
"#;
    let spec = spec(toml, &local(addr)).unwrap();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let mut runner = SmokeRunner::new(Redactor::default()).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(30), runner.run(&spec, &cancel))
        .await
        .expect("cancellation must end the wait")
        .unwrap();
    assert!(!report.passed);
    assert_eq!(report.checks[0].outcome, CheckOutcome::Cancelled);
    assert!(
        report.checks[0]
            .failure
            .as_deref()
            .unwrap()
            .contains("cancelled")
    );
}

#[tokio::test]
async fn reports_render_as_json_text_and_junit() {
    let addr = server::start().await;
    let toml = r#"
[[checks]]
name = "healthz"
path = "/healthz"

[[checks]]
name = "error"
path = "/error"
"#;
    let run = run(toml, addr).await;
    let json: serde_json::Value = serde_json::to_value(&run.report).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["passed"], false);
    assert_eq!(json["checks"][1]["outcome"], "failed");
    assert_eq!(json["checks"][1]["status"], 500);
    let text = run.report.to_text();
    assert!(
        text.starts_with("smoke FAILED: 1/2 checks passed"),
        "{text}"
    );
    assert!(text.contains("FAIL error"));
    let junit = run.report.to_junit();
    assert!(
        junit.contains(
            "<testsuites name=\"shipgate smoke\" tests=\"2\" skipped=\"0\" failures=\"1\""
        ),
        "{junit}"
    );
    assert!(junit.contains("status 500 (expected 2xx)"));
}

fn problems(toml: &str, options: &SpecOptions) -> Vec<(String, String)> {
    spec(toml, options)
        .unwrap_err()
        .into_iter()
        .map(|p| (p.key, p.message))
        .collect()
}

#[test]
fn malformed_specs_are_rejected_with_the_key_of_each_problem() {
    let options = SpecOptions {
        base_url: Some("https://api.example.com".into()),
        ..SpecOptions::default()
    };
    let found = problems(
        r#"
[[checks]]
name = "a"
path = "/a"
status = "999"
asserts = [{ jsonpath = "$[", exists = true }, { body = true, matches = "(" }, { header = "x", body = true, exists = true }]

[[checks]]
name = "b"
path = "b/{{token}}"
status = "7xx"
"#,
        &options,
    );
    let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "checks.0.status",
            "checks.0.asserts.0.jsonpath",
            "checks.0.asserts.1.matches",
            "checks.0.asserts.2",
            "checks.1.path",
            "checks.1.status",
            "checks.1",
        ],
        "{found:#?}"
    );
    assert!(
        found[6]
            .1
            .contains("capture `token` is used before any earlier check defines it")
    );

    let empty = problems("concurrency = 4\n", &options);
    assert_eq!(empty[0].0, "checks");
    assert!(empty[0].1.contains("no checks"));
}

#[test]
fn production_refuses_plain_http_unless_the_spec_opts_in() {
    let options = SpecOptions {
        base_url: Some("http://api.internal".into()),
        production_like: true,
        ..SpecOptions::default()
    };
    let found = problems("[[checks]]\nname = \"h\"\npath = \"/h\"\n", &options);
    assert_eq!(found[0].0, "base_url");
    assert!(found[0].1.contains("plain http"));
    assert!(
        spec(
            "allow_insecure = true\n[[checks]]\nname = \"h\"\npath = \"/h\"\n",
            &options
        )
        .is_ok()
    );
}

#[test]
fn spec_files_report_unknown_keys_and_duplicate_names_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smoke.toml");
    std::fs::write(
        &path,
        "[[checks]]\nname = \"a\"\npath = \"/a\"\nstatsu = 200\n",
    )
    .unwrap();
    let err = shipgate_config::load_smoke_spec(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(":4") && err.contains("did you mean `status`"),
        "{err}"
    );

    std::fs::write(
        &path,
        "[[checks]]\nname = \"a\"\npath = \"/a\"\n[[checks]]\nname = \"a\"\npath = \"/b\"\n",
    )
    .unwrap();
    let err = shipgate_config::load_smoke_spec(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("used twice") && err.contains(":5"), "{err}");
}

#[tokio::test]
async fn a_tls_failure_fails_the_check_and_is_not_retried() {
    // https to a plain-HTTP server: the handshake fails.
    let addr = server::start().await;
    let options = SpecOptions {
        base_url: Some(format!("https://{addr}")),
        ..SpecOptions::default()
    };
    let toml = "[[checks]]\nname = \"tls\"\npath = \"/healthz\"\nretry = { attempts = 3, interval = \"10ms\" }\n";
    let run = run_with(&spec(toml, &options).unwrap(), Redactor::default()).await;
    let c = check(&run.report, "tls");
    assert_eq!(
        (c.outcome, c.attempts),
        (CheckOutcome::Failed, 1),
        "{:?}",
        c.failure
    );
    assert!(
        c.failure.as_deref().unwrap().starts_with("TLS failure"),
        "{:?}",
        c.failure
    );
}

#[tokio::test]
async fn clones_of_a_runner_share_one_connection_pool_for_insecure_targets() {
    use axum::extract::ConnectInfo;
    // Each request records the client's address: one pooled connection keeps one port.
    let peers: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
    let seen = Arc::clone(&peers);
    let app = axum::Router::new().route(
        "/healthz",
        axum::routing::get(move |ConnectInfo(peer): ConnectInfo<SocketAddr>| {
            seen.lock().unwrap().push(peer);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let spec = spec(
        "allow_insecure = true\n[[checks]]\nname = \"health\"\npath = \"/healthz\"\n",
        &SpecOptions {
            base_url: Some(format!("http://{addr}")),
            production_like: true,
            ..SpecOptions::default()
        },
    )
    .unwrap();
    let runner = SmokeRunner::new(Redactor::default()).unwrap();
    for _ in 0..5 {
        // A monitor clones the runner for every check.
        let report = runner
            .clone()
            .run(&spec, &CancellationToken::new())
            .await
            .unwrap();
        assert!(report.passed);
    }
    let peers = peers.lock().unwrap();
    assert_eq!(peers.len(), 5);
    assert!(
        peers.iter().all(|p| *p == peers[0]),
        "every check reused the first connection: {peers:?}"
    );
}

/// A spec built in code runs like one from a file: the login's token is captured, sent by the
/// next check, and masked in the report; a failing critical check fails the run.
#[tokio::test]
async fn a_spec_built_in_code_runs_with_captures_and_masks_them() {
    use shipgate_smoke::{CheckBuilder, SpecBuilder};
    let addr = server::start().await;
    let spec = SpecBuilder::new(format!("http://{addr}"))
        .check(
            CheckBuilder::post_json("login", "/login", serde_json::json!({"user": "alice"}))
                .status(200)
                .capture("token", "$.access_token"),
        )
        .check(
            CheckBuilder::get("me", "/me")
                .header("Authorization", "Bearer {{token}}")
                .json_equals("$.user", serde_json::json!("alice")),
        )
        .check(CheckBuilder::get("broken", "/error").status(200))
        .build()
        .unwrap();
    let report = SmokeRunner::new(Redactor::default())
        .unwrap()
        .run(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let outcomes: Vec<_> = report
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("login", CheckOutcome::Passed),
            ("me", CheckOutcome::Passed),
            ("broken", CheckOutcome::Failed)
        ]
    );
    assert!(!report.passed);
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(server::TOKEN) && !report.to_text().contains(server::TOKEN));
}
