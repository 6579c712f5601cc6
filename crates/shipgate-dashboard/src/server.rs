//! The HTTP side: routes, the access rule, security headers on every response, and the
//! final redaction of every body.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::Markup;
use serde::Serialize;
use shipgate_core::Redactor;
use shipgate_ledger::{Ledger, LedgerError, now_ms};

use crate::access::{Access, Refusal};
use crate::model::{self, DeliveryFilter, TimelineFilter};
use crate::pages;

/// The Content-Security-Policy of every response: nothing from elsewhere, no script at all,
/// styles only from the dashboard's own stylesheet, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const STYLESHEET: &str = include_str!("../assets/dashboard.css");
const FAVICON: &str = include_str!("../assets/favicon.svg");

/// What the dashboard serves from.
#[derive(Clone)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

struct Inner {
    ledger: Ledger,
    access: Access,
    redactor: Redactor,
    refresh_secs: u64,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("access", &self.inner.access)
            .field("refresh_secs", &self.inner.refresh_secs)
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    /// A dashboard over `ledger`. `redactor` masks every secret the embedding process knows
    /// in every body (the ledger's text is redacted when written; this is the second line).
    /// Pages reload themselves every `refresh_secs` (0: never).
    pub fn new(ledger: Ledger, access: Access, redactor: Redactor, refresh_secs: u64) -> Dashboard {
        if let Access::Token(secret)
        | Access::Basic {
            password: secret, ..
        } = &access
        {
            redactor.add(secret);
        }
        Dashboard {
            inner: Arc::new(Inner {
                ledger,
                access,
                redactor,
                refresh_secs,
            }),
        }
    }

    /// The access rule.
    pub fn access(&self) -> &Access {
        &self.inner.access
    }

    /// The routes, behind the access rule and with the security headers; merge it into
    /// another axum router to serve the dashboard beside other endpoints.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(overview_page))
            .route("/timeline", get(timeline_page))
            .route("/runs/{id}", get(run_page))
            .route("/runs/{id}/summary.json", get(summary_json))
            .route("/delivery", get(delivery_page))
            .route("/health", get(health_page))
            .route("/api/overview", get(overview_api))
            .route("/api/timeline", get(timeline_api))
            .route("/api/runs/{id}", get(run_api))
            .route("/api/delivery", get(delivery_api))
            .route("/api/health", get(health_api))
            .route("/assets/dashboard.css", get(stylesheet))
            .route("/assets/favicon.svg", get(favicon))
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(self.clone(), guard))
            .with_state(self.clone())
    }

    /// Serves [`Dashboard::router`] on `listener` until `cancel` fires.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        cancel: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await
    }

    fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    fn refresh(&self) -> u64 {
        self.inner.refresh_secs
    }

    /// A page: HTML, redacted.
    fn html(&self, status: StatusCode, markup: Markup) -> Response {
        let body = self
            .inner
            .redactor
            .redact(&markup.into_string())
            .into_owned();
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response()
    }

    /// A JSON document, redacted.
    fn json(&self, value: &impl Serialize) -> Response {
        match serde_json::to_string(value) {
            Ok(json) => self.json_text(&json),
            Err(err) => self.failure_json(&err.to_string()),
        }
    }

    fn json_text(&self, json: &str) -> Response {
        let body = self.inner.redactor.redact(json).into_owned();
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }

    fn failure_json(&self, message: &str) -> Response {
        self.error_json(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// `{"error": "…"}` with `status`.
    fn error_json(&self, status: StatusCode, message: &str) -> Response {
        let body = serde_json::json!({ "error": pages::clean(message) }).to_string();
        let body = self.inner.redactor.redact(&body).into_owned();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }

    /// The page for a ledger that could not be read.
    fn ledger_failed(&self, err: &LedgerError) -> Response {
        self.html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::problem("The ledger could not be read", &err.to_string()),
        )
    }

    fn run_missing(&self, id: &str) -> Response {
        self.html(
            StatusCode::NOT_FOUND,
            pages::problem(
                "No such run",
                &format!(
                    "The ledger has no run {id}. Runs are listed on each environment's timeline."
                ),
            ),
        )
    }
}

