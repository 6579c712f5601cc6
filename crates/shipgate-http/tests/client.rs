//! The client against real HTTP servers on loopback.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use shipgate_http::{ClientOptions, CrossOriginRedirect, build_client, read_body_capped};

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn redirect_to(location: String) -> impl IntoResponse {
    (StatusCode::FOUND, [(header::LOCATION, location)])
}

#[tokio::test]
async fn follows_same_origin_redirects_and_refuses_other_origins() {
    let other = serve(Router::new().route("/login", get(|| async { "login page" }))).await;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/moved",
            get(|| async { redirect_to("/healthz".to_owned()) }),
        )
        .route(
            "/away",
            get(move || async move { redirect_to(format!("http://{other}/login")) }),
        );
    let addr = serve(app).await;
    let client = build_client(&ClientOptions::default()).unwrap();

    let same = client
        .get(format!("http://{addr}/moved"))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
    assert_eq!(same.url().path(), "/healthz");

    let err = client
        .get(format!("http://{addr}/away"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_redirect());
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    let mut found = false;
    while let Some(e) = source {
        found |= e.downcast_ref::<CrossOriginRedirect>().is_some();
        source = e.source();
    }
    assert!(found, "{err:?}");
}

#[tokio::test]
async fn a_body_is_read_up_to_the_cap_only() {
    let app = Router::new().route("/big", get(|| async { "x".repeat(1 << 20) }));
    let addr = serve(app).await;
    let client = build_client(&ClientOptions::default()).unwrap();

    let response = client
        .get(format!("http://{addr}/big"))
        .send()
        .await
        .unwrap();
    let body = read_body_capped(response, 1000).await.unwrap();
    assert_eq!(body.bytes.len(), 1000);
    assert!(body.truncated);

    let response = client
        .get(format!("http://{addr}/big"))
        .send()
        .await
        .unwrap();
    let body = read_body_capped(response, 2 << 20).await.unwrap();
    assert_eq!(body.bytes.len(), 1 << 20);
    assert!(!body.truncated);
}

#[tokio::test]
async fn send_with_retry_retries_5xx_and_429_then_returns_the_final_response() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use shipgate_http::{Backoff, RetryPolicy, send_with_retry};

    let hits = Arc::new(AtomicU32::new(0));
    let counter = hits.clone();
    let app = Router::new()
        .route(
            "/flaky",
            get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 => (
                            StatusCode::TOO_MANY_REQUESTS,
                            [(header::RETRY_AFTER, "0")],
                            "slow",
                        )
                            .into_response(),
                        1 => (StatusCode::BAD_GATEWAY, "bad").into_response(),
                        _ => "ok".into_response(),
                    }
                }
            }),
        )
        .route("/gone", get(|| async { (StatusCode::NOT_FOUND, "nope") }));
    let addr = serve(app).await;
    let client = build_client(&ClientOptions::default()).unwrap();
    let policy = RetryPolicy {
        backoff: Backoff::Constant(Duration::from_millis(5)),
        ..RetryPolicy::default()
    };

    let url = format!("http://{addr}/flaky");
    let fetched = send_with_retry(|| client.get(&url), &policy).await.unwrap();
    assert_eq!((fetched.status.as_u16(), fetched.attempts), (200, 3));
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // A request that is not idempotent is sent again after a 429 (nothing happened), never
    // after a 5xx (something may have).
    hits.store(0, Ordering::SeqCst);
    let once = RetryPolicy {
        idempotent: false,
        ..policy
    };
    let fetched = send_with_retry(|| client.get(&url), &once).await.unwrap();
    assert_eq!((fetched.status.as_u16(), fetched.attempts), (502, 2));

    let url = format!("http://{addr}/gone");
    let fetched = send_with_retry(|| client.get(&url), &policy).await.unwrap();
    assert_eq!((fetched.status.as_u16(), fetched.attempts), (404, 1));

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/");
    let failed = send_with_retry(|| client.get(&url), &policy)
        .await
        .unwrap_err();
    assert_eq!(failed.attempts, 3);
    assert!(
        failed.to_string().contains("after 3 attempt(s)"),
        "{failed}"
    );
}

#[tokio::test]
async fn a_failed_tls_handshake_is_classified_as_tls_and_not_transient() {
    let addr = serve(Router::new().route("/", get(|| async { "plain http" }))).await;
    let client = build_client(&ClientOptions::default()).unwrap();
    let err = client
        .get(format!("https://{addr}/"))
        .send()
        .await
        .unwrap_err();
    let (kind, message) = shipgate_http::classify_error(&err);
    assert_eq!(kind, shipgate_http::FailureKind::Tls, "{message}");
    assert!(!kind.is_transient());
}
