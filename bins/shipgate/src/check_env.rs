//! `shipgate check-env`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use shipgate_config::Origin;
use shipgate_core::exit_code;
use shipgate_env::{CheckInput, DotenvFile, Report, Severity, VarStatus};

use crate::error::{CommandResult, Failure};
use crate::{Format, load_config};

/// The dotenv sample used when no configuration names one.
const DEFAULT_SAMPLE: &str = ".env.sample";

/// Arguments of `check-env`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  shipgate check-env         # every name of ./.env.sample (make check-prod-env)
  shipgate check-env --config shipgate.toml --format json
  PROD_REQUIRED_ENV_VARS=\"DATABASE_URL AUTH_ISSUER\" shipgate check-env
  shipgate check-env --environment dev --env-file .env.dev
  shipgate check-env --env-sample .env.sample   # also check its drift")]
pub struct Args {
    /// Configuration file [default: $SHIPGATE_CONFIG, else ./shipgate.toml if present].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Environment name; overrides DEPLOY_ENVIRONMENT, ENVIRONMENT and the file.
    #[arg(long, value_name = "NAME")]
    environment: Option<String>,
    /// Required variables (comma-separated or repeated); replaces every other required set.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    required: Vec<String>,
    /// A dotenv file layered under the process environment. Development-like environments
    /// only: production variables are injected at run time.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// A .env.sample to check for drift [default: `[env] sample` of the configuration].
    #[arg(long, value_name = "FILE")]
    env_sample: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Runs the command and returns its exit code.
pub(crate) fn run(args: Args, vars: &BTreeMap<String, String>) -> CommandResult {
    let (loaded, file) = load_config(args.config, args.environment.as_deref(), vars)?;
    let env_file = args
        .env_file
        .as_deref()
        .map(DotenvFile::read)
        .transpose()
        .map_err(Failure::usage)?;
    // A `[env] sample` written in the file is relative to it (the loader anchors it). With no
    // configuration file, `./.env.sample` is the app's list of variables when it exists.
    let sample_path = args
        .env_sample
        .or_else(|| loaded.config.env.sample.clone())
        .or_else(|| {
            let default = std::path::Path::new(DEFAULT_SAMPLE);
            (file.is_none() && default.is_file()).then(|| default.to_owned())
        });
    let sample = sample_path
        .as_deref()
        .map(DotenvFile::read)
        .transpose()
        .map_err(Failure::usage)?;

    let describe = |origin: Origin| match origin {
        Origin::Default => None,
        other => Some(other.to_string()),
    };
    // `--required ""` or `PROD_REQUIRED_ENV_VARS=" , "`: a required set given that names
    // nothing is an empty override, which fails closed.
    let blank_variable = vars
        .get("PROD_REQUIRED_ENV_VARS")
        .is_some_and(|v| !v.is_empty() && v.split([' ', ',']).all(str::is_empty));
    let (required_override, required_origin) = if !args.required.is_empty() {
        let names: Vec<String> = args
            .required
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        (Some(names), None)
    } else if blank_variable {
        (
            Some(Vec::new()),
            Some("environment variable PROD_REQUIRED_ENV_VARS".to_owned()),
        )
    } else {
        (
            None,
            (loaded.config.env.required.is_some())
                .then(|| loaded.origin_of("env.required").and_then(describe))
                .flatten(),
        )
    };
    // Origins are looked up only for keys that are set: a file origin costs a lookup of the
    // key's line in the file.
    let environment_origin = (loaded.config.environment.is_some())
        .then(|| loaded.origin_of("environment").and_then(describe))
        .flatten();
    let composition = crate::composition(loaded, vars);
    let mut input = CheckInput {
        config: composition.config(),
        vars,
        environment_origin,
        config_origin: file.as_ref().map(|f| f.display().to_string()),
        // A configuration without `[env] required` or a sample requires what it implies.
        implied_only: file.is_some()
            && composition.config().env.required.is_none()
            && sample.is_none(),
        required_override,
        required_origin,
        not_utf8: crate::not_utf8_vars(),
        env_file: env_file.as_ref(),
        sample: sample.as_ref(),
        secrets: None,
    };
    // Variables the environment lacks may come from the configured secret sources.
    // The multi-threaded runtime: the Kubernetes secret source blocks in place while it builds
    // its client.
    let secrets = crate::runtime()?.block_on(composition.secret_values_for(&input))?;
    input.secrets = secrets.as_ref();
    let report = shipgate_env::check(&input).map_err(Failure::usage)?;
    match args.format {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(err) => return Err(Failure::usage(format!("cannot render the report: {err}"))),
        },
        Format::Text => print!("{}", crate::for_people(&render_text(&report))),
    }
    Ok(if report.passed() {
        exit_code::OK
    } else {
        exit_code::CHECK_FAILED
    })
}

/// `1 error`, `2 errors`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The human report: verdict, context, then problems grouped by severity, each with why
/// and how to fix it.
fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let verdict = if report.ok { "passed" } else { "FAILED" };
    let _ = writeln!(
        out,
        "check-env {verdict}: {}, {}",
        count(s.errors, "error"),
        count(s.warnings, "warning")
    );
    let env = &report.environment;
    let name = env.name.as_deref().unwrap_or("(unset)");
    let _ = write!(out, "  environment:  {name} ({})", kind_label(env));
    if let Some(origin) = &env.origin {
        let _ = write!(out, ", from {origin}");
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "  config:       {}",
        report
            .config
            .as_deref()
            .unwrap_or("(none: built-in defaults)")
    );
    let _ = writeln!(out, "  required set: {}", report.required_set);
    for (severity, title) in [
        (Severity::Error, "errors"),
        (Severity::Warning, "warnings"),
        (Severity::Notice, "notices"),
    ] {
        let group: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title}:");
        for finding in group {
            let _ = writeln!(out, "  - {}", finding.message);
            let _ = writeln!(out, "      why: {}", finding.rule);
            let _ = writeln!(out, "      fix: {}", finding.hint);
        }
    }
    let not_required = report
        .variables
        .iter()
        .filter(|v| v.status == VarStatus::NotRequired)
        .count();
    let problems = report
        .variables
        .iter()
        .filter(|v| v.status == VarStatus::Problem)
        .count();
    let _ = writeln!(
        out,
        "\n{} variables checked: {} ok, {problems} with problems, {not_required} not required here",
        s.checked, s.ok
    );
    out
}

fn kind_label(env: &shipgate_env::EnvironmentReport) -> String {
    use shipgate_core::Classification;
    match env.classification {
        Classification::Recognised => env.kind.to_string(),
        Classification::Unrecognised => format!("not a documented name, treated as {}", env.kind),
        Classification::Unset => format!("treated as {}", env.kind),
    }
}
