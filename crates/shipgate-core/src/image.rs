//! Container image references: `registry/owner/name:tag@sha256:digest`.
//!
//! The grammar follows the OCI distribution reference rules that Docker, Helm values and the
//! platforms all accept: lowercase path components, an optional registry host (recognised by a
//! `.` or `:` or the name `localhost`), an optional tag of at most 128 characters, and an
//! optional content digest.

use std::fmt;
use std::str::FromStr;

/// Tags that name a moving target rather than one build. A reference with such a tag (or with
/// no tag at all, which means `latest`) is mutable unless it also carries a digest.
pub const DEFAULT_MUTABLE_TAGS: &[&str] = &["latest"];

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed container image reference.
///
/// ```
/// use shipgate_core::ImageRef;
/// let image: ImageRef = "ghcr.io/acme/provenance-api:3f2c1a9".parse().unwrap();
/// assert_eq!(image.registry(), Some("ghcr.io"));
/// assert_eq!(image.repository(), "acme/provenance-api");
/// assert_eq!(image.tag(), Some("3f2c1a9"));
/// assert!(image.pinning(&[]).is_pinned());
/// assert!(!"ghcr.io/acme/api:latest".parse::<ImageRef>().unwrap().pinning(&[]).is_pinned());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Whether an image reference names exactly one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinning {
    /// The reference carries a content digest: it can only ever mean one image.
    Digest,
    /// The reference carries a tag that is not known to move (for example a commit SHA).
    Tag,
    /// The reference can point at different images over time.
    Mutable(MutableReason),
}

impl Pinning {
    /// True for [`Pinning::Digest`] and [`Pinning::Tag`].
    pub fn is_pinned(&self) -> bool {
        !matches!(self, Pinning::Mutable(_))
    }
}

/// Why a reference counts as mutable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutableReason {
    /// No tag and no digest: registries resolve it to `latest`.
    NoTag,
    /// The tag is in the mutable list (`latest` by default).
    MutableTag(String),
}

impl fmt::Display for MutableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MutableReason::NoTag => f.write_str("it has no tag, so the registry resolves `latest`"),
            MutableReason::MutableTag(tag) => write!(f, "its tag `{tag}` moves between builds"),
        }
    }
}

/// Why a string is not a valid image reference. Every variant names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageRefError {
    /// The reference is empty.
    #[error("image reference is empty")]
    Empty,
    /// The reference contains whitespace or a control character.
    #[error("image reference `{0}` contains whitespace or a control character")]
    Whitespace(String),
    /// A repository path component contains uppercase letters.
    #[error(
        "repository component `{0}` contains uppercase letters; repositories must be lowercase"
    )]
    Uppercase(String),
    /// A repository path component does not match `[a-z0-9]+([._-][a-z0-9]+)*`.
    #[error(
        "repository component `{0}` is invalid: use lowercase letters, digits and single `.`, `_`, `__` or `-` separators"
    )]
    InvalidComponent(String),
    /// The registry host part is malformed.
    #[error("registry `{0}` is not a valid host[:port]")]
    InvalidRegistry(String),
    /// The tag does not match `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error(
        "tag `{0}` is invalid: up to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
    )]
    InvalidTag(String),
    /// The digest is malformed.
    #[error("digest `{digest}` is invalid: {reason}")]
    InvalidDigest {
        /// The digest as written.
        digest: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The name is longer than 255 characters.
    #[error("image name is {0} characters long; the limit is 255")]
    NameTooLong(usize),
}

impl ImageRefError {
    /// The rule the reference breaks, without quoting any part of it (for messages about
    /// values that may be secrets, such as check-env's).
    pub fn rule(&self) -> &'static str {
        match self {
            ImageRefError::Empty => "it is empty",
            ImageRefError::Whitespace(_) => "it contains whitespace or a control character",
            ImageRefError::Uppercase(_) => {
                "its repository has uppercase letters; repositories must be lowercase"
            }
            ImageRefError::InvalidComponent(_) => {
                "a repository component is invalid: use lowercase letters, digits and single `.`, `_`, `__` or `-` separators"
            }
            ImageRefError::InvalidRegistry(_) => "its registry is not a valid host[:port]",
            ImageRefError::InvalidTag(_) => {
                "its tag is invalid: up to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
            }
            ImageRefError::InvalidDigest { reason, .. } => reason,
            ImageRefError::NameTooLong(_) => "its name is longer than 255 characters",
        }
    }
}

