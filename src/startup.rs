//! Building and running the relay: [`Application::build`] wires the store,
//! auth, actors and HTTP server; [`Application::run_until_stopped`] serves
//! until [`AppHandle::shutdown`] (`crate::shutdown`; SIGTERM in `serve`, the
//! harness in tests).

use crate::auth::{
    MemoryReplayGuard, RedisReplayGuard, ReplayGuard, SignatureVerifier, TokenService,
};
use crate::cluster::link::{Link, Topology};
use crate::cluster::messages::Upstream;
use crate::cluster::ClusterBridge;
use crate::config::{secs, Settings};
use crate::metrics::Metrics;
use crate::net::origin::AllowedOrigins;
use crate::room::device_room::RoomEnv;
use crate::room::Directory;
use crate::secret::Secret;
use crate::state::AppState;
use crate::state::Phase;
use crate::store::last_seen::{LastSeenTask, LastSeenWriter};
use crate::store::Store;
use crate::supervise::{self, Mailbox, OnStop};
use crate::turn::TurnService;
use crate::webrtc::SessionSupervisor;
use actix::Addr;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a stopping relay waits for its queued `last_seen` writes.
const LAST_SEEN_FLUSH: Duration = Duration::from_secs(1);

/// A built, not yet running, relay.
pub struct Application {
    port: u16,
    server: Server,
    handle: AppHandle,
    /// The task writing robots' queued `last_seen` times to the store:
    /// drained after the server stops, for at most `LAST_SEEN_FLUSH`.
    last_seen_task: LastSeenTask,
}

/// Cloneable control of a running relay.
#[derive(Clone)]
pub struct AppHandle {
    pub(crate) server: ServerHandle,
    pub state: web::Data<AppState>,
    /// Robot sockets follow it on shutdown (closed first)...
    pub(crate) robots_down: Arc<watch::Sender<Phase>>,
    /// ...app sockets once the rooms drained.
    pub(crate) apps_down: Arc<watch::Sender<Phase>>,
    /// The listening socket (a second handle to the server's), shut down
    /// first on shutdown so new connections are refused, not queued.
    pub(crate) listener: Option<Arc<TcpListener>>,
    /// Fired when a shutdown is over: `run_until_stopped` returns then,
    /// even if the server is still waiting on a connection.
    pub(crate) stopped: Arc<tokio::sync::Notify>,
}

/// The actors every request reaches: the room directory, the WebRTC
/// session supervisor and, when clustered, the bridge to the other
/// instances.
struct Actors {
    directory: Addr<Directory>,
    sessions: Addr<SessionSupervisor>,
    cluster: Option<Addr<ClusterBridge>>,
    /// Clustered: true while Redis pub/sub is live (`/health`).
    cluster_up: Arc<AtomicBool>,
}

