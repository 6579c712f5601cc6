//! check-env as the first step of a deploy (seed 002's check-prod-env).

use shipgate_env::{CheckInput, DotenvFile, SecretValues};
use shipgate_secrets::Resolution;

use crate::{ComposeError, Composition};

impl Composition {
    /// check-env as a deploy's first step: the configured rules (and `[env] sample`), secrets from the configured sources. The step fails when
    /// the report does (an error in a production-like environment).
    pub async fn preflight(&self) -> Result<shipgate_pipeline::Preflight, ComposeError> {
        let started_ms = shipgate_ledger::now_ms();
        let config = self.config();
        // A `[env] sample` written in the file is relative to it (the loader anchors it).
        let sample = config
            .env
            .sample
            .as_deref()
            .map(DotenvFile::read)
            .transpose()
            .map_err(|e| ComposeError::setup_caused(e.to_string(), e))?;
        let mut input = CheckInput {
            config,
            vars: self.vars(),
            environment_origin: None,
            config_origin: self.file().map(|f| f.display().to_string()),
            // Without `[env] required`, a deploy checks what the configuration implies
            // (targets, `[env.vars]`, the sample's drift), not every name of the sample as
            // bare `check-env` does.
            required_override: None,
            implied_only: true,
            not_utf8: self.options.not_utf8.clone(),
            required_origin: None,
            env_file: None,
            sample: sample.as_ref(),
            secrets: None,
        };
        let secrets = self.secret_values_for(&input).await?;
        input.secrets = secrets.as_ref();
        let report = shipgate_env::check(&input)
            .map_err(|e| ComposeError::setup_caused(e.to_string(), e))?;
        let problems: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.severity == shipgate_env::Severity::Error)
            .map(|f| format!("{}: {}", f.variable, f.message))
            .collect();
        let detail = if problems.is_empty() {
            format!(
                "{} variables checked ({})",
                report.variables.len(),
                report.required_set
            )
        } else {
            problems.join("; ")
        };
        Ok(shipgate_pipeline::Preflight {
            name: "check-env".into(),
            started_ms,
            passed: report.passed(),
            detail,
        })
    }

    /// The rule variables of `input` missing from the variables (and env file), resolved
    /// through the configured secret sources; `None` when only the environment is configured.
    pub async fn secret_values_for(
        &self,
        input: &CheckInput<'_>,
    ) -> Result<Option<SecretValues>, ComposeError> {
        let config = self.config();
        if config
            .secrets
            .sources
            .iter()
            .all(|s| matches!(s, shipgate_config::SecretSourceConfig::Env { .. }))
        {
            return Ok(None);
        }
        let set = |name: &str| {
            input.vars.get(name).is_some_and(|v| !v.is_empty())
                || input.env_file.is_some_and(|f| f.entries.contains_key(name))
        };
        let mut missing: Vec<String> = shipgate_env::rule_variables(input)
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| !set(name))
            .collect();
        missing.dedup();
        let mut values = SecretValues::default();
        for name in missing {
            match self.secrets()?.resolve(&name).await {
                Resolution::Found { secret, source } => {
                    values.found.insert(name, (secret, source));
                }
                Resolution::SourceFailed { source, reason } => {
                    values.failed.insert(name, (source, reason));
                }
                Resolution::Missing { .. } => {}
            }
        }
        Ok(Some(values))
    }
}
