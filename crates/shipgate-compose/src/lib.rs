//! The composition of shipgate: a loaded configuration plus a variables map turned into the
//! working parts of a deploy, the same way `shipgate deploy` builds them.
//!
//! [`Composition`] gives the secret resolver (built once), the [`Release`] (environment, tag,
//! ordered images, policy refusals), the targets, the pipeline plan, the rollback resolver,
//! the notifier, the monitor's parts, and [`Composition::deploy`], which a custom pipeline
//! calls with its own event sink and cancellation token. It never prints and never reads the
//! process environment: the caller passes the variables.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::BTreeMap;
//! use shipgate_compose::{Composition, ComposeOptions, DeployOptions};
//!
//! let vars: BTreeMap<String, String> = BTreeMap::new();
//! let loaded = shipgate_config::load(&shipgate_config::LoadOptions {
//!     file: Some(std::path::Path::new("shipgate.toml")),
//!     vars: &vars,
//!     overrides: &[("image.tag", "3f2c1a9", "my orchestrator")],
//! })?;
//! let composition = Composition::new(loaded, vars, ComposeOptions::default());
//! let release = composition.release()?;
//! let events = |event: &shipgate_pipeline::PipelineEvent| eprintln!("deploy: {event}");
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let summary = composition
//!     .deploy(&release, &DeployOptions::default(), &events, &cancel)
//!     .await?;
//! println!("{} (exit {})", summary.outcome.as_str(), summary.exit_code);
//! # Ok(()) }
//! ```

mod actions;
mod dashboard;
mod deploy;
mod doctor;
mod error;
mod github_report;
mod monitor;
mod notify;
mod preflight;
mod release;
mod rollback;
mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shipgate_config::{Config, Loaded};
use shipgate_core::{Environment, Redactor, Secret};
use shipgate_http::{ClientOptions, RetryPolicy, build_client};
use shipgate_secrets::{BuildContext, Resolution, SecretResolver, build_sources};

pub use actions::ActionsContext;
pub use deploy::{DeployOptions, DryRun, TargetPlan, run_id};
pub use doctor::{CheckStatus, DoctorCheck};
pub use error::{BoxError, ComposeError};
pub use monitor::{IssueTrackerChoice, ProviderInspector};
pub use notify::after_deploy;
pub use release::{Release, ServiceImage};

/// How the composition is set up beyond the configuration and the variables.
#[derive(Debug, Clone)]
pub struct ComposeOptions {
    /// Masks every secret value the composition resolves, in everything it hands out (steps,
    /// summaries, errors, platform text). Share it with your log writer.
    pub redactor: Redactor,
    /// Names of variables that are set to a value that is not UTF-8 (left out of the map), so
    /// that check-env says "set, but not text" instead of "not set".
    pub not_utf8: Vec<String>,
    /// The local provider's router: a program and its leading arguments (`[".../shipgate",
    /// "local-router"]`); `None`: the `shipgate-local-router` executable next to the running
    /// one, where cargo puts a workspace's binaries.
    pub local_router: Option<Vec<String>>,
    /// The `shipgate` executable that `{shipgate}` in a local service's command stands for;
    /// `None`: such a command is refused.
    pub shipgate_exe: Option<PathBuf>,
    /// This host's name, recorded with the deploy lock.
    pub host: String,
    /// This process's id, recorded with the deploy lock.
    pub pid: i64,
}

impl Default for ComposeOptions {
    fn default() -> Self {
        ComposeOptions {
            redactor: Redactor::default(),
            not_utf8: Vec::new(),
            local_router: None,
            shipgate_exe: None,
            host: hostname(),
            pid: i64::from(std::process::id()),
        }
    }
}

/// This host's name (`/proc/sys/kernel/hostname`), `localhost` when unknown.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".to_owned(), |h| h.trim().to_owned())
}

/// A loaded configuration with its variables, and everything built from them.
pub struct Composition {
    config: Config,
    file: Option<PathBuf>,
    vars: BTreeMap<String, String>,
    actions: ActionsContext,
    options: ComposeOptions,
    /// Built on first use, then shared: a command that needs no secret (stopping local
    /// processes) works even when a secret source is misconfigured.
    resolver: std::sync::OnceLock<SecretResolver>,
}

impl std::fmt::Debug for Composition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Composition")
            .field("file", &self.file)
            .field("app", &self.app())
            .field("environment", &self.environment_name())
            .finish_non_exhaustive()
    }
}

