//! The rollback resolver of `[rollback] sources`: which release to go back to, and why.

use shipgate_rollback::{CandidateSource, GateRecord, Resolver};

use crate::{ComposeError, Composition, Release};

impl Composition {
    /// The resolver of `[rollback]`: candidates from the sources in order (ledger,
    /// github-workflow, provider), skipped when they are the failing release, recorded as
    /// failed in the ledger, or (with `verify_image`) missing from their registry. A source
    /// that cannot be used is left out with a note saying why (returned beside the resolver).
    ///
    /// `failing` is the release being rolled back from; its images name the repositories a
    /// workflow run's commit maps to.
    pub async fn rollback_resolver(
        &self,
        failing: &Release,
    ) -> Result<(Resolver, Vec<String>), ComposeError> {
        let config = self.config();
        let app = self.app();
        let environment = self.environment_name();
        let mut notes = Vec::new();
        let mut sources: Vec<Box<dyn CandidateSource>> = Vec::new();
        let ledger = self.ledger().await;
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
                    let images = failing.images.clone();
                    sources.push(Box::new(shipgate_rollback::WorkflowSource {
                        client: self.github_client().await?,
                        repository: repository.clone(),
                        workflow: workflow.clone(),
                        branch: config.rollback.branch.clone(),
                        images: Box::new(move |sha: &str| {
                            images
                                .iter()
                                .map(|(s, i)| Ok((s.clone(), i.with_tag(sha)?)))
                                .collect()
                        }),
                    }));
                }
                shipgate_config::RollbackSource::Provider => {
                    for target in self.targets(&failing.services).await? {
                        sources.push(Box::new(shipgate_rollback::ProviderSource {
                            target: target.name,
                            provider: target.provider,
                        }));
                    }
                }
            }
        }
        let record: Option<Box<dyn GateRecord>> = ledger.ok().map(|ledger| {
            Box::new(shipgate_rollback::LedgerVerdicts {
                ledger,
                app,
                environment,
            }) as Box<dyn GateRecord>
        });
        let check = if config.rollback.verify_image {
            Some(self.registry_check().await?)
        } else {
            None
        };
        Ok((Resolver::new(sources, record, check), notes))
    }
}
