//! Railway's public GraphQL API over HTTP: one POST per operation, the token in the header its
//! kind requires, 429 `Retry-After` honoured, `errors[]` turned into typed errors.

use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use shipgate_core::{Redactor, Secret, quote_outside};
use shipgate_http::{Backoff, RetryPolicy, header_u64, retry_after, send_with_retry};

use crate::RailwayError;

/// An operation shipped in `graphql/`: its name and document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operation {
    pub(crate) name: &'static str,
    pub(crate) document: &'static str,
    /// Whether sending it twice does no harm (queries, `serviceInstanceUpdate` with the same
    /// input). Others are retried only when Railway said 429, which means it did nothing.
    pub(crate) idempotent: bool,
}

macro_rules! operation {
    ($name:ident, $idempotent:expr) => {
        pub(crate) const $name: Operation = Operation {
            name: stringify!($name),
            document: include_str!(concat!("../graphql/", stringify!($name), ".graphql")),
            idempotent: $idempotent,
        };
    };
}

/// Every operation shipgate sends (each validated against Railway's schema in the tests).
#[allow(non_upper_case_globals)]
pub(crate) mod ops {
    use super::Operation;
    operation!(ProjectToken, true);
    operation!(ApiTokenWorkspaces, true);
    operation!(WorkspaceProjects, true);
    operation!(ProjectTopology, true);
    operation!(ServiceInstance, true);
    operation!(ActiveDeployments, true);
    operation!(SetImage, true);
    operation!(DeployV2, false);
    operation!(DeployCommit, false);
    operation!(Deployment, true);
    operation!(Deployments, true);
    operation!(Rollback, false);
    operation!(UpsertVariables, true);
    operation!(DeploymentLogs, true);
    operation!(DeploymentEvents, true);
    operation!(ServiceDisconnect, true);
    operation!(Cancel, true);
}

/// The kind of Railway token, which decides the header it travels in.
#[derive(Clone)]
pub enum RailwayToken {
    /// A project token (`RAILWAY_TOKEN`): one environment of one project, sent as
    /// `Project-Access-Token`.
    Project(Secret),
    /// An account or workspace token (`RAILWAY_API_TOKEN`), sent as `Authorization: Bearer`.
    Account(Secret),
}

impl std::fmt::Debug for RailwayToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

impl RailwayToken {
    /// Picks the token from the two seed variables' values: exactly one must be set.
    pub fn from_values(
        railway_token: Option<Secret>,
        railway_api_token: Option<Secret>,
    ) -> Result<RailwayToken, RailwayError> {
        let present = |s: Option<Secret>| s.filter(|s| !s.is_blank());
        match (present(railway_token), present(railway_api_token)) {
            (Some(_), Some(_)) => Err(RailwayError::Invalid(
                "both RAILWAY_TOKEN (project token) and RAILWAY_API_TOKEN (account or workspace token) are set; Railway accepts one kind per request, so unset one of them".into(),
            )),
            (Some(token), None) => Ok(RailwayToken::Project(token)),
            (None, Some(token)) => Ok(RailwayToken::Account(token)),
            (None, None) => Err(RailwayError::Invalid(
                "no Railway token: set RAILWAY_TOKEN to a project token (Project settings → Tokens) or RAILWAY_API_TOKEN to an account or workspace token".into(),
            )),
        }
    }

    /// `project token (RAILWAY_TOKEN, Project-Access-Token header)` and the like.
    pub fn describe(&self) -> &'static str {
        match self {
            RailwayToken::Project(_) => {
                "a project token (RAILWAY_TOKEN, sent as Project-Access-Token)"
            }
            RailwayToken::Account(_) => {
                "an account or workspace token (RAILWAY_API_TOKEN, sent as Authorization: Bearer)"
            }
        }
    }

    fn secret(&self) -> &Secret {
        match self {
            RailwayToken::Project(s) | RailwayToken::Account(s) => s,
        }
    }
}

/// A GraphQL client for one token.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    url: url::Url,
    token: RailwayToken,
    redactor: Redactor,
    policy: RetryPolicy,
}

/// Attempts per operation (429s and, for idempotent operations, transient failures).
const ATTEMPTS: u32 = 4;

impl Client {
    pub(crate) fn new(
        api_url: &str,
        token: RailwayToken,
        redactor: Redactor,
    ) -> Result<Client, RailwayError> {
        let url = url::Url::parse(api_url).map_err(|e| {
            RailwayError::Invalid(format!("targets.railway.api_url `{api_url}`: {e}"))
        })?;
        let http = shipgate_http::build_client(&shipgate_http::ClientOptions::default())
            .map_err(|e| RailwayError::Invalid(e.to_string()))?;
        redactor.add(token.secret());
        Ok(Client {
            http,
            url,
            token,
            redactor,
            // Railway's CLI allows 90 s: some mutations are slow.
            policy: RetryPolicy {
                attempts: ATTEMPTS,
                backoff: Backoff::Exponential {
                    initial: Duration::from_millis(500),
                    max: Duration::from_secs(10),
                },
                timeout: Duration::from_secs(90),
                max_wait: Duration::from_secs(60),
                ..RetryPolicy::default()
            },
        })
    }

