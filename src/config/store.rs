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
    /// Empty: single instance (unless one of the two below is set).
    /// `redis://...`: clustered on one Redis server.
    pub redis_url: Secret,
    /// A robot's presence key lives this long without a refresh.
    pub presence_ttl_s: u64,
    /// Sentinels watching the master named `sentinel_master`
    /// (`redis://host:port` each): clustered on whichever server they say is
    /// the master, following failovers.
    #[serde(deserialize_with = "super::string_list")]
    pub sentinels: Vec<String>,
    pub sentinel_master: String,
    /// Seed nodes of a Redis Cluster (`redis://host:port` each): clustered
    /// on it, devices spread over its shards, sharded pub/sub.
    #[serde(deserialize_with = "super::string_list")]
    pub redis_cluster_nodes: Vec<String>,
    /// Changed device snapshots are written to Redis at most this often (ms).
    pub snapshot_flush_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            redis_url: Secret::default(),
            presence_ttl_s: 30,
            sentinels: Vec::new(),
            sentinel_master: String::new(),
            redis_cluster_nodes: Vec::new(),
            snapshot_flush_ms: 1000,
        }
    }
}

impl ClusterSettings {
    /// Where Redis is; `None` for a single instance.
    pub fn topology(&self) -> Option<crate::cluster::link::Topology> {
        use crate::cluster::link::Topology;
        if !self.redis_cluster_nodes.is_empty() {
            Some(Topology::Cluster(self.redis_cluster_nodes.clone()))
        } else if !self.sentinels.is_empty() {
            Some(Topology::Sentinel {
                sentinels: self.sentinels.clone(),
                master: self.sentinel_master.clone(),
            })
        } else if !self.redis_url.is_empty() {
            Some(Topology::Single(self.redis_url.expose().to_string()))
        } else {
            None
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let redis_like = |u: &str| u.starts_with("redis://") || u.starts_with("rediss://");
        let redis = self.redis_url.expose();
        if !(redis.is_empty() || redis_like(redis)) {
            return Err(ConfigError::new(
                "cluster.redis_url",
                "must start with redis://",
            ));
        }
        for (key, list) in [
            ("cluster.sentinels", &self.sentinels),
            ("cluster.redis_cluster_nodes", &self.redis_cluster_nodes),
        ] {
            if list.iter().any(|u| !redis_like(u)) {
                return Err(ConfigError::new(key, "each must start with redis://"));
            }
        }
        let ways = [
            !redis.is_empty(),
            !self.sentinels.is_empty(),
            !self.redis_cluster_nodes.is_empty(),
        ];
        if ways.iter().filter(|w| **w).count() > 1 {
            return Err(ConfigError::new(
                "cluster.redis_url",
                "set only one of cluster.redis_url, cluster.sentinels, cluster.redis_cluster_nodes",
            ));
        }
        if !self.sentinels.is_empty() && self.sentinel_master.is_empty() {
            return Err(ConfigError::new(
                "cluster.sentinel_master",
                "must name the master the sentinels watch",
            ));
        }
        if self.snapshot_flush_ms == 0 {
            return Err(ConfigError::new(
                "cluster.snapshot_flush_ms",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
