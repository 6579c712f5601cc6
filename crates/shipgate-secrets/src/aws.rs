//! AWS Secrets Manager over its JSON protocol (`X-Amz-Target: secretsmanager.GetSecretValue`),
//! signed with Signature Version 4. Behind the `aws` cargo feature.
//!
//! A secret whose `SecretString` is a JSON object is a set of keys (the common layout): key `K`
//! reads field `K` (or `[secrets.keys.K] field`). A secret that is a plain string or binary is
//! one value: read it whole with `field = "*"`; asking it for a field is an error, never a
//! guess. The secret is fetched once per run.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use shipgate_core::{Redactor, Secret};
use shipgate_http::{RetryPolicy, send_with_retry};
use tokio::sync::OnceCell;

use crate::{Lookup, SecretSource};

/// The field name that reads a secret whole.
pub const WHOLE_SECRET: &str = "*";

/// Static AWS credentials (from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`).
#[derive(Debug, Clone)]
pub struct AwsCredentials {
    /// Access key ID (not secret, but not printed either).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Session token of temporary credentials.
    pub session_token: Option<Secret>,
}

/// The contents of one secret.
enum Contents {
    Fields(BTreeMap<String, Secret>),
    Whole(Secret),
    NotFound,
}

/// One AWS Secrets Manager secret as a source.
pub struct AwsSecretsManagerSource {
    name: String,
    client: reqwest::Client,
    endpoint: url::Url,
    region: String,
    secret_id: String,
    credentials: AwsCredentials,
    policy: RetryPolicy,
    contents: OnceCell<Result<Contents, String>>,
}

impl std::fmt::Debug for AwsSecretsManagerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSecretsManagerSource")
            .field("name", &self.name)
            .field("secret_id", &self.secret_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsSecretsManagerSource {
    /// A source for `secret_id` in `region`; `endpoint` overrides
    /// `https://secretsmanager.{region}.amazonaws.com` (VPC endpoints, tests).
    pub fn new(
        name: &str,
        client: reqwest::Client,
        secret_id: &str,
        region: &str,
        endpoint: Option<&str>,
        credentials: AwsCredentials,
        policy: RetryPolicy,
    ) -> Result<AwsSecretsManagerSource, String> {
        let raw = endpoint.map_or_else(
            || format!("https://secretsmanager.{region}.amazonaws.com/"),
            str::to_owned,
        );
        let endpoint = url::Url::parse(&raw)
            .ok()
            .filter(|u| u.host_str().is_some())
            .ok_or_else(|| format!("`{raw}` is not an endpoint URL"))?;
        Ok(AwsSecretsManagerSource {
            name: name.to_owned(),
            client,
            endpoint,
            region: region.to_owned(),
            secret_id: secret_id.to_owned(),
            credentials,
            policy,
            contents: OnceCell::new(),
        })
    }

    async fn fetch(&self) -> Result<Contents, String> {
        let redactor = Redactor::default();
        redactor.add(&self.credentials.secret_access_key);
        if let Some(token) = &self.credentials.session_token {
            redactor.add(token);
        }
        let body = serde_json::json!({ "SecretId": self.secret_id }).to_string();
        let host = match self.endpoint.port() {
            Some(port) => format!("{}:{port}", self.endpoint.host_str().unwrap_or_default()),
            None => self.endpoint.host_str().unwrap_or_default().to_owned(),
        };
        let fetched = send_with_retry(
            || {
                let amz_date = amz_date(SystemTime::now());
                let mut headers = vec![
                    (
                        "content-type".to_owned(),
                        "application/x-amz-json-1.1".to_owned(),
                    ),
                    ("host".to_owned(), host.clone()),
                    ("x-amz-date".to_owned(), amz_date.clone()),
                    (
                        "x-amz-target".to_owned(),
                        "secretsmanager.GetSecretValue".to_owned(),
                    ),
                ];
                if let Some(token) = &self.credentials.session_token {
                    headers.push(("x-amz-security-token".to_owned(), token.expose().to_owned()));
                }
                let authorization = sign(&SigningInput {
                    method: "POST",
                    path: self.endpoint.path(),
                    query: "",
                    headers: &headers,
                    body: body.as_bytes(),
                    amz_date: &amz_date,
                    region: &self.region,
                    service: "secretsmanager",
                    credentials: &self.credentials,
                });
                let mut request = self.client.post(self.endpoint.clone()).body(body.clone());
                for (name, value) in headers.iter().filter(|(n, _)| n != "host") {
                    request = request.header(name, value);
                }
                request.header("authorization", authorization)
            },
            &self.policy,
        )
        .await
        .map_err(|e| {
            redactor
                .redact(&format!(
                    "AWS Secrets Manager at {} unreachable: {e}",
                    self.endpoint
                ))
                .into_owned()
        })?;

        let json: serde_json::Value =
            serde_json::from_slice(&fetched.body.bytes).unwrap_or_default();
        if !fetched.status.is_success() {
            let kind = json["__type"]
                .as_str()
                .unwrap_or("")
                .rsplit('#')
                .next()
                .unwrap_or("")
                .to_owned();
            if kind == "ResourceNotFoundException" {
                return Ok(Contents::NotFound);
            }
            let message = json["message"]
                .as_str()
                .or(json["Message"].as_str())
                .unwrap_or("no message");
            let text = format!(
                "AWS Secrets Manager answered {} {kind} for secret `{}`: {message}",
                fetched.status, self.secret_id
            );
            return Err(redactor.redact(&text).into_owned());
        }
        if let Some(text) = json["SecretString"].as_str() {
            return Ok(match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(map)) => Contents::Fields(
                    map.into_iter()
                        .map(|(k, v)| {
                            let value = match v {
                                serde_json::Value::String(s) => s,
                                other => other.to_string(),
                            };
                            (k, Secret::new(value))
                        })
                        .collect(),
                ),
                _ => Contents::Whole(Secret::new(text)),
            });
        }
        if let Some(encoded) = json["SecretBinary"].as_str() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| {
                    format!(
                        "secret `{}`: SecretBinary is not valid base64",
                        self.secret_id
                    )
                })?;
            let text = String::from_utf8(bytes).map_err(|_| {
                format!(
                    "secret `{}`: SecretBinary is not UTF-8 text",
                    self.secret_id
                )
            })?;
            return Ok(Contents::Whole(Secret::new(text)));
        }
        Err(format!(
            "secret `{}` has neither SecretString nor SecretBinary",
            self.secret_id
        ))
    }
}

