//! `shipgate deploy`, `shipgate ledger`, `shipgate lock`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use shipgate_config::{Config, LoadOptions, TargetKind};
use shipgate_core::{Environment, ImageRef, Secret, ServiceName, exit_code};
use shipgate_ledger::{Ledger, now_ms};
use shipgate_local::{LocalOptions, LocalProvider};
use shipgate_pipeline::{Plan, Summary, Target};
use shipgate_provider::{DeployRequest, Provider};
use shipgate_secrets::Resolution;
use shipgate_smoke::{SmokeRunner, SpecOptions};

use crate::{Format, config_path, log_redactor, runtime, shutdown_signal, usage_error};
use crate::{github_report, platforms};

/// Arguments of `deploy`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Flow: check-env → lock (one deploy per app and environment; a second one waits) → CI gate
and migration when configured → deploy each enabled
target → wait for its verdict → smoke gate ([smoke] / ENABLE_DEPLOY_SMOKE_GATE) → on failure
and with [rollback] auto / ENABLE_AUTO_ROLLBACK: roll back to the newest verified good revision and smoke
it → summary (always written) → ledger.

Exit codes: 0 succeeded, 1 failed (nothing live changed), 2 usage or configuration error,
3 rolled back (the previous release is live and passed its smoke), 4 rollback failed
(production may be broken), 5 unhealthy (gate failed, rollback disabled), 6 lock timeout,
7 superseded (a newer deploy queued behind this one, or the release is older than the live
one: see --allow-older), 8 succeeded but the summary file could not be written,
130 interrupted.

Examples:
  shipgate deploy --config shipgate.toml --image-tag 3f2c1a9
  image_tag=3f2c1a9 runtime_target=local shipgate deploy --summary deploy-summary.json
  shipgate deploy --dry-run")]
pub struct Args {
    /// Configuration file [default: $SHIPGATE_CONFIG, else ./shipgate.toml if present].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Targets to deploy: helm, railway, fly, local, both (helm+railway), all, or a list;
    /// overrides runtime_target and the file.
    #[arg(long, value_name = "TARGETS")]
    target: Option<String>,
    /// The image tag to deploy; overrides image_tag / IMAGE_TAG / GITHUB_SHA and the file.
    #[arg(long, value_name = "TAG")]
    image_tag: Option<String>,
    /// Environment name; overrides DEPLOY_ENVIRONMENT, ENVIRONMENT and the file.
    #[arg(long, value_name = "NAME")]
    environment: Option<String>,
    /// Where to write the JSON summary.
    #[arg(long, value_name = "FILE", default_value = ".shipgate/summary.json")]
    summary: PathBuf,
    /// Show what would change per target and service, and the rollback candidate; change
    /// nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format of the result on stdout.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Deploy even when the ledger says the release is older than the live one (a newer
    /// commit time, or it went live before the live release replaced it): a deliberate
    /// roll-back by redeploy. Without it such a deploy ends `superseded` (exit 7).
    #[arg(long)]
    allow_older: bool,
}

impl Args {
    /// The same arguments as a dry run (`shipgate plan`).
    pub(crate) fn dry_run(self) -> Args {
        Args {
            dry_run: true,
            ..self
        }
    }
}

/// What a deploy needs, resolved from the configuration.
struct Resolved {
    config: Config,
    /// The configuration file, if any.
    file: Option<PathBuf>,
    environment: Environment,
    tag: String,
    images: Vec<(ServiceName, ImageRef)>,
    targets: Vec<TargetKind>,
}

impl Resolved {
    /// `[app]`, `app` when unset.
    fn app(&self) -> String {
        self.config.app.clone().unwrap_or_else(|| "app".to_owned())
    }

    /// The environment's name; `production` when none is set (fail closed).
    fn environment_name(&self) -> String {
        self.environment.name().unwrap_or("production").to_owned()
    }
}

