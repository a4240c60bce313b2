//! Clustered relay processes for the restart tests (`rolling`, `handoff`):
//! each started with the `wimz-relay` binary on a free port, on one Redis
//! (a server, a Sentinel-watched master or a Redis Cluster) and one shared
//! store, stopped with SIGTERM and started again the same way.

use crate::cluster::{Backend, Redis};
use crate::helpers::*;
use crate::process::{sigterm, start_relay_on, Relay};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `server.shutdown_timeout_s` of the instances here.
pub const BUDGET_S: f64 = 3.0;
/// How long an instance may take to exit after SIGTERM before the test
/// calls it hung (a guard, not a latency bound: the budget plus slack for
/// a loaded machine).
pub const EXIT_GUARD: Duration = Duration::from_secs(20);

/// Where the cluster's instances share their store.
pub struct SharedStore {
    pub url: String,
    _dir: tempfile::TempDir,
}

pub async fn shared_store() -> SharedStore {
    let dir = tempfile::tempdir().unwrap();
    let url = match postgres_admin_url() {
        Some(admin) => fresh_postgres_db(&admin).await.0,
        None => format!("sqlite://{}/shared.db", dir.path().display()),
    };
    SharedStore { url, _dir: dir }
}

/// One clustered relay process: its name, port and the environment it
/// needs (to start it again the same way).
pub struct Instance {
    pub name: &'static str,
    pub port: u16,
    pub env: Vec<(String, String)>,
    pub relay: Option<Relay>,
}

impl Instance {
    pub fn new(name: &'static str, redis: &Redis, store: &str, extra: &[(&str, &str)]) -> Instance {
        Instance::on(name, &Backend::Single(redis.url()), store, extra)
    }

    /// An instance reaching Redis as `backend` says.
    pub fn on(
        name: &'static str,
        backend: &Backend,
        store: &str,
        extra: &[(&str, &str)],
    ) -> Instance {
        let redis = match backend {
            Backend::Single(url) => vec![("WIMZ__CLUSTER__REDIS_URL".into(), url.clone())],
            Backend::Sentinel(sentinels) => vec![
                ("WIMZ__CLUSTER__SENTINELS".into(), sentinels.join(",")),
                (
                    "WIMZ__CLUSTER__SENTINEL_MASTER".into(),
                    crate::redis_topologies::MASTER_NAME.into(),
                ),
            ],
            Backend::Sharded(nodes) => {
                vec![("WIMZ__CLUSTER__REDIS_CLUSTER_NODES".into(), nodes.join(","))]
            }
        };
        let mut env: Vec<(String, String)> = vec![
            ("WIMZ__SERVER__INSTANCE_ID".into(), name.into()),
            ("WIMZ__STORE__URL".into(), store.into()),
            (
                "WIMZ__SERVER__SHUTDOWN_TIMEOUT_S".into(),
                BUDGET_S.to_string(),
            ),
            ("WIMZ__LIMITS__MESSAGES_PER_S".into(), "100000".into()),
            ("WIMZ__LIMITS__MESSAGES_BURST".into(), "100000".into()),
        ];
        env.extend(redis);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Instance {
            name,
            port: free_port(),
            env,
            relay: None,
        }
    }

    pub async fn start(&mut self, dir: &std::path::Path) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.relay = Some(start_relay_on(dir, self.port, "warn", &env).await);
    }

    /// SIGTERM; waits for the process to exit (hang guard) and returns how
    /// long it took and its status.
    pub fn terminate(&mut self) -> (Duration, std::process::ExitStatus) {
        self.terminate_within(EXIT_GUARD)
    }

    pub fn terminate_within(&mut self, guard: Duration) -> (Duration, std::process::ExitStatus) {
        let started = Instant::now();
        self.signal();
        self.wait_exit(started, guard)
    }

    /// Sends SIGTERM (the caller waits with [`wait_exit`](Self::wait_exit)).
    pub fn signal(&self) {
        sigterm(&self.relay.as_ref().expect("running").child);
    }

    /// Waits for the process to exit, `guard` after `since` at most (a
    /// hang guard); returns how long after `since` it exited, and how.
    pub fn wait_exit(
        &mut self,
        since: Instant,
        guard: Duration,
    ) -> (Duration, std::process::ExitStatus) {
        let relay = self.relay.as_mut().expect("running");
        loop {
            if let Some(status) = relay.child.try_wait().unwrap() {
                self.relay = None;
                return (since.elapsed(), status);
            }
            assert!(
                since.elapsed() < guard,
                "instance {} did not exit within {guard:?} of SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A device token for `device` (robots reconnect with it: a signature
/// could not be used twice).
pub async fn device_token(client: &RelayClient, device: &str, secret: &str) -> String {
    let ts = wimz_relay::ids::unix_now();
    let r = client
        .post_json(
            "/api/auth/device",
            &json!({"device_id": device, "timestamp": ts, "signature": sign(secret, device, ts)}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}
