//! The `[server]`, `[log]` and `[metrics]` sections: the listener, the
//! process around it, its logs and its metrics.

use super::{seconds, string_list, ConfigError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address the HTTP/WebSocket listener binds.
    pub bind: SocketAddr,
    /// This instance's name in `/health`, `/stats` and the cluster; random when empty.
    pub instance_id: String,
    /// Where generated state (the JWT secret when none is configured) is kept.
    pub data_dir: PathBuf,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// `/stats` and `/metrics` answer without a token when true.
    pub public_stats: bool,
    /// Largest HTTP request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// On SIGTERM: seconds to let sockets close before exiting.
    pub shutdown_timeout_s: f64,
    /// Web origins (`scheme://host[:port]`) whose pages may use the relay
    /// from a browser, besides the relay's own (`http::origins`). A list,
    /// or (from the environment) one comma-separated string.
    #[serde(deserialize_with = "string_list")]
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (addresses
    /// or CIDR blocks); empty: the TCP peer is the client.
    pub trusted_proxies: crate::net::client_ip::TrustedProxies,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: "0.0.0.0:8000".parse().expect("literal address"),
            instance_id: String::new(),
            data_dir: PathBuf::from("data"),
            workers: 0,
            public_stats: true,
            max_body_bytes: 256 * 1024,
            shutdown_timeout_s: 5.0,
            allowed_origins: Vec::new(),
            trusted_proxies: Default::default(),
        }
    }
}

impl ServerSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        seconds("server.shutdown_timeout_s", self.shutdown_timeout_s)?;
        if let Err((i, entry)) =
            crate::net::origin::AllowedOrigins::new(&self.allowed_origins, &self.trusted_proxies)
        {
            return Err(ConfigError::new(
                format!("server.allowed_origins[{i}]"),
                format!("{entry:?} is not an origin \"http(s)://host[:port]\""),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `tracing` filter, e.g. `info` or `wimz_relay=debug,actix_web=info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

impl LogSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.format.as_str(), "text" | "json") {
            return Err(ConfigError::new(
                "log.format",
                "must be \"text\" or \"json\"",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// How often recorded histogram samples are folded into their buckets
    /// (each waiting sample holds about 16 bytes until then, or until a
    /// scrape of `/metrics`).
    pub upkeep_interval_s: f64,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            upkeep_interval_s: 1.0,
        }
    }
}

impl MetricsSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        seconds("metrics.upkeep_interval_s", self.upkeep_interval_s)
    }
}