fn resolve(args: &Args, vars: &BTreeMap<String, String>) -> Result<Resolved, u8> {
    let file = config_path(args.config.clone(), vars);
    let mut overrides: Vec<(String, String, &str)> = Vec::new();
    if let Some(env) = &args.environment {
        overrides.push(("environment".into(), env.clone(), "--environment"));
    }
    if let Some(tag) = &args.image_tag {
        overrides.push(("image.tag".into(), tag.clone(), "--image-tag"));
    }
    if let Some(raw) = &args.target {
        let names = shipgate_config::parse_runtime_target(raw)
            .map_err(|e| usage_error(format!("--target: {e}")))?;
        for kind in ["helm", "railway", "fly", "local"] {
            overrides.push((
                format!("targets.{kind}.enabled"),
                names.contains(&kind).to_string(),
                "--target",
            ));
        }
    }
    let refs: Vec<(&str, &str, &str)> = overrides
        .iter()
        .map(|(k, v, f)| (k.as_str(), v.as_str(), *f))
        .collect();
    let loaded = shipgate_config::load(&LoadOptions {
        file: file.as_deref(),
        vars,
        overrides: &refs,
    })
    .map_err(usage_error)?;
    let config = loaded.config;
    let environment = Environment::classify(config.environment.as_deref());
    let targets = config.targets.enabled();
    if targets.is_empty() {
        return Err(usage_error(
            "no target is enabled: set ENABLE_*_DEPLOY, runtime_target, --target, or [targets.X] enabled = true",
        ));
    }
    let Some(tag) = config.image.tag.clone() else {
        return Err(usage_error(
            "no image tag: pass --image-tag, or set image_tag / IMAGE_TAG (GITHUB_SHA in GitHub Actions)",
        ));
    };
    let app = config.app.clone().unwrap_or_else(|| "app".to_owned());
    let mut services: Vec<(u32, ServiceName, String)> = if config.services.is_empty() {
        config
            .targets
            .local
            .services
            .keys()
            .map(|name| (100, name.clone(), format!("{app}-{name}")))
            .collect()
    } else {
        config
            .services
            .iter()
            .map(|(name, s)| {
                (
                    s.order,
                    name.clone(),
                    s.image.clone().unwrap_or_else(|| format!("{app}-{name}")),
                )
            })
            .collect()
    };
    services.sort();
    let mut images = Vec::new();
    for (_, name, repository) in services {
        let base = if repository.contains('/') {
            repository
        } else {
            [
                config.image.registry.as_deref(),
                config.image.owner.as_deref(),
                Some(repository.as_str()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/")
        };
        let image: ImageRef = format!("{base}:{tag}").parse().map_err(|e| {
            usage_error(format!(
                "service `{name}`: image `{base}:{tag}` is invalid: {e}"
            ))
        })?;
        if environment.kind().is_prod_like()
            && !config.image.allow_mutable
            && !image.pinning(&config.image.mutable_tags).is_pinned()
        {
            return Err(usage_error(format!(
                "service `{name}`: `{image}` is a mutable tag in production-like environment {environment}; deploy a commit SHA or digest (or set [image] allow_mutable = true)"
            )));
        }
        images.push((name, image));
    }
    Ok(Resolved {
        config,
        file,
        environment,
        tag,
        images,
        targets,
    })
}

/// The kubeconfig of `[targets.helm]`: the variable named by `kubeconfig_env` (plain YAML or
/// base64, seed 000's KUBE_CONFIG_DATA), else `kubeconfig_path`, else none (the default
/// kubeconfig or the pod's service account).
fn kubeconfig_yaml(
    config: &Config,
    vars: &BTreeMap<String, String>,
) -> Result<Option<String>, String> {
    let helm = &config.targets.helm;
    match vars
        .get(&helm.kubeconfig_env)
        .filter(|v| !v.trim().is_empty())
    {
        Some(raw) => Ok(Some(
            shipgate_env::kubeconfig_text(raw)
                .map_err(|e| format!("{} {e}", helm.kubeconfig_env))?
                .0,
        )),
        None => match &helm.kubeconfig_path {
            Some(path) => std::fs::read_to_string(path)
                .map(Some)
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
            None => Ok(None),
        },
    }
}

/// The Helm provider for `[targets.helm]`: release and namespace default to the app name,
/// the kubeconfig comes from `kubeconfig_env` (plain or base64), else `kubeconfig_path`, else
/// helm's own default; the binary from `helm_bin` / HELM_BIN, else `helm` on PATH.
async fn helm_provider(
    config: &Config,
    images: &[(ServiceName, ImageRef)],
    vars: &BTreeMap<String, String>,
) -> Result<shipgate_helm::HelmProvider, String> {
    let helm = &config.targets.helm;
    let app = config.app.clone().unwrap_or_else(|| "app".to_owned());
    let chart = helm
        .chart
        .clone()
        .ok_or("[targets.helm] needs `chart` (a chart directory or repo/chart)")?;
    let kubeconfig = kubeconfig_yaml(config, vars)?;
    let tag_paths = images
        .iter()
        .map(|(service, _)| {
            let path = helm
                .image_tag_paths
                .get(service)
                .cloned()
                .unwrap_or_else(|| format!("{service}.image.tag"));
            (service.clone(), path)
        })
        .collect();
    let repositories = images
        .iter()
        .map(|(service, image)| {
            let full = image.to_string();
            let repo = full
                .rsplit_once(':')
                .map_or(full.as_str(), |(repo, _)| repo)
                .to_owned();
            (service.clone(), repo)
        })
        .collect();
    let settings = shipgate_helm::HelmSettings {
        bin: helm
            .helm_bin
            .clone()
            .unwrap_or_else(|| PathBuf::from("helm")),
        release: helm.release.clone().unwrap_or_else(|| app.clone()),
        namespace: helm.namespace.clone().unwrap_or(app),
        chart,
        chart_version: helm.chart_version.clone(),
        values_files: helm.values_files.clone(),
        tag_paths,
        repositories,
        values: match helm.values_strategy {
            shipgate_config::ValuesStrategy::ResetThenReuse => {
                shipgate_helm::Values::ResetThenReuse
            }
            shipgate_config::ValuesStrategy::Reuse => shipgate_helm::Values::Reuse,
            shipgate_config::ValuesStrategy::Reset => shipgate_helm::Values::Reset,
        },
        timeout: helm.timeout.as_duration(),
        rollback_on_failure: helm.helm_rollback_on_failure,
        recover_pending: true,
        kubeconfig,
        context: helm.context.clone(),
        env: Vec::new(),
    };
    shipgate_helm::HelmProvider::new(settings)
        .await
        .map_err(|e| format!("[targets.helm]: {e}"))
}

fn local_provider(config: &Config) -> Result<LocalProvider, u8> {
    let options = LocalOptions::beside_current_exe()
        .map_err(|e| usage_error(format!("cannot locate shipgate's own executable: {e}")))?;
    LocalProvider::new(&config.targets.local, options)
        .map_err(|e| usage_error(format!("[targets.local]: {e}")))
}

/// Runs `deploy`.
pub(crate) fn run(args: Args, vars: &BTreeMap<String, String>) -> u8 {
    let resolved = match resolve(&args, vars) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    let config = &resolved.config;
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let targets = match build_targets(&resolved, vars, &rt) {
        Ok(targets) => targets,
        Err(code) => return code,
    };
    let image_check = match rollback_image_check(&resolved, vars, &rt) {
        Ok(check) => check,
        Err(code) => return code,
    };
    if args.dry_run {
        return rt.block_on(dry_run(
            &resolved,
            &targets,
            image_check.as_deref(),
            args.format,
        ));
    }

    // The smoke gate's spec is compiled before anything changes; its API key comes from the
    // configured secret sources.
    let smoke = if config.smoke.enabled {
        match smoke_spec(
            config,
            vars,
            &rt,
            resolved.environment.kind().is_prod_like(),
        ) {
            Ok(spec) => Some(spec),
            Err(code) => return code,
        }
    } else {
        None
    };

    let run_id = run_id();
    let migration = match &config.migrate {
        Some(migrate) if migrate.kubernetes.is_some() && !migrate.secrets.is_empty() => {
            return usage_error(
                "[migrate] secrets are for command migrations; a Kubernetes Job gets its secrets from the cluster: set [migrate.kubernetes] env_from_secret to a Secret's name",
            );
        }
        Some(migrate) => {
            let resolver = match crate::secrets::resolver(config, vars) {
                Ok(resolver) => resolver,
                Err(code) => return code,
            };
            let mut env = Vec::new();
            for name in &migrate.secrets {
                match rt.block_on(resolver.resolve(name)) {
                    Resolution::Found { secret, .. } => env.push((name.clone(), secret)),
                    Resolution::Missing { searched } => {
                        return usage_error(format!(
                            "the migration needs secret {name}, which no source has (searched: {})",
                            searched.join(", ")
                        ));
                    }
                    Resolution::SourceFailed { source, reason } => {
                        return usage_error(format!(
                            "the migration's secret {name} could not be read from {source}: {reason}"
                        ));
                    }
                }
            }
            let (image, tag) = resolved
                .images
                .first()
                .map(|(_, image)| (image.to_string(), resolved.tag.clone()))
                .unwrap_or_default();
            Some(shipgate_pipeline::Migration {
                argv: migrate
                    .command
                    .iter()
                    .map(|a| a.replace("{image}", &image).replace("{tag}", &tag))
                    .collect(),
                env,
                timeout: migrate.timeout.as_duration(),
                job: match &migrate.kubernetes {
                    Some(job) => match rt.block_on(kubernetes_job(
                        config,
                        job,
                        &migrate.command,
                        &image,
                        &tag,
                        &run_id,
                        vars,
                    )) {
                        Ok(job) => Some(Box::new(job)),
                        Err(message) => {
                            return usage_error(format!("[migrate.kubernetes]: {message}"));
                        }
                    },
                    None => None,
                },
            })
        }
        None => None,
    };
    let ci_gate = if config.ci_gate.enabled {
        let Some(repository) = config.github.repository.clone() else {
            return usage_error(
                "the CI gate ([ci_gate] enabled) needs the repository: set [github] repository or GITHUB_REPOSITORY",
            );
        };
        let Some(sha) = full_sha(vars, &resolved.tag) else {
            return usage_error(
                "the CI gate needs the full 40-character commit SHA: set GITHUB_SHA, or deploy a full SHA as the image tag",
            );
        };
        let client = match github_client(config, vars, &rt) {
            Ok(client) => client,
            Err(code) => return code,
        };
        Some(shipgate_pipeline::CiGate {
            client,
            repository,
            sha,
            spec: shipgate_github::GateSpec {
                required: config.ci_gate.required_checks.clone(),
                allow_neutral: config.ci_gate.allow_neutral,
                allow_skipped: config.ci_gate.allow_skipped,
                timeout: config.ci_gate.timeout.as_duration(),
                interval: config.ci_gate.interval.as_duration(),
            },
        })
    } else {
        None
    };
    // check-env first (seed 002's check-prod-env): a failure stops the run, nothing changed.
    let check_env = match crate::check_env::preflight(config, resolved.file.as_deref(), vars) {
        Ok(check) => check,
        Err(code) => return code,
    };
    let notifier = match crate::notify::notifier(config, vars, &rt) {
        Ok(notifier) => notifier,
        Err(code) => return code,
    };
    let quiet = args.quiet;
    let events = move |line: &str| {
        if !quiet {
            tell!("deploy: {}", line);
        }
    };
    let plan = Plan {
        run_id: run_id.clone(),
        app: resolved.app(),
        environment: resolved.environment_name(),
        image_tag: resolved.tag.clone(),
        images: resolved.images.clone(),
        targets,
        smoke,
        preflight: vec![check_env],
        ci_gate,
        migration,
        redactor: log_redactor().clone(),
        auto_rollback: config.rollback.auto,
        smoke_after_rollback: config.rollback.smoke,
        image_check,
        owner: ["GITHUB_ACTOR", "USER"]
            .iter()
            .find_map(|k| vars.get(*k).filter(|v| !v.is_empty()).cloned())
            .unwrap_or_else(|| "unknown".into()),
        host: hostname(),
        pid: i64::from(std::process::id()),
        lock_timeout: config.ledger.lock_timeout.as_duration(),
        lock_ttl: config.ledger.lock_ttl.as_duration(),
        commit_ms: commit_time(vars, &resolved.tag),
        allow_older: args.allow_older,
    };
    let reporting = if config.notify.github_deployments || config.notify.github_pr_comment {
        let Some(sha) = full_sha(vars, &resolved.tag) else {
            return usage_error(
                "[notify] github_deployments / github_pr_comment need the full 40-character commit SHA: set GITHUB_SHA, or deploy a full SHA as the image tag",
            );
        };
        match github_client(config, vars, &rt) {
            Ok(client) => Some((client, sha)),
            Err(code) => return code,
        }
    } else {
        None
    };
    let outcome = rt.block_on(async {
        let cancel = shutdown_signal();
        let reporter = match reporting {
            Some((client, sha)) => Some(
                github_report::Reporter::start(
                    config,
                    client,
                    sha,
                    plan.environment.clone(),
                    resolved.environment.kind().is_prod_like(),
                    vars,
                    &events,
                )
                .await?,
            ),
            None => None,
        };
        let ledger = Ledger::open(&config.ledger.url)
            .await
            .map_err(|e| e.to_string())?;
        let mut runner = SmokeRunner::new(log_redactor().clone()).map_err(|e| e.to_string())?;
        events(&format!(
            "run {}: {} {} → {} ({})",
            plan.run_id,
            plan.app,
            plan.image_tag,
            plan.environment,
            plan.targets
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let summary = shipgate_pipeline::run(&plan, &ledger, &mut runner, &events, &cancel)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(reporter) = &reporter {
            let markdown = log_redactor().redact(&summary.to_markdown()).into_owned();
            reporter.finish(&summary, &markdown, &events).await;
        }
        if let Some(notifier) = &notifier {
            let notification = crate::notify::notification(&summary, vars);
            crate::notify::after_deploy(notifier, &ledger, &notification, &events).await;
        }
        Ok::<_, String>(summary)
    });
    let summary = match outcome {
        Ok(summary) => summary,
        Err(message) => return usage_error(log_redactor().redact(&message)),
    };
    let written = write_summary(&summary, &args.summary, vars);
    if let Err(message) = &written {
        tell!(
            "shipgate: the summary was NOT written: {}",
            log_redactor().redact(message)
        );
    }
    match args.format {
        Format::Json => match serde_json::to_string_pretty(&summary) {
            Ok(json) => println!("{}", log_redactor().redact(&json)),
            Err(err) => tell!("shipgate: cannot render the summary: {err}"),
        },
        Format::Text => print!(
            "{}",
            crate::for_people(&render(&summary, &args.summary, written.is_ok()))
        ),
    }
    let level = match summary.outcome {
        shipgate_pipeline::Outcome::Succeeded => None,
        shipgate_pipeline::Outcome::RolledBack => Some("warning"),
        _ => Some("error"),
    };
    // Annotations go to stdout with the text report (JSON output stays parseable).
    if let (Some(level), Format::Text) = (level, args.format) {
        let title = format!("shipgate deploy {}", summary.outcome.as_str());
        crate::annotate(vars, level, &title, &summary.message);
    }
    exit_code_with_summary(summary.exit_code, written.is_ok())
}

/// The run's exit code, unless it succeeded and its summary (the promised artifact) could not
/// be written: then `SUMMARY_NOT_WRITTEN`. A failing outcome keeps its own code, which already
/// fails the job.
fn exit_code_with_summary(outcome_code: u8, written: bool) -> u8 {
    if outcome_code == exit_code::OK && !written {
        exit_code::SUMMARY_NOT_WRITTEN
    } else {
        outcome_code
    }
}

/// One target per enabled kind (per service for Railway and Fly), each provider connected and
/// checked; nothing is changed.
fn build_targets(
    resolved: &Resolved,
    vars: &BTreeMap<String, String>,
    rt: &tokio::runtime::Runtime,
) -> Result<Vec<Target>, u8> {
    let config = &resolved.config;
    let mut targets: Vec<Target> = Vec::new();
    let services: Vec<ServiceName> = resolved.images.iter().map(|(s, _)| s.clone()).collect();
    let production_like = resolved.environment.kind().is_prod_like();
    for kind in &resolved.targets {
        match kind {
            TargetKind::Local => match local_provider(config) {
                Ok(provider) => targets.push(Target {
                    name: "local".into(),
                    provider: Box::new(provider),
                    timeout: config.targets.local.timeout.as_duration(),
                }),
                Err(code) => return Err(code),
            },
            TargetKind::Helm => match rt.block_on(helm_provider(config, &resolved.images, vars)) {
                Ok(provider) => targets.push(Target {
                    name: "helm".into(),
                    provider: Box::new(provider),
                    timeout: config.targets.helm.timeout.as_duration(),
                }),
                Err(message) => return Err(usage_error(message)),
            },
            TargetKind::Railway | TargetKind::Fly => {
                let resolver = crate::secrets::resolver(config, vars)?;
                let built = rt.block_on(async {
                    if *kind == TargetKind::Railway {
                        platforms::railway_targets(config, &services, &resolver, production_like)
                            .await
                    } else {
                        platforms::fly_targets(config, &services, &resolver, production_like).await
                    }
                });
                match built {
                    Ok(built) => targets.extend(built),
                    Err(platforms::TargetsError::Setup(message)) => {
                        return Err(usage_error(message));
                    }
                    Err(platforms::TargetsError::Unavailable(message)) => {
                        tell!("shipgate: deploy failed before anything changed: {message}");
                        return Err(exit_code::CHECK_FAILED);
                    }
                }
            }
        }
    }
    Ok(targets)
}

/// The `[smoke]` spec, with its API key from the configured secret sources (the deploy's gate,
/// the monitor's `smoke = true` targets).
pub(crate) fn smoke_spec(
    config: &Config,
    vars: &BTreeMap<String, String>,
    rt: &tokio::runtime::Runtime,
    production_like: bool,
) -> Result<shipgate_smoke::Spec, u8> {
    let resolver = crate::secrets::resolver(config, vars)?;
    let api_key = rt
        .block_on(platforms::optional_secret(
            &resolver,
            &config.smoke.api_key_secret,
        ))
        .map_err(|e| usage_error(format!("the smoke API key: {e}")))?;
    let options = SpecOptions {
        base_url: None,
        api_key,
        production_like,
    };
    shipgate_smoke::compile(&config.smoke, &options)
        .map_err(|err| spec_error("the smoke gate is invalid", "smoke", &err))
}

/// A spec that does not compile, as a usage error: `headline`, then one line per problem with
/// its key under `prefix` and its fix.
pub(crate) fn spec_error(headline: &str, prefix: &str, err: &shipgate_smoke::SpecError) -> u8 {
    let problems: Vec<String> = err
        .problems
        .iter()
        .map(|p| format!("  - {prefix}.{}: {} (fix: {})", p.key, p.message, p.hint))
        .collect();
    usage_error(format!("{headline}:\n{}", problems.join("\n")))
}

/// The migration Job: named after the app and run (DNS-1123, at most 63 characters), in the
/// Helm namespace by default, running the release's image.
async fn kubernetes_job(
    config: &Config,
    job: &shipgate_config::MigrateJobConfig,
    command: &[String],
    image: &str,
    tag: &str,
    run_id: &str,
    vars: &BTreeMap<String, String>,
) -> Result<shipgate_helm::KubernetesJob, String> {
    let app = config.app.clone().unwrap_or_else(|| "app".to_owned());
    let namespace = job
        .namespace
        .clone()
        .or_else(|| config.targets.helm.namespace.clone())
        .unwrap_or_else(|| app.clone());
    let mut name: String = format!("{app}-migrate-{run_id}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(63);
    let name = name.trim_end_matches('-').to_owned();
    let command = command
        .iter()
        .map(|a| a.replace("{image}", image).replace("{tag}", tag))
        .collect();
    let kubeconfig = kubeconfig_yaml(config, vars)?;
    shipgate_helm::KubernetesJob::new(
        kubeconfig.as_deref(),
        config.targets.helm.context.as_deref(),
        &namespace,
        &name,
        job.image.as_deref().unwrap_or(image),
        command,
        job.env_from_secret.clone(),
    )
    .await
}

/// The full commit SHA being deployed: GITHUB_SHA, or the image tag when it is one.
fn full_sha(vars: &BTreeMap<String, String>, tag: &str) -> Option<String> {
    let full = |s: &str| s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit());
    vars.get("GITHUB_SHA")
        .filter(|s| full(s))
        .cloned()
        .or_else(|| full(tag).then(|| tag.to_owned()))
}

/// When the deployed commit was made (unix milliseconds), from the GitHub event that started
/// the workflow (`GITHUB_EVENT_PATH`): the `head_commit` of a push, or of the workflow run that
/// triggered this one, when it is the commit deployed (the image tag as a SHA or SHA prefix of
/// at least 7 characters; otherwise GITHUB_SHA). `None` when unknown.
fn commit_time(vars: &BTreeMap<String, String>, tag: &str) -> Option<i64> {
    let text = std::fs::read_to_string(vars.get("GITHUB_EVENT_PATH")?).ok()?;
    let event: serde_json::Value = serde_json::from_str(&text).ok()?;
    let head = event
        .get("head_commit")
        .filter(|h| h.is_object())
        .or_else(|| event.pointer("/workflow_run/head_commit"))?;
    let id = head.get("id")?.as_str()?;
    let tag_is_sha = tag.len() >= 7 && tag.chars().all(|c| c.is_ascii_hexdigit());
    let deployed = if tag_is_sha {
        id.starts_with(tag)
    } else {
        vars.get("GITHUB_SHA").is_some_and(|sha| sha == id)
    };
    if !deployed {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(head.get("timestamp")?.as_str()?)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Building targets needs an image tag; inspecting them never uses it.
const INSPECTION_TAG: &str = "0000000000000000000000000000000000000000";

/// The enabled deploy targets of the configuration, built as `deploy` builds them but only
/// to be read (what runs, recent logs; the monitor's alert issues), with the environment they
/// deploy to.
pub(crate) fn inspection_targets(
    config: Option<PathBuf>,
    vars: &BTreeMap<String, String>,
    rt: &tokio::runtime::Runtime,
) -> Result<(String, Vec<Target>), u8> {
    let args = Args {
        config,
        target: None,
        image_tag: Some(INSPECTION_TAG.to_owned()),
        environment: None,
        summary: PathBuf::new(),
        dry_run: true,
        format: Format::Text,
        quiet: true,
        allow_older: false,
    };
    let resolved = resolve(&args, vars)?;
    let environment = resolved.environment_name();
    Ok((environment, build_targets(&resolved, vars, rt)?))
}

/// GITHUB_TOKEN from the configured secret sources, if one has it.
pub(crate) fn github_token(
    config: &Config,
    vars: &BTreeMap<String, String>,
    rt: &tokio::runtime::Runtime,
) -> Result<Option<Secret>, u8> {
    let resolver = crate::secrets::resolver(config, vars)?;
    rt.block_on(platforms::optional_secret(&resolver, "GITHUB_TOKEN"))
        .map_err(usage_error)
}

/// A GitHub client for `[github] api_url` with GITHUB_TOKEN from the secret sources.
fn github_client(
    config: &Config,
    vars: &BTreeMap<String, String>,
    rt: &tokio::runtime::Runtime,
) -> Result<shipgate_github::GithubClient, u8> {
    let token = github_token(config, vars, rt)?;
    shipgate_github::GithubClient::new(&config.github.api_url, token).map_err(usage_error)
}

/// The registry check of rollback candidates (`[rollback] verify_image`), shared by deploy and
/// its dry run. Local images are process versions, not registry images: nothing to check.
fn rollback_image_check(
    resolved: &Resolved,
    vars: &BTreeMap<String, String>,
    rt: &tokio::runtime::Runtime,
) -> Result<Option<Box<dyn shipgate_rollback::ImageCheck>>, u8> {
    if resolved.config.rollback.verify_image && !resolved.targets.contains(&TargetKind::Local) {
        registry_check(&resolved.config, vars, rt).map(Some)
    } else {
        Ok(None)
    }
}

/// The dry run: each target's changes, and the rollback candidate the real run would choose
/// if the new release failed (the same choice: `shipgate_rollback::choose_revision`, with the
/// ledger's gate verdicts and the registry check).
async fn dry_run(
    resolved: &Resolved,
    targets: &[Target],
    image_check: Option<&dyn shipgate_rollback::ImageCheck>,
    format: Format,
) -> u8 {
    let request = DeployRequest {
        images: resolved.images.iter().cloned().collect(),
        description: "dry run".into(),
    };
    let config = &resolved.config;
    let ledger = Ledger::open(&config.ledger.url).await;
    let record = ledger
        .as_ref()
        .ok()
        .map(|ledger| shipgate_rollback::LedgerVerdicts {
            ledger: ledger.clone(),
            app: resolved.app(),
            environment: resolved.environment_name(),
        });
    let mut plans = Vec::new();
    for target in targets {
        let changes = match target.provider.plan(&request).await {
            Ok(changes) => changes,
            Err(err) => return usage_error(format!("{}: {err}", target.name)),
        };
        let mut reasons = Vec::new();
        if let Err(err) = &ledger {
            reasons.push(format!(
                "ledger unavailable ({err}); the platform's statuses alone decide"
            ));
        }
        let history = match target.provider.history().await {
            Ok(history) => history,
            Err(err) => {
                reasons.push(format!("{}: cannot read history: {err}", target.name));
                Vec::new()
            }
        };
        let live = match target.provider.current().await {
            Ok(running) => running.into_iter().next().map(|r| r.revision),
            Err(err) => {
                reasons.push(format!("{}: cannot read what runs: {err}", target.name));
                None
            }
        };
        let choice = shipgate_rollback::choose_revision(
            shipgate_rollback::rollback_candidates(&history, None, live.as_ref()),
            &target.name,
            record
                .as_ref()
                .map(|r| r as &dyn shipgate_rollback::GateRecord),
            image_check,
        )
        .await;
        reasons.extend(choice.reasons);
        plans.push((target.name.clone(), changes, choice.chosen, reasons));
    }
    match format {
        Format::Json => {
            let json: Vec<serde_json::Value> = plans
                .iter()
                .map(|(name, changes, candidate, reasons)| serde_json::json!({ "target": name, "changes": changes, "rollback_candidate": candidate, "rollback_reasons": reasons }))
                .collect();
            say!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"schema_version": 1, "targets": json})
                )
                .unwrap_or_default()
            );
        }
        Format::Text => {
            say!(
                "deploy plan ({} to {}), nothing changed:",
                resolved.tag,
                resolved.environment
            );
            for (name, changes, candidate, reasons) in &plans {
                say!("  {name}:");
                if changes.is_empty() {
                    say!("    no change: every service already runs these images");
                }
                for change in changes {
                    let from = change
                        .from
                        .as_ref()
                        .map_or_else(|| "nothing".to_owned(), ToString::to_string);
                    say!("    {}: {from} → {}", change.service, change.to);
                }
                match candidate {
                    Some(revision) => say!(
                        "    rollback candidate: revision {} ({})",
                        revision.id,
                        revision
                            .images
                            .values()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None => {
                        say!("    rollback candidate: none (no earlier revision is verified good)")
                    }
                }
                for reason in reasons {
                    say!("      {}", reason);
                }
            }
        }
    }
    exit_code::OK
}

fn render(summary: &Summary, path: &Path, written: bool) -> String {
    let mut out = format!("deploy {}: {}\n", summary.outcome.as_str(), summary.message);
    for step in &summary.steps {
        out.push_str(&format!(
            "  {:<22} {:<7} {:>7} ms  {}\n",
            step.name, step.outcome, step.duration_ms, step.detail
        ));
    }
    out.push_str(&format!(
        "run {} in {} ms; summary: {}{}\n",
        summary.run_id,
        summary.duration_ms,
        path.display(),
        if written { "" } else { " (NOT written)" }
    ));
    out
}

/// Writes the JSON summary (`Err`: it was not written, and why), and in GitHub Actions the
/// step summary and outputs whatever became of the file (a failure there is a warning).
fn write_summary(
    summary: &Summary,
    path: &Path,
    vars: &BTreeMap<String, String>,
) -> Result<(), String> {
    let file = write_summary_file(summary, path);
    if let Err(message) = write_github_outputs(summary, path, vars) {
        tell!("shipgate: warning: {}", message);
    }
    file
}

fn write_summary_file(summary: &Summary, path: &Path) -> Result<(), String> {
    let json = serde_json::to_string_pretty(summary)
        .map_err(|e| format!("cannot render the summary: {e}"))?;
    let json = log_redactor().redact(&json).into_owned();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create {}: {e} (--summary names the file; choose a writable place)",
                dir.display()
            )
        })?;
    }
    std::fs::write(path, json + "\n").map_err(|e| {
        format!(
            "cannot write {}: {e} (--summary names the file; choose a writable place)",
            path.display()
        )
    })
}

