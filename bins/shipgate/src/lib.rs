//! The shipgate command line: parse, compose the library crates, render, exit.
//!
//! This is the only crate that reads the process environment and writes to the terminal.
//! Exit codes are the constants of [`shipgate_core::exit_code`], documented in
//! `docs/exit-codes.md`.

#![allow(clippy::print_stdout, clippy::print_stderr)]
// The commands' doc comments are their `--help` text, where `[smoke]` is a TOML section, not
// an intra-doc link.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::private_intra_doc_links)]

/// Prints a line for people on stdout, as [`for_people`] makes it.
macro_rules! say {
    ($($arg:tt)*) => { println!("{}", $crate::for_people(&format!($($arg)*))) };
}

/// Prints a line for people on stderr (progress, warnings, errors), as [`for_people`] makes it.
macro_rules! tell {
    ($($arg:tt)*) => { eprintln!("{}", $crate::for_people(&format!($($arg)*))) };
}

mod check_env;
mod ci_gate;
mod dashboard;
mod deploy;
mod doctor;
mod error;
mod init;
mod ledger;
mod local;
mod monitor;
mod notify;
mod plan;
mod report;
mod rollback;
mod secrets;
mod smoke;
mod term;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shipgate_core::exit_code;

use crate::error::Failure;

/// The version and the commit the binary was built from (`0.1.0 (f1e3b44650d8)`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SHIPGATE_GIT_COMMIT"),
    ")"
);

/// Deploy pinned container images, gate them with smoke tests, and roll back by itself.
#[derive(Debug, Parser)]
#[command(
    name = "shipgate",
    version = VERSION,
    about,
    long_about = None
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands. Each lands with its issue; none is declared before it works.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented shipgate.toml and .github/workflows/deploy.yml for this repository,
    /// from what it holds (Helm chart, fly.toml, railway.json, .env.sample, Makefile,
    /// workflows).
    ///
    /// Never overwrites a file without --force; --dry-run prints instead.
    /// Exit codes: 0 written (or printed), 2 a file exists or the directory cannot be read.
    Init(init::Args),
    /// Check, with read-only calls, everything a deploy of this configuration will need:
    /// variables, release, ledger, each target's token and what it runs, registry tags,
    /// GitHub check runs, the smoke target.
    ///
    /// Exit codes: 0 all good, 1 something would fail a deploy, 2 usage or configuration.
    Doctor(doctor::Args),
    /// Check that the runtime environment has every variable a deploy needs, well-formed.
    ///
    /// Production-like environments (prod, production, staging, any unknown name, or none)
    /// fail on a missing variable; dev, test and local only warn. Values are never printed.
    /// Exit codes: 0 ok, 1 check failed, 2 usage or configuration error.
    #[command(name = "check-env")]
    CheckEnv(check_env::Args),
    /// Run smoke checks against a deployed service: the gate that decides whether a deploy
    /// stays.
    ///
    /// Checks come from a spec file, the [smoke] section of shipgate.toml, or quick flags.
    /// Exit codes: 0 every critical check passed, 1 a critical check failed, 2 bad spec or
    /// usage, 130 interrupted.
    Smoke(smoke::Args),
    /// Inspect the configured secret sources ([secrets]) without printing a value.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Deploy a pinned image tag, gate it with smoke tests, roll back by itself.
    ///
    /// Exit codes: 0 succeeded, 1 failed (nothing live changed), 2 usage, 3 rolled back,
    /// 4 rollback failed, 5 unhealthy (rollback disabled), 130 interrupted.
    Deploy(deploy::Args),
    /// What a deploy would change, per target and service, and the rollback candidate;
    /// changes nothing (`deploy --dry-run`).
    ///
    /// Exit codes: 0 planned, 2 usage or a target that cannot be reached.
    Plan(deploy::Args),
    /// The deploy ledger: runs, steps, deployments.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// The deploy lock of an app and environment.
    #[command(subcommand)]
    Lock(ledger::LockCommand),
    /// Delivery metrics (deploy frequency, change failure rate, time to restore) from the
    /// ledger.
    Report(report::Args),
    /// Scheduled health checks with de-duplicated alerts (GitHub issue, Slack, webhooks);
    /// `--once` for cron, or long-running with /metrics and /healthz.
    ///
    /// Exit codes: --once 0 healthy, 1 a check failed; 0 after a clean shutdown; 2 usage.
    Monitor(monitor::Args),
    /// A read-only web dashboard over the ledger: what runs where, every run on a timeline,
    /// delivery charts and monitor health, each page with a JSON twin.
    ///
    /// Exit codes: 0 after a clean shutdown; 2 usage, configuration or access rule.
    Dashboard(dashboard::Args),
    /// Shell completions: `shipgate completions bash > /etc/bash_completion.d/shipgate`.
    ///
    /// Prints the completion script of bash, zsh, fish, powershell or elvish on stdout.
    Completions(Completions),
    /// Man pages: `shipgate man` prints shipgate(1); `--dir DIR` writes one page per command.
    Man(Man),
    /// Notifications: `notify deliver` retries queued ones.
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// Rollback decisions: `rollback plan --failing SHA`.
    #[command(subcommand)]
    Rollback(rollback::RollbackCommand),
    /// The local provider's processes.
    #[command(subcommand)]
    Local(local::LocalCommand),
    /// The local provider's router (started by `shipgate deploy` for [targets.local]).
    #[command(name = "local-router", hide = true)]
    LocalRouter(Passthrough),
    /// The README demo's service (`{shipgate} demo-service --port P --version V`).
    #[command(name = "demo-service", hide = true)]
    DemoService(Passthrough),
    /// Refuse to deploy a commit unless its required GitHub checks passed.
    ///
    /// Exit codes: 0 passed, 1 failed or timed out, 2 usage, 130 interrupted.
    #[command(name = "ci-gate")]
    CiGate(ci_gate::Args),
}