impl ImageRef {
    /// The registry host (with port), when the reference names one.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// The repository path without the registry, e.g. `acme/provenance-api`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, when present.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), when present.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Checks that `tag` is a valid image tag (up to 128 letters, digits, `_`, `.` or `-`,
    /// not starting with `.` or `-`).
    pub fn check_tag(tag: &str) -> Result<(), ImageRefError> {
        validate_tag(tag)
    }

    /// Returns the same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ImageRefError> {
        validate_tag(tag)?;
        Ok(ImageRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    /// Classifies the reference. `extra_mutable_tags` adds tags (such as `main` or `stable`)
    /// to [`DEFAULT_MUTABLE_TAGS`]; a digest always pins.
    pub fn pinning(&self, extra_mutable_tags: &[String]) -> Pinning {
        if self.digest.is_some() {
            return Pinning::Digest;
        }
        match &self.tag {
            None => Pinning::Mutable(MutableReason::NoTag),
            Some(tag) => {
                let listed = DEFAULT_MUTABLE_TAGS
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(tag))
                    || extra_mutable_tags
                        .iter()
                        .any(|m| m.eq_ignore_ascii_case(tag));
                if listed {
                    Pinning::Mutable(MutableReason::MutableTag(tag.clone()))
                } else {
                    Pinning::Tag
                }
            }
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(ImageRefError::Empty);
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ImageRefError::Whitespace(input.to_owned()));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                validate_digest(digest)?;
                (rest, Some(digest.to_owned()))
            }
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                validate_tag(tag)?;
                (&rest[..last_slash + i], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.len() > MAX_NAME_LEN {
            return Err(ImageRefError::NameTooLong(name.len()));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                validate_registry(first)?;
                (Some(first.to_owned()), remainder)
            }
            _ => (None, name),
        };
        for component in repository.split('/') {
            validate_component(component)?;
        }
        Ok(ImageRef {
            registry,
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }
}

fn validate_component(component: &str) -> Result<(), ImageRefError> {
    if component.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ImageRefError::Uppercase(component.to_owned()));
    }
    let invalid = || ImageRefError::InvalidComponent(component.to_owned());
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(invalid());
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        // A separator run: one `.`, one `_`, `__`, or any number of `-`.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return Err(invalid());
        }
    }
    Ok(())
}

fn validate_registry(registry: &str) -> Result<(), ImageRefError> {
    let invalid = || ImageRefError::InvalidRegistry(registry.to_owned());
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid());
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(invalid())
    }
}

fn validate_tag(tag: &str) -> Result<(), ImageRefError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_TAG_LEN
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ImageRefError::InvalidTag(tag.to_owned()))
    }
}

