//! Masking known secret values in text that is about to leave shipgate (a report, a log line,
//! an error from an upstream service that echoed a token back).

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, RwLock};

use crate::secret::{REDACTED, Secret};

/// Values shorter than this are masked only where they stand alone (not inside a longer word
/// or number): replacing every `1` or `ok` inside other words would destroy a report and
/// protect nothing, while a 3-character API key on its own is still masked.
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
    /// Registers a secret value, whatever its length (blank values are ignored; values shorter
    /// than [`MIN_REDACTED_LEN`] are masked only where they stand alone).
    pub fn add(&self, secret: &Secret) {
        if secret.expose().trim().is_empty() {
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
            // GitHub Actions masks a value everywhere, inside words too: short ones would
            // garble the log, so only values of MIN_REDACTED_LEN or more are passed on.
            if secret.expose().len() >= MIN_REDACTED_LEN
                && let Some(observer) = self.observer.get()
            {
                observer(secret);
            }
        }
    }

    /// Calls `observer` with every value registered from now on, and at once with those
    /// registered so far (the CLI uses it to emit GitHub Actions `::add-mask::` commands, so
    /// the runner masks the values in the output of child processes too). Only the first
    /// observer of a redactor (and its clones) is kept. Values shorter than
    /// [`MIN_REDACTED_LEN`] are not passed on (GitHub would mask them inside every word).
    pub fn observe(&self, observer: impl Fn(&Secret) + Send + Sync + 'static) {
        if self.observer.set(Box::new(observer)).is_err() {
            return;
        }
        let values = match self.values.read() {
            Ok(values) => values.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(observer) = self.observer.get() {
            values
                .iter()
                .filter(|v| v.expose().len() >= MIN_REDACTED_LEN)
                .for_each(observer);
        }
    }

    /// `text` with every registered value replaced by [`REDACTED`] (short values only where
    /// they stand alone), and credentials masked, registered or not (see
    /// [`redact_credentials`]).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let values = match self.values.read() {
            Ok(values) => values,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = redact_credentials(text);
        for value in values.iter() {
            let value = value.expose();
            if !out.contains(value) {
                continue;
            }
            out = if value.len() >= MIN_REDACTED_LEN {
                Cow::Owned(out.replace(value, REDACTED))
            } else {
                Cow::Owned(replace_standalone(&out, value))
            };
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

/// `text` with `value` replaced where it is not part of a longer word or number (the
/// characters around it are not letters, digits, `_` or `-`).
fn replace_standalone(text: &str, value: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(value) {
        // The character before: in what is left, or else the last one already written.
        let before = rest[..at]
            .chars()
            .next_back()
            .or_else(|| out.chars().next_back());
        let after = rest[at + value.len()..].chars().next();
        out.push_str(&rest[..at]);
        if word(before) || word(after) {
            out.push_str(value);
        } else {
            out.push_str(REDACTED);
        }
        rest = &rest[at + value.len()..];
    }
    out.push_str(rest);
    out
}

/// `text` with credentials that need no registration masked: the password of every
/// `scheme://user:password@host` ([`redact_userinfo`]) and the value of every
/// `Authorization` / `Proxy-Authorization` header a server echoed back, in the shapes servers
/// echo them (`Authorization: Basic …`, `"authorization": "Bearer …"`, `authorization=…`).
/// The scheme word is kept, so a reader still sees which kind of credential was sent.
///
/// ```
/// use shipgate_core::redact_credentials;
/// assert_eq!(
///     redact_credentials(r#"{"Authorization": "Basic Ym90OnB3"} from https://bot:pw@host"#),
///     r#"{"Authorization": "Basic [redacted]"} from https://bot:[redacted]@host"#
/// );
/// ```
pub fn redact_credentials(text: &str) -> Cow<'_, str> {
    match redact_userinfo(text) {
        Cow::Borrowed(text) => redact_authorization(text),
        Cow::Owned(text) => Cow::Owned(redact_authorization(&text).into_owned()),
    }
}

/// The value of every `authorization` key or header in `text` replaced by [`REDACTED`].
fn redact_authorization(text: &str) -> Cow<'_, str> {
    const KEY: &str = "authorization";
    // ASCII lowercasing keeps every byte offset, so positions found in `lower` index `text`.
    let lower = text.to_ascii_lowercase();
    if !lower.contains(KEY) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let skip = |mut at: usize, what: &dyn Fn(u8) -> bool| {
        while at < bytes.len() && what(bytes[at]) {
            at += 1;
        }
        at
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(KEY) {
        let key_end = from + found + KEY.len();
        from = key_end;
        let mut at = skip(key_end, &|b| b == b'"' || b == b'\'');
        at = skip(at, &|b| b == b' ' || b == b'\t');
        if at >= bytes.len() || !matches!(bytes[at], b':' | b'=') {
            continue;
        }
        at = skip(at + 1, &|b| {
            b == b' ' || b == b'\t' || b == b'"' || b == b'\''
        });
        // A scheme word (`Basic`, `Bearer`) followed by a space is kept.
        let word_end = skip(at, &|b| b.is_ascii_alphabetic());
        if word_end > at && word_end < bytes.len() && bytes[word_end] == b' ' {
            at = skip(word_end, &|b| b == b' ');
        }
        let value_end = skip(at, &|b| {
            !(b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b',' | b';' | b'}' | b'&'))
        });
        if value_end == at {
            continue;
        }
        out.push_str(&text[copied..at]);
        out.push_str(REDACTED);
        copied = value_end;
        from = value_end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// `text` with the password of every `scheme://user:password@host` replaced by
/// [`REDACTED`] (progress lines, errors and reports show URLs that may carry credentials).
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.find(':'), authority.rfind('@')) {
            (Some(colon), Some(at)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push(':');
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
                changed = true;
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked_registered_or_not() {
        let r = Redactor::default();
        assert_eq!(
            r.redact("GET https://bot:hunter2@api.example.com/healthz → 200"),
            "GET https://bot:[redacted]@api.example.com/healthz → 200"
        );
        assert_eq!(
            r.redact("postgres://app:s3cret@db:5432/ledger and \"redis://:pw@cache\""),
            "postgres://app:[redacted]@db:5432/ledger and \"redis://:[redacted]@cache\""
        );
        assert!(matches!(
            r.redact("https://api.example.com:8443/x"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn echoed_authorization_headers_are_masked_in_every_shape() {
        let r = Redactor::default();
        let cases = [
            (
                "Authorization: Basic Ym90OnB3LTFj\r\nHost: x",
                "Authorization: Basic [redacted]\r\nHost: x",
            ),
            (
                r#"{"headers":{"authorization":"Bearer eyJ.abc.def","accept":"*/*"}}"#,
                r#"{"headers":{"authorization":"Bearer [redacted]","accept":"*/*"}}"#,
            ),
            (
                "proxy-authorization=tok123&x=1",
                "proxy-authorization=[redacted]&x=1",
            ),
            (
                "AUTHORIZATION :  Token abc, next",
                "AUTHORIZATION :  Token [redacted], next",
            ),
            (
                "'Authorization': 'Basic dTpw'",
                "'Authorization': 'Basic [redacted]'",
            ),
        ];
        for (echoed, expected) in cases {
            assert_eq!(r.redact(echoed), expected, "{echoed}");
        }
        // The word alone, or with no value, is left as it is.
        for plain in [
            "no authorization needed",
            "authorization:",
            "Authorization: \"\"",
        ] {
            assert!(matches!(r.redact(plain), Cow::Borrowed(_)), "{plain}");
        }
    }

    #[test]
    fn short_values_are_masked_where_they_stand_alone() {
        let r = Redactor::default();
        r.add(&Secret::new("k9z"));
        assert_eq!(r.redact("X-API-Key: k9z"), "X-API-Key: [redacted]");
        assert_eq!(r.redact("key=k9z;"), "key=[redacted];");
        // Inside longer words or numbers it is left alone: masking there protects nothing.
        assert_eq!(r.redact("k9zz ak9z k9z-1"), "k9zz ak9z k9z-1");
    }

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
    fn masks_every_occurrence_longest_first_and_short_values_alone() {
        let r = Redactor::default();
        r.add(&Secret::new("abcd"));
        r.add(&Secret::new("abcdefgh"));
        r.add(&Secret::new("ok"));
        assert_eq!(
            r.redact("abcdefgh abcd ok abcd okay"),
            "[redacted] [redacted] [redacted] [redacted] okay"
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
