//! The `[webrtc]` and `[turn]` sections: signaling sessions and the TURN
//! credentials handed out for them.

use super::{at_least, seconds, string_list, ConfigError};
use crate::secret::Secret;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebrtcSettings {
    pub setup_timeout_s: f64,
    pub idle_timeout_s: f64,
    pub max_sessions_per_device: usize,
}

impl Default for WebrtcSettings {
    fn default() -> Self {
        WebrtcSettings {
            setup_timeout_s: 30.0,
            idle_timeout_s: 300.0,
            max_sessions_per_device: 4,
        }
    }
}

impl WebrtcSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        seconds("webrtc.setup_timeout_s", self.setup_timeout_s)?;
        seconds("webrtc.idle_timeout_s", self.idle_timeout_s)?;
        at_least(
            "webrtc.max_sessions_per_device",
            self.max_sessions_per_device as u64,
            1,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TurnProvider {
    #[default]
    None,
    Hmac,
    Static,
    Cloudflare,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnSettings {
    pub provider: TurnProvider,
    /// `hmac`: coturn's `static-auth-secret`.
    pub secret: Secret,
    /// TURN URLs handed out (`turn:host:3478?transport=udp`, ...).
    #[serde(deserialize_with = "string_list")]
    pub urls: Vec<String>,
    pub ttl_s: u64,
    #[serde(deserialize_with = "string_list")]
    pub stun_urls: Vec<String>,
    /// `static`: the fixed username and credential.
    pub username: String,
    pub credential: Secret,
    /// `cloudflare`: TURN key id, API token and API base URL.
    pub key_id: String,
    pub api_token: Secret,
    pub api_base: String,
}

impl Default for TurnSettings {
    fn default() -> Self {
        TurnSettings {
            provider: TurnProvider::None,
            secret: Secret::default(),
            urls: Vec::new(),
            ttl_s: 86_400,
            stun_urls: vec!["stun:stun.l.google.com:19302".into()],
            username: String::new(),
            credential: Secret::default(),
            key_id: String::new(),
            api_token: Secret::default(),
            api_base: "https://rtc.live.cloudflare.com".into(),
        }
    }
}

impl TurnSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let required = |key: &str, missing: bool, provider: &str| {
            if missing {
                Err(ConfigError::new(
                    key,
                    format!("required when turn.provider = \"{provider}\""),
                ))
            } else {
                Ok(())
            }
        };
        match self.provider {
            TurnProvider::None => {}
            TurnProvider::Hmac => {
                required("turn.secret", self.secret.is_empty(), "hmac")?;
                required("turn.urls", self.urls.is_empty(), "hmac")?;
            }
            TurnProvider::Static => {
                if self.username.is_empty() || self.credential.is_empty() {
                    return Err(ConfigError::new(
                        "turn.username",
                        "turn.username and turn.credential are required when turn.provider = \"static\"",
                    ));
                }
                required("turn.urls", self.urls.is_empty(), "static")?;
            }
            TurnProvider::Cloudflare => {
                required("turn.key_id", self.key_id.is_empty(), "cloudflare")?;
                required("turn.api_token", self.api_token.is_empty(), "cloudflare")?;
            }
        }
        at_least("turn.ttl_s", self.ttl_s, 60)
    }
}