impl Application {
    /// Start-up in order: listen (a taken port fails before anything
    /// starts), name the instance, auth, store, actors, shared state, then
    /// the HTTP server.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let settings = Arc::new(settings);
        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("server.bind: cannot listen on {}", settings.server.bind))?;
        let instance_id = instance_id(&settings);
        let jwt_secret = jwt_secret(&settings)?;
        let tokens = Arc::new(TokenService::new(&jwt_secret, settings.auth.token_ttl_s));
        tokens.self_test().context("JWT self-test")?;
        let store = Store::connect(&settings.store.url, settings.store.max_connections).await?;
        let (last_seen, last_seen_task) = LastSeenWriter::start(store.clone());
        let metrics = Arc::new(Metrics::new(&instance_id, settings.clustered()));
        metrics.spawn_upkeep(secs(settings.metrics.upkeep_interval_s));
        let turn = Arc::new(TurnService::new(settings.turn.clone()));
        let link = redis_link(&settings).await?;
        let actors = start_actors(&settings, &instance_id, &store, &metrics, &turn, &link);
        let replay = replay_guard(&link);
        let origins = Arc::new(allowed_origins(&settings)?);
        let (robots_tx, robots_rx) = watch::channel(Phase::Serving);
        let (apps_tx, apps_rx) = watch::channel(Phase::Serving);
        let state = web::Data::new(AppState {
            settings: settings.clone(),
            instance_id: instance_id.clone(),
            store,
            last_seen,
            tokens,
            signatures: Arc::new(SignatureVerifier::new(
                settings.auth.signature_window_s,
                replay,
            )),
            metrics: metrics.clone(),
            turn,
            allow_list: crate::proxy_paths::AllowList::new(&settings.proxy.allowed_paths),
            directory: actors.directory,
            sessions: actors.sessions,
            cluster: actors.cluster,
            cluster_up: actors.cluster_up,
            next_conn: Default::default(),
            robots_shutdown: robots_rx,
            apps_shutdown: apps_rx,
            started: Instant::now(),
            dummy_hash: crate::auth::password::dummy_hash(),
            hashing: Arc::new(tokio::sync::Semaphore::new(cores())),
            origins,
            caps: Arc::new(crate::caps::Caps::new(&settings, metrics)),
        });

        let port = listener.local_addr()?.port();
        let listener_handle = listener.try_clone().ok().map(Arc::new);
        let server = http_server(listener, &settings, state.clone())?;
        tracing::info!(
            instance_id = %instance_id,
            bind = %settings.server.bind,
            port,
            store = state.store.backend(),
            clustered = settings.clustered(),
            "relay listening"
        );
        let handle = AppHandle {
            server: server.handle(),
            state,
            robots_down: Arc::new(robots_tx),
            apps_down: Arc::new(apps_tx),
            listener: listener_handle,
            stopped: Arc::new(tokio::sync::Notify::new()),
        };
        Ok(Application {
            port,
            server,
            handle,
            last_seen_task,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> AppHandle {
        self.handle.clone()
    }

    /// Serves until the server stops, or until a shutdown is over (its
    /// budget spent) while the server still waits on a connection.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopped = self.handle.stopped.clone();
        let result = tokio::select! {
            r = self.server => r,
            _ = stopped.notified() => Ok(()),
        };
        // `last_seen` writes still queued: a store that hangs does not hold
        // the process (its budget is spent).
        let _ = tokio::time::timeout(LAST_SEEN_FLUSH, self.last_seen_task.finish()).await;
        result
    }
}

impl AppHandle {
    /// Immediate stop (tests).
    pub async fn stop_now(&self) {
        self.server.stop(false).await;
    }
}