/// `$GITHUB_STEP_SUMMARY` (the markdown) and `$GITHUB_OUTPUT` (outcome, tags, run id, path).
fn write_github_outputs(
    summary: &Summary,
    path: &Path,
    vars: &BTreeMap<String, String>,
) -> Result<(), String> {
    let append = |var: &str, text: &str| -> Result<(), String> {
        if let Some(file) = vars.get(var).filter(|v| !v.is_empty()) {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .map_err(|e| format!("cannot open ${var}: {e}"))?;
            f.write_all(log_redactor().redact(text).as_bytes())
                .map_err(|e| format!("cannot write ${var}: {e}"))?;
        }
        Ok(())
    };
    append("GITHUB_STEP_SUMMARY", &summary.to_markdown())?;
    // The tag the rollback went back to (its commit SHA for SHA-tagged images), if any.
    let rollback_tag = summary
        .rollback
        .as_ref()
        .filter(|r| r.performed)
        .and_then(|r| r.targets.first())
        .and_then(|t| t.services.first())
        .and_then(|s| s.to.parse::<ImageRef>().ok())
        .and_then(|i| i.tag().map(str::to_owned))
        .unwrap_or_default();
    append(
        "GITHUB_OUTPUT",
        &format!(
            "outcome={}\nimage_tag={}\nrollback_tag={rollback_tag}\nrun_id={}\nsummary={}\n",
            summary.outcome.as_str(),
            summary.image_tag,
            summary.run_id,
            path.display()
        ),
    )
}

