//! Masking known secret values in text that is about to leave shipgate (a report, a log line,
//! an error from an upstream service that echoed a token back).

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, RwLock};

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
#[derive(Clone, Default)]
pub struct Redactor {
    values: Arc<RwLock<Vec<Secret>>>,
    observer: Arc<OnceLock<Observer>>,
}

/// Told about every value registered (see [`Redactor::observe`]).
type Observer = Box<dyn Fn(&Secret) + Send + Sync>;

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").finish_non_exhaustive()
    }
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
            drop(values);
            if let Some(observer) = self.observer.get() {
                observer(secret);
            }
        }
    }

    /// Calls `observer` with every value registered from now on, and at once with those
    /// registered so far (the CLI uses it to emit GitHub Actions `::add-mask::` commands, so
    /// the runner masks the values in the output of child processes too). Only the first
    /// observer of a redactor (and its clones) is kept.
    pub fn observe(&self, observer: impl Fn(&Secret) + Send + Sync + 'static) {
        if self.observer.set(Box::new(observer)).is_err() {
            return;
        }
        let values = match self.values.read() {
            Ok(values) => values.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(observer) = self.observer.get() {
            values.iter().for_each(observer);
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
    fn an_observer_sees_each_value_once_including_earlier_ones() {
        let redactor = Redactor::default();
        redactor.add(&Secret::new("first-secret"));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        redactor
            .clone()
            .observe(move |s| sink.lock().unwrap().push(s.expose().to_owned()));
        redactor.add(&Secret::new("second-secret"));
        redactor.add(&Secret::new("second-secret"));
        redactor.add(&Secret::new("ab"));
        assert_eq!(*seen.lock().unwrap(), vec!["first-secret", "second-secret"]);
    }

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
