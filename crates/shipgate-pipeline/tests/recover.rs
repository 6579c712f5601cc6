//! What a provider recovers before the deploy (a release an interrupted run left locked) is a
//! step of the run — output, summary, ledger — and a failed recovery stops the run before
//! anything new is deployed. The provider is a small stand-in at the `Provider` seam.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shipgate_core::{ImageRef, Redactor, ServiceName};
use shipgate_ledger::Ledger;
use shipgate_pipeline::{Outcome, Plan, Target};
use shipgate_provider::{
    DeployRequest, Deployment, PlannedChange, ProgressSink, Provider, ProviderError, Revision,
    RevisionId, Running, Verdict,
};
use shipgate_smoke::SmokeRunner;
use tokio_util::sync::CancellationToken;

/// A target that runs v1, has `recovery` to report (or fail with), and deploys healthy.
struct Stuck {
    recovery: Result<Vec<String>, ProviderError>,
    deploys: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Provider for Stuck {
    fn kind(&self) -> &'static str {
        "helm"
    }
    async fn current(&self) -> Result<Vec<Running>, ProviderError> {
        Ok(running("v1"))
    }
    async fn recover(&self) -> Result<Vec<String>, ProviderError> {
        self.recovery.clone()
    }
    async fn plan(&self, _: &DeployRequest) -> Result<Vec<PlannedChange>, ProviderError> {
        Ok(Vec::new())
    }
    async fn deploy(&self, request: &DeployRequest) -> Result<Deployment, ProviderError> {
        self.deploys.fetch_add(1, Ordering::SeqCst);
        Ok(Deployment {
            revision: RevisionId("5".into()),
            request: request.clone(),
        })
    }
    async fn wait<'a>(
        &'a self,
        _: &'a Deployment,
        _: Instant,
        _: &'a (dyn ProgressSink + 'a),
        _: &'a CancellationToken,
    ) -> Result<Verdict, ProviderError> {
        Ok(Verdict::Healthy)
    }
    async fn history(&self) -> Result<Vec<Revision>, ProviderError> {
        Ok(Vec::new())
    }
    async fn rollback(&self, to: &RevisionId) -> Result<Deployment, ProviderError> {
        Err(ProviderError::not_found(to.to_string()))
    }
    async fn diagnostics(&self, _: &Deployment) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }
}

fn image(tag: &str) -> ImageRef {
    format!("ghcr.io/acme/api:{tag}").parse().unwrap()
}

fn api() -> ServiceName {
    "api".parse().unwrap()
}

fn plan(provider: Stuck) -> Plan {
    let target = Target {
        name: "helm".into(),
        provider: Box::new(provider),
        timeout: Duration::from_secs(5),
    };
    common::plan(
        format!("run-{}", shipgate_ledger::now_ms()),
        "v2",
        vec![(api(), image("v2"))],
        target,
        Duration::from_secs(5),
    )
}

fn running(tag: &str) -> Vec<Running> {
    vec![Running {
        service: api(),
        image: image(tag),
        revision: RevisionId("1".into()),
    }]
}

async fn run(plan: &Plan, ledger: &Ledger) -> (shipgate_pipeline::Summary, Vec<String>) {
    let lines = std::sync::Mutex::new(Vec::new());
    let events = |event: &shipgate_pipeline::PipelineEvent| {
        lines.lock().unwrap().push(event.to_string());
    };
    let mut runner = SmokeRunner::new(Redactor::default()).unwrap();
    let summary = shipgate_pipeline::run(
        plan,
        ledger,
        &mut runner,
        &events,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    (summary, lines.into_inner().unwrap())
}

#[tokio::test]
async fn a_recovery_is_a_step_and_a_failed_one_deploys_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&format!("sqlite://{}", dir.path().join("l.db").display()))
        .await
        .unwrap();

    let plan = plan(Stuck {
        recovery: Ok(vec![
            "recovered release demo from pending revision 4 by rolling back to revision 2".into(),
        ]),
        deploys: Arc::default(),
    });
    let (summary, lines) = run(&plan, &ledger).await;
    assert_eq!(summary.outcome, Outcome::Succeeded, "{}", summary.message);
    let names: Vec<&str> = summary.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["lock", "recover helm", "deploy helm"]);
    assert!(summary.steps[1].detail.contains("pending revision 4"));
    assert!(
        lines
            .iter()
            .any(|l| l == "helm: recovered release demo from pending revision 4 by rolling back to revision 2"),
        "{lines:#?}"
    );
    let (_, steps, _) = ledger.run(&summary.run_id).await.unwrap().unwrap();
    assert_eq!(steps[1].name, "recover helm");

    // A recovery that fails stops the run before the deploy; what runs is read back.
    let deploys = Arc::new(AtomicUsize::new(0));
    let plan = self::plan(Stuck {
        recovery: Err(ProviderError::platform(
            "release demo is pending at revision 4 with no healthy revision to roll back to",
        )),
        deploys: deploys.clone(),
    });
    let (summary, _) = run(&plan, &ledger).await;
    assert_eq!(deploys.load(Ordering::SeqCst), 0, "nothing deployed");
    assert_eq!(summary.outcome, Outcome::Failed);
    assert!(
        summary
            .message
            .contains("cannot recover what an interrupted run left")
            && summary
                .message
                .contains("nothing new was deployed; read back, it runs api=ghcr.io/acme/api:v1"),
        "{}",
        summary.message
    );
}
