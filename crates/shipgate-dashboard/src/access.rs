//! Who may read the dashboard. On the loopback anyone on the machine may; any other address
//! needs a rule: a bearer token, basic-authentication credentials (both compared in constant
//! time), or a header set by an authenticating proxy in front. Without one the dashboard
//! refuses to start ([`Access::check_bind`]).

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderName, header};
use base64::Engine as _;
use shipgate_core::Secret;
use subtle::ConstantTimeEq as _;

use crate::DashboardError;

/// The access rule.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Access {
    /// No rule: allowed only on a loopback address.
    #[default]
    LoopbackOnly,
    /// `Authorization: Bearer <token>`.
    Token(Secret),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
    /// An authenticating proxy in front sets this header to the signed-in user; requests
    /// without it are refused.
    TrustProxyHeader(HeaderName),
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No or wrong credentials: 401 with this `WWW-Authenticate` challenge.
    Unauthorized(&'static str),
}

impl Access {
    /// Whether the rule lets the dashboard serve on `address`: a loopback address always,
    /// any other only with a rule.
    pub fn check_bind(&self, address: SocketAddr) -> Result<(), DashboardError> {
        if address.ip().is_loopback() || !matches!(self, Access::LoopbackOnly) {
            return Ok(());
        }
        Err(DashboardError::NoAccessRule { address })
    }

    /// Whether a request with these headers may read.
    pub fn allows(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        match self {
            Access::LoopbackOnly => Ok(()),
            Access::Token(token) => {
                let sent = authorization(headers, "Bearer ").unwrap_or_default();
                if equal(sent.as_bytes(), token.expose().as_bytes()) {
                    Ok(())
                } else {
                    Err(Refusal::Unauthorized("Bearer realm=\"shipgate\""))
                }
            }
            Access::Basic { user, password } => {
                let expected = format!("{user}:{}", password.expose());
                let sent = authorization(headers, "Basic ")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .unwrap_or_default();
                if equal(&sent, expected.as_bytes()) {
                    Ok(())
                } else {
                    Err(Refusal::Unauthorized(
                        "Basic realm=\"shipgate\", charset=\"UTF-8\"",
                    ))
                }
            }
            Access::TrustProxyHeader(name) => match headers.get(name) {
                Some(user) if !user.is_empty() => Ok(()),
                _ => Err(Refusal::Unauthorized("Proxy")),
            },
        }
    }
}

/// The credentials after `scheme` in the `Authorization` header.
fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_at_checked(scheme.len())?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// Constant-time equality (the length still shows, as in every such comparison).
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(name: HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn any_other_address_than_the_loopback_needs_a_rule() {
        let open = Access::LoopbackOnly;
        assert!(open.check_bind("127.0.0.1:9465".parse().unwrap()).is_ok());
        assert!(open.check_bind("[::1]:9465".parse().unwrap()).is_ok());
        let err = open
            .check_bind("0.0.0.0:9465".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("0.0.0.0:9465") && err.contains("[dashboard]"),
            "{err}"
        );
        let token = Access::Token(Secret::new("t0ken-value"));
        assert!(token.check_bind("0.0.0.0:9465".parse().unwrap()).is_ok());
    }

    #[test]
    fn a_token_must_match_exactly() {
        let access = Access::Token(Secret::new("s3cret-token"));
        assert!(access.allows(&HeaderMap::new()).is_err());
        assert!(
            access
                .allows(&with(header::AUTHORIZATION, "Bearer s3cret-token"))
                .is_ok()
        );
        assert!(
            access
                .allows(&with(header::AUTHORIZATION, "bearer s3cret-token"))
                .is_ok()
        );
        for wrong in [
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "Basic s3cret-token",
            "s3cret-token",
        ] {
            assert!(
                access.allows(&with(header::AUTHORIZATION, wrong)).is_err(),
                "{wrong}"
            );
        }
    }

    #[test]
    fn basic_credentials_must_match_user_and_password() {
        let access = Access::Basic {
            user: "ops".into(),
            password: Secret::new("pa55word"),
        };
        let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let good = format!("Basic {}", encode("ops:pa55word"));
        assert!(access.allows(&with(header::AUTHORIZATION, &good)).is_ok());
        for wrong in ["ops:pa55wor", "op:pa55word", "ops:pa55word:", ""] {
            let sent = format!("Basic {}", encode(wrong));
            assert_eq!(
                access.allows(&with(header::AUTHORIZATION, &sent)),
                Err(Refusal::Unauthorized(
                    "Basic realm=\"shipgate\", charset=\"UTF-8\""
                ))
            );
        }
        assert!(
            access
                .allows(&with(header::AUTHORIZATION, "Basic !!"))
                .is_err()
        );
    }

    #[test]
    fn behind_a_proxy_its_header_must_be_there() {
        let name = HeaderName::from_static("x-forwarded-user");
        let access = Access::TrustProxyHeader(name.clone());
        assert!(access.allows(&with(name.clone(), "alice")).is_ok());
        assert!(access.allows(&with(name, "")).is_err());
        assert!(access.allows(&HeaderMap::new()).is_err());
    }
}
