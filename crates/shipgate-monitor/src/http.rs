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
    serve_with(listener, monitor, None, cancel).await
}

/// Serves [`router`] merged with `extra` (the dashboard's routes: one process can be monitor,
/// metrics and dashboard) on `listener` until `cancel` fires.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    monitor: Arc<Monitor>,
    extra: Option<Router>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(monitor).merge(extra.unwrap_or_default()))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

/// Streams the metrics text in 64 KiB chunks as it is encoded (on a blocking thread), so a
/// scrape of 10,000 targets never holds the whole ~20 MB text.
async fn metrics(State(monitor): State<Arc<Monitor>>) -> impl IntoResponse {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut chunks = Chunks {
            tx,
            buffer: String::with_capacity(CHUNK),
        };
        // An error means the scraper went away: nothing more to do.
        if monitor.metrics().render_to(&mut chunks).is_ok() {
            let _ = chunks.flush();
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        axum::body::Body::from_stream(body),
    )
}

/// The size of a `/metrics` chunk.
const CHUNK: usize = 64 * 1024;

/// Collects encoded text and hands it to the response body a chunk at a time.
struct Chunks {
    tx: tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>,
    buffer: String,
}

impl Chunks {
    fn flush(&mut self) -> std::fmt::Result {
        let chunk = std::mem::replace(&mut self.buffer, String::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(axum::body::Bytes::from(chunk)))
            .map_err(|_| std::fmt::Error)
    }
}

impl std::fmt::Write for Chunks {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.buffer.push_str(s);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }
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
