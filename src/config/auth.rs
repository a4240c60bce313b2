//! The `[auth]` section: access tokens, registration, device signatures.

use super::{at_least, ConfigError};
use crate::secret::Secret;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// HS256 key for access tokens; generated and kept in `server.data_dir` when empty.
    pub jwt_secret: Secret,
    pub token_ttl_s: u64,
    pub allow_registration: bool,
    /// Device signatures are accepted within ± this many seconds of our clock.
    pub signature_window_s: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            jwt_secret: Secret::default(),
            token_ttl_s: 86_400,
            allow_registration: true,
            signature_window_s: 300,
        }
    }
}

impl AuthSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least("auth.token_ttl_s", self.token_ttl_s, 1)?;
        at_least("auth.signature_window_s", self.signature_window_s, 1)?;
        if !self.jwt_secret.is_empty() && self.jwt_secret.expose().len() < 32 {
            return Err(ConfigError::new(
                "auth.jwt_secret",
                "must be at least 32 characters (or empty to generate one)",
            ));
        }
        Ok(())
    }
}
