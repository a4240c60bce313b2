//! [`AppState`]: what every HTTP handler and socket actor is handed. Built
//! once in `startup` (outside the `HttpServer::new` factory, which runs once
//! per worker) and shared as `web::Data`.

use crate::auth::{SignatureVerifier, TokenService};
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::room::Directory;
use crate::store::Store;
use crate::turn::TurnService;
use crate::webrtc::SessionSupervisor;
use actix::Addr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// Shared, read-mostly service state.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub instance_id: Arc<str>,
    pub store: Store,
    /// Records robots' `last_seen` without making socket actors wait.
    pub last_seen: crate::store::last_seen::LastSeenWriter,
    pub tokens: Arc<TokenService>,
    pub signatures: Arc<SignatureVerifier>,
    pub metrics: Arc<Metrics>,
    pub turn: Arc<TurnService>,
    /// `proxy.allowed_paths`, compiled.
    pub allow_list: crate::proxy_paths::AllowList,
    /// Finds or starts the `DeviceRoom` of a device.
    pub directory: Addr<Directory>,
    /// Owns every WebRTC session.
    pub sessions: Addr<SessionSupervisor>,
    /// Set when clustered: the Redis bridge.
    pub cluster: Option<Addr<crate::cluster::ClusterBridge>>,
    /// Clustered: true while Redis pub/sub is live.
    pub cluster_up: Arc<std::sync::atomic::AtomicBool>,
    /// Source of connection ids (`<instance>.<n>`).
    pub next_conn: AtomicU64,
    /// Flipped on shutdown: robot sockets close first...
    pub robots_shutdown: watch::Receiver<bool>,
    /// ...then, after rooms drained, app sockets.
    pub apps_shutdown: watch::Receiver<bool>,
    pub started: Instant,
    /// Verified against when a login names an unknown user (equal timing).
    pub dummy_hash: String,
    /// Password hashes running at once (each takes 19 MiB and a core for a
    /// while): at most one per core, so a login flood queues instead of
    /// exhausting memory.
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// `server.allowed_origins` and the relay's own: who may use it from a browser.
    pub origins: Arc<crate::net::origin::AllowedOrigins>,
    /// Caps per user, device and address; login/registration throttles.
    pub caps: Arc<crate::caps::Caps>,
}

impl AppState {
    pub fn conn_id(&self) -> crate::ids::ConnId {
        let n = self
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::ids::ConnId::new(&self.instance_id, n)
    }
}