/// `20261123T101500Z-4f2a1c`.
fn run_id() -> String {
    let now = SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace(['-', ':'], "");
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{stamp}-{:06x}", (nanos ^ std::process::id()) & 0xff_ffff)
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".to_owned(), |h| h.trim().to_owned())
}

/// `shipgate ledger …`.
#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// List runs, newest first.
    List {
        /// Configuration file (for [ledger] url).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Only this app.
        #[arg(long)]
        app: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show one run with its steps and deployments.
    Show {
        /// The run id.
        run: String,
        /// Configuration file (for [ledger] url).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// `shipgate lock …`.
#[derive(Debug, clap::Subcommand)]
pub enum LockCommand {
    /// Who holds the deploy lock of the app and environment.
    Status(LockArgs),
    /// Remove the lock whoever holds it (after checking that its run is really gone).
    Release(LockArgs),
}

/// Arguments of `lock status|release`.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// Configuration file (for app, environment and [ledger] url).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Environment name [default: DEPLOY_ENVIRONMENT, ENVIRONMENT, the file].
    #[arg(long, value_name = "NAME")]
    environment: Option<String>,
}

fn load(
    config: Option<PathBuf>,
    environment: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<Config, u8> {
    crate::load_config(config, environment, vars).map(|(loaded, _)| loaded.config)
}

fn with_ledger<T>(
    config: &Config,
    f: impl AsyncFnOnce(Ledger) -> Result<T, shipgate_ledger::LedgerError>,
) -> Result<T, u8> {
    let rt = runtime()?;
    rt.block_on(async {
        let ledger = Ledger::open(&config.ledger.url).await?;
        f(ledger).await
    })
    .map_err(usage_error)
}

/// Runs `ledger …`.
pub(crate) fn ledger(command: LedgerCommand, vars: &BTreeMap<String, String>) -> u8 {
    match command {
        LedgerCommand::List {
            config,
            app,
            limit,
            format,
        } => {
            let Ok(config) = load(config, None, vars) else {
                return exit_code::USAGE;
            };
            let Ok(runs) = with_ledger(&config, async |l| l.runs(app.as_deref(), limit).await)
            else {
                return exit_code::USAGE;
            };
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&runs).unwrap_or_default()
                ),
                Format::Text => {
                    say!(
                        "{:<26} {:<10} {:<12} {:<18} {:<16} {:>8}",
                        "RUN",
                        "APP",
                        "ENVIRONMENT",
                        "TAG",
                        "OUTCOME",
                        "SECONDS"
                    );
                    for run in &runs {
                        let seconds = run.finished_ms.map_or_else(
                            || "-".to_owned(),
                            |f| format!("{:.1}", (f - run.started_ms) as f64 / 1000.0),
                        );
                        say!(
                            "{:<26} {:<10} {:<12} {:<18} {:<16} {:>8}",
                            run.id,
                            run.app,
                            run.environment,
                            run.image_tag,
                            run.outcome.as_deref().unwrap_or("running"),
                            seconds
                        );
                    }
                }
            }
            exit_code::OK
        }
        LedgerCommand::Show {
            run,
            config,
            format,
        } => {
            let Ok(config) = load(config, None, vars) else {
                return exit_code::USAGE;
            };
            let Ok(found) = with_ledger(&config, async |l| l.run(&run).await) else {
                return exit_code::USAGE;
            };
            let Some((record, steps, deployments)) = found else {
                return usage_error(format!(
                    "no run `{run}` in the ledger {}",
                    config.ledger.url
                ));
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&serde_json::json!({"run": record, "steps": steps, "deployments": deployments})).unwrap_or_default()),
                Format::Text => {
                    say!("run {} — {} {} to {}: {}", record.id, record.app, record.image_tag, record.environment, record.outcome.as_deref().unwrap_or("running"));
                    for step in steps {
                        say!("  {:<22} {:<7} {:>7} ms  {}", step.name, step.outcome, step.finished_ms - step.started_ms, step.detail);
                    }
                    for d in deployments {
                        say!("  {} {} {}: {} → {} (revision {}, {})", d.kind, d.target, d.service, d.from_image.as_deref().unwrap_or("nothing"), d.to_image, d.revision, d.verdict);
                    }
                }
            }
            exit_code::OK
        }
    }
}

