//! A custom pipeline: deploys the demo service with the local provider as `shipgate deploy`
//! would, from this program, with its own progress output. v1 passes its smoke gate; v2-broken
//! fails it and is rolled back to v1, which is read back and smoke-tested again.
//!
//! ```sh
//! cargo build -p shipgate-local --bins      # the router and the demo service
//! cargo run -p shipgate-compose --example custom_pipeline
//! ```
//!
//! Exits 0 when both deploys ended as expected.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use shipgate_compose::{ComposeOptions, Composition, DeployOptions};
use shipgate_pipeline::{Outcome, PipelineEvent};
use shipgate_provider::Provider;
use tokio_util::sync::CancellationToken;

/// The configuration, as a team would write it; paths and the port are filled in below.
const CONFIG: &str = r#"
app = "demo"
environment = "staging"

[services.api]
image = "demo/api"

[targets.local]
enabled = true
state_dir = "STATE"
timeout = "20s"

[targets.local.services.api]
command = ["DEMO", "--port", "{port}", "--version", "{tag}"]
port = PORT
health_path = "/healthz"

[smoke]
enabled = true
base_url = "http://127.0.0.1:PORT"
allow_insecure = true

[[smoke.checks]]
name = "orders"
path = "/api/orders"
status = 200

[rollback]
auto = true

[ledger]
url = "sqlite://LEDGER"
"#;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("custom_pipeline: {err}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    // cargo puts examples in target/<profile>/examples and binaries one level up.
    let bin_dir = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or("cannot locate the build directory")?;
    let (demo, router) = (
        bin_dir.join("shipgate-demo-service"),
        bin_dir.join("shipgate-local-router"),
    );
    if !demo.is_file() || !router.is_file() {
        return Err(format!(
            "{} and {} are missing: run `cargo build -p shipgate-local --bins` first",
            demo.display(),
            router.display()
        )
        .into());
    }
    let work = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config_file = work.path().join("shipgate.toml");
    std::fs::write(
        &config_file,
        CONFIG
            .replace("STATE", &work.path().join("local").display().to_string())
            .replace("DEMO", &demo.display().to_string())
            .replace("PORT", &port.to_string())
            .replace(
                "LEDGER",
                &work.path().join("ledger.db").display().to_string(),
            ),
    )?;

    let mut ok = true;
    for (tag, expected) in [
        ("v1", Outcome::Succeeded),
        ("v2-broken", Outcome::RolledBack),
    ] {
        let composition = compose(&config_file, tag, router.clone())?;
        let release = composition.release()?;
        let started = Instant::now();
        // Our own progress output: the events are typed, so we pick what we show.
        let events = move |event: &PipelineEvent| match event {
            PipelineEvent::Deploying { target, images } => {
                println!(
                    "[{:>5.1}s] {target} ← {images}",
                    started.elapsed().as_secs_f64()
                );
            }
            PipelineEvent::Healthy { target, revision } => {
                println!(
                    "[{:>5.1}s] {target} healthy at revision {revision}",
                    started.elapsed().as_secs_f64()
                );
            }
            PipelineEvent::RollingBack { target, revision } => {
                println!(
                    "[{:>5.1}s] {target} ROLLING BACK to revision {revision}",
                    started.elapsed().as_secs_f64()
                );
            }
            PipelineEvent::RolledBack {
                target, read_back, ..
            } => {
                println!(
                    "[{:>5.1}s] {target} rolled back; it runs {read_back}",
                    started.elapsed().as_secs_f64()
                );
            }
            PipelineEvent::Warning { message } => eprintln!("warning: {message}"),
            _ => {}
        };
        let summary = composition
            .deploy(
                &release,
                &DeployOptions::default(),
                &events,
                &CancellationToken::new(),
            )
            .await?;
        println!(
            "{tag}: {} (exit {}): {}\n",
            summary.outcome.as_str(),
            summary.exit_code,
            summary.message
        );
        ok &= summary.outcome == expected;
    }

    // What serves now, read back from the provider: v1 after the rollback.
    let composition = compose(&config_file, "v1", router)?;
    let provider = composition.local_provider()?;
    let running = provider.current().await?;
    for r in &running {
        println!(
            "now running: {} = {} (revision {})",
            r.service, r.image, r.revision
        );
    }
    ok &= running.iter().all(|r| r.image.tag() == Some("v1"));
    provider.shutdown().await?;
    Ok(ok)
}

/// The configuration file with `tag` as the image tag (the role of `--image-tag`), composed
/// with the router built beside this example.
fn compose(
    file: &Path,
    tag: &str,
    router: PathBuf,
) -> Result<Composition, shipgate_config::ConfigError> {
    let vars = BTreeMap::new();
    let loaded = shipgate_config::load(&shipgate_config::LoadOptions {
        file: Some(file),
        vars: &vars,
        overrides: &[("image.tag", tag, "custom_pipeline")],
    })?;
    let options = ComposeOptions {
        local_router: Some(vec![router.display().to_string()]),
        ..ComposeOptions::default()
    };
    Ok(Composition::new(loaded, vars, options))
}
