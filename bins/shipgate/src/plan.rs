//! `shipgate plan` (`deploy --dry-run`): what each target would change, and where a failure
//! would roll back to.

use shipgate_compose::{DryRun, Release};
use shipgate_core::exit_code;

use crate::Format;

/// Prints the dry run and returns its exit code (0: planned).
pub(crate) fn render(plan: &DryRun, release: &Release, format: Format) -> u8 {
    match format {
        Format::Json => match serde_json::to_string_pretty(plan) {
            Ok(json) => say!("{}", json),
            Err(err) => tell!("shipgate: cannot render the plan: {err}"),
        },
        Format::Text => {
            say!(
                "deploy plan ({} to {}), nothing changed:",
                release.tag,
                release.environment
            );
            for target in &plan.targets {
                say!("  {}:", target.target);
                if target.changes.is_empty() {
                    say!("    no change: every service already runs these images");
                }
                for change in &target.changes {
                    let from = change
                        .from
                        .as_ref()
                        .map_or_else(|| "nothing".to_owned(), ToString::to_string);
                    say!("    {}: {from} → {}", change.service, change.to);
                }
                match (&target.rollback_candidate, target.rollback_candidate_known) {
                    (Some(revision), _) => say!(
                        "    rollback candidate: revision {} ({})",
                        revision.id,
                        revision
                            .images
                            .values()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    (None, true) => {
                        say!("    rollback candidate: none (no earlier revision is verified good)");
                    }
                    (None, false) => {
                        say!(
                            "    rollback candidate: unknown (the target's history could not be read)"
                        );
                    }
                }
                for reason in &target.rollback_reasons {
                    say!("      {}", reason);
                }
            }
        }
    }
    exit_code::OK
}
