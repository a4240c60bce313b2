//! Building a cluster for a test: instances (in-process relays) named A,
//! B, C... sharing a Redis (one server, a Sentinel-watched master or a Redis
//! Cluster) and one store, and the steps many cluster tests share.

use super::processes::Redis;
use crate::helpers::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wimz_relay::config::Settings;

/// Instances `A`, `B`, `C`... on one Redis and one store.
pub struct Cluster {
    /// The Redis server (on a Redis Cluster: its first node).
    pub redis: Redis,
    pub nodes: Vec<TestApp>,
    pub store_url: String,
    _store: SharedStore,
    /// The rest of the Redis set-up (other cluster nodes, replica and
    /// sentinels), held for its `Drop`.
    #[allow(dead_code)]
    pub more: Option<Box<dyn std::any::Any>>,
}

enum SharedStore {
    /// Held for its `Drop` (removes the shared SQLite file's folder).
    #[allow(dead_code)]
    Sqlite(tempfile::TempDir),
    Postgres,
}

/// How the instances reach Redis.
#[derive(Clone)]
pub enum Backend {
    /// `cluster.redis_url`
    Single(String),
    /// `cluster.sentinels` + `cluster.sentinel_master`
    Sentinel(Vec<String>),
    /// `cluster.redis_cluster_nodes`
    Sharded(Vec<String>),
}

pub fn clustered(s: &mut Settings, name: &str, backend: &Backend, store: &str) {
    s.server.instance_id = name.into();
    match backend {
        Backend::Single(url) => s.cluster.redis_url = wimz_relay::secret::Secret::new(url),
        Backend::Sentinel(sentinels) => {
            s.cluster.sentinels = sentinels.clone();
            s.cluster.sentinel_master = crate::redis_topologies::MASTER_NAME.into();
        }
        Backend::Sharded(nodes) => s.cluster.redis_cluster_nodes = nodes.clone(),
    }
    s.cluster.presence_ttl_s = 2;
    s.store.url = wimz_relay::secret::Secret::new(store);
    s.limits.messages_per_s = 10_000.0;
    s.limits.messages_burst = 10_000.0;
}

pub async fn cluster(n: usize) -> Cluster {
    cluster_named(&["A", "B", "C", "D"][..n]).await
}

