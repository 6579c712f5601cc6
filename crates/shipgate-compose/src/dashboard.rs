//! The dashboard of `[dashboard]`: its access rule, with credentials from the secret sources.

use shipgate_dashboard::{Access, Dashboard};

use crate::{ComposeError, Composition};

impl Composition {
    /// The access rule of `[dashboard]`: at most one of `token`, `basic_user` +
    /// `basic_password` or `trust_proxy_header`; none means loopback only. Credentials come
    /// from the secret sources (and join the redactor).
    pub async fn dashboard_access(&self) -> Result<Access, ComposeError> {
        let config = &self.config().dashboard;
        let rules = [
            config.token.is_some(),
            config.basic_user.is_some() || config.basic_password.is_some(),
            config.trust_proxy_header.is_some(),
        ];
        if rules.iter().filter(|r| **r).count() > 1 {
            return Err(ComposeError::setup(
                "[dashboard] sets more than one access rule: keep one of token, basic_user + basic_password, trust_proxy_header",
            ));
        }
        if let Some(key) = &config.token {
            let token = self.required_secret(key, "[dashboard] token").await?;
            if token.expose().trim().len() < 16 {
                return Err(ComposeError::setup(format!(
                    "[dashboard] token: secret {key} is shorter than 16 characters; use a long random token (openssl rand -hex 32)"
                )));
            }
            return Ok(Access::Token(token));
        }
        match (&config.basic_user, &config.basic_password) {
            (Some(user), Some(key)) => {
                if user.is_empty() || user.contains(':') {
                    return Err(ComposeError::setup(
                        "[dashboard] basic_user must be a non-empty name without ':'",
                    ));
                }
                let password = self
                    .required_secret(key, "[dashboard] basic_password")
                    .await?;
                return Ok(Access::Basic {
                    user: user.clone(),
                    password,
                });
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(ComposeError::setup(
                    "[dashboard] basic authentication needs both basic_user and basic_password (the secret key holding the password)",
                ));
            }
            (None, None) => {}
        }
        if let Some(name) = &config.trust_proxy_header {
            let header = axum_header(name).ok_or_else(|| {
                ComposeError::setup(format!(
                    "[dashboard] trust_proxy_header {:?} is not a header name (e.g. X-Forwarded-User)",
                    shipgate_core::excerpt(name, 60)
                ))
            })?;
            return Ok(Access::TrustProxyHeader(header));
        }
        Ok(Access::LoopbackOnly)
    }

    /// The dashboard over this configuration's ledger, with its access rule.
    pub async fn dashboard(&self) -> Result<Dashboard, ComposeError> {
        let access = self.dashboard_access().await?;
        let ledger = self.ledger().await?;
        Ok(Dashboard::new(
            ledger,
            access,
            self.redactor().clone(),
            self.config().dashboard.refresh.as_duration().as_secs(),
        ))
    }
}

fn axum_header(name: &str) -> Option<shipgate_dashboard::HeaderName> {
    shipgate_dashboard::HeaderName::from_bytes(name.trim().as_bytes()).ok()
}
