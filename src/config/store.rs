//! The `[store]` and `[cluster]` sections: where the relay keeps its state
//! (SQL), and the Redis that joins instances into a cluster.

use super::ConfigError;
use crate::secret::Secret;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `sqlite://PATH` (created when missing) or `postgres://...`.
    pub url: Secret,
    pub max_connections: u32,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            url: Secret::new("sqlite://data/relay.db"),
            max_connections: 10,
        }
    }
}

impl StoreSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let url = self.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "store.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// Empty: single instance. `redis://...`: clustered.
    pub redis_url: Secret,
    /// A robot's presence key lives this long without a refresh.
    pub presence_ttl_s: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            redis_url: Secret::default(),
            presence_ttl_s: 30,
        }
    }
}

impl ClusterSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let redis = self.redis_url.expose();
        if !(redis.is_empty() || redis.starts_with("redis://") || redis.starts_with("rediss://")) {
            return Err(ConfigError::new(
                "cluster.redis_url",
                "must start with redis://",
            ));
        }
        Ok(())
    }
}
