//! `shipgate secrets check`, and the resolver every command builds from `[secrets]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use shipgate_config::Config;
use shipgate_core::{Environment, exit_code};
use shipgate_http::{ClientOptions, RetryPolicy, build_client};
use shipgate_secrets::{BuildContext, KeyStatus, SecretResolver, build_sources};

use crate::{Format, load_config, log_redactor, runtime, usage_error};

/// Builds the configured secret sources for `config`, sharing the log
/// redactor so that every value found is masked in logs. A source that cannot be built is a
/// usage error (exit 2) naming the source and what it needs.
pub(crate) fn resolver(
    config: &Config,
    vars: &BTreeMap<String, String>,
) -> Result<SecretResolver, u8> {
    let environment = Environment::classify(config.environment.as_deref());
    // Paths written in the configuration file are already relative to it (the loader anchors
    // them); any other relative path is relative to the current directory.
    let base_dir = PathBuf::from(".");
    let client = build_client(&ClientOptions::default()).map_err(usage_error)?;
    let ctx = BuildContext {
        vars,
        environment: &environment,
        base_dir: &base_dir,
        client,
        policy: RetryPolicy::default(),
    };
    let sources = build_sources(&config.secrets, &ctx).map_err(usage_error)?;
    Ok(SecretResolver::new(sources, config.secrets.keys.clone())
        .with_redactor(log_redactor().clone()))
}

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

The fingerprint is the first 8 hex digits of SHA-256(salt + value), salt = SHIPGATE_FINGERPRINT_SALT
or `shipgate:<app>`: it changes when the secret changes and reveals nothing else.")]
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
pub(crate) fn run(command: SecretsCommand, vars: &BTreeMap<String, String>) -> u8 {
    match command {
        SecretsCommand::Check(args) => check(args, vars),
    }
}

fn check(args: CheckArgs, vars: &BTreeMap<String, String>) -> u8 {
    let (loaded, _) = match load_config(args.config, args.environment.as_deref(), vars) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let config = &loaded.config;
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
    let resolver = match resolver(config, vars) {
        Ok(resolver) => resolver,
        Err(code) => return code,
    };
    let salt = vars
        .get("SHIPGATE_FINGERPRINT_SALT")
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| format!("shipgate:{}", config.app.as_deref().unwrap_or("")));
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
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
                Err(err) => return usage_error(format!("cannot render the report: {err}")),
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
    if ok {
        exit_code::OK
    } else {
        exit_code::CHECK_FAILED
    }
}