/// The access rule, then the security headers, on every response.
async fn guard(State(dashboard): State<Dashboard>, request: Request, next: Next) -> Response {
    let mut response = match dashboard.access().allows(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(Refusal::Unauthorized(challenge)) => {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "This shipgate dashboard needs credentials (see [dashboard] in its configuration).\n",
            )
                .into_response();
            if challenge != "Proxy"
                && let Ok(value) = HeaderValue::from_str(challenge)
            {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

async fn overview_page(State(d): State<Dashboard>) -> Response {
    match model::overview(d.ledger(), now_ms()).await {
        Ok(page) => d.html(StatusCode::OK, pages::overview(&page, d.refresh())),
        Err(err) => d.ledger_failed(&err),
    }
}

async fn overview_api(State(d): State<Dashboard>) -> Response {
    match model::overview(d.ledger(), now_ms()).await {
        Ok(page) => d.json(&page),
        Err(err) => d.failure_json(&err.to_string()),
    }
}

async fn timeline_page(
    State(d): State<Dashboard>,
    filter: Result<Query<TimelineFilter>, QueryRejection>,
) -> Response {
    let filter = match timeline_filter(filter) {
        Ok(filter) => filter,
        Err(why) => {
            return d.html(
                StatusCode::BAD_REQUEST,
                pages::problem("Which timeline?", &why),
            );
        }
    };
    match model::timeline(d.ledger(), filter, now_ms()).await {
        Ok(page) => d.html(StatusCode::OK, pages::timeline(&page, d.refresh())),
        Err(err) => d.ledger_failed(&err),
    }
}

async fn timeline_api(
    State(d): State<Dashboard>,
    filter: Result<Query<TimelineFilter>, QueryRejection>,
) -> Response {
    let filter = match timeline_filter(filter) {
        Ok(filter) => filter,
        Err(why) => return d.error_json(StatusCode::BAD_REQUEST, &why),
    };
    match model::timeline(d.ledger(), filter, now_ms()).await {
        Ok(page) => d.json(&page),
        Err(err) => d.failure_json(&err.to_string()),
    }
}

async fn run_page(State(d): State<Dashboard>, Path(id): Path<String>) -> Response {
    match model::run_page(d.ledger(), &id).await {
        Ok(Some(page)) => d.html(StatusCode::OK, pages::run(&page, d.refresh())),
        Ok(None) => d.run_missing(&id),
        Err(err) => d.ledger_failed(&err),
    }
}

async fn run_api(State(d): State<Dashboard>, Path(id): Path<String>) -> Response {
    match model::run_page(d.ledger(), &id).await {
        Ok(Some(page)) => d.json(&page),
        Ok(None) => d.error_json(StatusCode::NOT_FOUND, "no such run"),
        Err(err) => d.failure_json(&err.to_string()),
    }
}

async fn summary_json(State(d): State<Dashboard>, Path(id): Path<String>) -> Response {
    match d.ledger().run_summary(&id).await {
        Ok(Some(json)) => {
            let mut response = d.json_text(&json);
            if let Ok(value) = HeaderValue::from_str(&format!(
                "attachment; filename=\"{}.json\"",
                pages::path_segment(&id)
            )) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Ok(None) => d.run_missing(&id),
        Err(err) => d.ledger_failed(&err),
    }
}

/// The timeline's filters, or what is wrong with the query string.
fn timeline_filter(
    filter: Result<Query<TimelineFilter>, QueryRejection>,
) -> Result<TimelineFilter, String> {
    let Query(filter) = filter.map_err(|_| {
        "The query string is not a timeline's: it takes app, environment, days (a number), service and outcome.".to_owned()
    })?;
    if filter.app.is_empty() || filter.environment.is_empty() {
        return Err("Pick an environment on the overview: a timeline shows one app and environment (?app=…&environment=…).".to_owned());
    }
    Ok(filter)
}

async fn delivery_page(
    State(d): State<Dashboard>,
    filter: Result<Query<DeliveryFilter>, QueryRejection>,
) -> Response {
    let filter = filter.map(|Query(f)| f).unwrap_or_default();
    match model::delivery(d.ledger(), filter, now_ms()).await {
        Ok(page) => d.html(StatusCode::OK, pages::delivery(&page, d.refresh())),
        Err(err) => d.ledger_failed(&err),
    }
}

async fn delivery_api(
    State(d): State<Dashboard>,
    filter: Result<Query<DeliveryFilter>, QueryRejection>,
) -> Response {
    let filter = filter.map(|Query(f)| f).unwrap_or_default();
    match model::delivery(d.ledger(), filter, now_ms()).await {
        Ok(page) => d.json(&page),
        Err(err) => d.failure_json(&err.to_string()),
    }
}

async fn health_page(State(d): State<Dashboard>) -> Response {
    match model::health(d.ledger(), now_ms()).await {
        Ok(page) => d.html(StatusCode::OK, pages::health(&page, d.refresh())),
        Err(err) => d.ledger_failed(&err),
    }
}

async fn health_api(State(d): State<Dashboard>) -> Response {
    match model::health(d.ledger(), now_ms()).await {
        Ok(page) => d.json(&page),
        Err(err) => d.failure_json(&err.to_string()),
    }
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

async fn favicon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], FAVICON).into_response()
}

async fn not_found(State(d): State<Dashboard>) -> Response {
    d.html(
        StatusCode::NOT_FOUND,
        pages::problem("Not found", "There is no such page on this dashboard."),
    )
}
