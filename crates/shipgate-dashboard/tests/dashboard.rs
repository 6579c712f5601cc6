//! The dashboard served over HTTP from a seeded ledger, on SQLite and Postgres: every page
//! and its JSON twin show what the ledger holds; hostile text renders inert; a planted secret
//! appears nowhere; access rules and security headers hold; pages stay light.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use base64::Engine as _;
use serde_json::Value;
use shipgate_core::Secret;
use shipgate_dashboard::{Access, CONTENT_SECURITY_POLICY, HeaderName};
use shipgate_ledger::Ledger;
use shipgate_testkit::Canary;

use common::Names;

/// The pages of the seeded story (HTML) and their JSON twins.
const PAGES: &[&str] = &[
    "/",
    "/timeline?app=APP&environment=ENV",
    "/timeline?app=APP&environment=ENV&days=7&service=api&outcome=rolled_back",
    "/runs/run-2",
    "/runs/run-4",
    "/runs/run-2/summary.json",
    "/delivery",
    "/health",
    "/api/overview",
    "/api/timeline?app=APP&environment=ENV",
    "/api/runs/run-2",
    "/api/delivery",
    "/api/health",
    "/runs/no-such-run",
    "/api/runs/no-such-run",
    "/no/such/page",
    "/timeline",
    "/assets/dashboard.css",
];