/// Runs `lock …`.
pub(crate) fn lock(command: LockCommand, vars: &BTreeMap<String, String>) -> u8 {
    let (args, release) = match command {
        LockCommand::Status(args) => (args, false),
        LockCommand::Release(args) => (args, true),
    };
    let Ok(config) = load(args.config, args.environment.as_deref(), vars) else {
        return exit_code::USAGE;
    };
    let app = config.app.clone().unwrap_or_else(|| "app".to_owned());
    let environment = Environment::classify(config.environment.as_deref())
        .name()
        .unwrap_or("production")
        .to_owned();
    let result = with_ledger(&config, async |l| {
        let holder = if release {
            l.force_release(&app, &environment).await?
        } else {
            l.lock_status(&app, &environment).await?
        };
        Ok((holder, l.lock_waiters(&app, &environment).await?))
    });
    let Ok((holder, waiters)) = result else {
        return exit_code::USAGE;
    };
    match holder {
        None => say!("no deploy lock on {app}/{environment}"),
        Some(h) => {
            let verb = if release {
                "released the lock held by"
            } else {
                "locked by"
            };
            let left = (h.expires_ms - now_ms()) / 1000;
            say!(
                "{app}/{environment}: {verb} run {} ({} on {}, pid {}): {}; expires in {left} s",
                h.run_id,
                h.owner,
                h.host,
                h.pid,
                h.reason
            );
        }
    }
    for (run_id, reason) in &waiters {
        say!("  waiting: run {run_id}: {reason}");
    }
    exit_code::OK
}

