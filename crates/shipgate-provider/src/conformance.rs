//! The conformance suite every provider adapter runs in its tests (feature `conformance`).
//!
//! It drives a real (or faithfully faked) target through the life of a service: first deploy,
//! an upgrade, an upgrade that never becomes healthy, and a rollback, and checks that the
//! provider tells the truth at each step: verdicts, what runs, history, diagnostics.

#![allow(clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shipgate_core::{ImageRef, ServiceName};
use tokio_util::sync::CancellationToken;

use crate::{DeployRequest, Provider, RevisionStatus, Verdict, previous_good};

/// The images the suite deploys.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The service under test.
    pub service: ServiceName,
    /// A release that becomes healthy.
    pub good: ImageRef,
    /// Another release that becomes healthy.
    pub upgrade: ImageRef,
    /// A release that never becomes healthy.
    pub unhealthy: ImageRef,
    /// How long each wait may take.
    pub timeout: Duration,
}

fn request(scenario: &Scenario, image: &ImageRef, description: &str) -> DeployRequest {
    DeployRequest {
        images: BTreeMap::from([(scenario.service.clone(), image.clone())]),
        description: description.to_owned(),
    }
}

async fn live_image(provider: &dyn Provider, scenario: &Scenario) -> Option<ImageRef> {
    let running = provider
        .current()
        .await
        .unwrap_or_else(|e| panic!("current(): {e}"));
    running
        .into_iter()
        .find(|r| r.service == scenario.service)
        .map(|r| r.image)
}

/// Runs the suite; panics with what the provider got wrong.
pub async fn run(provider: &dyn Provider, scenario: &Scenario) {
    let cancel = CancellationToken::new();
    let quiet = |_: &crate::WaitProgress| {};
    let deadline = || Instant::now() + scenario.timeout;

    // 1. First deploy: the plan names the change; the verdict is healthy; it runs.
    let first = request(scenario, &scenario.good, "deploy good");
    let plan = provider
        .plan(&first)
        .await
        .unwrap_or_else(|e| panic!("plan(): {e}"));
    assert_eq!(
        plan.len(),
        1,
        "{}: plan of a first deploy: {plan:?}",
        provider.kind()
    );
    assert_eq!(plan[0].to, scenario.good);
    let deployment = provider
        .deploy(&first)
        .await
        .unwrap_or_else(|e| panic!("deploy(): {e}"));
    let verdict = provider
        .wait(&deployment, deadline(), &quiet, &cancel)
        .await
        .unwrap_or_else(|e| panic!("wait(): {e}"));
    assert_eq!(
        verdict,
        Verdict::Healthy,
        "{}: first deploy",
        provider.kind()
    );
    assert_eq!(
        live_image(provider, scenario).await.as_ref(),
        Some(&scenario.good)
    );
    let good_revision = deployment.revision.clone();

    // 2. An upgrade.
    let upgrade = provider
        .deploy(&request(scenario, &scenario.upgrade, "deploy upgrade"))
        .await
        .unwrap_or_else(|e| panic!("deploy(): {e}"));
    let verdict = provider
        .wait(&upgrade, deadline(), &quiet, &cancel)
        .await
        .unwrap_or_else(|e| panic!("wait(): {e}"));
    assert_eq!(verdict, Verdict::Healthy, "{}: upgrade", provider.kind());
    assert_eq!(
        live_image(provider, scenario).await.as_ref(),
        Some(&scenario.upgrade)
    );

    // 3. A release that never becomes healthy: a failed verdict, the upgrade still runs.
    let broken = provider
        .deploy(&request(scenario, &scenario.unhealthy, "deploy unhealthy"))
        .await
        .unwrap_or_else(|e| panic!("deploy(): {e}"));
    let verdict = provider
        .wait(&broken, deadline(), &quiet, &cancel)
        .await
        .unwrap_or_else(|e| panic!("wait(): {e}"));
    assert!(
        matches!(verdict, Verdict::Failed { .. } | Verdict::TimedOut { .. }),
        "{}: an unhealthy release must not be reported healthy: {verdict:?}",
        provider.kind()
    );
    assert_eq!(
        live_image(provider, scenario).await.as_ref(),
        Some(&scenario.upgrade),
        "{}: after a failed deploy the previous release must still be what runs",
        provider.kind()
    );
    let diagnostics = provider
        .diagnostics(&broken)
        .await
        .unwrap_or_else(|e| panic!("diagnostics(): {e}"));
    assert!(
        !diagnostics.is_empty(),
        "{}: a failed deploy needs diagnostics",
        provider.kind()
    );

    // 4. History, newest first, with truthful statuses.
    let history = provider
        .history()
        .await
        .unwrap_or_else(|e| panic!("history(): {e}"));
    let status_of = |id: &crate::RevisionId| history.iter().find(|r| &r.id == id).map(|r| r.status);
    assert_eq!(status_of(&broken.revision), Some(RevisionStatus::Failed));
    assert_eq!(status_of(&upgrade.revision), Some(RevisionStatus::Deployed));
    assert_eq!(status_of(&good_revision), Some(RevisionStatus::Superseded));

    // 5. Roll back from the upgrade to the newest good revision before it: the first one.
    let target = previous_good(&history, &upgrade.revision)
        .unwrap_or_else(|| panic!("no rollback target in {history:?}"));
    assert_eq!(target.id, good_revision);
    let rollback = provider
        .rollback(&target.id)
        .await
        .unwrap_or_else(|e| panic!("rollback(): {e}"));
    let verdict = provider
        .wait(&rollback, deadline(), &quiet, &cancel)
        .await
        .unwrap_or_else(|e| panic!("wait(): {e}"));
    assert_eq!(verdict, Verdict::Healthy, "{}: rollback", provider.kind());
    assert_eq!(
        live_image(provider, scenario).await.as_ref(),
        Some(&scenario.good)
    );
}
