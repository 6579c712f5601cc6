//! Dotenv files (`--env-file`, `.env.sample`) and the "does this sample hold a real secret"
//! heuristics. Parse errors name the file and line, never the line's content.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A parsed dotenv file.
#[derive(Debug, Clone)]
pub struct DotenvFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Variables in file order (later duplicates replace earlier ones).
    pub entries: BTreeMap<String, String>,
}

/// Why a dotenv file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DotenvError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `NAME=value`.
    #[error("{}:{line}: not a `NAME=value` line (quote values that contain spaces; check for unbalanced quotes and invalid name characters)", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
}

impl DotenvFile {
    /// Reads and parses a dotenv file.
    pub fn read(path: &Path) -> Result<DotenvFile, DotenvError> {
        let text = std::fs::read_to_string(path).map_err(|source| DotenvError::Read {
            path: path.to_owned(),
            source,
        })?;
        DotenvFile::parse(path, &text)
    }

    /// Parses dotenv text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<DotenvFile, DotenvError> {
        let mut entries = BTreeMap::new();
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            match item {
                Ok((name, value)) => {
                    entries.insert(name, value);
                }
                Err(_) => {
                    return Err(DotenvError::Syntax {
                        path: path.to_owned(),
                        line: error_line(text),
                    });
                }
            }
        }
        Ok(DotenvFile {
            path: path.to_owned(),
            entries,
        })
    }
}

/// The first line from which every longer prefix of the file fails to parse: the line of
/// the error, or the line that opens an unterminated quoted value. dotenvy reports the text
/// of the bad line, not its number, and that text must not be printed.
fn error_line(text: &str) -> usize {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let parses = |n: usize| {
        let prefix: String = lines[..n].concat();
        dotenvy::from_read_iter(prefix.as_bytes()).all(|item| item.is_ok())
    };
    let mut first_bad = lines.len();
    for n in (1..=lines.len()).rev() {
        if parses(n) {
            break;
        }
        first_bad = n;
    }
    first_bad
}

const PLACEHOLDER_MARKERS: &[&str] = &[
    "<",
    "...",
    "…",
    "${",
    "changeme",
    "change-me",
    "change_me",
    "example",
    "placeholder",
    "your",
    "xxx",
    "dummy",
    "replace",
    "todo",
    "fixme",
    "redacted",
    "secret-here",
    "sample",
];

const TOKEN_PREFIXES: &[(&str, &str)] = &[
    ("ghp_", "a GitHub personal access token"),
    ("gho_", "a GitHub OAuth token"),
    ("ghs_", "a GitHub app token"),
    ("ghu_", "a GitHub user token"),
    ("github_pat_", "a GitHub fine-grained token"),
    ("glpat-", "a GitLab token"),
    ("xoxb-", "a Slack bot token"),
    ("xoxp-", "a Slack user token"),
    ("xapp-", "a Slack app token"),
    ("sk_live_", "a Stripe live key"),
    ("rk_live_", "a Stripe restricted key"),
    ("AKIA", "an AWS access key ID"),
    ("ASIA", "an AWS temporary access key ID"),
    ("AIza", "a Google API key"),
    ("npm_", "an npm token"),
    ("-----BEGIN", "a PEM private key or certificate"),
];

fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    PLACEHOLDER_MARKERS.iter().any(|m| lower.contains(m))
}

fn shannon_entropy(value: &str) -> f64 {
    let mut counts = [0usize; 256];
    for b in value.bytes() {
        counts[b as usize] += 1;
    }
    let len = value.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum()
}

fn is_local_host(host: &str) -> bool {
    matches!(
        host,
        "localhost" | "127.0.0.1" | "::1" | "[::1]" | "db" | "postgres" | "redis"
    ) || host.ends_with(".local")
        || host.ends_with(".localhost")
        || host.ends_with("example.com")
        || host.ends_with(".example")
        || host.ends_with(".test")
}

/// Why a sample value looks like a real secret, or `None` when it looks like a placeholder
/// or a harmless default. The reason never includes the value.
pub fn looks_like_real_secret(name: &str, value: &str) -> Option<&'static str> {
    let value = value.trim();
    if value.is_empty() || is_placeholder(value) {
        return None;
    }
    if let Some((_, what)) = TOKEN_PREFIXES
        .iter()
        .find(|(prefix, _)| value.starts_with(prefix) && value.len() >= prefix.len() + 12)
    {
        return Some(what);
    }
    let parts: Vec<&str> = value.split('.').collect();
    if value.starts_with("eyJ") && parts.len() == 3 && parts.iter().all(|p| p.len() >= 8) {
        return Some("a JSON Web Token");
    }
    if let Ok(url) = url::Url::parse(value)
        && url.host_str().is_some()
    {
        let host = url.host_str().unwrap_or_default();
        return match url.password() {
            Some(password) if !is_local_host(host) && !is_placeholder(password) => {
                Some("a URL with an embedded password for a non-local host")
            }
            _ => None,
        };
    }
    let no_space = !value.contains(char::is_whitespace);
    let mixed =
        value.chars().any(|c| c.is_ascii_digit()) && value.chars().any(|c| c.is_ascii_alphabetic());
    if no_space && mixed && value.len() >= 24 && shannon_entropy(value) >= 4.0 {
        return Some("a long random-looking string");
    }
    let upper = name.to_ascii_uppercase();
    let secret_name = ["SECRET", "PASSWORD", "TOKEN", "PRIVATE_KEY", "API_KEY"]
        .iter()
        .any(|word| upper.contains(word));
    if secret_name && no_space && value.len() >= 16 {
        return Some("a value for a secret-named variable");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_locates_errors_without_content() {
        let file =
            DotenvFile::parse(Path::new(".env"), "# c\nA=1\nexport B=\"two words\"\n").unwrap();
        assert_eq!(file.entries["A"], "1");
        assert_eq!(file.entries["B"], "two words");
        let err = DotenvFile::parse(Path::new(".env"), "A=1\nB=\"unclosed canary\n").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("canary"), "{text}");
        assert!(text.starts_with(".env:2:"), "{text}");
    }

    #[test]
    fn real_looking_secrets() {
        let cases = [
            (
                "GITHUB_TOKEN",
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                true,
            ),
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLF", true),
            (
                "X",
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlc2ln",
                true,
            ),
            (
                "DATABASE_URL",
                "postgres://app:s3cr3tpw@db.prod.internal:5432/app",
                true,
            ),
            (
                "DATABASE_URL",
                "postgresql+psycopg://waxwatch:waxwatch@localhost:5432/waxwatch",
                false,
            ),
            ("DISCOGS_TOKEN", "qWz8rT2nYp4LmK9vXb3cHd7fJs", true),
            ("EBAY_CLIENT_SECRET", "", false),
            ("EBAY_CLIENT_SECRET", "your-ebay-client-secret", false),
            (
                "AUTH_ISSUER",
                "https://<project>.supabase.co/auth/v1",
                false,
            ),
            (
                "DISCOGS_USER_AGENT",
                "waxwatch/1.0 (+ops@example.com)",
                false,
            ),
            (
                "TOKEN_CRYPTO_KMS_KEY_ID",
                "arn:aws:kms:us-east-1:123456789012:key/abcd-...",
                false,
            ),
            ("ENVIRONMENT", "dev", false),
            ("PORT", "8080", false),
        ];
        for (name, value, secret) in cases {
            assert_eq!(
                looks_like_real_secret(name, value).is_some(),
                secret,
                "{name}"
            );
        }
    }
}
