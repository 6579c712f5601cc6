//! Value checks for each [`VarKind`]. Messages never contain the value itself.

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use serde::Deserialize;
use shipgate_config::VarKind;
use shipgate_core::{ImageRef, Pinning};

/// Extra inputs some kinds need.
#[derive(Debug, Clone, Default)]
pub struct KindOptions<'a> {
    /// Allowed values for `enum`.
    pub values: &'a [String],
    /// Bounds for `integer`.
    pub min: Option<i64>,
    /// Upper bound for `integer`.
    pub max: Option<i64>,
    /// For `kubeconfig`: a context that must exist.
    pub context: Option<&'a str>,
    /// For `image-ref`: whether a mutable tag is refused, and the extra mutable tags.
    pub require_pinned: bool,
    /// Extra mutable tags for `image-ref`.
    pub mutable_tags: &'a [String],
    /// For `image-ref`: the value is only a tag (`image_tag`), not a whole reference.
    pub tag_only: bool,
}

/// Standard alphabet, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a value does not fit its kind, in words that never repeat the value (`is not a TCP
/// port (1-65535)`): a message meant to follow the variable's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KindError(String);

impl KindError {
    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl From<String> for KindError {
    fn from(message: String) -> Self {
        KindError(message)
    }
}

impl From<KindError> for String {
    fn from(err: KindError) -> Self {
        err.0
    }
}

/// Decodes base64, ignoring ASCII whitespace (the `base64` tool wraps lines at 76).
pub fn decode_base64(value: &str) -> Result<Vec<u8>, KindError> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(KindError("is empty".to_owned()));
    }
    BASE64
        .decode(&compact)
        .or_else(|_| general_purpose::URL_SAFE_NO_PAD.decode(compact.trim_end_matches('=')))
        .map_err(|e| match e {
            base64::DecodeError::InvalidByte(offset, _) => {
                format!(
                    "is not valid base64 (invalid character at position {})",
                    offset + 1
                )
            }
            base64::DecodeError::InvalidLength(_) => {
                "is not valid base64 (its length is not a multiple of 4)".to_owned()
            }
            _ => "is not valid base64".to_owned(),
        })
        .map_err(KindError)
}

/// Checks `value` against `kind`. `Err` carries a message about the value that does not
/// repeat it.
pub fn check(kind: VarKind, value: &str, options: &KindOptions<'_>) -> Result<(), KindError> {
    let checked: Result<(), String> = match kind {
        VarKind::NonEmpty => Ok(()),
        VarKind::Url => check_url(value),
        VarKind::Bool => parse_bool(value)
            .map(|_| ())
            .ok_or_else(|| "is not a boolean; use true or false".to_owned()),
        VarKind::Integer => check_integer(value, options.min, options.max),
        VarKind::Port => match value.trim().parse::<u16>() {
            Ok(port) if port > 0 => Ok(()),
            _ => Err("is not a TCP port (1-65535)".to_owned()),
        },
        VarKind::Enum => {
            if options.values.iter().any(|v| v == value.trim()) {
                Ok(())
            } else {
                Err(format!("is not one of: {}", options.values.join(", ")))
            }
        }
        VarKind::Base64 => decode_base64(value).map(|_| ()).map_err(String::from),
        VarKind::Ed25519Key => check_ed25519(value),
        VarKind::Kubeconfig => kubeconfig_problem(value, options.context),
        VarKind::ImageRef => check_image(value, options),
    };
    checked.map_err(KindError)
}

/// Reads a boolean the way the seed workflows write them.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn check_url(value: &str) -> Result<(), String> {
    match url::Url::parse(value.trim()) {
        Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => Err("is a URL without a host".to_owned()),
        Err(e) => Err(format!("is not an absolute URL ({e})")),
    }
}

fn check_integer(value: &str, min: Option<i64>, max: Option<i64>) -> Result<(), String> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| "is not an integer".to_owned())?;
    if let Some(min) = min
        && n < min
    {
        return Err(format!("is below the minimum {min}"));
    }
    if let Some(max) = max
        && n > max
    {
        return Err(format!("is above the maximum {max}"));
    }
    Ok(())
}

