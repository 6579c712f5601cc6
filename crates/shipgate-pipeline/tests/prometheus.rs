//! The Prometheus query of a canary's analysis against a real HTTP server answering as
//! Prometheus does (`GET /api/v1/query`): a vector's first sample, a scalar, and every way of
//! giving no number, each of which fails the step (closed).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use shipgate_pipeline::{MetricError, MetricQuery, PrometheusQuery};
use tokio_util::sync::CancellationToken;

/// A server answering every query with `status` and `body`; returns the value the query got.
async fn ask(status: u16, body: &'static str) -> Result<f64, MetricError> {
    let app = axum::Router::new().route(
        "/api/v1/query",
        axum::routing::get(
            move |query: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                assert_eq!(query.0["query"], "rate(errors[1m])");
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    body,
                )
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let query = PrometheusQuery::new(
        shipgate_http::build_client(&shipgate_http::ClientOptions::default()).unwrap(),
        &format!("http://{addr}/"),
        "rate(errors[1m])",
        0.5,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(
        (query.query(), query.max()),
        ("rate(errors[1m])".to_owned(), 0.5)
    );
    query.value(&CancellationToken::new()).await
}

#[tokio::test]
async fn a_vector_gives_its_first_sample_and_a_scalar_its_value() {
    let vector = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"job":"api"},"value":[1765000000.1,"0.25"]},
        {"metric":{"job":"web"},"value":[1765000000.1,"9"]}]}}"#;
    assert_eq!(ask(200, vector).await, Ok(0.25));
    let scalar =
        r#"{"status":"success","data":{"resultType":"scalar","result":[1765000000.1,"3"]}}"#;
    assert_eq!(ask(200, scalar).await, Ok(3.0));
}

#[tokio::test]
async fn no_number_is_an_error_whatever_the_reason() {
    let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    assert!(matches!(
        ask(200, empty).await,
        Err(MetricError::NoValue(_))
    ));
    let nan = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
    assert!(matches!(ask(200, nan).await, Err(MetricError::NoValue(_))));
    let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
    assert!(matches!(
        ask(200, matrix).await,
        Err(MetricError::NoValue(_))
    ));
    let refused =
        r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5\u001b[2J"}"#;
    let err = ask(400, refused).await.unwrap_err();
    assert!(matches!(err, MetricError::Unavailable(_)));
    let said = err.to_string();
    assert!(
        said.contains("bad_data") && said.contains("parse error"),
        "{said}"
    );
    assert!(
        !said.contains('\u{1b}'),
        "terminal escapes are neutralised: {said:?}"
    );
    let html = "<html>proxy error</html>";
    assert!(matches!(
        ask(200, html).await,
        Err(MetricError::Unavailable(_))
    ));
}
