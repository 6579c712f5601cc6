//! `shipgate dashboard`: the read-only web dashboard over the ledger.

use std::collections::BTreeMap;
use std::path::PathBuf;

use shipgate_core::exit_code;

use crate::error::{CommandResult, Failure};
use crate::shutdown_signal;

/// Arguments of `dashboard`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Pages: / (what each environment runs now, its last run, lock, open alerts and the last 30 days' delivery figures), /timeline?app=A&environment=E (every run on a time axis, filters by service, outcome and range), /runs/ID (steps, targets, smoke reports, rollback decision, the summary JSON), /delivery (weekly DORA charts over 26 weeks), /health (monitor targets with check latency p50/p95). Each has a JSON twin under /api/ (docs/dashboard.md).

It reads the ledger and never writes to it. It binds 127.0.0.1 by default; any other address needs an access rule in [dashboard]: token (a secret key holding a bearer token), basic_user + basic_password (a secret key), or trust_proxy_header behind an authenticating proxy. Without one it refuses to start. `shipgate monitor` serves the same pages.

Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM); 2 usage, configuration, access rule or ledger error.

Examples:
  shipgate dashboard                              # http://127.0.0.1:9465
  shipgate dashboard --listen 127.0.0.1:8080
  shipgate dashboard --listen 0.0.0.0:9465     # with [dashboard] token = \"KEY\"")]
pub struct Args {
    /// Configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to serve on (default: [dashboard] listen, 127.0.0.1:9465).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

/// Runs `dashboard`.
pub(crate) fn run(args: Args, vars: &BTreeMap<String, String>) -> CommandResult {
    let composition = crate::compose(args.config.clone(), &[], vars)?;
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| composition.config().dashboard.listen.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| Failure::usage(format!("cannot start the async runtime: {err}")))?;
    rt.block_on(async move {
        let dashboard = composition.dashboard().await?;
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|err| {
                Failure::usage(format!(
                    "cannot listen on {listen} ([dashboard] listen or --listen): {err}"
                ))
            })?;
        let address = listener
            .local_addr()
            .map_err(|err| Failure::usage(format!("cannot listen on {listen}: {err}")))?;
        dashboard
            .access()
            .check_bind(address)
            .map_err(Failure::usage)?;
        tell!("shipgate: dashboard on http://{address} (read-only; Ctrl-C stops it)");
        let cancel = shutdown_signal();
        dashboard
            .serve(listener, cancel)
            .await
            .map_err(|err| Failure::usage(format!("the dashboard stopped: {err}")))?;
        tell!("shipgate: dashboard stopped");
        Ok(exit_code::OK)
    })
}