/// `shipgate local …`.
#[derive(Debug, clap::Subcommand)]
pub enum LocalCommand {
    /// Stop every process and router of [targets.local] (what `deploy` started).
    Stop {
        /// Configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Show what runs and the revision history.
    Status {
        /// Configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Runs `local …`.
pub(crate) fn local(command: LocalCommand, vars: &BTreeMap<String, String>) -> u8 {
    let (config, stop) = match command {
        LocalCommand::Stop { config } => (config, true),
        LocalCommand::Status { config } => (config, false),
    };
    let Ok(config) = load(config, None, vars) else {
        return exit_code::USAGE;
    };
    let provider = match local_provider(&config) {
        Ok(provider) => provider,
        Err(code) => return code,
    };
    let Ok(rt) = runtime() else {
        return exit_code::USAGE;
    };
    rt.block_on(async {
        if stop {
            return match provider.shutdown().await {
                Ok(()) => {
                    say!(
                        "stopped every local service and router ({})",
                        config.targets.local.state_dir.display()
                    );
                    exit_code::OK
                }
                Err(err) => usage_error(err),
            };
        }
        let (Ok(current), Ok(history)) = (provider.current().await, provider.history().await)
        else {
            return usage_error("cannot read the local provider's state");
        };
        for running in &current {
            say!(
                "{}: {} (revision {})",
                running.service,
                running.image,
                running.revision
            );
        }
        if current.is_empty() {
            say!("nothing runs");
        }
        for revision in history.iter().take(10) {
            let images: Vec<String> = revision.images.values().map(ToString::to_string).collect();
            say!(
                "  revision {:<4} {:<11} {}  {}",
                revision.id,
                format!("{:?}", revision.status).to_lowercase(),
                images.join(", "),
                revision.description
            );
        }
        exit_code::OK
    })
}

/// `shipgate rollback …`.
#[derive(Debug, clap::Subcommand)]
pub enum RollbackCommand {
    /// Decide which release to roll back to, and say why, without changing anything.
    ///
    /// Candidates come from [rollback] sources in order (ledger, github-workflow, provider); each
    /// is skipped if it is the failing release, if one of its images was recorded as failed in
    /// the ledger, or (with [rollback] verify_image) if an image is missing in its registry.
    /// Exit codes: 0 a candidate was chosen, 1 none qualifies, 2 usage.
    #[command(after_help = "Examples:
  shipgate rollback plan --failing 3f2c1a9e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a
  shipgate rollback plan --failing $GITHUB_SHA --environment production --format json")]
    Plan {
        /// Configuration file [default: $SHIPGATE_CONFIG, else ./shipgate.toml if present].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The commit (or image tag) being rolled back from; short SHAs match as prefixes.
        #[arg(long, value_name = "SHA")]
        failing: String,
        /// Environment name.
        #[arg(long, value_name = "NAME")]
        environment: Option<String>,
        /// Targets whose history the provider source reads (as for deploy).
        #[arg(long, value_name = "TARGETS")]
        target: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// The registry check for rollback candidates; GHCR is asked with GITHUB_TOKEN (it accepts
/// the workflow's token for pulls of the repository's packages), other registries anonymously.
fn registry_check(
    config: &Config,
    vars: &BTreeMap<String, String>,
    rt: &tokio::runtime::Runtime,
) -> Result<Box<dyn shipgate_rollback::ImageCheck>, u8> {
    let resolver = crate::secrets::resolver(config, vars)?;
    let logins = match rt.block_on(platforms::optional_secret(&resolver, "GITHUB_TOKEN")) {
        Ok(Some(token)) => vec![shipgate_rollback::RegistryLogin {
            host: "ghcr.io".into(),
            username: vars
                .get("GITHUB_ACTOR")
                .cloned()
                .unwrap_or_else(|| "shipgate".into()),
            password: token,
        }],
        Ok(None) => Vec::new(),
        Err(message) => return Err(usage_error(message)),
    };
    shipgate_rollback::OciRegistry::new(logins, log_redactor().clone())
        .map(|r| Box::new(r) as Box<dyn shipgate_rollback::ImageCheck>)
        .map_err(usage_error)
}

/// Runs `rollback plan`.
pub(crate) fn rollback(command: RollbackCommand, vars: &BTreeMap<String, String>) -> u8 {
    let RollbackCommand::Plan {
        config,
        failing,
        environment,
        target,
        format,
    } = command;
    if let Err(err) = shipgate_core::ImageRef::check_tag(&failing) {
        return usage_error(format!(
            "--failing: {err}; give the commit SHA (full, or at least 7 characters) or the image tag being rolled back from"
        ));
    }
    let args = Args {
        config,
        target,
        image_tag: Some(failing.clone()),
        environment,
        summary: PathBuf::from(".shipgate/summary.json"),
        dry_run: true,
        format,
        quiet: true,
        allow_older: false,
    };
    let resolved = match resolve(&args, vars) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let config = &resolved.config;
    let app = resolved.app();
    let environment = resolved.environment_name();
    let mut notes: Vec<String> = Vec::new();
    let mut sources: Vec<Box<dyn shipgate_rollback::CandidateSource>> = Vec::new();
    let ledger = rt
        .block_on(Ledger::open(&config.ledger.url))
        .map_err(|e| e.to_string());
    for source in &config.rollback.sources {
        match source {
            shipgate_config::RollbackSource::Ledger => match &ledger {
                Ok(ledger) => sources.push(Box::new(shipgate_rollback::LedgerSource {
                    ledger: ledger.clone(),
                    app: app.clone(),
                    environment: environment.clone(),
                })),
                Err(e) => notes.push(format!("ledger: {e}")),
            },
            shipgate_config::RollbackSource::GithubWorkflow => {
                let (Some(workflow), Some(repository)) =
                    (&config.rollback.workflow, &config.github.repository)
                else {
                    notes.push("github-workflow: not configured (set [rollback] workflow and [github] repository)".into());
                    continue;
                };
                let client = match github_client(config, vars, &rt) {
                    Ok(client) => client,
                    Err(code) => return code,
                };
                let images = resolved.images.clone();
                sources.push(Box::new(shipgate_rollback::WorkflowSource {
                    client,
                    repository: repository.clone(),
                    workflow: workflow.clone(),
                    branch: config.rollback.branch.clone(),
                    images: Box::new(move |sha: &str| {
                        images
                            .iter()
                            .map(|(s, i)| {
                                Ok((s.clone(), i.with_tag(sha).map_err(|e| e.to_string())?))
                            })
                            .collect()
                    }),
                }));
            }
            shipgate_config::RollbackSource::Provider => {
                let targets = match build_targets(&resolved, vars, &rt) {
                    Ok(targets) => targets,
                    Err(code) => return code,
                };
                for target in targets {
                    sources.push(Box::new(shipgate_rollback::ProviderSource {
                        target: target.name,
                        provider: target.provider,
                    }));
                }
            }
        }
    }
    let record: Option<Box<dyn shipgate_rollback::GateRecord>> = ledger.ok().map(|ledger| {
        Box::new(shipgate_rollback::LedgerVerdicts {
            ledger,
            app: app.clone(),
            environment: environment.clone(),
        }) as Box<dyn shipgate_rollback::GateRecord>
    });
    let check = if config.rollback.verify_image {
        match registry_check(config, vars, &rt) {
            Ok(check) => Some(check),
            Err(code) => return code,
        }
    } else {
        None
    };
    let resolver = shipgate_rollback::Resolver::new(sources, record, check);
    let mut decision = rt.block_on(resolver.resolve(&failing));
    decision.source_errors.extend(notes);
    match format {
        Format::Json => match serde_json::to_string_pretty(&decision) {
            Ok(json) => println!("{}", log_redactor().redact(&json)),
            Err(err) => return usage_error(format!("cannot render the decision: {err}")),
        },
        Format::Text => {
            for line in decision.reasons() {
                say!("{}", line);
            }
            if let Some(chosen) = &decision.chosen {
                for (service, image) in &chosen.images {
                    say!("  {service}: {image}");
                }
            }
        }
    }
    if decision.chosen.is_some() {
        shipgate_core::exit_code::OK
    } else {
        shipgate_core::exit_code::CHECK_FAILED
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event_vars(
        event: &serde_json::Value,
        sha: &str,
    ) -> (tempfile::TempDir, BTreeMap<String, String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event.json");
        std::fs::write(&path, event.to_string()).unwrap();
        let vars = BTreeMap::from([
            ("GITHUB_EVENT_PATH".to_owned(), path.display().to_string()),
            ("GITHUB_SHA".to_owned(), sha.to_owned()),
        ]);
        (dir, vars)
    }

    #[test]
    fn the_commit_time_comes_from_the_event_of_the_deployed_commit() {
        let sha = "3f2c1a9e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a";
        // A push (GitHub's push payload: head_commit.id and .timestamp with an offset).
        let push = serde_json::json!({"head_commit": {"id": sha, "timestamp": "2026-11-23T10:15:00+01:00"}});
        let (_dir, vars) = event_vars(&push, sha);
        assert_eq!(commit_time(&vars, "3f2c1a9"), Some(1_795_425_300_000));
        assert_eq!(commit_time(&vars, "v1.4.2"), Some(1_795_425_300_000));
        // Another commit deployed by tag: not this event's.
        assert_eq!(commit_time(&vars, "9999999"), None);
        // A workflow_run event carries it under workflow_run.
        let run = serde_json::json!({"workflow_run": {"head_commit": {"id": sha, "timestamp": "2026-11-23T09:15:00Z"}}});
        let (_dir, vars) = event_vars(&run, "ffffffffffffffffffffffffffffffffffffffff");
        assert_eq!(commit_time(&vars, sha), Some(1_795_425_300_000));
        // workflow_dispatch has none; no event file at all is unknown too.
        let (_dir, vars) = event_vars(&serde_json::json!({"inputs": {}}), sha);
        assert_eq!(commit_time(&vars, sha), None);
        assert_eq!(commit_time(&BTreeMap::new(), sha), None);
    }
}