fn check_ed25519(value: &str) -> Result<(), String> {
    let bytes = decode_base64(value)?;
    match bytes.len() {
        32 => Ok(()),
        #[cfg(not(feature = "ed25519"))]
        64 => Err(
            "is a 64-byte Ed25519 keypair, which this build cannot verify (it has no `ed25519` feature)"
                .to_owned(),
        ),
        #[cfg(feature = "ed25519")]
        64 => {
            let mut keypair = [0u8; 64];
            keypair.copy_from_slice(&bytes);
            ed25519_dalek::SigningKey::from_keypair_bytes(&keypair)
                .map(|_| ())
                .map_err(|_| {
                    "is a 64-byte Ed25519 keypair whose public half does not match its seed"
                        .to_owned()
                })
        }
        n => Err(format!(
            "decodes to {n} bytes; an Ed25519 key is a 32-byte seed or a 64-byte seed+public key"
        )),
    }
}

fn check_image(value: &str, options: &KindOptions<'_>) -> Result<(), String> {
    let parsed = if options.tag_only {
        "image"
            .parse::<ImageRef>()
            .and_then(|image| image.with_tag(value.trim()))
    } else {
        value.trim().parse::<ImageRef>()
    };
    let image =
        parsed.map_err(|e| format!("is not a valid image reference or tag: {}", e.rule()))?;
    match image.pinning(options.mutable_tags) {
        Pinning::Mutable(reason) if options.require_pinned => Err(format!(
            "is not pinned: {reason}; deploy a commit SHA or digest"
        )),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    clusters: Vec<ClusterEntry>,
    #[serde(default)]
    contexts: Vec<ContextEntry>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct ClusterEntry {
    name: String,
    cluster: Option<ClusterBody>,
}

#[derive(Deserialize)]
struct ClusterBody {
    server: Option<String>,
}

#[derive(Deserialize)]
struct ContextEntry {
    name: String,
    context: Option<ContextBody>,
}

#[derive(Deserialize)]
struct ContextBody {
    cluster: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
}

/// True when the text is more likely plain kubeconfig YAML than base64.
fn looks_like_yaml(value: &str) -> bool {
    let trimmed = value.trim_start();
    trimmed.starts_with('{')
        || trimmed.starts_with("---")
        || trimmed.starts_with('#')
        || value.contains("apiVersion:")
        || value.contains("clusters:")
        || value.contains('\n') && value.contains(": ")
}

/// The YAML of a kubeconfig given as plain YAML or base64 of it (seed 000's
/// `KUBE_CONFIG_DATA`), with the encoding found (`plain YAML` or `base64`). The error
/// completes a sentence about the value (`KUBE_CONFIG_DATA is neither …`) and never quotes it.
pub fn kubeconfig_text(value: &str) -> Result<(String, &'static str), KindError> {
    kubeconfig_text_of(value).map_err(KindError)
}

/// [`kubeconfig_text`], its message in words.
fn kubeconfig_text_of(value: &str) -> Result<(String, &'static str), String> {
    if looks_like_yaml(value) {
        return Ok((value.to_owned(), "plain YAML"));
    }
    let bytes = decode_base64(value)
        .map_err(|e| format!("is neither kubeconfig YAML nor base64 of it: it {e}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| "is base64 of binary data, not of a kubeconfig".to_owned())?;
    Ok((text, "base64"))
}

/// Checks a kubeconfig given as plain YAML or base64 of it: it parses, names at least one
/// cluster with a server URL, its contexts point at defined clusters and users, and the
/// current (or requested) context exists.
pub fn check_kubeconfig(value: &str, context: Option<&str>) -> Result<(), KindError> {
    kubeconfig_problem(value, context).map_err(KindError)
}

/// [`check_kubeconfig`], its message in words.
fn kubeconfig_problem(value: &str, context: Option<&str>) -> Result<(), String> {
    let (text, encoding) = kubeconfig_text_of(value)?;
    let config: Kubeconfig = serde_saphyr::from_str(&text).map_err(|e| {
        // The parser's own message quotes the document; report only the position.
        match e.location() {
            Some(at) => format!(
                "is {encoding} that does not parse as a kubeconfig (line {}, column {})",
                at.line(),
                at.column()
            ),
            None => format!("is {encoding} that does not parse as a kubeconfig"),
        }
    })?;
    if let Some(kind) = &config.kind
        && kind != "Config"
    {
        return Err(format!(
            "is a YAML document of kind `{kind}`, not a kubeconfig (kind: Config)"
        ));
    }
    if config.clusters.is_empty() {
        return Err(format!("is {encoding} kubeconfig with no clusters"));
    }
    for cluster in &config.clusters {
        let server = cluster.cluster.as_ref().and_then(|c| c.server.as_deref());
        match server.map(url::Url::parse) {
            Some(Ok(url)) if url.host_str().is_some() => {}
            _ => {
                return Err(format!(
                    "names cluster `{}` without a valid server URL",
                    cluster.name
                ));
            }
        }
    }
    for ctx in &config.contexts {
        let body = ctx.context.as_ref();
        let cluster = body.and_then(|b| b.cluster.as_deref()).unwrap_or_default();
        if !config.clusters.iter().any(|c| c.name == cluster) {
            return Err(format!(
                "has context `{}` pointing at unknown cluster `{cluster}`",
                ctx.name
            ));
        }
        if let Some(user) = body.and_then(|b| b.user.as_deref())
            && !config.users.iter().any(|u| u.name == user)
        {
            return Err(format!(
                "has context `{}` pointing at unknown user `{user}`",
                ctx.name
            ));
        }
    }
    let wanted = context.or(config.current_context.as_deref());
    match wanted {
        Some(name) if !config.contexts.iter().any(|c| c.name == name) => {
            let known: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
            Err(format!("has no context `{name}` (contexts: {})", known.join(", ")))
        }
        // helm and kubectl pick no context by themselves: without one they talk to
        // localhost:8080, not to the cluster this kubeconfig describes.
        None => Err("sets no current-context, so helm would not use any of its contexts; set current-context in the kubeconfig or targets.helm.context".to_owned()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://k8s.example.com:6443\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: deployer\nusers:\n- name: deployer\n  user:\n    token: canary-token-value\ncurrent-context: prod\n";

    fn b64(bytes: &[u8]) -> String {
        general_purpose::STANDARD.encode(bytes)
    }

    fn ok(kind: VarKind, value: &str) -> bool {
        check(kind, value, &KindOptions::default()).is_ok()
    }

    #[test]
    fn urls_need_scheme_and_host() {
        assert!(ok(VarKind::Url, "https://api.example.com/v1"));
        assert!(ok(VarKind::Url, "postgresql+psycopg://u:p@db:5432/x"));
        assert!(!ok(VarKind::Url, "api.example.com"));
        assert!(!ok(VarKind::Url, "file:///etc/passwd"));
        assert!(!ok(VarKind::Url, "https://"));
    }

    #[test]
    fn booleans_integers_ports() {
        for v in ["true", "FALSE", "1", "0", "yes", "off"] {
            assert!(ok(VarKind::Bool, v), "{v}");
        }
        assert!(!ok(VarKind::Bool, "ture"));
        let bounded = KindOptions {
            min: Some(1),
            max: Some(10),
            ..Default::default()
        };
        assert!(check(VarKind::Integer, "5", &bounded).is_ok());
        assert!(
            check(VarKind::Integer, "11", &bounded)
                .unwrap_err()
                .to_string()
                .contains("maximum 10")
        );
        assert!(
            check(VarKind::Integer, "0", &bounded)
                .unwrap_err()
                .to_string()
                .contains("minimum 1")
        );
        assert!(!ok(VarKind::Integer, "5.5"));
        assert!(ok(VarKind::Port, "8080"));
        assert!(!ok(VarKind::Port, "0"));
        assert!(!ok(VarKind::Port, "70000"));
    }

    #[test]
    fn enums_list_the_choices_without_the_value() {
        let values = vec!["a".to_owned(), "b".to_owned()];
        let options = KindOptions {
            values: &values,
            ..Default::default()
        };
        assert!(check(VarKind::Enum, "a", &options).is_ok());
        let err = check(VarKind::Enum, "secret-c", &options)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "is not one of: a, b");
    }

    #[test]
    fn base64_ignores_wrapping_and_padding() {
        assert!(ok(VarKind::Base64, "aGVsbG8gd29y\nbGQ="));
        assert!(ok(VarKind::Base64, "aGVsbG8gd29ybGQ"));
        assert!(
            check(VarKind::Base64, "not*base64", &KindOptions::default())
                .unwrap_err()
                .to_string()
                .contains("invalid character at position 4")
        );
    }

    #[cfg(feature = "ed25519")]
    #[test]
    fn ed25519_seed_and_keypair() {
        let seed = [7u8; 32];
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        assert!(ok(VarKind::Ed25519Key, &b64(&seed)));
        assert!(ok(VarKind::Ed25519Key, &b64(&signing.to_keypair_bytes())));
        let mut broken = signing.to_keypair_bytes();
        broken[40] ^= 1;
        assert!(
            check(VarKind::Ed25519Key, &b64(&broken), &KindOptions::default())
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
        assert!(
            check(
                VarKind::Ed25519Key,
                &b64(&[1u8; 31]),
                &KindOptions::default()
            )
            .unwrap_err()
            .to_string()
            .contains("decodes to 31 bytes")
        );
    }

    #[test]
    fn kubeconfig_plain_and_base64() {
        assert_eq!(check_kubeconfig(KUBECONFIG, None), Ok(()));
        assert_eq!(check_kubeconfig(&b64(KUBECONFIG.as_bytes()), None), Ok(()));
        let wrapped: String = b64(KUBECONFIG.as_bytes())
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned() + "\n")
            .collect();
        assert_eq!(check_kubeconfig(&wrapped, None), Ok(()));
        assert!(
            check_kubeconfig(KUBECONFIG, Some("staging"))
                .unwrap_err()
                .to_string()
                .contains("no context `staging`")
        );
        // Without a current context (and none configured), even a single context is unused.
        let no_current = KUBECONFIG.replace("current-context: prod\n", "");
        assert!(
            check_kubeconfig(&no_current, None)
                .unwrap_err()
                .to_string()
                .contains("sets no current-context")
        );
        assert_eq!(check_kubeconfig(&no_current, Some("prod")), Ok(()));
    }

    #[test]
    fn broken_kubeconfigs_never_echo_their_content() {
        let cases = [
            "apiVersion: v1\nclusters: [\n  token: canary-token-value",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: canary-token-value}\n",
            "apiVersion: v1\nkind: Config\nclusters: []\n",
            "%%%canary-token-value%%%",
        ];
        for case in cases {
            let err = check_kubeconfig(case, None).unwrap_err().to_string();
            assert!(!err.contains("canary-token-value"), "{err}");
        }
        let bad_server = KUBECONFIG.replace("https://k8s.example.com:6443", "not a url");
        assert!(
            check_kubeconfig(&bad_server, None)
                .unwrap_err()
                .to_string()
                .contains("server URL")
        );
        let bad_ctx = KUBECONFIG.replace("cluster: prod\n    user", "cluster: nope\n    user");
        assert!(
            check_kubeconfig(&bad_ctx, None)
                .unwrap_err()
                .to_string()
                .contains("unknown cluster `nope`")
        );
    }

    #[test]
    fn images_must_be_pinned_when_asked() {
        let strict = KindOptions {
            require_pinned: true,
            ..Default::default()
        };
        assert!(check(VarKind::ImageRef, "ghcr.io/a/b:3f2c1a9", &strict).is_ok());
        assert!(
            check(VarKind::ImageRef, "ghcr.io/a/b:latest", &strict)
                .unwrap_err()
                .to_string()
                .contains("not pinned")
        );
        assert!(
            check(
                VarKind::ImageRef,
                "ghcr.io/a/b:latest",
                &KindOptions::default()
            )
            .is_ok()
        );
        assert!(
            check(VarKind::ImageRef, "ghcr.io/A/b:1", &strict)
                .unwrap_err()
                .to_string()
                .contains("uppercase")
        );
        let tag = KindOptions {
            require_pinned: true,
            tag_only: true,
            ..Default::default()
        };
        assert!(check(VarKind::ImageRef, "3f2c1a9", &tag).is_ok());
        assert!(
            check(VarKind::ImageRef, "latest", &tag)
                .unwrap_err()
                .to_string()
                .contains("not pinned")
        );
        // The rule, never the value (it may be a secret pasted into the wrong variable).
        let err = check(VarKind::ImageRef, "bad tag", &tag)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("its tag is invalid") && !err.contains("bad tag"),
            "{err}"
        );
    }
}
