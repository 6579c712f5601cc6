//! A real HTTP server on loopback whose routes misbehave on purpose, plus a raw TCP server for
//! responses no HTTP framework would send.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use shipgate_testkit::serve;
use tokio::io::AsyncWriteExt;

pub(crate) const API_KEY: &str = "canary-api-key-7d41e0";
pub(crate) const TOKEN: &str = "canary-token-0b9e55aa";

#[derive(Clone, Default)]
struct Counters(Arc<Mutex<HashMap<String, u32>>>);

impl Counters {
    /// How many times `key` was hit before this hit.
    fn hit(&self, key: &str) -> u32 {
        let mut map = self.0.lock().unwrap();
        let n = map.entry(key.to_owned()).or_insert(0);
        *n += 1;
        *n - 1
    }
}

async fn flaky(State(c): State<Counters>, Path((id, n)): Path<(String, u32)>) -> Response {
    if c.hit(&format!("flaky-{id}")) < n {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "0")],
            "warming up",
        )
            .into_response()
    } else {
        "ok".into_response()
    }
}

async fn ready_after(State(c): State<Counters>, Path((id, n)): Path<(String, u32)>) -> Response {
    let ready = c.hit(&format!("ready-{id}")) >= n;
    axum::Json(serde_json::json!({ "ready": ready })).into_response()
}

async fn throttled(State(c): State<Counters>, Path(id): Path<String>) -> Response {
    if c.hit(&format!("throttled-{id}")) == 0 {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "slow down",
        )
            .into_response()
    } else {
        "ok".into_response()
    }
}

async fn slow(Query(q): Query<HashMap<String, u64>>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(q.get("ms").copied().unwrap_or(0))).await;
    "ok"
}

async fn drip() -> Response {
    let stream = futures_util::stream::unfold(0u32, |n| async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((Ok::<_, std::io::Error>(vec![b'x']), n + 1))
    });
    Body::from_stream(stream).into_response()
}

async fn secure(headers: HeaderMap) -> Response {
    match headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some(API_KEY) => axum::Json(serde_json::json!({"secure": true})).into_response(),
        Some(other) => (StatusCode::UNAUTHORIZED, format!("bad key {other}")).into_response(),
        None => (StatusCode::UNAUTHORIZED, "no key").into_response(),
    }
}

async fn login(body: String) -> Response {
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if json["user"] == "alice" {
        axum::Json(serde_json::json!({"access_token": TOKEN, "expires_in": 60})).into_response()
    } else {
        (StatusCode::BAD_REQUEST, "who?").into_response()
    }
}

async fn me(headers: HeaderMap) -> Response {
    let expected = format!("Bearer {TOKEN}");
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
    {
        axum::Json(serde_json::json!({"user": "alice"})).into_response()
    } else {
        // Echo what was sent, like careless servers do.
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        (StatusCode::FORBIDDEN, format!("rejected {sent}")).into_response()
    }
}

pub(crate) async fn start() -> SocketAddr {
    let other = serve(Router::new().route("/login", get(|| async { "elsewhere" }))).await;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { axum::Json(serde_json::json!({"status": "ready", "db": "ok"})) }))
        .route("/health", get(|| async { axum::Json(serde_json::json!({"status": "healthy"})) }))
        .route(
            "/api/presets",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")],
                    r#"{"presets":[{"id":1,"name":"powder"},{"id":2,"name":"liquid"}],"count":2,"version":"1.4.2"}"#,
                )
            }),
        )
        .route("/flaky/{id}/{n}", get(flaky))
        .route("/ready-after/{id}/{n}", get(ready_after))
        .route("/throttled/{id}", get(throttled))
        .route("/slow", get(slow))
        .route("/drip", get(drip))
        .route("/empty", get(|| async { "" }))
        .route("/html", get(|| async { "<html>maintenance</html>" }))
        .route("/big", get(|| async { "x".repeat(10 << 20) }))
        .route("/binary", get(|| async { vec![0xffu8, 0xfe, b'o', b'k', 0xc3] }))
        .route("/error", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "nope") }))
        .route("/secure", get(secure))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/moved", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/healthz")]) }))
        .route(
            "/away",
            get(move || async move { (StatusCode::FOUND, [(header::LOCATION, format!("http://{other}/login"))]) }),
        )
        .with_state(Counters::default());
    serve(app).await
}

/// A server that answers every connection with a status line and then header lines forever.
pub(crate) async fn endless_headers() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
                if socket.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
                    return;
                }
                for i in 0u64.. {
                    let line = format!("X-Filler-{i}: {}\r\n", "y".repeat(1000));
                    if socket.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}