#[async_trait::async_trait]
impl SecretSource for AwsSecretsManagerSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "aws-secrets-manager"
    }

    async fn lookup<'a>(&'a self, key: &'a str, field: Option<&'a str>) -> Lookup {
        tracing::debug!(secret_id = %self.secret_id, "reading AWS Secrets Manager secret");
        let contents = match self.contents.get_or_init(|| self.fetch()).await {
            Ok(contents) => contents,
            Err(reason) => return Lookup::Failed(reason.clone()),
        };
        let wanted = field.unwrap_or(key);
        match (contents, wanted) {
            (Contents::NotFound, _) => Lookup::Missing,
            (Contents::Whole(secret), WHOLE_SECRET) => Lookup::Found(secret.clone()),
            (Contents::Whole(_), _) => Lookup::Failed(format!(
                "secret `{}` is not a JSON object, so field `{wanted}` cannot be read from it; to use the whole value set `[secrets.keys.{key}] source = \"{}\", field = \"*\"`",
                self.secret_id, self.name
            )),
            (Contents::Fields(_), WHOLE_SECRET) => Lookup::Failed(format!(
                "secret `{}` is a JSON object; name one of its fields instead of `*`",
                self.secret_id
            )),
            (Contents::Fields(fields), _) => match fields.get(wanted) {
                Some(secret) => Lookup::Found(secret.clone()),
                None => Lookup::Missing,
            },
        }
    }
}

/// What SigV4 signs.
struct SigningInput<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    /// Lower-case names; every header here is signed.
    headers: &'a [(String, String)],
    body: &'a [u8],
    amz_date: &'a str,
    region: &'a str,
    service: &'a str,
    credentials: &'a AwsCredentials,
}

/// The `Authorization` header of Signature Version 4.
fn sign(input: &SigningInput<'_>) -> String {
    let mut headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let path = if input.path.is_empty() {
        "/"
    } else {
        input.path
    };
    let canonical_request = format!(
        "{}\n{path}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        input.method,
        input.query,
        hex::encode(Sha256::digest(input.body))
    );
    let date = &input.amz_date[..8];
    let scope = format!("{date}/{}/{}/aws4_request", input.region, input.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        input.amz_date,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let secret = format!("AWS4{}", input.credentials.secret_access_key.expose());
    let k_date = hmac(secret.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, input.region.as_bytes());
    let k_service = hmac(&k_region, input.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        input.credentials.access_key_id
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `20150830T123600Z`.
fn amz_date(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `get-vanilla` case of AWS's Signature Version 4 test suite.
    #[test]
    fn signs_the_aws_test_suite_vanilla_request() {
        let credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        };
        let headers = vec![
            ("host".to_owned(), "example.amazonaws.com".to_owned()),
            ("x-amz-date".to_owned(), "20150830T123600Z".to_owned()),
        ];
        let authorization = sign(&SigningInput {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
            amz_date: "20150830T123600Z",
            region: "us-east-1",
            service: "service",
            credentials: &credentials,
        });
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn formats_amz_dates() {
        let at = UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(at), "20150830T123600Z");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
