//! The dashboard in a real browser (headless Chromium over the DevTools protocol): each page
//! of a seeded ledger loads without a console error or a failed request (a CSP violation is
//! both), shows the expected marks and figures in the rendered DOM, and is usable at a
//! phone's 390 px and a desktop's 1440 px (nothing wider than the window). Screenshots of the
//! overview, a run page and the delivery page are taken each run; with
//! `SHIPGATE_UPDATE_SCREENSHOTS=1` they replace the ones in docs/images/.
//!
//! Needs Chromium: `scripts/test` installs Debian's `chromium` package when missing.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use shipgate_dashboard::Access;
use shipgate_ledger::Ledger;
use shipgate_testkit::browser::{Browser, chromium};

use common::Names;

/// A page, what its DOM must show (a JavaScript expression that is `true`), and the name of
/// its screenshot, if it has one.
struct Check {
    path: &'static str,
    expect: &'static str,
    screenshot: Option<&'static str>,
}

const CHECKS: &[Check] = &[
    Check {
        path: "/",
        expect: "document.querySelectorAll('section.card').length === 2 \
            && document.querySelector('section.card table.live td code').textContent === 'demo/api:v1' \
            && document.querySelectorAll('dl.figures dt').length === 8",
        screenshot: Some("dashboard-overview"),
    },
    Check {
        path: "/timeline?app=shop&environment=production&days=7",
        expect: "document.querySelectorAll('svg.timeline a circle').length === document.querySelectorAll('table.runs tbody tr').length \
            && document.querySelectorAll('svg.timeline line.undid').length === 1",
        screenshot: Some("dashboard-timeline"),
    },
    Check {
        path: "/timeline?app=shop&environment=staging&days=180",
        expect: "document.querySelectorAll('svg.timeline rect.bar').length > 100",
        screenshot: None,
    },
    Check {
        path: "/runs/run-2",
        expect: "document.querySelectorAll('svg.steps rect.bar').length === 3 \
            && document.querySelectorAll('table.checks tbody tr').length === 3 /* the gate's 2, the rollback gate's 1 */ \
            && document.querySelectorAll('ol.reasons li').length === 2",
        screenshot: Some("dashboard-run"),
    },
    Check {
        path: "/delivery?app=shop&environment=staging",
        expect: "document.querySelectorAll('svg.series').length === 5 \
            && document.querySelectorAll('table.weeks tbody tr').length === 26 \
            && document.querySelectorAll('svg.series rect.bar').length > 20",
        screenshot: Some("dashboard-delivery"),
    },
    Check {
        path: "/health",
        expect: "document.querySelector('tr[data-target] .badge').textContent === 'alerting'",
        screenshot: Some("dashboard-health"),
    },
];

fn screenshot_dir() -> PathBuf {
    if std::env::var_os("SHIPGATE_UPDATE_SCREENSHOTS").is_some() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/images")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_in_a_real_browser_without_errors_at_phone_and_desktop_widths() {
    assert!(
        chromium().is_some(),
        "this test needs Chromium: run ./scripts/test, which installs Debian's chromium package, or set SHIPGATE_TEST_CHROMIUM"
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let ledger = Ledger::open(&url).await.unwrap();
    let now = common::now();
    let names = Names::plain();
    common::story(&ledger, &names, "not-a-real-secret-value", now).await;
    let staging = Names {
        environment: "staging".into(),
        ..Names::plain()
    };
    common::history(&ledger, &staging, now, 200).await;
    let address = common::serve(&url, Access::LoopbackOnly, "not-a-real-secret-value");

    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let mut browser = Browser::launch().await.unwrap();
    for check in CHECKS {
        for (width, height) in [(390, 844), (1440, 900)] {
            let url = format!("http://{address}{}", check.path);
            let page = browser.open(&url, width, height).await.unwrap();
            let at = format!("{} at {width} px", check.path);
            assert!(
                page.console_errors.is_empty(),
                "{at}: console errors {:?}",
                page.console_errors
            );
            assert!(
                page.failed_requests.is_empty(),
                "{at}: failed requests {:?}",
                page.failed_requests
            );
            // The page and its stylesheet and icon came from the dashboard, nothing else.
            for (loaded, status) in &page.responses {
                assert!(
                    loaded.starts_with(&format!("http://{address}/")),
                    "{at}: loaded {loaded}"
                );
                assert_eq!(*status, 200, "{at}: {loaded}");
            }
            assert!(
                page.responses
                    .contains_key(&format!("http://{address}/assets/dashboard.css")),
                "{at}: the stylesheet was not loaded"
            );
            let shown = browser.eval(&page, check.expect).await.unwrap();
            assert_eq!(
                shown,
                serde_json::json!(true),
                "{at}: the DOM lacks {}",
                check.expect
            );
            // Usable: the page itself never scrolls sideways (wide tables scroll in place).
            let overflow = browser
                .eval(
                    &page,
                    "document.documentElement.scrollWidth - window.innerWidth",
                )
                .await
                .unwrap();
            assert!(
                overflow.as_f64().unwrap() <= 0.0,
                "{at}: {overflow} px wider than the window"
            );
            // The stylesheet applied (a strict CSP would have blocked an inline one).
            let styled = browser
                .eval(
                    &page,
                    "getComputedStyle(document.querySelector('header')).borderBottomStyle",
                )
                .await
                .unwrap();
            assert_eq!(styled, "solid", "{at}: the stylesheet did not apply");
            if let (Some(name), 1440) = (check.screenshot, width) {
                let png = browser.screenshot(&page).await.unwrap();
                assert!(
                    png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
                    "{at}: no picture"
                );
                std::fs::write(shots.join(format!("{name}.png")), png).unwrap();
            }
        }
    }
    browser.close().await;
}