/// `server.instance_id`, or `relay-` and 8 random hex digits.
fn instance_id(settings: &Settings) -> Arc<str> {
    if settings.server.instance_id.is_empty() {
        Arc::from(format!(
            "relay-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ))
    } else {
        Arc::from(settings.server.instance_id.as_str())
    }
}

/// Threads for password hashing: one per core.
fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// One link to Redis when clustered (one server, Sentinel or a Redis
/// Cluster), shared by the bridge and the signature replay guard.
async fn redis_link(settings: &Settings) -> anyhow::Result<Option<(Link, Topology)>> {
    let Some(topology) = settings.cluster.topology() else {
        return Ok(None);
    };
    let link = Link::connect(&topology)
        .await
        .map_err(|e| anyhow::anyhow!("cluster: cannot connect to Redis: {e}"))?;
    Ok(Some((link, topology)))
}

/// Starts the actors. The directory's and the session supervisor's
/// mailboxes come first: the bridge hands them what other instances send,
/// and they need the bridge when they are built.
fn start_actors(
    settings: &Settings,
    instance_id: &Arc<str>,
    store: &Store,
    metrics: &Arc<Metrics>,
    turn: &Arc<TurnService>,
    link: &Option<(Link, Topology)>,
) -> Actors {
    let directory_mailbox = Mailbox::<Directory>::new();
    let sessions_mailbox = Mailbox::<SessionSupervisor>::new();
    let cluster_up = Arc::new(AtomicBool::new(false));
    let cluster = if let Some((link, topology)) = link {
        let upstream = Upstream {
            rooms: directory_mailbox.address().recipient(),
            sessions: sessions_mailbox.address().recipient(),
        };
        let config = crate::cluster::BridgeConfig {
            topology: topology.clone(),
            instance: instance_id.clone(),
            presence_ttl_s: settings.cluster.presence_ttl_s,
            history_size: settings.history.size,
            snapshot_flush: Duration::from_millis(settings.cluster.snapshot_flush_ms),
        };
        let bridge = ClusterBridge::new(
            link.clone(),
            config,
            metrics.clone(),
            cluster_up.clone(),
            upstream,
        );
        let lane = bridge.lane();
        let bridge = supervise::start("cluster_bridge", metrics.clone(), OnStop::Restart, |_| {
            bridge
        });
        Some((bridge, lane))
    } else {
        None
    };
    let (cluster, lane) = cluster.unzip();
    let supervisor = SessionSupervisor::new(
        settings.webrtc.clone(),
        turn.clone(),
        store.clone(),
        metrics.clone(),
        cluster.clone(),
        instance_id.clone(),
    );
    let sessions = sessions_mailbox.start(
        "session_supervisor",
        metrics.clone(),
        OnStop::Restart,
        supervisor,
    );
    let env = RoomEnv {
        metrics: metrics.clone(),
        history_size: settings.history.size,
        idle_grace: secs(settings.rooms.idle_grace_s),
        max_pending_proxy: settings.proxy.max_pending_per_device,
        max_members: settings.caps.app_sockets_per_device,
        bridge: cluster.clone(),
        lane,
        sessions: Some(sessions.clone().recipient()),
        instance: instance_id.clone(),
    };
    let directory = directory_mailbox.start(
        "directory",
        metrics.clone(),
        OnStop::Restart,
        Directory::new(env),
    );
    Actors {
        directory,
        sessions,
        cluster,
        cluster_up,
    }
}

/// Device-signature nonces: in Redis when clustered (a nonce seen by one
/// instance is refused by all), else in memory.
fn replay_guard(link: &Option<(Link, Topology)>) -> Arc<dyn ReplayGuard> {
    match link {
        Some((link, _)) => Arc::new(RedisReplayGuard::new(link.clone())),
        None => Arc::new(MemoryReplayGuard::default()),
    }
}

/// `server.allowed_origins` (validated with the settings; checked again here
/// so that a bad entry is an error, never a panic).
fn allowed_origins(settings: &Settings) -> anyhow::Result<AllowedOrigins> {
    AllowedOrigins::new(
        &settings.server.allowed_origins,
        &settings.server.trusted_proxies,
    )
    .map_err(|(i, e)| anyhow::anyhow!("server.allowed_origins[{i}]: {e:?} is not an origin"))
}

/// The HTTP server on `listener`, started (its workers run the routes and
/// sockets; it serves once polled).
fn http_server(
    listener: TcpListener,
    settings: &Settings,
    state: web::Data<AppState>,
) -> anyhow::Result<Server> {
    let max_body = settings.server.max_body_bytes;
    let origins = state.origins.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // Innermost first: CORS for allowed origins, the origin
            // guard before it, the request span around everything.
            .wrap(crate::http::origins::cors(origins.clone()))
            .wrap(actix_web::middleware::from_fn(crate::http::origins::guard))
            .wrap(actix_web::middleware::from_fn(
                crate::telemetry::request_span,
            ))
            .configure(|cfg| crate::http::routes(cfg, max_body))
            .configure(crate::ws::routes)
    })
    .disable_signals()
    // Small frames to many sockets: without TCP_NODELAY a second frame
    // waits for the peer's delayed ACK (~40 ms) behind an unacked first.
    .tcp_nodelay(true)
    .shutdown_timeout(settings.server.shutdown_timeout_s.ceil() as u64)
    .listen(listener)?;
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    Ok(server.run())
}

/// `auth.jwt_secret`, or one generated once and kept in `server.data_dir`.
fn jwt_secret(settings: &Settings) -> anyhow::Result<Secret> {
    if !settings.auth.jwt_secret.is_empty() {
        return Ok(settings.auth.jwt_secret.clone());
    }
    let dir = &settings.server.data_dir;
    let path = dir.join("jwt_secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        if existing.len() >= 32 {
            tracing::warn!(path = %path.display(), "auth.jwt_secret is not set; using the generated secret kept in the data dir (set auth.jwt_secret for a cluster)");
            return Ok(Secret::new(existing));
        }
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("server.data_dir: creating {}", dir.display()))?;
    let secret = crate::http::devices::new_device_secret();
    write_private(&path, secret.expose())
        .with_context(|| format!("server.data_dir: writing {}", path.display()))?;
    tracing::warn!(path = %path.display(), "auth.jwt_secret is not set; generated one and kept it in the data dir (set auth.jwt_secret for a cluster)");
    Ok(secret)
}

fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(content.as_bytes())
}

/// `wimz-relay serve`: build, run, stop gracefully on SIGTERM or Ctrl-C.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let handle = app.handle();
    actix_rt::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received; closing sockets");
        handle.shutdown().await;
    });
    app.run_until_stopped().await?;
    tracing::info!("relay stopped");
    Ok(())
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
