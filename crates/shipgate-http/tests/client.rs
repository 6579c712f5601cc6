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