/// The arguments of a helper program that `shipgate` runs as a hidden subcommand.
#[derive(Debug, clap::Args)]
pub struct Passthrough {
    /// The helper's own arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `shipgate local-router …`: the local provider's router, as `shipgate-local-router`.
fn local_router(args: &Passthrough) -> Result<u8, Failure> {
    let args = shipgate_local::proxy::ProxyArgs::parse(&args.args)
        .map_err(|usage| Failure::usage(format!("usage: shipgate local-router {usage}")))?;
    let runtime = light_runtime()?;
    let Err(err) = runtime.block_on(shipgate_local::proxy::serve(args, |problem| {
        tell!("shipgate local-router: {problem}");
    }));
    Err(Failure::usage(format!("local-router: {err}")))
}

/// `shipgate demo-service …`: the README demo's service, as `shipgate-demo-service`.
fn demo_service(args: &Passthrough) -> Result<u8, Failure> {
    let args = shipgate_local::demo::DemoArgs::parse(&args.args)
        .map_err(|usage| Failure::usage(format!("usage: shipgate demo-service {usage}")))?;
    let runtime = light_runtime()?;
    match runtime.block_on(shipgate_local::demo::serve(args, |port| {
        tell!("demo: listening on {port}");
    })) {
        Ok(shipgate_local::demo::DemoEnd::Crashed) => {
            tell!("demo: crashing on purpose");
            Ok(3)
        }
        Ok(shipgate_local::demo::DemoEnd::Stopped) => Ok(exit_code::OK),
        Err(err) => Err(Failure::usage(format!("demo: {err}"))),
    }
}

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
pub struct Completions {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Arguments of `man`.
#[derive(Debug, clap::Args)]
pub struct Man {
    /// Write shipgate.1 and one page per command (shipgate-deploy.1, …) into this directory
    /// instead of printing shipgate.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn completions(args: &Completions) -> Result<u8, Failure> {
    use clap::CommandFactory as _;
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "shipgate",
        &mut std::io::stdout(),
    );
    Ok(exit_code::OK)
}

fn man(args: &Man) -> Result<u8, Failure> {
    use clap::CommandFactory as _;
    let command = Cli::command();
    match &args.dir {
        None => match clap_mangen::Man::new(command).render(&mut std::io::stdout()) {
            // `shipgate man | head` closed the pipe: nothing more to say.
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(Failure::usage(format!("cannot write the man page: {err}")));
            }
            _ => {}
        },
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|err| {
                Failure::usage(format!("cannot create {} (--dir): {err}", dir.display()))
            })?;
            clap_mangen::generate_to(command, dir).map_err(|err| {
                Failure::usage(format!(
                    "cannot write man pages into {} (--dir): {err}",
                    dir.display()
                ))
            })?;
        }
    }
    Ok(exit_code::OK)
}