fn validate_digest(digest: &str) -> Result<(), ImageRefError> {
    let invalid = |reason| ImageRefError::InvalidDigest {
        digest: digest.to_owned(),
        reason,
    };
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(invalid(
            "expected `algorithm:hex`, e.g. `sha256:` and 64 hex digits",
        ));
    };
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(invalid("only sha256 and sha512 digests are supported")),
    };
    if hex.len() != expected_len {
        return Err(invalid(if expected_len == 64 {
            "a sha256 digest has exactly 64 hex digits"
        } else {
            "a sha512 digest has exactly 128 hex digits"
        }));
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid("the hex part must be lowercase 0-9a-f"));
    }
    Ok(())
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(s: &str) -> Result<ImageRef, ImageRefError> {
        s.parse()
    }

    #[test]
    fn parses_the_seed_form() {
        let image = parse("ghcr.io/acme/provenance-api:3f2c1a9e").unwrap();
        assert_eq!(image.registry(), Some("ghcr.io"));
        assert_eq!(image.repository(), "acme/provenance-api");
        assert_eq!(image.tag(), Some("3f2c1a9e"));
        assert_eq!(image.digest(), None);
        assert_eq!(image.to_string(), "ghcr.io/acme/provenance-api:3f2c1a9e");
    }

    #[test]
    fn parses_tag_and_digest_and_registry_port() {
        let input = format!("localhost:5000/team/app:v1.2@{DIGEST}");
        let image = parse(&input).unwrap();
        assert_eq!(image.registry(), Some("localhost:5000"));
        assert_eq!(image.repository(), "team/app");
        assert_eq!(image.tag(), Some("v1.2"));
        assert_eq!(image.digest(), Some(DIGEST));
        assert_eq!(image.to_string(), input);
        assert_eq!(image.pinning(&[]), Pinning::Digest);
    }

    #[test]
    fn docker_hub_short_names_have_no_registry() {
        let image = parse("nginx:1.27").unwrap();
        assert_eq!(image.registry(), None);
        assert_eq!(image.repository(), "nginx");
        let image = parse("library/nginx").unwrap();
        assert_eq!(image.registry(), None);
        assert_eq!(image.repository(), "library/nginx");
    }

    #[test]
    fn latest_and_no_tag_are_mutable() {
        let none: &[String] = &[];
        assert_eq!(
            parse("ghcr.io/a/b").unwrap().pinning(none),
            Pinning::Mutable(MutableReason::NoTag)
        );
        assert_eq!(
            parse("ghcr.io/a/b:latest").unwrap().pinning(none),
            Pinning::Mutable(MutableReason::MutableTag("latest".into()))
        );
        assert_eq!(
            parse("ghcr.io/a/b:abc123").unwrap().pinning(none),
            Pinning::Tag
        );
        assert!(
            !parse("ghcr.io/a/b:main")
                .unwrap()
                .pinning(&["main".to_owned()])
                .is_pinned()
        );
        assert!(
            parse(&format!("ghcr.io/a/b:latest@{DIGEST}"))
                .unwrap()
                .pinning(none)
                .is_pinned()
        );
    }

    #[test]
    fn rejects_bad_references_with_named_parts() {
        assert_eq!(parse(""), Err(ImageRefError::Empty));
        assert!(matches!(
            parse("ghcr.io/a/b :x"),
            Err(ImageRefError::Whitespace(_))
        ));
        assert_eq!(
            parse("ghcr.io/Acme/api:1"),
            Err(ImageRefError::Uppercase("Acme".into()))
        );
        assert_eq!(
            parse("ghcr.io/a//b:1"),
            Err(ImageRefError::InvalidComponent(String::new()))
        );
        assert_eq!(
            parse("ghcr.io/a/-b:1"),
            Err(ImageRefError::InvalidComponent("-b".into()))
        );
        assert_eq!(
            parse("ghcr.io/a/b..c:1"),
            Err(ImageRefError::InvalidComponent("b..c".into()))
        );
        assert_eq!(
            parse("ghcr.io/a/b:"),
            Err(ImageRefError::InvalidTag(String::new()))
        );
        assert_eq!(
            parse("ghcr.io/a/b:-x"),
            Err(ImageRefError::InvalidTag("-x".into()))
        );
        assert!(matches!(
            parse("ghcr.io/a/b@sha256:abc"),
            Err(ImageRefError::InvalidDigest { .. })
        ));
        assert!(matches!(
            parse("ghcr.io/a/b@md5:abc"),
            Err(ImageRefError::InvalidDigest { .. })
        ));
        assert!(matches!(
            parse("bad_host.io:99999999/a"),
            Err(ImageRefError::InvalidRegistry(_))
        ));
        let long = format!("ghcr.io/{}", "a".repeat(300));
        assert!(matches!(parse(&long), Err(ImageRefError::NameTooLong(_))));
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(matches!(
            parse(&long_tag),
            Err(ImageRefError::InvalidTag(_))
        ));
    }

    #[test]
    fn separators_follow_the_distribution_grammar() {
        assert!(parse("a/b__c/d---e/f.g/h_i").is_ok());
        assert!(parse("a/b___c").is_err());
        assert!(parse("a/b._c").is_err());
    }

    #[test]
    fn with_tag_replaces_tag_and_drops_digest() {
        let image = parse(&format!("ghcr.io/a/b:old@{DIGEST}")).unwrap();
        assert_eq!(
            image.with_tag("new").unwrap().to_string(),
            "ghcr.io/a/b:new"
        );
        assert!(image.with_tag("bad tag").is_err());
    }

    #[test]
    fn never_panics_on_odd_input() {
        for input in [
            "@",
            ":",
            "/",
            "a@",
            "a:",
            "@:",
            "a/:b",
            "::",
            "a@sha256:",
            "é",
            "a/é:1",
        ] {
            let _ = parse(input);
        }
    }
}
