//! The smoke engine alone, with a spec built in code: checks a service's health and one API
//! call, prints the report, and exits 1 when a critical check failed.
//!
//! ```sh
//! cargo run -p shipgate-smoke --example spec_in_code -- http://127.0.0.1:8080
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Duration;

use shipgate_core::Redactor;
use shipgate_smoke::{CheckBuilder, SmokeRunner, SpecBuilder};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let base_url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let spec = match SpecBuilder::new(base_url)
        .timeout(Duration::from_secs(5))
        .check(
            CheckBuilder::get("health", "/healthz")
                .status(200)
                .retry(5, Duration::from_secs(1)),
        )
        .check(
            CheckBuilder::get("version", "/version")
                .max_latency(Duration::from_millis(500))
                .non_critical(),
        )
        .build()
    {
        Ok(spec) => spec,
        Err(err) => {
            for problem in &err.problems {
                eprintln!("{}: {} ({})", problem.key, problem.message, problem.hint);
            }
            return ExitCode::from(2);
        }
    };
    let mut runner = match SmokeRunner::new(Redactor::default()) {
        Ok(runner) => runner,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    match runner.run(&spec, &CancellationToken::new()).await {
        Ok(report) => {
            print!("{}", report.to_text());
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(2)
        }
    }
}
