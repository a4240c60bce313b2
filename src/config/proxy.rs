//! The `[proxy]` section: REST calls relayed to a robot.

use super::{seconds, string_list, ConfigError};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySettings {
    pub timeout_s: f64,
    /// `METHOD /path/pattern` or `/path/pattern` (any method); `*` matches one
    /// segment, a trailing `/**` any rest.
    #[serde(deserialize_with = "string_list")]
    pub allowed_paths: Vec<String>,
    /// Requests waiting on one robot at once; beyond, 429.
    pub max_pending_per_device: usize,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            timeout_s: 10.0,
            allowed_paths: crate::proxy_paths::DEFAULT_ALLOWED
                .iter()
                .copied()
                .map(String::from)
                .collect(),
            max_pending_per_device: 64,
        }
    }
}

impl ProxySettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        seconds("proxy.timeout_s", self.timeout_s)?;
        for (i, p) in self.allowed_paths.iter().enumerate() {
            if crate::proxy_paths::Rule::parse(p).is_none() {
                return Err(ConfigError::new(
                    format!("proxy.allowed_paths[{i}]"),
                    format!("{p:?} is not \"[METHOD ]/path\""),
                ));
            }
        }
        Ok(())
    }
}