impl Composition {
    /// Builds the composition. The secret sources of `[secrets]` are set up once, on first
    /// use (paths written in the configuration file are relative to that file; paths from
    /// variables are relative to the current directory).
    pub fn new(
        loaded: Loaded,
        vars: BTreeMap<String, String>,
        options: ComposeOptions,
    ) -> Composition {
        let Loaded { config, file, .. } = loaded;
        Composition {
            actions: ActionsContext::from_vars(&vars),
            config,
            file,
            vars,
            options,
            resolver: std::sync::OnceLock::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration file, if one was read.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The variables the composition was built with.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// The GitHub Actions context of the run.
    pub fn actions(&self) -> &ActionsContext {
        &self.actions
    }

    /// The redactor every part shares.
    pub fn redactor(&self) -> &Redactor {
        &self.options.redactor
    }

    /// The secret resolver of `[secrets]`, built on first use and then shared. An error
    /// names the source that cannot be set up and what it needs.
    pub fn secrets(&self) -> Result<&SecretResolver, ComposeError> {
        if let Some(resolver) = self.resolver.get() {
            return Ok(resolver);
        }
        let environment = self.environment();
        let client = build_client(&ClientOptions::default()).map_err(|e| {
            ComposeError::setup_caused(format!("cannot set up an HTTP client: {e}"), e)
        })?;
        let ctx = BuildContext {
            vars: &self.vars,
            environment: &environment,
            base_dir: Path::new("."),
            client,
            policy: RetryPolicy::default(),
        };
        let sources = build_sources(&self.config.secrets, &ctx)
            .map_err(|e| ComposeError::setup_caused(e.to_string(), e))?;
        let built = SecretResolver::new(sources, self.config.secrets.keys.clone())
            .with_redactor(self.options.redactor.clone());
        Ok(self.resolver.get_or_init(|| built))
    }

    /// `[app]`, `app` when unset.
    pub fn app(&self) -> String {
        self.config.app.clone().unwrap_or_else(|| "app".to_owned())
    }

    /// The environment, classified (production-like unless named dev, test or local).
    pub fn environment(&self) -> Environment {
        Environment::classify(self.config.environment.as_deref())
    }

    /// The environment's name; `production` when none is set (fail closed).
    pub fn environment_name(&self) -> String {
        self.environment().name().unwrap_or("production").to_owned()
    }

    /// A secret that may be absent. Found values are added to the redactor; a source that
    /// fails is an error naming it.
    pub async fn secret(&self, name: &str) -> Result<Option<Secret>, ComposeError> {
        match self.secrets()?.resolve(name).await {
            Resolution::Found { secret, .. } => {
                self.options.redactor.add(&secret);
                Ok(Some(secret))
            }
            Resolution::Missing { .. } => Ok(None),
            Resolution::SourceFailed { source, reason } => Err(ComposeError::setup(format!(
                "{name} could not be read from secret source {source}: {reason}"
            ))),
        }
    }

    /// A secret that must be present: `needed_by` names what needs it in the error.
    pub async fn required_secret(
        &self,
        name: &str,
        needed_by: &str,
    ) -> Result<Secret, ComposeError> {
        self.secret(name).await?.ok_or_else(|| {
            ComposeError::setup(format!(
                "{needed_by} needs secret {name}, which no source has"
            ))
        })
    }

    /// The `[smoke]` spec with its API key from the secret sources (the deploy's gate, the
    /// monitor's `smoke = true` targets).
    pub async fn smoke_spec(
        &self,
        production_like: bool,
    ) -> Result<shipgate_smoke::Spec, ComposeError> {
        let api_key = self
            .secret(&self.config.smoke.api_key_secret)
            .await
            .map_err(|e| ComposeError::setup(format!("the smoke API key: {e}")))?;
        let options = shipgate_smoke::SpecOptions {
            base_url: None,
            api_key,
            production_like,
        };
        shipgate_smoke::compile(&self.config.smoke, &options)
            .map_err(|err| ComposeError::spec("the smoke gate is invalid", "smoke", err))
    }

    /// GITHUB_TOKEN from the secret sources, if one has it.
    pub async fn github_token(&self) -> Result<Option<Secret>, ComposeError> {
        self.secret("GITHUB_TOKEN").await
    }

    /// A GitHub client for `[github] api_url` with GITHUB_TOKEN from the secret sources.
    pub async fn github_client(&self) -> Result<shipgate_github::GithubClient, ComposeError> {
        let token = self.github_token().await?;
        shipgate_github::GithubClient::new(&self.config.github.api_url, token)
            .map_err(|e| ComposeError::setup_caused(e.to_string(), e))
    }

    /// Opens the ledger of `[ledger] url`.
    pub async fn ledger(&self) -> Result<shipgate_ledger::Ledger, ComposeError> {
        Ok(shipgate_ledger::Ledger::open(&self.config.ledger.url).await?)
    }
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
