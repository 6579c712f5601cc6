//! Masking known secret values in text that is about to leave shipgate (a report, a log line,
//! an error from an upstream service that echoed a token back).

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use crate::secret::{REDACTED, Secret};

/// Values shorter than this are not masked: replacing every `1` or `ok` in a report would
/// destroy it and protect nothing.
pub const MIN_REDACTED_LEN: usize = 4;

/// A set of secret values to mask. Cloning shares the set, so values registered later (a
/// token captured mid-run) are masked everywhere the redactor was handed out.
///
/// ```
/// use shipgate_core::{Redactor, Secret};
/// let redactor = Redactor::default();
/// redactor.add(&Secret::new("s3cr3t-token"));
/// assert_eq!(redactor.redact("Bearer s3cr3t-token failed"), "Bearer [redacted] failed");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Arc<RwLock<Vec<Secret>>>,
}

impl Redactor {
    /// Registers a secret value. Blank and very short values are ignored.
    pub fn add(&self, secret: &Secret) {
        if secret.expose().trim().len() < MIN_REDACTED_LEN {
            return;
        }
        let mut values = match self.values.write() {
            Ok(values) => values,
            Err(poisoned) => poisoned.into_inner(),
        };
        if values.iter().all(|v| v.expose() != secret.expose()) {
            values.push(secret.clone());
            // Longest first, so a secret that contains another is masked whole.
            values.sort_by_key(|v| std::cmp::Reverse(v.expose().len()));
        }
    }

    /// `text` with every registered value replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let values = match self.values.read() {
            Ok(values) => values,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = Cow::Borrowed(text);
        for value in values.iter() {
            if out.contains(value.expose()) {
                out = Cow::Owned(out.replace(value.expose(), REDACTED));
            }
        }
        out
    }

    /// True when no value is registered.
    pub fn is_empty(&self) -> bool {
        match self.values.read() {
            Ok(values) => values.is_empty(),
            Err(poisoned) => poisoned.into_inner().is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_longest_first_and_skips_short_values() {
        let r = Redactor::default();
        r.add(&Secret::new("abcd"));
        r.add(&Secret::new("abcdefgh"));
        r.add(&Secret::new("ok"));
        assert_eq!(
            r.redact("abcdefgh abcd ok abcd"),
            "[redacted] [redacted] ok [redacted]"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn clones_share_values_added_later() {
        let r = Redactor::default();
        let copy = r.clone();
        assert!(copy.is_empty());
        r.add(&Secret::new("captured-token"));
        assert_eq!(copy.redact("x captured-token"), "x [redacted]");
    }
}
