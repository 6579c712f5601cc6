//! `shipgate secrets check`: which secrets resolve, from which source; never a value.

use std::collections::BTreeMap;
use std::path::PathBuf;

use shipgate_core::exit_code;
use shipgate_secrets::KeyStatus;

use crate::error::{CommandResult, Failure};
use crate::{Format, load_config, runtime};

/// Arguments of `secrets`.
#[derive(Debug, clap::Subcommand)]
pub enum SecretsCommand {
    /// List which secrets resolve, from which source, with a salted fingerprint: never a
    /// value.
    ///
    /// Keys: --key, else every `[secrets.keys]` entry and every variable check-env requires. Exit codes: 0 every key found, 1 a key missing or its source failed, 2 usage.
    Check(CheckArgs),
}

/// Arguments of `secrets check`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  shipgate secrets check --config shipgate.toml
  shipgate secrets check --key DATABASE_URL --key RAILWAY_TOKEN --format json

The fingerprint is the first 8 hex digits of SHA-256(salt + value), salt = SHIPGATE_FINGERPRINT_SALT or `shipgate:<app>`: it changes when the secret changes and reveals nothing else.")]
pub struct CheckArgs {
    /// Configuration file [default: $SHIPGATE_CONFIG, else ./shipgate.toml if present].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Environment name; overrides DEPLOY_ENVIRONMENT, ENVIRONMENT and the file.
    #[arg(long, value_name = "NAME")]
    environment: Option<String>,
    /// Keys to resolve (repeatable or comma-separated).
    #[arg(long = "key", value_name = "NAME", value_delimiter = ',')]
    keys: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Runs `secrets …`.
pub(crate) fn run(command: SecretsCommand, vars: &BTreeMap<String, String>) -> CommandResult {
    match command {
        SecretsCommand::Check(args) => check(args, vars),
    }
}

fn check(args: CheckArgs, vars: &BTreeMap<String, String>) -> CommandResult {
    let (loaded, _) = load_config(args.config, args.environment.as_deref(), vars)?;
    let composition = crate::composition(loaded, vars);
    let config = composition.config();
    let mut keys: Vec<String> = args
        .keys
        .iter()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        keys.extend(config.secrets.keys.keys().cloned());
        let input = shipgate_env::CheckInput::new(config, vars);
        keys.extend(
            shipgate_env::rule_variables(&input)
                .into_iter()
                .filter(|(_, required)| *required)
                .map(|(name, _)| name),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    let resolver = composition.secrets()?;
    let salt = vars
        .get("SHIPGATE_FINGERPRINT_SALT")
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| format!("shipgate:{}", config.app.as_deref().unwrap_or("")));
    let runtime = runtime()?;
    let statuses: Vec<KeyStatus> = runtime.block_on(async {
        let mut statuses = Vec::new();
        for key in &keys {
            let resolution = resolver.resolve(key).await;
            statuses.push(KeyStatus::from_resolution(
                key,
                &resolution,
                salt.as_bytes(),
            ));
        }
        statuses
    });
    let ok = statuses.iter().all(|s| s.status == "found");
    match args.format {
        Format::Json => {
            let report = serde_json::json!({
                "schema_version": 1,
                "passed": ok,
                "sources": resolver.source_names(),
                "keys": statuses,
            });
            match serde_json::to_string_pretty(&report) {
                Ok(json) => println!("{json}"),
                Err(err) => return Err(Failure::usage(format!("cannot render the report: {err}"))),
            }
        }
        Format::Text => {
            let found = statuses.iter().filter(|s| s.status == "found").count();
            say!(
                "secrets check {}: {found}/{} keys resolve (sources: {})",
                if ok { "passed" } else { "FAILED" },
                statuses.len(),
                resolver.source_names().join(", ")
            );
            for s in &statuses {
                let source = s.source.as_deref().unwrap_or("-");
                let fingerprint = s.fingerprint.as_deref().unwrap_or("-");
                let detail = s
                    .detail
                    .as_deref()
                    .map(|d| format!("  {d}"))
                    .unwrap_or_default();
                say!(
                    "  {:<14} {:<32} {source:<12} {fingerprint}{detail}",
                    s.status,
                    s.key
                );
            }
        }
    }
    Ok(if ok {
        exit_code::OK
    } else {
        exit_code::CHECK_FAILED
    })
}
