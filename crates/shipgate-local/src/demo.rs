//! The demo service (`shipgate demo-service --port PORT --version VERSION`, or the
//! `shipgate-demo-service` executable): the service of the README demo. Its
//! behaviour depends on its version (the image tag), so that a deploy can go wrong on purpose:
//!
//! - `/healthz` (liveness) and `/readyz` (readiness): 200 `ok`; 503 when the
//!   version contains `unhealthy`.
//! - `/api/orders`: 200 JSON `{"orders": [...], "version": …}`; 500 when the version contains
//!   `broken` (healthy, but failing the critical API path the smoke gate checks); when it
//!   contains `flaky`, every fifth request to it fails with 500 (the 5th, the 10th, …): 20 % of
//!   users see errors while a single smoke check passes.
//! - `/version`: the version.
//! - A version containing `crash` stops serving half a second after starting; its program
//!   exits with status 3.

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

/// The demo service's command line: `--port PORT --version VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoArgs {
    /// The port to listen on (loopback).
    pub port: u16,
    /// The version (the image tag), which decides how it behaves.
    pub version: String,
}

/// The usage line of the demo service's command line.
pub const DEMO_USAGE: &str = "--port PORT --version VERSION";

impl DemoArgs {
    /// Parses the arguments after the program name; `Err` is the usage line.
    pub fn parse(args: &[String]) -> Result<DemoArgs, &'static str> {
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let port = value("--port")
            .and_then(|p| p.parse().ok())
            .ok_or(DEMO_USAGE)?;
        let version = value("--version").ok_or(DEMO_USAGE)?;
        Ok(DemoArgs { port, version })
    }
}

/// How the demo service ended.
#[derive(Debug, PartialEq, Eq)]
pub enum DemoEnd {
    /// A `crash` version stopped on purpose: its program exits with status 3.
    Crashed,
    /// The server stopped.
    Stopped,
}

/// Serves the demo on `127.0.0.1:PORT` until a `crash` version stops it (or forever).
/// `listening` is called once it listens.
///
/// # Errors
/// The port cannot be bound, or the server fails.
pub async fn serve(args: DemoArgs, listening: impl FnOnce(u16)) -> std::io::Result<DemoEnd> {
    let DemoArgs { port, version } = args;
    let crash = version.contains("crash");
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
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    listening(listener.local_addr()?.port());
    let server = axum::serve(listener, app);
    if crash {
        tokio::select! {
            result = server => result.map(|()| DemoEnd::Stopped),
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => Ok(DemoEnd::Crashed),
        }
    } else {
        server.await?;
        Ok(DemoEnd::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_and_a_bad_port_is_usage() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            DemoArgs::parse(&args(&["--port", "8080", "--version", "v1"])),
            Ok(DemoArgs {
                port: 8080,
                version: "v1".to_owned()
            })
        );
        assert_eq!(
            DemoArgs::parse(&args(&["--port", "x", "--version", "v1"])),
            Err(DEMO_USAGE)
        );
        assert_eq!(
            DemoArgs::parse(&args(&["--version", "v1"])),
            Err(DEMO_USAGE)
        );
    }
}