/// Output format shared by the commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: grouped, with a fix per problem.
    Text,
    /// For machines: the documented, versioned JSON report.
    Json,
}

/// Runs the CLI with the process arguments and environment.
pub fn main_impl() -> ExitCode {
    // `shipgate --version` alone (install checks, CI logs) answers without building the
    // whole command tree: half of its start-up time.
    let mut args = std::env::args_os().skip(1);
    if let (Some(flag), None) = (args.next(), args.next())
        && (flag == "--version" || flag == "-V")
    {
        println!("shipgate {VERSION}");
        return ExitCode::from(exit_code::OK);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // Help asked for is a success; help shown because a command is missing
            // (`shipgate` alone) is a usage error: a CI step must not pass doing nothing.
            return match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::from(exit_code::OK)
                }
                _ => ExitCode::from(exit_code::USAGE),
            };
        }
    };
    let vars = process_vars();
    init_logging(&vars);
    mask_secrets_in_actions(&vars);
    let result = match cli.command {
        Command::Init(args) => init::run(&args),
        Command::Doctor(args) => doctor::run(args, &vars),
        Command::CheckEnv(args) => check_env::run(args, &vars),
        Command::Smoke(args) => smoke::run(args, &vars),
        Command::Secrets(command) => secrets::run(command, &vars),
        Command::Deploy(args) => deploy::run(args, &vars),
        Command::Plan(args) => deploy::run(args.dry_run(), &vars),
        Command::Ledger(command) => ledger::ledger(command, &vars),
        Command::Lock(command) => ledger::lock(command, &vars),
        Command::Rollback(command) => rollback::run(command, &vars),
        Command::Notify(command) => notify::run(command, &vars),
        Command::Report(args) => report::run(args, &vars),
        Command::Monitor(args) => monitor::run(args, &vars),
        Command::Dashboard(args) => dashboard::run(args, &vars),
        Command::Completions(args) => completions(&args),
        Command::Man(args) => man(&args),
        Command::Local(command) => local::run(command, &vars),
        Command::CiGate(args) => ci_gate::run(args, &vars),
        Command::LocalRouter(args) => local_router(&args),
        Command::DemoService(args) => demo_service(&args),
    };
    // The one place where a failure becomes a message and an exit code.
    ExitCode::from(result.unwrap_or_else(|failure| failure.report()))
}

/// Names of variables set to a value that is not UTF-8 (left out of [`process_vars`]), so that
/// check-env can say "set, but not text" instead of "not set".
static NOT_UTF8: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// A snapshot of the process environment. Variables whose name or value is not UTF-8 are
/// left out (no shipgate variable can be such); the names of those with a UTF-8 name are kept
/// in [`NOT_UTF8`].
fn process_vars() -> BTreeMap<String, String> {
    let mut not_utf8 = Vec::new();
    let vars = std::env::vars_os()
        .filter_map(|(k, v)| {
            let name = k.into_string().ok()?;
            match v.into_string() {
                Ok(value) => Some((name, value)),
                Err(_) => {
                    not_utf8.push(name);
                    None
                }
            }
        })
        .collect();
    let _ = NOT_UTF8.set(not_utf8);
    vars
}

