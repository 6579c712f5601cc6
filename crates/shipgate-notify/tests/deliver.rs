//! Notifications through the outbox to real loopback receivers: a Slack-like webhook that is
//! down at first (503 with Retry-After), a signed JSON webhook verified the way a receiver
//! should, retries on a later round, an `on` filter, and the canary: channel secrets never
//! reach the ledger or the report.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use shipgate_core::{Redactor, Secret};
use shipgate_ledger::Ledger;
use shipgate_notify::{Channel, Notification, Notifier, SIGNATURE_HEADER, verify};
use shipgate_testkit::Canary;

fn notification(outcome: &str) -> Notification {
    Notification {
        schema_version: 1,
        event: "deploy".into(),
        run_id: format!("run-{outcome}"),
        app: "shop".into(),
        environment: "production".into(),
        image_tag: "3f2c1a9".into(),
        outcome: outcome.into(),
        exit_code: 3,
        message: "smoke gate failed; rolled back to v1".into(),
        rollback_reasons: vec!["local: candidate revision 1".into()],
        run_url: None,
        strategy: None,
        steps: Vec::new(),
    }
}

#[tokio::test]
async fn deliveries_are_signed_retried_and_never_store_secrets() {
    let slack_token = Canary::new("slack");
    let key = Canary::new("hmac");
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let slack_down = Arc::new(Mutex::new(true));

    let (r1, r2, down) = (received.clone(), received.clone(), slack_down.clone());
    let app = axum::Router::new()
        .route(
            &format!("/services/{}", slack_token.value()),
            axum::routing::post(move |body: String| async move {
                if *down.lock().unwrap() {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [("retry-after", "1")],
                        "down",
                    )
                        .into_response();
                }
                r1.lock().unwrap().push(("slack".into(), body));
                StatusCode::OK.into_response()
            }),
        )
        .route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| async move {
                let signature = headers
                    .get(SIGNATURE_HEADER)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                r2.lock().unwrap().push((signature, body));
                StatusCode::NO_CONTENT
            }),
        );
    let addr = shipgate_testkit::serve(app).await;

    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&format!("sqlite://{}", dir.path().join("l.db").display()))
        .await
        .unwrap();
    let notifier = Notifier::new(
        vec![
            Channel::Slack {
                name: "slack".into(),
                url: Secret::new(format!("http://{addr}/services/{}", slack_token.value())),
                on: vec![],
            },
            Channel::Webhook {
                name: "ops".into(),
                url: format!("http://{addr}/hook"),
                key: Secret::new(key.value()),
                on: vec!["rolled_back".into(), "rollback_failed".into()],
            },
        ],
        Redactor::default(),
    )
    .unwrap();

    assert_eq!(
        notifier
            .enqueue(&ledger, &notification("rolled_back"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        notifier
            .enqueue(&ledger, &notification("succeeded"))
            .await
            .unwrap(),
        1,
        "ops only wants failures"
    );

    let first = notifier.deliver_due(&ledger, 10).await.unwrap();
    assert_eq!(
        first.delivered,
        vec![("ops".to_owned(), "run-rolled_back".to_owned())]
    );
    assert_eq!(first.failed.len(), 2, "slack is down: {first:?}");
    assert!(
        first.failed.iter().all(|(_, _, e)| e.contains("503")),
        "{first:?}"
    );

    // The signed body verifies as a receiver would check it.
    let (signature, body) = received.lock().unwrap()[0].clone();
    verify(
        &Secret::new(key.value()),
        &signature,
        &body,
        SystemTime::now(),
        Duration::from_secs(300),
    )
    .unwrap();
    let sent: Notification = serde_json::from_str(&body).unwrap();
    assert_eq!(sent.outcome, "rolled_back");

    // Nothing is due again before the backoff; the outbox keeps both Slack messages.
    assert!(
        notifier
            .deliver_due(&ledger, 10)
            .await
            .unwrap()
            .failed
            .is_empty()
    );
    let undelivered = ledger.undelivered().await.unwrap();
    assert_eq!(undelivered.len(), 2);
    for (_, channel, attempts, error) in &undelivered {
        assert_eq!((channel.as_str(), *attempts), ("slack", 1));
        slack_token.assert_absent("the outbox error", error.as_deref().unwrap_or_default());
    }
    // The ledger file never holds the Slack URL or the key.
    let bytes = std::fs::read(dir.path().join("l.db")).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    slack_token.assert_absent("the ledger file", &text);
    key.assert_absent("the ledger file", &text);
    slack_token.assert_absent("the delivery report", &format!("{first:?}"));
}
