//! The smoke engine alone, with a spec built in code: starts the demo service, checks its
//! health and one API call, prints the report, and stops the service.
//!
//! ```sh
//! cargo build -p shipgate-local --bins      # the demo service
//! cargo run -p shipgate-compose --example smoke_alone
//! ```
//!
//! Exits 0 when every critical check passed.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use shipgate_core::Redactor;
use shipgate_smoke::{CheckBuilder, SmokeRunner, SpecBuilder};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("smoke_alone: {err}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let demo = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("shipgate-demo-service"))
        .filter(|path| path.is_file())
        .ok_or("the demo service is missing: run `cargo build -p shipgate-local --bins` first")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut service = tokio::process::Command::new(demo)
        .args(["--port", &port.to_string(), "--version", "v1"])
        .kill_on_drop(true)
        .spawn()?;

    // The health check retries while the service starts; the API check must be fast.
    let spec = SpecBuilder::new(format!("http://127.0.0.1:{port}"))
        .timeout(Duration::from_secs(5))
        .allow_insecure()
        .check(
            CheckBuilder::get("health", "/healthz")
                .status(200)
                .retry(20, Duration::from_millis(250)),
        )
        .check(
            CheckBuilder::get("orders", "/api/orders")
                .status(200)
                .max_latency(Duration::from_secs(2)),
        )
        .build()
        .map_err(|err| {
            err.problems
                .iter()
                .map(|p| format!("{}: {} ({})", p.key, p.message, p.hint))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
    let mut runner = SmokeRunner::new(Redactor::default())?;
    let report = runner.run(&spec, &CancellationToken::new()).await?;
    print!("{}", report.to_text());
    service.kill().await?;
    Ok(report.passed)
}
