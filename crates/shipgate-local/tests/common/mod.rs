//! Helpers shared by the local provider's integration tests: a demo-service target on a free
//! port, deploy requests, and a guard that stops every process the tests started.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shipgate_config::{LocalService, LocalTarget};
use shipgate_core::HumanDuration;
use shipgate_local::{LocalOptions, LocalProvider};
use shipgate_provider::{DeployRequest, Provider, ProviderError, Verdict};
use tokio_util::sync::CancellationToken;

/// Stops every process the provider's state knows when dropped, passed or failed (the local
/// provider leaves releases running by design).
pub(crate) struct StopOnDrop(pub(crate) LocalTarget);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let provider = LocalProvider::new(&self.0, options()).unwrap();
        shipgate_testkit::block_on_thread(async move { provider.shutdown().await }).unwrap();
    }
}

pub(crate) fn options() -> LocalOptions {
    LocalOptions {
        router: vec![env!("CARGO_BIN_EXE_shipgate-local-router").to_owned()],
        shipgate: None,
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn target(state_dir: &std::path::Path, port: u16) -> LocalTarget {
    let service = LocalService {
        command: vec![
            env!("CARGO_BIN_EXE_shipgate-demo-service").to_owned(),
            "--port".into(),
            "{port}".into(),
            "--version".into(),
            "{tag}".into(),
        ],
        port,
        health_path: "/healthz".into(),
        env: BTreeMap::new(),
    };
    LocalTarget {
        enabled: true,
        state_dir: state_dir.to_owned(),
        services: BTreeMap::from([("api".parse().unwrap(), service)]),
        timeout: HumanDuration::from_secs(10),
    }
}

pub(crate) fn deploy(tag: &str) -> DeployRequest {
    DeployRequest {
        images: BTreeMap::from([(
            "api".parse().unwrap(),
            format!("demo/api:{tag}").parse().unwrap(),
        )]),
        description: format!("deploy {tag}"),
    }
}

/// Deploys `tag` and waits up to 10 s for the verdict.
pub(crate) async fn deploy_and_wait(
    provider: &LocalProvider,
    tag: &str,
) -> Result<Verdict, ProviderError> {
    let deployment = provider.deploy(&deploy(tag)).await?;
    provider
        .wait(
            &deployment,
            Instant::now() + Duration::from_secs(10),
            &|_: &shipgate_provider::WaitProgress| {},
            &CancellationToken::new(),
        )
        .await
}

pub(crate) async fn get(port: u16, path: &str) -> Option<String> {
    let client = shipgate_http::build_client(&shipgate_http::ClientOptions::default()).unwrap();
    let response = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .ok()?;
    response.status().is_success().then_some(())?;
    response.text().await.ok()
}