    pub(crate) fn token(&self) -> &RailwayToken {
        &self.token
    }

    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Sends `op` with `variables` and returns `data`, deserialised.
    pub(crate) async fn run<T: DeserializeOwned>(
        &self,
        op: Operation,
        variables: Value,
    ) -> Result<T, RailwayError> {
        let body = json!({"query": op.document, "operationName": op.name, "variables": variables})
            .to_string();
        let policy = RetryPolicy {
            idempotent: op.idempotent,
            ..self.policy
        };
        let build = || {
            let request = self
                .http
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            match &self.token {
                RailwayToken::Project(t) => request.header("Project-Access-Token", t.expose()),
                RailwayToken::Account(t) => request.bearer_auth(t.expose()),
            }
        };
        let fetched =
            send_with_retry(build, &policy)
                .await
                .map_err(|failed| RailwayError::Unavailable {
                    operation: op.name,
                    message: self.redactor.redact(&failed.to_string()).into_owned(),
                })?;
        let status = fetched.status.as_u16();
        if status == 429 {
            let message = match retry_after(&fetched.headers, SystemTime::now()) {
                Some(w) => format!("Railway rate limit; try again in {} s", w.as_secs()),
                None => "Railway rate limit".to_owned(),
            };
            return Err(RailwayError::RateLimited {
                operation: op.name,
                message,
            });
        }
        if header_u64(&fetched.headers, "x-ratelimit-remaining") == Some(0) {
            tracing::warn!(
                operation = op.name,
                "Railway rate limit exhausted; the next request waits for the window to reset"
            );
        }
        let text = String::from_utf8_lossy(&fetched.body.bytes);
        self.decode(op, status, &text)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        op: Operation,
        status: u16,
        text: &str,
    ) -> Result<T, RailwayError> {
        let unavailable = |message: String| RailwayError::Unavailable {
            operation: op.name,
            message: quote_outside(&self.redactor.redact(&message)),
        };
        let parsed: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(_) if status >= 500 => return Err(unavailable(format!("HTTP {status}"))),
            Err(e) => {
                let head: String = text.chars().take(200).collect();
                return Err(unavailable(format!(
                    "HTTP {status}, not JSON ({e}): {head}"
                )));
            }
        };
        if let Some(error) = parsed["errors"].as_array().and_then(|e| e.first()) {
            let message = error["message"].as_str().unwrap_or("(no message)");
            let message = quote_outside(&self.redactor.redact(message));
            return Err(classify(
                op.name,
                &self.token,
                &message,
                &error["extensions"],
            ));
        }
        if status >= 500 {
            return Err(unavailable(format!("HTTP {status}")));
        }
        if status == 401 || status == 403 {
            return Err(RailwayError::NotAuthorized {
                operation: op.name,
                token: self.token.describe(),
                message: format!("HTTP {status}"),
            });
        }
        let data = parsed
            .get("data")
            .filter(|d| !d.is_null())
            .ok_or_else(|| unavailable(format!("HTTP {status} without data or errors")))?;
        serde_json::from_value(data.clone())
            .map_err(|e| unavailable(format!("unexpected response: {e}")))
    }
}

/// Maps the first GraphQL error's message to a typed error, the way Railway's CLI reads them.
fn classify(
    operation: &'static str,
    token: &RailwayToken,
    message: &str,
    extensions: &Value,
) -> RailwayError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("project token not found") {
        RailwayError::NotAuthorized {
            operation,
            token: token.describe(),
            message: "RAILWAY_TOKEN is not a valid project token; create one in the project's settings → Tokens".into(),
        }
    } else if lower.contains("not authorized") {
        RailwayError::NotAuthorized {
            operation,
            token: token.describe(),
            message: message.to_owned(),
        }
    } else if lower.contains("two factor authentication required") {
        let workspace = extensions["workspaceName"]
            .as_str()
            .unwrap_or("the workspace");
        RailwayError::TwoFactorRequired {
            operation,
            workspace: workspace.to_owned(),
        }
    } else if lower.contains("not found") {
        RailwayError::NotFound {
            operation,
            message: message.to_owned(),
        }
    } else {
        RailwayError::Graphql {
            operation,
            message: message.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_token_kind_is_accepted() {
        let t = || Some(Secret::new("tok"));
        assert!(matches!(
            RailwayToken::from_values(t(), None),
            Ok(RailwayToken::Project(_))
        ));
        assert!(matches!(
            RailwayToken::from_values(None, t()),
            Ok(RailwayToken::Account(_))
        ));
        let both = RailwayToken::from_values(t(), t()).unwrap_err().to_string();
        assert!(
            both.contains("RAILWAY_TOKEN") && both.contains("RAILWAY_API_TOKEN"),
            "{both}"
        );
        let blank = RailwayToken::from_values(Some(Secret::new(" ")), None).unwrap_err();
        assert!(blank.to_string().contains("no Railway token"));
    }

    #[test]
    fn graphql_errors_become_typed_errors() {
        let token = RailwayToken::Account(Secret::new("t"));
        let none = Value::Null;
        assert!(matches!(
            classify("Deployment", &token, "Not Authorized", &none),
            RailwayError::NotAuthorized { .. }
        ));
        assert!(matches!(
            classify("ProjectTopology", &token, "Project not found", &none),
            RailwayError::NotFound { .. }
        ));
        let tfa = classify(
            "SetImage",
            &token,
            "Two Factor Authentication Required",
            &json!({"workspaceName": "acme"}),
        );
        assert!(tfa.to_string().contains("acme"), "{tfa}");
        assert!(matches!(
            classify("SetImage", &token, "Something else", &none),
            RailwayError::Graphql { .. }
        ));
    }
}
