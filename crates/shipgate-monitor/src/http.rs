//! The monitor's own HTTP endpoints: `/metrics` (Prometheus/OpenMetrics text) and `/healthz`
//! (200 while the monitor loop goes round, 503 when it has stalled), for Kubernetes probes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use shipgate_ledger::now_ms;
use tokio_util::sync::CancellationToken;

use crate::watch::Monitor;

/// The loop counts as stalled after this long without going round.
const STALLED_AFTER: Duration = Duration::from_secs(60);

/// The router of `/metrics` and `/healthz`.
pub fn router(monitor: Arc<Monitor>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(monitor)
}

/// Serves [`router`] on `listener` until `cancel` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    monitor: Arc<Monitor>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(monitor))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

async fn metrics(State(monitor): State<Arc<Monitor>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        monitor.metrics().render(),
    )
}

async fn healthz(State(monitor): State<Arc<Monitor>>) -> impl IntoResponse {
    let idle_ms = now_ms() - monitor.heartbeat_ms();
    let stalled = idle_ms > i64::try_from(STALLED_AFTER.as_millis()).unwrap_or(i64::MAX);
    if stalled {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stalled: the monitor loop has not run for {} s\n",
                idle_ms / 1000
            ),
        )
    } else {
        (StatusCode::OK, "ok\n".to_owned())
    }
}
