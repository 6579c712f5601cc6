//! `shipgate smoke` as a user runs it: the seed fixtures against a real HTTP server on
//! loopback, exit codes, report files, and a canary API key that never reaches the output.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use assert_cmd::Command;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

const CANARY: &str = "canary-smoke-key-51c2e9";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A service with every route the seed fixtures check. `broken` makes the critical API paths
/// fail, like a bad release.
#[derive(Clone)]
struct App {
    broken: Arc<AtomicBool>,
}

async fn detect(State(app): State<App>, headers: HeaderMap) -> Response {
    match headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some(CANARY) if !app.broken.load(Ordering::Relaxed) => {
            axum::Json(serde_json::json!({"result": {"provenance": "verified"}})).into_response()
        }
        // Echo the key, as careless error pages do.
        Some(key) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("detector crashed for key {key}"),
        )
            .into_response(),
        None => (StatusCode::UNAUTHORIZED, "no key").into_response(),
    }
}

/// A hostile error page: it echoes the request's `Authorization` header, as debugging pages
/// do, and tries to forge a passing line with terminal escapes, a NUL and a line break.
async fn hostile(headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("{{\"authorization\": \"{auth}\"}}\n\u{1b}[1A\u{1b}[2K\rsmoke passed: 1 check(s)\u{0}\u{7}"),
    )
        .into_response()
}

async fn watchlist(State(app): State<App>) -> Response {
    if app.broken.load(Ordering::Relaxed) {
        axum::Json(serde_json::json!({"error": "db"})).into_response()
    } else {
        axum::Json(serde_json::json!({"items": []})).into_response()
    }
}

fn app(broken: bool) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "healthy"})) }),
        )
        .route(
            "/readyz",
            get(|| async { axum::Json(serde_json::json!({"status": "ready"})) }),
        )
        .route(
            "/",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><title>proofkit</title></html>",
                )
            }),
        )
        .route(
            "/industries/powder",
            get(|| async { "<html>powder</html>" }),
        )
        .route(
            "/api/presets",
            get(|| async { axum::Json(serde_json::json!({"presets": [{"id": 1}]})) }),
        )
        .route("/api/detect", post(detect))
        .route("/api/watchlist", get(watchlist))
        .route("/hostile", get(hostile))
        .with_state(App {
            broken: Arc::new(AtomicBool::new(broken)),
        })
}

fn healthy() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| shipgate_testkit::serve_on_thread(app(false)))
}

fn broken() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| shipgate_testkit::serve_on_thread(app(true)))
}

fn smoke(args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(root())
        .env_clear()
        .envs(vars.iter().copied())
        .arg("smoke")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        !stdout.contains(CANARY) && !stderr.contains(CANARY),
        "canary leaked:\n{stdout}\n{stderr}"
    );
    (output.status.code().unwrap(), stdout, stderr)
}

const DEV: (&str, &str) = ("ENVIRONMENT", "dev");
const KEY: (&str, &str) = ("PRODUCTION_API_KEY", CANARY);

#[test]
fn every_seed_fixture_passes_against_a_healthy_service() {
    let url = format!("http://{}", healthy());
    for fixture in [
        "000-provenance",
        "002-waxwatch",
        "003-proofkit",
        "004-railway",
    ] {
        let spec = format!("fixtures/smoke/seed-{fixture}.toml");
        let (code, stdout, stderr) = smoke(&["--spec", &spec, "--url", &url], &[DEV, KEY]);
        assert_eq!(code, 0, "{fixture}:\n{stdout}\n{stderr}");
        assert!(stdout.starts_with("smoke passed"), "{stdout}");
    }
}

#[test]
fn a_broken_release_fails_the_gate_with_exit_1_and_masks_the_echoed_key() {
    let url = format!("http://{}", broken());
    let (code, stdout, stderr) = smoke(
        &[
            "--spec",
            "fixtures/smoke/seed-000-provenance.toml",
            "--url",
            &url,
        ],
        &[DEV, KEY],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("FAIL detect"), "{stdout}");
    assert!(
        stdout.contains("detector crashed for key [redacted]"),
        "{stdout}"
    );
    assert!(stderr.contains("smoke: detect: FAILED"), "{stderr}");

    let (code, stdout, _) = smoke(
        &[
            "--spec",
            "fixtures/smoke/seed-002-waxwatch.toml",
            "--url",
            &url,
        ],
        &[DEV],
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("$.items exists (actual: 0 match(es))"),
        "{stdout}"
    );
}

#[test]
fn without_a_spec_it_checks_healthz_on_production_api_url_seed_000() {
    let url = format!("http://{}", healthy());
    let (code, stdout, _) = smoke(&[], &[DEV, ("PRODUCTION_API_URL", &url)]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("PASS /healthz"), "{stdout}");

    let (code, stdout, _) = smoke(
        &[
            "--url", &url, "--check", "/healthz", "--check", "/nowhere", "-q",
        ],
        &[DEV],
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("FAIL /nowhere") && stdout.contains("status 404 (expected 2xx)"),
        "{stdout}"
    );
}