/// Variables set to a value that is not UTF-8 text.
fn not_utf8_vars() -> Vec<String> {
    NOT_UTF8.get().cloned().unwrap_or_default()
}

/// The configuration file to use: `--config`, else `SHIPGATE_CONFIG`, else `./shipgate.toml`
/// when it exists, else none (defaults and variables only).
fn config_path(flag: Option<PathBuf>, vars: &BTreeMap<String, String>) -> Option<PathBuf> {
    flag.or_else(|| {
        vars.get("SHIPGATE_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .or_else(|| {
        let default = Path::new(shipgate_config::DEFAULT_FILE_NAME);
        default.is_file().then(|| default.to_owned())
    })
}

/// The redactor every log line passes through; resolvers and the smoke runner register the
/// secret values they handle in it.
fn log_redactor() -> &'static shipgate_core::Redactor {
    static REDACTOR: std::sync::OnceLock<shipgate_core::Redactor> = std::sync::OnceLock::new();
    REDACTOR.get_or_init(shipgate_core::Redactor::default)
}

/// Text for people, as every human-readable line shipgate prints goes out: known secrets and
/// credentials masked, and control characters shown as escapes, so text that came from a
/// server or a platform (a body, a header, a log line) cannot drive the terminal or forge a
/// line. Machine output (JSON on stdout, report files) is written as serialised instead.
fn for_people(text: &str) -> String {
    shipgate_core::printable(&log_redactor().redact(text)).into_owned()
}

/// In GitHub Actions, tells the runner about every secret value shipgate loads
/// (`::add-mask::VALUE` on stdout, before anything could print it), so the runner masks it in
/// every later line of the job, child processes' output included.
fn mask_secrets_in_actions(vars: &BTreeMap<String, String>) {
    if shipgate_compose::ActionsContext::from_vars(vars).in_actions {
        log_redactor().observe(|secret| {
            for line in secret.expose().lines().filter(|l| !l.trim().is_empty()) {
                println!("::add-mask::{line}");
            }
        });
    }
}

/// Logs to stderr at the level of SHIPGATE_LOG (`error` by default; `debug`, `trace`, or an
/// `EnvFilter` directive), every line redacted.
fn init_logging(vars: &BTreeMap<String, String>) {
    let directive = vars
        .get("SHIPGATE_LOG")
        .filter(|v| !v.is_empty())
        .map_or("error", String::as_str);
    let filter = tracing_subscriber::EnvFilter::try_new(directive)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let writer =
        shipgate_secrets::RedactingMakeWriter::new(std::io::stderr, log_redactor().clone());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
}

/// In GitHub Actions (`GITHUB_ACTIONS=true`), prints a workflow annotation (`::error` or
/// `::warning`) so that the outcome shows on the run's page; the message is redacted and
/// escaped as the workflow-command syntax requires.
fn annotate(vars: &BTreeMap<String, String>, level: &str, title: &str, message: &str) {
    if !shipgate_compose::ActionsContext::from_vars(vars).in_actions {
        return;
    }
    let escape = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let message = for_people(message);
    println!(
        "::{level} title={}::{}",
        escape(title).replace(':', "%3A").replace(',', "%2C"),
        escape(&message)
    );
}

/// A single-threaded runtime, for the helper programs the binary runs (the local router, the
/// demo service): no worker threads to start.
fn light_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::usage(format!("cannot start the async runtime: {err}")))
}

/// The async runtime of a command.
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::usage(format!("cannot start the async runtime: {err}")))
}

/// A token cancelled on SIGINT (Ctrl-C) or SIGTERM, so that long waits stop cleanly. Call it
/// inside the async runtime.
fn shutdown_signal() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        tell!("shipgate: interrupted; stopping");
        trigger.cancel();
    });
    token
}