pub async fn cluster_named(names: &[&'static str]) -> Cluster {
    let redis = Redis::start();
    let backend = Backend::Single(redis.url());
    cluster_on(redis, None, backend, names).await
}

/// `n` instances on a 3-master Redis Cluster (sharded pub/sub).
pub async fn cluster_sharded(n: usize) -> Cluster {
    let mut shards = crate::redis_topologies::RedisCluster::start().await;
    let backend = Backend::Sharded(shards.urls());
    let first = shards.nodes.remove(0);
    cluster_on(
        first,
        Some(Box::new(shards)),
        backend,
        &["A", "B", "C", "D"][..n],
    )
    .await
}

/// Instances `names` on `backend`; `redis` (the server a test may stop)
/// and `more` are kept alive with them.
pub async fn cluster_on(
    redis: Redis,
    more: Option<Box<dyn std::any::Any>>,
    backend: Backend,
    names: &[&'static str],
) -> Cluster {
    let (store_url, store) = match postgres_admin_url() {
        Some(admin) => (fresh_postgres_db(&admin).await.0, SharedStore::Postgres),
        None => {
            let d = tempfile::tempdir().unwrap();
            (
                format!("sqlite://{}/shared.db", d.path().display()),
                SharedStore::Sqlite(d),
            )
        }
    };
    let mut nodes = Vec::new();
    for &name in names {
        let (b, s) = (backend.clone(), store_url.clone());
        nodes.push(spawn_app_with(move |st| clustered(st, name, &b, &s)).await);
    }
    Cluster {
        redis,
        nodes,
        store_url,
        _store: store,
        more,
    }
}

/// What most cross-instance tests start from: a user, their robot on A (and
/// its secret), and an app of theirs on B, subscribed, whose mirror room
/// already knows the robot is online.
pub async fn robot_on_a_app_on_b(c: &Cluster, user: &str, device: &str) -> (User, String, Ws, Ws) {
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let user = a.user(user).await;
    let secret = a.device(&user, device).await;
    let robot = a.robot(device, &secret).await;
    let (on_b, s) = b.subscribed_app(&user, device).await;
    assert_eq!(s["robot_online"], true);
    (user, secret, robot, on_b)
}

pub async fn health(app: &TestApp) -> (u16, Value) {
    let r = app.get("/health", None).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Waits until `/health` of `app` answers `status` (200 or 503).
pub async fn wait_health(app: &TestApp, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, h) = health(app).await;
        if s == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health never answered {status}: {h}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `webrtc_request` from `app` for `device`: the robot gets it and the app
/// gets its credentials, with the same session id (returned).
pub async fn webrtc_session(app: &mut Ws, robot: &mut Ws, device: &str, id: &str) -> Value {
    send(
        app,
        json!({"type": "webrtc_request", "device_id": device, "id": id}),
    )
    .await;
    let req = recv_type(robot, "webrtc_request").await;
    let creds = recv_type(app, "webrtc_credentials").await;
    assert_eq!(req["session_id"], creds["session_id"], "{creds}");
    creds["session_id"].clone()
}

/// Leaves `wimz:{<device>}:presence` naming `instance`, as a holder's lost
/// release (or a SIGKILLed holder, until its key expires) leaves it: the
/// other instances go on believing the robot is there.
pub async fn leave_stale_presence(redis: &Redis, device: &str, instance: &str) {
    let mut con = redis.connection().await;
    let _: () = redis::cmd("SET")
        .arg(format!("wimz:{{{device}}}:presence"))
        .arg(instance)
        .arg("EX")
        .arg(60)
        .query_async(&mut con)
        .await
        .unwrap();
}

/// Takes the presence key away again and waits until `app`'s instance has
/// noticed (it tells its apps `robot_disconnected`, `instance_lost`).
pub async fn clear_presence(redis: &Redis, app: &mut Ws, device: &str) {
    let mut con = redis.connection().await;
    let _: () = redis::cmd("DEL")
        .arg(format!("wimz:{{{device}}}:presence"))
        .query_async(&mut con)
        .await
        .unwrap();
    let v = recv_event(app, "robot_disconnected").await;
    assert_eq!(v["reason"], "instance_lost", "{v}");
}

/// Re-subscribes `app` until its instance says the robot is online (a
/// mirror reads presence every `presence_ttl_s / 3`).
pub async fn wait_believed_online(app: &mut Ws, device: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        send(app, json!({"type": "subscribe", "device_id": device})).await;
        if recv_type(app, "subscribed").await["robot_online"] == true {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the app's instance never believed the robot online"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where another instance's claim left a device's stream (see
/// [`claim_in_redis`]).
pub struct ClaimedInRedis {
    /// The term the claim minted.
    pub term: u64,
    /// The stream's seq the marker continues.
    pub seq: u64,
    /// The stream's epoch.
    pub epoch: String,
}

impl ClaimedInRedis {
    /// The marker's stream id.
    pub fn marker(&self) -> String {
        format!("{}-{}", self.term, self.seq)
    }

    /// The stream id of the home's event `seq` under this term.
    pub fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.term)
    }
}

/// Instance `instance` claims `device` in Redis as the claim script does,
/// none of the relays told but through Redis: presence names it, a marker
/// under a term above the stream's top continues the stream's seq, and the
/// device's channel announces it.
pub async fn claim_in_redis(
    con: &mut redis::aio::MultiplexedConnection,
    device: &str,
    instance: &str,
) -> ClaimedInRedis {
    let stream = format!("wimz:{{{device}}}:stream");
    let top: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(&stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(con)
        .await
        .unwrap();
    let (top_id, fields) = &top[0];
    let (term, seq) = top_id.split_once('-').unwrap();
    let claim = ClaimedInRedis {
        term: term.parse::<u64>().unwrap() + 1,
        seq: seq.parse().unwrap(),
        epoch: fields.iter().find(|(k, _)| k == "e").unwrap().1.clone(),
    };
    let marker = claim.marker();
    let _: () = redis::pipe()
        .cmd("SET")
        .arg(format!("wimz:{{{device}}}:presence"))
        .arg(instance)
        .arg("EX")
        .arg(60)
        .ignore()
        .cmd("XADD")
        .arg(&stream)
        .arg(&marker)
        .arg("e")
        .arg(&claim.epoch)
        .arg("m")
        .arg("claim")
        .ignore()
        .cmd("PUBLISH")
        .arg(format!("wimz:{{{device}}}:dev"))
        .arg(format!("{marker} {}", claim.epoch))
        .ignore()
        .query_async(con)
        .await
        .unwrap();
    claim
}