fn path(page: &str, names: &Names) -> String {
    let encode = |s: &str| url_encode(s);
    page.replace("APP", &encode(&names.app))
        .replace("ENV", &encode(&names.environment))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(address: SocketAddr, path: &str, auth: Option<(&str, &str)>) -> Got {
    let client = shipgate_http::build_client(&shipgate_http::ClientOptions::default()).unwrap();
    let mut request = client.get(format!("http://{address}{path}"));
    if let Some((name, value)) = auth {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    Got {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

async fn seeded(url: &str, names: &Names, canary: &Canary) {
    let ledger = Ledger::open(url).await.unwrap();
    common::story(&ledger, names, canary.value(), common::now()).await;
}

async fn backends(dir: &tempfile::TempDir) -> Vec<String> {
    vec![
        format!("sqlite://{}", dir.path().join("ledger.db").display()),
        shipgate_testkit::postgres_database().await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_its_json_twin_show_what_the_ledger_holds() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        let names = Names::plain();
        let canary = Canary::new("dashboard");
        seeded(&url, &names, &canary).await;
        let address = common::serve(&url, Access::LoopbackOnly, canary.value());

        // Overview: what runs now was put back by run-4's rollback; the lock; the alert.
        let overview = get(address, "/", None).await;
        assert_eq!(overview.status, 200, "{url}");
        let html = &overview.body;
        for expected in [
            "shop / production",
            "demo/api:v1",
            "rolled back to",
            "Deploy lock held by",
            "run-5",
            "Open alerts",
            "shop/production/api-health",
            "Deployment frequency",
            "Change failure rate",
        ] {
            assert!(
                html.contains(expected),
                "{url}: overview lacks {expected:?}"
            );
        }
        let api: Value =
            serde_json::from_str(&get(address, "/api/overview", None).await.body).unwrap();
        assert_eq!(api["schema_version"], 1);
        let card = &api["environments"][0];
        assert_eq!(card["live"][0]["image"], "demo/api:v1", "{url}");
        assert_eq!(card["live"][0]["run_id"], "run-4");
        assert_eq!(card["live"][0]["kind"], "rollback");
        assert_eq!(card["last_run"]["id"], "run-4");
        assert_eq!(card["lock"]["run_id"], "run-5");
        assert_eq!(card["open_alerts"][0], "shop/production/api-health");
        // 4 runs in the last 30 days, 3 of them succeeded; one change failure of 4 changes.
        assert_eq!(card["last_30_days"]["attempts"], 4);
        assert_eq!(card["last_30_days"]["deployments"], 3);
        assert_eq!(card["last_30_days"]["change_failure_rate"], 0.25);

        // Timeline: a mark per run, the rollback run linked to the run it undid.
        let timeline = get(address, "/timeline?app=shop&environment=production", None).await;
        assert_eq!(timeline.status, 200);
        for run in ["run-1", "run-2", "run-3", "run-4"] {
            assert!(
                timeline.body.contains(&format!("data-run=\"{run}\"")),
                "{url}: no mark for {run}"
            );
        }
        assert!(
            timeline
                .body
                .contains("undid <a class=\"run\" href=\"/runs/run-3\""),
            "{}",
            timeline.body
        );
        assert!(timeline.body.contains("class=\"undid\""));
        let api: Value = serde_json::from_str(
            &get(
                address,
                "/api/timeline?app=shop&environment=production",
                None,
            )
            .await
            .body,
        )
        .unwrap();
        assert_eq!(api["total_runs"], 4);
        assert_eq!(api["runs"][0]["id"], "run-4");
        assert_eq!(api["runs"][0]["undid"], "run-3");
        assert_eq!(api["runs"][2]["rollbacks"], 1);
        // Filters: one outcome, one service.
        let filtered: Value = serde_json::from_str(
            &get(
                address,
                "/api/timeline?app=shop&environment=production&outcome=rolled_back&service=api",
                None,
            )
            .await
            .body,
        )
        .unwrap();
        assert_eq!(filtered["total_runs"], 1);
        assert_eq!(filtered["runs"][0]["id"], "run-2");
        let none: Value = serde_json::from_str(
            &get(
                address,
                "/api/timeline?app=shop&environment=production&service=worker",
                None,
            )
            .await
            .body,
        )
        .unwrap();
        assert_eq!(none["total_runs"], 0);

        // Run page: steps with bars, smoke checks with latency, the reason chain, links.
        let run = get(address, "/runs/run-2", None).await;
        assert_eq!(run.status, 200);
        for expected in [
            "svg class=\"chart steps\"",
            "deploy local",
            "/api/orders",
            "66 ms",
            "smoke gate failed: 1 critical check(s) failed: orders",
            "rolling: the previous release demo/api:v1 was verified good",
            "Smoke test of the restored release",
            "health-after-rollback",
            "https://github.com/acme/shop/actions/runs/1",
            "/runs/run-2/summary.json",
        ] {
            assert!(
                run.body.contains(expected),
                "{url}: run page lacks {expected:?}"
            );
        }
        let download = get(address, "/runs/run-2/summary.json", None).await;
        assert_eq!(download.status, 200);
        assert!(
            download.headers["content-disposition"]
                .to_str()
                .unwrap()
                .contains("run-2.json")
        );
        let summary: Value = serde_json::from_str(&download.body).unwrap();
        assert_eq!(summary["outcome"], "rolled_back");
        let api: Value =
            serde_json::from_str(&get(address, "/api/runs/run-2", None).await.body).unwrap();
        assert_eq!(api["steps"].as_array().unwrap().len(), 3);
        assert_eq!(api["deployments"][1]["kind"], "rollback");
        assert_eq!(
            api["summary"]["rollback"]["reasons"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(get(address, "/runs/no-such-run", None).await.status, 404);
        assert_eq!(
            get(address, "/api/runs/no-such-run", None).await.status,
            404
        );

        // Delivery: 26 weeks, five charts, this week's figures.
        let delivery = get(address, "/delivery", None).await;
        assert_eq!(delivery.status, 200);
        assert_eq!(
            delivery.body.matches("<svg class=\"chart series\"").count(),
            5
        );
        let api: Value =
            serde_json::from_str(&get(address, "/api/delivery", None).await.body).unwrap();
        let weeks = api["weeks"].as_array().unwrap();
        assert_eq!(weeks.len(), 26);
        let attempts: u64 = weeks.iter().map(|w| w["attempts"].as_u64().unwrap()).sum();
        assert_eq!(attempts, 4, "{url}: every seeded run counted once");

        // Health: the target alerting, with p50/p95 from the rollups.
        let health = get(address, "/health", None).await;
        assert_eq!(health.status, 200);
        assert!(health.body.contains("alerting"));
        let api: Value =
            serde_json::from_str(&get(address, "/api/health", None).await.body).unwrap();
        let target = &api["targets"][0];
        assert_eq!(target["state"], "alerting");
        assert_eq!(
            target["day"]["checks"], 288,
            "{url}: a check every 5 minutes for a day"
        );
        // The checks of the last two hours failed (23 of them, every 5 minutes): 8 % of the
        // day, so the p95 is a slow one and the p50 a fast one.
        assert_eq!(target["day"]["failures"], 23);
        let p50 = target["day"]["p50_ms"].as_f64().unwrap();
        let p95 = target["day"]["p95_ms"].as_f64().unwrap();
        assert!((20.0..=50.0).contains(&p50), "{url}: p50 {p50}");
        assert!((1_000.0..=2_500.0).contains(&p95), "{url}: p95 {p95}");

        // Asked for a timeline without an environment: said so, not a bare error.
        let which = get(address, "/timeline", None).await;
        assert_eq!(which.status, 400);
        assert!(which.body.contains("Pick an environment"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers_and_pages_stay_light() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let names = Names::plain();
    let canary = Canary::new("dashboard");
    seeded(&url, &names, &canary).await;
    let ledger = Ledger::open(&url).await.unwrap();
    common::history(&ledger, &names, common::now(), 200).await;
    let address = common::serve(&url, Access::LoopbackOnly, canary.value());
    for page in PAGES {
        let got = get(address, &path(page, &names), None).await;
        let headers = &got.headers;
        assert_eq!(
            headers["content-security-policy"], CONTENT_SECURITY_POLICY,
            "{page}"
        );
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert_eq!(headers["x-content-type-options"], "nosniff", "{page}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{page}");
        assert_eq!(headers["x-frame-options"], "DENY", "{page}");
        assert!(
            got.body.len() < 150 * 1024,
            "{page} weighs {} bytes",
            got.body.len()
        );
        // No inline script or style anywhere: the CSP would block it.
        assert!(!got.body.contains("<script"), "{page}");
        assert!(!got.body.contains(" style="), "{page}");
    }
    // 200 days of history: the 180-day timeline draws runs per day, under the weight limit.
    let timeline = get(
        address,
        "/timeline?app=shop&environment=production&days=180",
        None,
    )
    .await;
    assert!(
        timeline.body.contains("runs per day"),
        "the dense range is drawn per day"
    );
    assert!(
        timeline.body.len() < 150 * 1024,
        "{} bytes",
        timeline.body.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_from_the_ledger_renders_inert_and_a_planted_secret_appears_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        let names = Names::hostile();
        let canary = Canary::new("dashboard");
        seeded(&url, &names, &canary).await;
        let address = common::serve(&url, Access::LoopbackOnly, canary.value());
        for page in PAGES {
            let got = get(address, &path(page, &names), None).await;
            canary.assert_absent(&format!("{url} {page}"), &got.body);
            let html = got.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html");
            if !html {
                continue;
            }
            for raw in ["<script", "<img", "\u{202E}", "\u{2066}", "\u{1b}"] {
                assert!(
                    !got.body.contains(raw),
                    "{url} {page}: {raw:?} reached the page raw"
                );
            }
            assert!(
                !got.body.contains("\"'>"),
                "{url} {page}: a quote broke out of an attribute"
            );
        }
        // Escaped and visible: the overview names the hostile app as text.
        let overview = get(address, "/", None).await.body;
        assert!(
            overview.contains("&lt;script&gt;alert('app')&lt;/script&gt;"),
            "{overview}"
        );
        let run = get(address, "/runs/run-2", None).await.body;
        assert!(
            run.contains("\\u{202e}gnp.exe"),
            "the direction override is shown as an escape"
        );
        assert!(
            run.contains("https://bot:[redacted]@api.example.com"),
            "userinfo masked"
        );
        // The JSON twins carry the raw values (they are data), the secret still masked.
        let api = get(address, "/api/overview", None).await.body;
        let api: Value = serde_json::from_str(&api).unwrap();
        assert_eq!(api["environments"][0]["app"], names.app);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_rules_refuse_requests_without_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let names = Names::plain();
    let canary = Canary::new("dashboard");
    seeded(&url, &names, &canary).await;

    let token = "0123456789abcdef-token";
    let address = common::serve(&url, Access::Token(Secret::new(token)), canary.value());
    for page in ["/", "/api/overview", "/runs/run-1", "/assets/dashboard.css"] {
        let refused = get(address, page, None).await;
        assert_eq!(refused.status, 401, "{page}");
        assert_eq!(
            refused.headers["www-authenticate"],
            "Bearer realm=\"shipgate\""
        );
        assert!(
            !refused.body.contains("shop"),
            "a refusal shows nothing of the ledger"
        );
        assert_eq!(
            refused.headers["content-security-policy"],
            CONTENT_SECURITY_POLICY
        );
        let wrong = get(
            address,
            page,
            Some(("authorization", "Bearer 0123456789abcdef-tokem")),
        )
        .await;
        assert_eq!(wrong.status, 401, "{page}");
        let ok = get(
            address,
            page,
            Some(("authorization", &format!("Bearer {token}"))),
        )
        .await;
        assert_eq!(ok.status, 200, "{page}");
        // The token itself is a secret the dashboard never shows.
        assert!(!ok.body.contains(token));
    }

    let address = common::serve(
        &url,
        Access::Basic {
            user: "ops".into(),
            password: Secret::new("correct horse"),
        },
        canary.value(),
    );
    let basic = |creds: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(creds)
        )
    };
    assert_eq!(get(address, "/", None).await.status, 401);
    assert_eq!(
        get(address, "/", Some(("authorization", &basic("ops:wrong"))))
            .await
            .status,
        401
    );
    assert_eq!(
        get(
            address,
            "/",
            Some(("authorization", &basic("ops:correct horse")))
        )
        .await
        .status,
        200
    );

    let address = common::serve(
        &url,
        Access::TrustProxyHeader(HeaderName::from_static("x-forwarded-user")),
        canary.value(),
    );
    assert_eq!(get(address, "/", None).await.status, 401);
    assert_eq!(
        get(address, "/", Some(("x-forwarded-user", "alice")))
            .await
            .status,
        200
    );
}