/// Loads the configuration as every command does: `--config` (else `$SHIPGATE_CONFIG`, else
/// `./shipgate.toml`), the variables, and `--environment` as the strongest override. Returns
/// the file used, if any.
fn load_config(
    flag: Option<PathBuf>,
    environment: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<(shipgate_config::Loaded, Option<PathBuf>), Failure> {
    let overrides: Vec<(String, String, &str)> = environment
        .map(|env| ("environment".to_owned(), env.to_owned(), "--environment"))
        .into_iter()
        .collect();
    load_with(flag, &overrides, vars)
}

/// Loads the configuration with command-line overrides: (dotted key, value, flag).
fn load_with(
    flag: Option<PathBuf>,
    overrides: &[(String, String, &str)],
    vars: &BTreeMap<String, String>,
) -> Result<(shipgate_config::Loaded, Option<PathBuf>), Failure> {
    let file = config_path(flag, vars);
    let refs: Vec<(&str, &str, &str)> = overrides
        .iter()
        .map(|(k, v, f)| (k.as_str(), v.as_str(), *f))
        .collect();
    let loaded = shipgate_config::load(&shipgate_config::LoadOptions {
        file: file.as_deref(),
        vars,
        overrides: &refs,
    })?;
    Ok((loaded, file))
}

/// The `--target` flag as overrides of every `[targets.X] enabled`.
fn target_overrides(raw: &str) -> Result<Vec<(String, String, &'static str)>, Failure> {
    let names = shipgate_config::parse_runtime_target(raw)
        .map_err(|e| Failure::usage(format!("--target: {e}")))?;
    Ok(["helm", "railway", "fly", "local"]
        .into_iter()
        .map(|kind| {
            (
                format!("targets.{kind}.enabled"),
                names.contains(&kind).to_string(),
                "--target",
            )
        })
        .collect())
}

/// The composition of a loaded configuration, sharing the log redactor.
fn composition(
    loaded: shipgate_config::Loaded,
    vars: &BTreeMap<String, String>,
) -> shipgate_compose::Composition {
    // The local provider's router and the demo service run from this very binary.
    let exe = std::env::current_exe().ok();
    let options = shipgate_compose::ComposeOptions {
        redactor: log_redactor().clone(),
        not_utf8: not_utf8_vars(),
        local_router: exe.as_ref().map(|exe| {
            vec![
                exe.display().to_string(),
                shipgate_local::ROUTER_SUBCOMMAND.to_owned(),
            ]
        }),
        shipgate_exe: exe,
        ..shipgate_compose::ComposeOptions::default()
    };
    shipgate_compose::Composition::new(loaded, vars.clone(), options)
}

/// Loads the configuration with overrides and composes it.
fn compose(
    flag: Option<PathBuf>,
    overrides: &[(String, String, &str)],
    vars: &BTreeMap<String, String>,
) -> Result<shipgate_compose::Composition, Failure> {
    let (loaded, _) = load_with(flag, overrides, vars)?;
    Ok(composition(loaded, vars))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// clap wraps each line of `after_help` to the terminal on its own: a paragraph is one
    /// line (a second line would start a ragged new one), and an indented example or table
    /// line fits in 80 columns (it would be cut in the middle of a command).
    #[test]
    fn help_paragraphs_are_single_lines_and_examples_fit_80_columns() {
        fn walk(command: &clap::Command, path: &str, long: &mut Vec<String>) {
            for text in [command.get_after_help(), command.get_after_long_help()]
                .into_iter()
                .flatten()
            {
                let text = text.to_string();
                let mut previous = "";
                for line in text.lines() {
                    let indented = line.starts_with(' ');
                    if indented && line.chars().count() > 80 {
                        long.push(format!("{path}: over 80 columns: {line}"));
                    }
                    let continues = !line.is_empty()
                        && !indented
                        && !previous.is_empty()
                        && !previous.starts_with(' ')
                        && !previous.ends_with(':');
                    if continues {
                        long.push(format!("{path}: a paragraph broken before: {line}"));
                    }
                    previous = line;
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), long);
            }
        }
        let mut long = Vec::new();
        walk(&super::Cli::command(), "shipgate", &mut long);
        assert!(
            long.is_empty(),
            "help text clap would wrap badly:\n{}",
            long.join("\n")
        );
    }
}
