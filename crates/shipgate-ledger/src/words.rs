//! The vocabulary's words as SQL literals. The ledger's queries take every stored word from
//! `shipgate_core`'s vocabulary enums, never from a literal of their own; the words are
//! constants (lowercase ASCII and `_`), quoted here.

use shipgate_core::Outcome;

/// `'word'`.
pub(crate) fn quoted(word: &str) -> String {
    debug_assert!(word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    format!("'{word}'")
}

/// The outcomes of which `class` holds, as a SQL list: `'rollback_failed', 'unhealthy'`.
pub(crate) fn outcomes(class: fn(Outcome) -> bool) -> String {
    Outcome::ALL
        .iter()
        .copied()
        .filter(|o| class(*o))
        .map(|o| quoted(o.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration is frozen SQL: its literal lists must still be what the vocabulary says,
    /// or the partial index `runs_unrestored` (and the backfill) would disagree with the
    /// queries that use it.
    #[test]
    fn the_migrations_literal_outcome_lists_match_the_vocabulary() {
        let migration = include_str!("../migrations/0004_delivery_rollup.sql");
        let awaiting = format!("outcome IN ({})", outcomes(Outcome::awaits_restore));
        assert_eq!(awaiting, "outcome IN ('rollback_failed', 'unhealthy')");
        assert_eq!(migration.matches(&awaiting).count(), 2, "{migration}");
        assert_eq!(
            outcomes(Outcome::leaves_good_release_live),
            "'succeeded', 'rolled_back'"
        );
        // Migration 7's backfill of what runs now: the healthy verdict's word.
        let migration = include_str!("../migrations/0007_dashboard.sql");
        let healthy = format!(
            "d.verdict = {}",
            quoted(shipgate_core::DeploymentVerdict::Healthy.as_str())
        );
        assert!(migration.contains(&healthy), "{migration}");
    }
}
