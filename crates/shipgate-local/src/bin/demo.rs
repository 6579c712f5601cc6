//! `shipgate-demo-service --port PORT --version VERSION`: the service of the README demo. Its
//! behaviour depends on its version (the image tag), so that a deploy can go wrong on purpose:
//!
//! - `/healthz` (liveness) and `/readyz` (readiness, seed 002's pair): 200 `ok`; 503 when the
//!   version contains `unhealthy`.
//! - `/api/orders`: 200 JSON `{"orders": [...], "version": …}`; 500 when the version contains
//!   `broken` (healthy, but failing the critical API path the smoke gate checks); when it
//!   contains `flaky`, every fifth request to it fails with 500 (the 5th, the 10th, …): 20 % of
//!   users see errors while a single smoke check passes.
//! - `/version`: the version.
//! - A version containing `crash` exits with status 3 half a second after starting.

#![allow(clippy::print_stderr)]

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (Some(port), Some(version)) = (value("--port"), value("--version")) else {
        eprintln!("usage: shipgate-demo-service --port PORT --version VERSION");
        std::process::exit(2);
    };
    if version.contains("crash") {
        tokio::spawn(async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            eprintln!("demo: crashing on purpose");
            std::process::exit(3);
        });
    }
    let unhealthy = version.contains("unhealthy");
    let health = move || async move {
        if unhealthy {
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        } else {
            "ok".into_response()
        }
    };
    let orders_version = version.clone();
    let orders_served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let app = Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(health))
        .route(
            "/api/orders",
            get(move || async move {
                let n = orders_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let flaky_failure = orders_version.contains("flaky") && n.is_multiple_of(5);
                if orders_version.contains("broken") || flaky_failure {
                    (StatusCode::INTERNAL_SERVER_ERROR, "orders query failed").into_response()
                } else {
                    axum::Json(serde_json::json!({"orders": [{"id": 1, "status": "paid"}], "version": orders_version})).into_response()
                }
            }),
        )
        .route("/version", get(move || async move { version }));
    let listener = match tokio::net::TcpListener::bind((
        "127.0.0.1",
        port.parse::<u16>().unwrap_or(0),
    ))
    .await
    {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("demo: cannot listen on port {port}: {err}");
            std::process::exit(1);
        }
    };
    eprintln!("demo: listening on {port}");
    if let Err(err) = axum::serve(listener, app).await {
        eprintln!("demo: {err}");
        std::process::exit(1);
    }
}