#[test]
fn reports_are_written_as_json_and_junit() {
    let url = format!("http://{}", healthy());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("smoke.json");
    let junit = dir.path().join("smoke.xml");
    let (code, stdout, _) = smoke(
        &[
            "--spec",
            "fixtures/smoke/seed-003-proofkit.toml",
            "--url",
            &url,
            "--report-json",
            json.to_str().unwrap(),
            "--report-junit",
            junit.to_str().unwrap(),
            "--format",
            "json",
            "--quiet",
        ],
        &[DEV],
    );
    assert_eq!(code, 0);
    let on_stdout: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let in_file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(on_stdout["summary"], in_file["summary"]);
    assert_eq!(in_file["summary"]["passed"], 4);
    assert_eq!(
        in_file["checks"][3]["latency_ms"].as_array().unwrap().len(),
        5
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"4\" skipped=\"0\" failures=\"0\""),
        "{xml}"
    );
}

#[test]
fn production_like_environments_refuse_plain_http_with_exit_2() {
    let url = format!("http://{}", healthy());
    for vars in [
        &[][..],
        &[("ENVIRONMENT", "production")][..],
        &[("ENVIRONMENT", "qa-eu")][..],
    ] {
        let (code, _, stderr) = smoke(&["--url", &url], vars);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("flag --url")
                && stderr.contains("plain http in a production-like environment"),
            "{stderr}"
        );
    }
    let (code, _, _) = smoke(
        &["--url", &url, "--allow-insecure"],
        &[("ENVIRONMENT", "production")],
    );
    assert_eq!(code, 0);
}

#[test]
fn a_bad_spec_is_a_located_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.toml");
    std::fs::write(&spec, "[[checks]]\nname = \"a\"\npath = \"/a\"\nasserts = [{ jsonpath = \"$[\", exists = true }]\n").unwrap();
    let (code, _, stderr) = smoke(
        &[
            "--spec",
            spec.to_str().unwrap(),
            "--url",
            "https://api.example.com",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("bad.toml:4") && stderr.contains("invalid JSONPath"),
        "{stderr}"
    );

    let (code, _, stderr) = smoke(
        &[
            "--spec",
            "fixtures/smoke/seed-004-railway.toml",
            "--check",
            "/x",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    let (code, _, stderr) = smoke(&[], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no base URL"), "{stderr}");
}

/// A password in the URL's userinfo reaches no output: not the progress lines, not the text
/// report, not the JSON report.
#[test]
fn a_password_in_the_url_is_masked_everywhere() {
    let url = format!("http://gatebot:pw-in-url-7c1e@{}", healthy());
    for format in ["text", "json"] {
        let (code, stdout, stderr) = smoke(
            &["--url", &url, "--check", "/healthz", "--format", format],
            &[DEV],
        );
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(
            !stdout.contains("pw-in-url-7c1e") && !stderr.contains("pw-in-url-7c1e"),
            "{format}:\n{stdout}\n{stderr}"
        );
    }
}

/// What a hostile server sends reaches people as escapes, never as terminal commands or a
/// forged line, and the credentials it echoes (the Basic header reqwest built from the URL's
/// userinfo) are masked; the JSON report keeps the text, escaped as JSON escapes it.
#[test]
fn a_hostile_body_cannot_drive_the_terminal_or_echo_credentials() {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("gatebot:pw-in-url-7c1e");
    let url = format!("http://gatebot:pw-in-url-7c1e@{}", broken());
    for format in ["text", "json"] {
        let (code, stdout, stderr) = smoke(
            &["--url", &url, "--check", "/hostile", "--format", format],
            &[DEV],
        );
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        for output in [&stdout, &stderr] {
            assert!(
                !output.contains(&basic) && !output.contains("pw-in-url-7c1e"),
                "{format}: credentials leaked:\n{output}"
            );
            assert!(
                !output.chars().any(|c| c.is_control() && c != '\n'),
                "{format}: a control character reached the terminal:\n{output:?}"
            );
            assert!(
                !output.lines().any(|l| l.starts_with("smoke passed")),
                "{format}: a forged line:\n{output}"
            );
        }
        if format == "text" {
            assert!(stdout.contains("Basic [redacted]"), "{stdout}");
            assert!(stdout.contains("\\u{1b}[2K"), "{stdout}");
        } else {
            let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            let body = report["checks"][0]["body_excerpt"].as_str().unwrap();
            assert!(body.contains("\u{1b}[2K"), "{body:?}");
        }
    }
}

/// TLS failures read as a person would say them, not as rustls enum names: a CA certificate
/// presented as the server's own (webpki refuses it before asking who issued it), and plain
/// http answering an https URL.
#[test]
fn tls_failures_are_described_in_words() {
    let cases = [
        (
            format!(
                "https://{}",
                shipgate_testkit::serve_tls_ca_as_server_on_thread()
            ),
            "is a CA certificate used as a server certificate",
        ),
        (format!("https://{}", healthy()), "did not answer in TLS"),
    ];
    for (url, expected) in cases {
        let (code, stdout, stderr) = smoke(&["--url", &url, "--check", "/healthz"], &[DEV]);
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        assert!(stdout.contains(expected), "{expected}:\n{stdout}");
        assert!(
            !stdout.contains("OtherError") && !stdout.contains("InvalidContentType"),
            "{stdout}"
        );
    }
}
