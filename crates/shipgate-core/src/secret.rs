//! Secret values in a type that cannot be printed by accident.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// What every redacted value prints as.
pub const REDACTED: &str = "[redacted]";

/// A secret string. `Debug` and `Display` print [`REDACTED`]; the memory is zeroed on drop;
/// it implements neither `Serialize` nor `Clone`-into-`String`, so it cannot reach a report
/// without an explicit [`Secret::expose`].
///
/// ```
/// use shipgate_core::Secret;
/// let token = Secret::new("hunter2");
/// assert_eq!(format!("{token} {token:?}"), "[redacted] [redacted]");
/// assert_eq!(token.expose(), "hunter2");
/// ```
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// The value. Call it only where the value leaves shipgate for its destination (an HTTP
    /// header, a child process environment), never to build a message.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// True when the value is empty or only whitespace.
    pub fn is_blank(&self) -> bool {
        self.expose().trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Any value whose `Debug` and `Display` must not show it (for example a captured token or a
/// map of secret values).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Redacted<T> {
        Redacted(value)
    }

    /// A reference to the value, for the place that sends it where it belongs.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let canary = "canary-6f1d2b7e";
        let secret = Secret::new(canary);
        let wrapped = Redacted::new(vec![canary.to_owned()]);
        let nested = Some((Secret::new(canary), Redacted::new(canary)));
        let printed = format!("{secret} {secret:?} {secret:#?} {wrapped} {wrapped:?} {nested:?}");
        assert!(!printed.contains(canary), "{printed}");
        assert_eq!(secret.expose(), canary);
        assert_eq!(wrapped.expose()[0], canary);
    }

    #[test]
    fn blank_detection() {
        assert!(Secret::new("  ").is_blank());
        assert!(!Secret::new("x").is_blank());
    }
}
