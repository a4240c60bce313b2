//! Several relay instances sharing one real `redis-server` (started here on
//! a free port) and one store behave as one relay (PROTOCOL.md §5).

use crate::helpers::*;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wimz_relay::config::Settings;

/// A `redis-server` (or `redis-sentinel`) of the test's own.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Arguments after the port and directory (replica of, cluster mode...).
    extra: Vec<String>,
    /// Runs as a sentinel from this configuration file (in `dir`).
    sentinel: bool,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    /// A server with extra arguments (`--replicaof h p`, `--cluster-enabled yes`...).
    pub fn start_with(extra: &[&str]) -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            sentinel: false,
        };
        r.restart();
        r
    }

    /// A sentinel watching the master on `master_port` as `name` (quorum
    /// 2, down after 1 s).
    pub fn start_sentinel(name: &str, master_port: u16) -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra: Vec::new(),
            sentinel: true,
        };
        let conf = format!(
            "port {}\nbind 127.0.0.1\ndir {}\nsentinel monitor {name} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {name} 1000\nsentinel failover-timeout {name} 4000\n\
             sentinel parallel-syncs {name} 1\n",
            r.port,
            r.dir.path().display()
        );
        std::fs::write(r.dir.path().join("sentinel.conf"), conf).unwrap();
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The test's own connection to it.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).unwrap();
        client.get_multiplexed_async_connection().await.unwrap()
    }

    /// Starts it (again, empty unless it is a replica or a cluster node) on the same port.
    pub fn restart(&mut self) {
        let mut cmd = if self.sentinel {
            let mut c = Command::new("redis-sentinel");
            c.arg(self.dir.path().join("sentinel.conf"));
            c
        } else {
            let mut c = Command::new("redis-server");
            c.args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra);
            c
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server and redis-sentinel are installed (.ci/services installs them)");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

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

async fn health(app: &TestApp) -> (u16, Value) {
    let r = app.get("/health", None).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn robot_on_a_apps_on_b_and_c_events_commands_and_strangers() {
    events_commands_and_strangers(&cluster(3).await).await;
}

/// Also run on a Redis Cluster (`redis_ha`).
pub async fn events_commands_and_strangers(c: &Cluster) {
    let (a, b, cc) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    assert_eq!(health(b).await.1["cluster"], "ok");
    let u = a.user("clusteruser").await;
    let secret = a.device(&u, "wimz-cl").await;
    let mut robot = a.robot("wimz-cl", &secret).await;
    let (mut on_b, sb) = b.subscribed_app(&u, "wimz-cl").await;
    let (mut on_c, sc) = cc.subscribed_app(&u, "wimz-cl").await;
    assert_eq!(sb["robot_online"], true, "presence is cluster-wide: {sb}");
    assert_eq!(sc["epoch"], sb["epoch"]);
    let base = sb["seq"].as_u64().unwrap();
    assert_eq!(sc["seq"].as_u64().unwrap(), base);
    const N: u64 = 300;
    for i in 0..N {
        send(
            &mut robot,
            json!({"type": "event", "event": "mission_progress", "data": {"stage": i}}),
        )
        .await;
    }
    for ws in [&mut on_b, &mut on_c] {
        for i in 0..N {
            let v = recv_type(ws, "event").await;
            assert_eq!(
                v["seq"].as_u64().unwrap(),
                base + 1 + i,
                "exact seq across instances"
            );
            assert_eq!(v["data"]["stage"], i);
            assert_eq!(v["epoch"], sb["epoch"]);
        }
    }
    // /api/devices on C knows the robot is online on A.
    let list: Value = cc
        .get("/api/devices", Some(&u.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["online"], true);
    assert_eq!(list[0]["mission"]["stage"], N - 1);

    // Command from B to the robot on A, result back to B's app only.
    send(
        &mut on_b,
        json!({"type": "command", "device_id": "wimz-cl", "id": "x-1", "command": "sit"}),
    )
    .await;
    let cmd = recv_type(&mut robot, "command").await;
    assert_eq!(cmd["from_user"], u.id.as_str());
    assert!(cmd["reply_to"].as_str().unwrap().starts_with("B."));
    send(
        &mut robot,
        json!({"type": "command_result", "reply_to": cmd["reply_to"], "id": "x-1", "ok": true}),
    )
    .await;
    assert_eq!(recv_type(&mut on_b, "command_result").await["id"], "x-1");
    assert_silent(&mut on_c, Duration::from_millis(300)).await;

    // A stranger on C is refused and reaches nothing.
    let stranger = cc.user("clusterstranger").await;
    let mut s = cc.app(&stranger).await;
    send(&mut s, json!({"type": "subscribe", "device_id": "wimz-cl"})).await;
    assert_eq!(recv_type(&mut s, "error").await["code"], "not_owner");
    send(
        &mut s,
        json!({"type": "command", "device_id": "wimz-cl", "id": 1, "command": "treat"}),
    )
    .await;
    assert_eq!(recv_type(&mut s, "error").await["code"], "not_owner");
    assert_silent(&mut robot, Duration::from_millis(300)).await;

    // Cluster totals.
    let st = b.stats().await;
    assert_eq!(st["robots_online"], 0, "B's own numbers");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let st = b.stats().await;
        if st["cluster"]["robots_online"] == 1 && st["cluster"]["instances"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "cluster totals: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn app_reconnecting_to_another_instance_recovers_exactly() {
    recovers_exactly_elsewhere(&cluster(3).await).await;
}

/// Also run on a Redis Cluster (`redis_ha`).
pub async fn recovers_exactly_elsewhere(c: &Cluster) {
    let (a, b, cc) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let u = a.user("clrecover").await;
    let secret = a.device(&u, "wimz-cr").await;
    let mut robot = a.robot("wimz-cr", &secret).await;
    let (mut on_b, sub) = b.subscribed_app(&u, "wimz-cr").await;
    for i in 0..10 {
        send(
            &mut robot,
            json!({"type": "event", "event": "treat_dispensed", "data": {"i": i}}),
        )
        .await;
    }
    let mut last = 0;
    for _ in 0..10 {
        last = recv_type(&mut on_b, "event").await["seq"].as_u64().unwrap();
    }
    drop(on_b);
    for i in 10..40 {
        send(
            &mut robot,
            json!({"type": "event", "event": "treat_dispensed", "data": {"i": i}}),
        )
        .await;
    }
    // Make sure A has appended them: a probe subscriber on A sees the last one.
    let (mut probe, _) = a.subscribed_app(&u, "wimz-cr").await;
    send(
        &mut robot,
        json!({"type": "event", "event": "alert", "data": {"marker": true}}),
    )
    .await;
    recv_event(&mut probe, "alert").await;

    let mut on_c = cc.app(&u).await;
    send(&mut on_c, json!({"type": "subscribe", "device_id": "wimz-cr", "since_seq": last, "epoch": sub["epoch"]})).await;
    let s = recv_type(&mut on_c, "subscribed").await;
    assert_eq!(s["epoch"], sub["epoch"]);
    for i in 10..40 {
        let v = recv(&mut on_c).await;
        assert_eq!(v["seq"].as_u64().unwrap(), last + 1 + (i - 10), "{v}");
        assert_eq!(v["data"]["i"], i);
    }
    assert_eq!(recv(&mut on_c).await["event"], "alert");
    let v = recv(&mut on_c).await;
    assert_eq!(v["type"], "recovered");
    assert_eq!(v["complete"], true);
}

#[tokio::test]
async fn robot_moving_from_a_to_b_continues_the_stream() {
    a_moving_robot_continues_the_stream(&cluster(3).await).await;
}

/// Also run on a Redis Cluster (`redis_ha`).
pub async fn a_moving_robot_continues_the_stream(c: &Cluster) {
    let (a, b, cc) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let u = a.user("clmove").await;
    let secret = a.device(&u, "wimz-mv").await;
    let (mut on_c, _) = cc.subscribed_app(&u, "wimz-mv").await;
    let mut robot = a.robot("wimz-mv", &secret).await;
    let mut seqs = Vec::new();
    let mut names = Vec::new();
    let mut epochs = std::collections::HashSet::new();
    for i in 0..5 {
        send(
            &mut robot,
            json!({"type": "event", "event": "dog_detected", "data": {"i": i}}),
        )
        .await;
    }
    while names.iter().filter(|n| *n == "dog_detected").count() < 5 {
        let v = recv_type(&mut on_c, "event").await;
        seqs.push(v["seq"].as_u64().unwrap());
        epochs.insert(v["epoch"].as_i64().unwrap());
        names.push(v["event"].as_str().unwrap().to_string());
    }
    drop(robot);
    tokio::time::sleep(Duration::from_millis(1100)).await; // a fresh signature
    let mut robot = b.robot("wimz-mv", &secret).await;
    for i in 5..10 {
        send(
            &mut robot,
            json!({"type": "event", "event": "dog_detected", "data": {"i": i}}),
        )
        .await;
    }
    while names.iter().filter(|n| *n == "dog_detected").count() < 10 {
        let v = recv_type(&mut on_c, "event").await;
        seqs.push(v["seq"].as_u64().unwrap());
        epochs.insert(v["epoch"].as_i64().unwrap());
        names.push(v["event"].as_str().unwrap().to_string());
    }
    assert_eq!(epochs.len(), 1, "continuity kept: one epoch");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap: {seqs:?}"
    );
    assert_eq!(names[0], "robot_connected");
    let d = names
        .iter()
        .position(|n| n == "robot_disconnected")
        .expect("disconnect seen");
    let cpos = names
        .iter()
        .rposition(|n| n == "robot_connected")
        .expect("connect seen");
    assert!(d < cpos, "{names:?}");
}

#[tokio::test]
async fn a_replayed_signature_is_refused_on_another_instance() {
    let c = cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let u = a.user("clreplay").await;
    let secret = a.device(&u, "wimz-rp").await;
    let now = wimz_relay::ids::unix_now();
    let body = json!({"device_id": "wimz-rp", "timestamp": now, "signature": sign(&secret, "wimz-rp", now)});
    assert_eq!(
        a.post_json("/api/auth/device", &body, None).await.status(),
        200
    );
    assert_eq!(
        b.post_json("/api/auth/device", &body, None).await.status(),
        401
    );
    // Same for a socket handshake.
    let ts = now - 3;
    let url = |app: &TestApp| {
        format!(
            "{}/ws/device?device_id=wimz-rp&timestamp={ts}&signature={}",
            app.ws_base,
            sign(&secret, "wimz-rp", ts)
        )
    };
    tokio_tungstenite::connect_async(url(a))
        .await
        .expect("first use on A");
    assert!(
        tokio_tungstenite::connect_async(url(b)).await.is_err(),
        "replay on B refused"
    );
}

#[tokio::test]
async fn redis_stopped_and_restarted_mid_stream_reports_every_gap() {
    let mut c = cluster(2).await;
    let u = c.nodes[0].user("clredis").await;
    let secret = c.nodes[0].device(&u, "wimz-rd").await;
    let mut robot = c.nodes[0].robot("wimz-rd", &secret).await;
    let (mut local, _) = c.nodes[0].subscribed_app(&u, "wimz-rd").await;
    let (mut remote, sub) = c.nodes[1].subscribed_app(&u, "wimz-rd").await;
    send(
        &mut robot,
        json!({"type": "event", "event": "battery", "data": {"n": 0}}),
    )
    .await;
    recv_event(&mut local, "battery").await;
    recv_event(&mut remote, "battery").await;

    c.redis.stop();
    // Local delivery goes on; health says degraded.
    for n in 1..=5 {
        send(
            &mut robot,
            json!({"type": "event", "event": "battery", "data": {"n": n}}),
        )
        .await;
        assert_eq!(recv_event(&mut local, "battery").await["data"]["n"], n);
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, h) = health(&c.nodes[0]).await;
        if status == 503 && h["cluster"] == "degraded" {
            break;
        }
        assert!(Instant::now() < deadline, "health never said degraded: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    c.redis.restart(); // empty: continuity cannot be proven
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if health(&c.nodes[1]).await.0 == 200 && health(&c.nodes[0]).await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "cluster never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Cluster delivery resumes; the remote app is told what it missed.
    let mut n = 100;
    let mut told = false;
    let got = loop {
        send(
            &mut robot,
            json!({"type": "event", "event": "battery", "data": {"n": n}}),
        )
        .await;
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut got = None;
        while let Ok(v) = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            recv(&mut remote),
        )
        .await
        {
            if v["type"] == "recovered" {
                assert_eq!(v["complete"], false);
                told = true;
            }
            if v["type"] == "event"
                && v["event"] == "battery"
                && v["data"]["n"].as_u64() >= Some(100)
            {
                got = Some(v);
                break;
            }
            if v["type"] == "event" && v["event"] == "battery" {
                panic!("the remote app got an event from the outage without a gap notice: {v}");
            }
        }
        if let Some(v) = got {
            break v;
        }
        n += 1;
        assert!(n < 160, "cluster delivery never resumed");
    };
    assert!(told, "the gap was reported");
    assert_ne!(
        got["epoch"], sub["epoch"],
        "a new epoch after Redis lost everything"
    );
    // The local app saw every event, in one seq order.
    let v = recv_event(&mut local, "battery").await;
    assert!(v["data"]["n"].as_u64().unwrap() >= 100);
}

/// Instance `A` as a real process, so it can be SIGKILLed.
struct ProcessNode {
    child: Child,
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn process_node(
    name: &str,
    redis: &str,
    store: &str,
    dir: &std::path::Path,
) -> (ProcessNode, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_wimz-relay"))
        .arg("serve")
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("WIMZ__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("WIMZ__SERVER__INSTANCE_ID", name)
        .env("WIMZ__SERVER__DATA_DIR", dir.join("data"))
        .env("WIMZ__STORE__URL", store)
        .env("WIMZ__CLUSTER__REDIS_URL", redis)
        .env("WIMZ__CLUSTER__PRESENCE_TTL_S", "2")
        .env(
            "WIMZ__AUTH__JWT_SECRET",
            test_settings().auth.jwt_secret.expose(),
        )
        .env("WIMZ__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + PATIENCE;
    while reqwest::get(format!("{base}/health"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "process node did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (ProcessNode { child }, format!("ws://127.0.0.1:{port}"))
}

#[tokio::test]
async fn sigkill_of_the_robots_instance_shows_it_offline_elsewhere_within_the_ttl() {
    let c = cluster_named(&["B"]).await; // in-process; A is a process
    let b = &c.nodes[0];
    let dir = tempfile::tempdir().unwrap();
    let (mut a, a_ws) = process_node("A", &c.redis.url(), &c.store_url, dir.path()).await;
    let u = b.user("clkill").await;
    let secret = b.device(&u, "wimz-kill").await;
    let (mut on_b, _) = b.subscribed_app(&u, "wimz-kill").await;
    let ts = wimz_relay::ids::unix_now();
    let url = format!(
        "{a_ws}/ws/device?device_id=wimz-kill&timestamp={ts}&signature={}",
        sign(&secret, "wimz-kill", ts)
    );
    let (mut robot, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    recv_event(&mut on_b, "robot_connected").await;
    send(
        &mut robot,
        json!({"type": "event", "event": "mission_progress", "data": {"stage": 1}}),
    )
    .await;
    recv_event(&mut on_b, "mission_progress").await;
    let list: Value = b
        .get("/api/devices", Some(&u.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["online"], true);
    // A WebRTC session between the app on B and the robot on A.
    send(
        &mut on_b,
        json!({"type": "webrtc_request", "device_id": "wimz-kill"}),
    )
    .await;
    recv_type(&mut robot, "webrtc_request").await;
    let sid = recv_type(&mut on_b, "webrtc_credentials").await["session_id"].clone();

    a.child.kill().unwrap(); // SIGKILL: no goodbye, no release
    a.child.wait().unwrap();
    let killed = Instant::now();
    let (mut lost, mut closed) = (false, false);
    while !(lost && closed) {
        let v = recv(&mut on_b).await;
        if v["type"] == "event" && v["event"] == "robot_disconnected" {
            assert_eq!(v["reason"], "instance_lost");
            lost = true;
        }
        if v["type"] == "webrtc_close" {
            assert_eq!(v["session_id"], sid);
            assert_eq!(v["reason"], "robot_disconnected");
            closed = true;
        }
    }
    let list: Value = b
        .get("/api/devices", Some(&u.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["online"], false);
    assert_eq!(
        list[0]["mission"]["stage"], 1,
        "the last mission survives the instance"
    );
    // Not a timing assertion: a sanity bound far above the 2 s TTL.
    assert!(killed.elapsed() < Duration::from_secs(30));

    // The robot comes back through a live instance.
    let mut robot = b.robot("wimz-kill", &secret).await;
    recv_event(&mut on_b, "robot_connected").await;
    send(
        &mut robot,
        json!({"type": "event", "event": "mission_progress", "data": {"stage": 2}}),
    )
    .await;
    assert_eq!(
        recv_event(&mut on_b, "mission_progress").await["data"]["stage"],
        2
    );
}

#[tokio::test]
async fn rest_proxy_reaches_a_robot_on_another_instance() {
    use futures_util::StreamExt;
    let c = cluster(2).await;
    let (u, _, mut robot, _on_b) = robot_on_a_app_on_b(&c, "clproxy", "wimz-cp").await;
    let b = &c.nodes[1];
    let call = b
        .http
        .post(b.url("/api/devices/wimz-cp/robot/missions/start"))
        .bearer_auth(&u.token)
        .json(&json!({"mission": "sit"}));
    let caller = tokio::spawn(async move { call.send().await.unwrap() });
    let req = recv_type(&mut robot, "http_request").await;
    assert_eq!(req["path"], "/missions/start");
    assert_eq!(req["body"]["mission"], "sit");
    send(&mut robot, json!({"type": "http_response", "request_id": req["request_id"], "status": 201, "body": {"started": true}})).await;
    let r = caller.await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["started"], true);

    // The robot leaving fails B's waiting caller at once.
    let call = b
        .http
        .get(b.url("/api/devices/wimz-cp/robot/mode"))
        .bearer_auth(&u.token);
    let caller = tokio::spawn(async move { call.send().await.unwrap().status().as_u16() });
    recv_type(&mut robot, "http_request").await;
    drop(robot.next());
    drop(robot);
    assert_eq!(caller.await.unwrap(), 503);
    b.wait_stats("nothing pending on B", |s| s["proxy_pending"] == 0)
        .await;
}

#[tokio::test]
async fn webrtc_signaling_between_a_robot_on_a_and_an_app_on_b() {
    let c = cluster(2).await;
    let (u, _, mut robot, mut app) = robot_on_a_app_on_b(&c, "clrtc", "wimz-rtc").await;
    let b = &c.nodes[1];

    send(
        &mut app,
        json!({"type": "webrtc_request", "device_id": "wimz-rtc", "id": "w1"}),
    )
    .await;
    let req = recv_type(&mut robot, "webrtc_request").await;
    let creds = recv_type(&mut app, "webrtc_credentials").await;
    let sid = creds["session_id"].clone();
    assert_eq!(req["session_id"], sid);
    assert_eq!(req["from_user"], u.id.as_str());
    send(
        &mut robot,
        json!({"type": "webrtc_offer", "session_id": sid, "sdp": "v=0 offer"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut app, "webrtc_offer").await["sdp"],
        "v=0 offer"
    );
    send(
        &mut app,
        json!({"type": "webrtc_answer", "session_id": sid, "sdp": "v=0 answer"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut robot, "webrtc_answer").await["sdp"],
        "v=0 answer"
    );
    send(
        &mut robot,
        json!({"type": "webrtc_ice", "session_id": sid, "candidate": {"c": "r"}}),
    )
    .await;
    assert_eq!(
        recv_type(&mut app, "webrtc_ice").await["candidate"]["c"],
        "r"
    );
    send(
        &mut app,
        json!({"type": "webrtc_ice", "session_id": sid, "candidate": {"c": "a"}}),
    )
    .await;
    assert_eq!(
        recv_type(&mut robot, "webrtc_ice").await["candidate"]["c"],
        "a"
    );
    // Stats from the robot are recorded by the session's instance, not forwarded.
    send(&mut robot, json!({"type": "webrtc_stats", "session_id": sid, "connection_type": "relay", "rtt_ms": 12.5})).await;
    // The app leaves: the robot on A hears it.
    drop(app);
    let close = recv_type(&mut robot, "webrtc_close").await;
    assert_eq!(close["session_id"], sid);
    assert_eq!(close["reason"], "app_disconnected");

    // A new session; then the robot leaves: the app on B hears it.
    let (mut app, _) = b.subscribed_app(&u, "wimz-rtc").await;
    send(
        &mut app,
        json!({"type": "webrtc_request", "device_id": "wimz-rtc"}),
    )
    .await;
    recv_type(&mut robot, "webrtc_request").await;
    let sid2 = recv_type(&mut app, "webrtc_credentials").await["session_id"].clone();
    drop(robot);
    let close = recv_type(&mut app, "webrtc_close").await;
    assert_eq!(close["session_id"], sid2);
    assert_eq!(close["reason"], "robot_disconnected");
}

#[tokio::test]
async fn deleting_a_device_on_b_disconnects_its_robot_on_a() {
    let c = cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let u = a.user("cldelete").await;
    let secret = a.device(&u, "wimz-del").await;
    let mut robot = a.robot("wimz-del", &secret).await;
    let r = b.delete("/api/devices/wimz-del", Some(&u.token)).await;
    assert_eq!(r.status(), 204);
    assert_eq!(recv_close(&mut robot).await, Some(4003));
}

/// A TCP proxy in front of Redis that can freeze the pub/sub connections
/// open at that moment: they stay open but deliver nothing (a silently dead
/// pub/sub connection); connections made afterwards work.
struct FreezingProxy {
    port: u16,
    /// Connections numbered up to this are frozen.
    frozen: std::sync::Arc<std::sync::atomic::AtomicU64>,
    made: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl FreezingProxy {
    async fn start(upstream: u16) -> FreezingProxy {
        use std::sync::atomic::{AtomicU64, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = std::sync::Arc::new(AtomicU64::new(0));
        let made = std::sync::Arc::new(AtomicU64::new(0));
        let (f, m) = (frozen.clone(), made.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let me = m.fetch_add(1, Ordering::SeqCst) + 1;
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                // Only pub/sub connections (they sent SUBSCRIBE) can be frozen.
                let pubsub = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let p1 = pubsub.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16384];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if String::from_utf8_lossy(&buf[..n])
                            .to_ascii_uppercase()
                            .contains("SUBSCRIBE")
                        {
                            p1.store(true, Ordering::SeqCst);
                        }
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let f = f.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16384];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if pubsub.load(Ordering::SeqCst) && me <= f.load(Ordering::SeqCst) {
                            continue; // swallowed: the client hears nothing
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        FreezingProxy { port, frozen, made }
    }

    /// Freezes every pub/sub connection made so far.
    fn freeze_existing(&self) {
        use std::sync::atomic::Ordering;
        self.frozen
            .store(self.made.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_silently_dead_pubsub_connection_is_found_by_the_probe_and_rebuilt() {
    let redis = Redis::start();
    let proxy = FreezingProxy::start(redis.port).await;
    let store = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}/shared.db", store.path().display());
    let (r, su) = (Backend::Single(redis.url()), store_url.clone());
    let a = spawn_app_with(move |s| clustered(s, "A", &r, &su)).await;
    // B talks to Redis through the proxy.
    let (r, su) = (
        Backend::Single(format!("redis://127.0.0.1:{}", proxy.port)),
        store_url.clone(),
    );
    let b = spawn_app_with(move |s| clustered(s, "B", &r, &su)).await;
    let u = a.user("clsilent").await;
    let secret = a.device(&u, "wimz-sil").await;
    let mut robot = a.robot("wimz-sil", &secret).await;
    let (mut on_b, _) = b.subscribed_app(&u, "wimz-sil").await;
    send(
        &mut robot,
        json!({"type": "event", "event": "bark_detected", "data": {"i": 0}}),
    )
    .await;
    // Counted from the first bark as B saw it: B's subscription may be
    // answered before `robot_connected` reached it (then numbered after
    // the snapshot's seq), which is no loss.
    let first = recv_event(&mut on_b, "bark_detected").await;
    assert_eq!(first["data"]["i"], 0);
    let start = first["seq"].as_u64().unwrap() - 1;

    // B's pub/sub connection goes silent; it is not closed.
    proxy.freeze_existing();
    for i in 1..=5 {
        send(
            &mut robot,
            json!({"type": "event", "event": "bark_detected", "data": {"i": i}}),
        )
        .await;
    }
    // The probe notices, the pub/sub connection is rebuilt (a new, working
    // connection) and what was missed is caught up from the stream, in order.
    // Noticing takes the probe's deadline (4 s) by design, plus the rebuild:
    // a wider hang guard than PATIENCE, so a busy machine does not fail it.
    let mut seqs = Vec::new();
    for i in 1..=5 {
        let v = loop {
            let v = recv_within(&mut on_b, PATIENCE * 3).await;
            if v["type"] == "event" && v["event"] == "bark_detected" {
                break v;
            }
        };
        assert_eq!(v["data"]["i"], i);
        seqs.push(v["seq"].as_u64().unwrap());
    }
    assert_eq!(
        seqs,
        (start + 2..=start + 6).collect::<Vec<_>>(),
        "nothing lost, nothing out of order"
    );
}

#[tokio::test]
async fn the_session_limit_counts_every_instances_sessions() {
    let redis = Redis::start();
    let store = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}/shared.db", store.path().display());
    let mut nodes = Vec::new();
    for name in ["A", "B", "C"] {
        let (r, su) = (Backend::Single(redis.url()), store_url.clone());
        nodes.push(
            spawn_app_with(move |s| {
                clustered(s, name, &r, &su);
                s.webrtc.max_sessions_per_device = 2;
            })
            .await,
        );
    }
    let (a, b, cc) = (&nodes[0], &nodes[1], &nodes[2]);
    let u = a.user("cllimit").await;
    let secret = a.device(&u, "wimz-lim").await;
    let mut robot = a.robot("wimz-lim", &secret).await;
    let (mut on_b, _) = b.subscribed_app(&u, "wimz-lim").await;
    let (mut on_c, _) = cc.subscribed_app(&u, "wimz-lim").await;
    let mut sids = Vec::new();
    for _ in 0..2 {
        send(
            &mut on_b,
            json!({"type": "webrtc_request", "device_id": "wimz-lim"}),
        )
        .await;
        recv_type(&mut robot, "webrtc_request").await;
        sids.push(recv_type(&mut on_b, "webrtc_credentials").await["session_id"].clone());
    }
    send(
        &mut on_c,
        json!({"type": "webrtc_request", "device_id": "wimz-lim", "id": "third"}),
    )
    .await;
    let e = recv_type(&mut on_c, "error").await;
    assert_eq!(e["code"], "session_limit");
    assert_eq!(e["ref"], "third");
    // One ends: C gets the slot.
    send(
        &mut on_b,
        json!({"type": "webrtc_close", "session_id": sids[0], "reason": "done"}),
    )
    .await;
    recv_type(&mut robot, "webrtc_close").await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        send(
            &mut on_c,
            json!({"type": "webrtc_request", "device_id": "wimz-lim"}),
        )
        .await;
        let v = recv(&mut on_c).await;
        if v["type"] == "webrtc_credentials" {
            break;
        }
        assert_eq!(v["code"], "session_limit");
        assert!(Instant::now() < deadline, "the slot was never given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Leaves `wimz:{<device>}:presence` naming `instance`, as a holder's lost
/// release (or a SIGKILLed holder, until its key expires) leaves it: the
/// other instances go on believing the robot is there.
async fn leave_stale_presence(redis: &Redis, device: &str, instance: &str) {
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
async fn clear_presence(redis: &Redis, app: &mut Ws, device: &str) {
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
async fn wait_believed_online(app: &mut Ws, device: &str) {
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

/// Sends a command with `id` from `app` and expects `robot_offline` for it.
async fn command_gets_robot_offline(app: &mut Ws, device: &str, id: &str) {
    send(
        app,
        json!({"type": "command", "device_id": device, "id": id, "command": "sit"}),
    )
    .await;
    let e = recv_type(app, "error").await;
    assert_eq!(e["code"], "robot_offline", "{e}");
    assert_eq!(e["ref"], id, "the error names the command: {e}");
}

#[tokio::test]
async fn a_command_on_b_for_a_robot_that_left_a_is_answered_robot_offline() {
    let c = cluster(2).await;
    let (_, secret, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "clgone", "wimz-gone").await;
    let a = &c.nodes[0];

    // 1. The robot closes its socket; once A has let it go the command
    //    follows at once, whether or not B has heard of the disconnect yet.
    robot.close(None).await.unwrap();
    a.wait_stats("the robot gone from A", |s| s["robots_online"] == 0)
        .await;
    command_gets_robot_offline(&mut on_b, "wimz-gone", "c-1").await;

    // 2. B still believes the robot is on A (A's presence key outlived the
    //    robot): the command goes to A, which answers for its robot.
    leave_stale_presence(&c.redis, "wimz-gone", "A").await;
    wait_believed_online(&mut on_b, "wimz-gone").await;
    command_gets_robot_offline(&mut on_b, "wimz-gone", "c-2").await;

    // 3. B believes the robot is on an instance that is gone (killed before
    //    its presence key expired): nobody there can answer, so B does.
    clear_presence(&c.redis, &mut on_b, "wimz-gone").await;
    leave_stale_presence(&c.redis, "wimz-gone", "Z").await;
    wait_believed_online(&mut on_b, "wimz-gone").await;
    command_gets_robot_offline(&mut on_b, "wimz-gone", "c-3").await;

    // 4. The robot is back on A: the next command reaches it, its result
    //    reaches the app on B.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a fresh signature
    let mut robot = a.robot("wimz-gone", &secret).await;
    recv_event(&mut on_b, "robot_connected").await;
    send(
        &mut on_b,
        json!({"type": "command", "device_id": "wimz-gone", "id": "c-4", "command": "sit"}),
    )
    .await;
    let cmd = recv_type(&mut robot, "command").await;
    assert_eq!(cmd["id"], "c-4");
    send(
        &mut robot,
        json!({"type": "command_result", "reply_to": cmd["reply_to"], "id": "c-4", "ok": true}),
    )
    .await;
    assert_eq!(recv_type(&mut on_b, "command_result").await["id"], "c-4");
}

/// A REST proxy call on `app`'s instance; its status and body.
async fn proxy_call(app: &TestApp, u: &User, device: &str) -> (u16, Value) {
    let call = app
        .http
        .get(app.url(&format!("/api/devices/{device}/robot/mode")))
        .bearer_auth(&u.token)
        .send();
    // A hang guard only: a 504 comes after `proxy.timeout_s` and fails below.
    let r = tokio::time::timeout(PATIENCE * 3, call)
        .await
        .expect("the REST call is answered")
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn proxy_call_gets_robot_offline(c: &Cluster, u: &User, device: &str, step: &str) {
    let (status, body) = proxy_call(&c.nodes[1], u, device).await;
    assert_eq!(status, 503, "{step}: robot offline, not a timeout: {body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert_eq!(body["error"]["message"], "robot_offline", "{body}");
    for node in &c.nodes {
        node.wait_stats("no REST call left waiting", |s| s["proxy_pending"] == 0)
            .await;
    }
}

#[tokio::test]
async fn a_rest_call_on_b_for_a_robot_that_left_a_is_503_robot_offline() {
    let c = cluster(2).await;
    let (u, secret, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "clpgone", "wimz-pgone").await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);

    // 1. The robot closes its socket; the call follows once A let it go.
    robot.close(None).await.unwrap();
    a.wait_stats("the robot gone from A", |s| s["robots_online"] == 0)
        .await;
    proxy_call_gets_robot_offline(&c, &u, "wimz-pgone", "step 1").await;

    // 2. B still believes the robot is on A: A answers for its robot.
    leave_stale_presence(&c.redis, "wimz-pgone", "A").await;
    wait_believed_online(&mut on_b, "wimz-pgone").await;
    proxy_call_gets_robot_offline(&c, &u, "wimz-pgone", "step 2").await;

    // 3. B believes the robot is on an instance that is gone: nobody there
    //    can answer, so B does, at once rather than after the proxy timeout.
    clear_presence(&c.redis, &mut on_b, "wimz-pgone").await;
    leave_stale_presence(&c.redis, "wimz-pgone", "Z").await;
    wait_believed_online(&mut on_b, "wimz-pgone").await;
    proxy_call_gets_robot_offline(&c, &u, "wimz-pgone", "step 3").await;

    // 4. The robot is back on A: the next call reaches it.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a fresh signature
    let mut robot = a.robot("wimz-pgone", &secret).await;
    recv_event(&mut on_b, "robot_connected").await;
    let (b2, u2) = (b.http.clone(), u.token.clone());
    let url = b.url("/api/devices/wimz-pgone/robot/mode");
    let caller = tokio::spawn(async move {
        b2.get(url)
            .bearer_auth(u2)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    let req = recv_type(&mut robot, "http_request").await;
    assert_eq!(req["path"], "/mode");
    send(&mut robot, json!({"type": "http_response", "request_id": req["request_id"], "status": 200, "body": {"mode": "idle"}})).await;
    assert_eq!(caller.await.unwrap(), 200);
    for node in &c.nodes {
        node.wait_stats("no REST call left waiting", |s| s["proxy_pending"] == 0)
            .await;
    }
}

/// Waits until `/health` of `app` answers `status` (200 or 503).
async fn wait_health(app: &TestApp, status: u16) {
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
/// What most cross-instance tests start from: a user, their robot on A (and
/// its secret), and an app of theirs on B, subscribed, whose mirror room
/// already knows the robot is online.
async fn robot_on_a_app_on_b(c: &Cluster, user: &str, device: &str) -> (User, String, Ws, Ws) {
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let user = a.user(user).await;
    let secret = a.device(&user, device).await;
    let robot = a.robot(device, &secret).await;
    let (on_b, s) = b.subscribed_app(&user, device).await;
    assert_eq!(s["robot_online"], true);
    (user, secret, robot, on_b)
}

async fn webrtc_session(app: &mut Ws, robot: &mut Ws, device: &str, id: &str) -> Value {
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

#[tokio::test]
async fn webrtc_while_redis_is_down_is_local_only_and_works_again_after() {
    let mut c = cluster(2).await;
    let u = c.nodes[0].user("clrtcdown").await;
    let secret = c.nodes[0].device(&u, "wimz-rtd").await;
    let mut robot = c.nodes[0].robot("wimz-rtd", &secret).await;
    let (mut on_a, _) = c.nodes[0].subscribed_app(&u, "wimz-rtd").await;
    let (mut on_b, s) = c.nodes[1].subscribed_app(&u, "wimz-rtd").await;
    assert_eq!(s["robot_online"], true);

    c.redis.stop();
    wait_health(&c.nodes[0], 503).await;
    wait_health(&c.nodes[1], 503).await;

    // The robot is on A: a session from A's app goes ahead without Redis
    // (its cluster slot cannot be taken; the per-instance limit holds).
    let max = c.nodes[0].settings.webrtc.max_sessions_per_device;
    let mut sids = Vec::new();
    for i in 0..max {
        sids.push(webrtc_session(&mut on_a, &mut robot, "wimz-rtd", &format!("a{i}")).await);
    }
    send(
        &mut robot,
        json!({"type": "webrtc_offer", "session_id": sids[0], "sdp": "v=0 offer"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut on_a, "webrtc_offer").await["sdp"],
        "v=0 offer"
    );
    send(
        &mut on_a,
        json!({"type": "webrtc_request", "device_id": "wimz-rtd", "id": "over"}),
    )
    .await;
    let e = recv_type(&mut on_a, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("session_limit"), Some("over"))
    );
    c.nodes[0]
        .wait_stats("A's sessions", |s| s["webrtc_sessions_active"] == max)
        .await;

    // The robot is on A and only Redis reaches it from B: B's app is told
    // at once, and nothing is left behind on B.
    send(
        &mut on_b,
        json!({"type": "webrtc_request", "device_id": "wimz-rtd", "id": "b-down"}),
    )
    .await;
    let e = loop {
        let v = recv(&mut on_b).await;
        assert_ne!(
            v["type"], "webrtc_credentials",
            "no way to reach the robot: {v}"
        );
        if v["type"] == "error" {
            break v;
        }
    };
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("internal"), Some("b-down")),
        "{e}"
    );
    assert_silent(&mut robot, Duration::from_millis(300)).await;
    assert_eq!(c.nodes[1].stats().await["webrtc_sessions_active"], 0);

    // The sessions end as usual; nothing leaks.
    for sid in &sids {
        send(
            &mut on_a,
            json!({"type": "webrtc_close", "session_id": sid, "reason": "done"}),
        )
        .await;
        assert_eq!(
            recv_type(&mut robot, "webrtc_close").await["session_id"],
            *sid
        );
    }
    c.nodes[0]
        .wait_stats("no session on A", |s| s["webrtc_sessions_active"] == 0)
        .await;

    // Redis comes back (empty): sessions work again from both instances.
    c.redis.restart();
    wait_health(&c.nodes[0], 200).await;
    wait_health(&c.nodes[1], 200).await;
    let on_a_sid = webrtc_session(&mut on_a, &mut robot, "wimz-rtd", "a-back").await;
    // B learns again where the robot is (A re-takes its claim on Redis's
    // return; B reads it on its next presence check): until then B may
    // answer `robot_offline`, never anything else.
    let deadline = Instant::now() + PATIENCE;
    let on_b_sid = loop {
        send(
            &mut on_b,
            json!({"type": "webrtc_request", "device_id": "wimz-rtd", "id": "b-back"}),
        )
        .await;
        let v = loop {
            let v = recv(&mut on_b).await;
            if v["type"] == "webrtc_credentials" || v["type"] == "error" {
                break v;
            }
        };
        if v["type"] == "webrtc_credentials" {
            let req = recv_type(&mut robot, "webrtc_request").await;
            assert_eq!(req["session_id"], v["session_id"]);
            break v["session_id"].clone();
        }
        assert_eq!(v["code"], "robot_offline", "{v}");
        assert!(Instant::now() < deadline, "B never reached the robot again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    send(
        &mut robot,
        json!({"type": "webrtc_offer", "session_id": on_b_sid, "sdp": "v=0 b"}),
    )
    .await;
    assert_eq!(recv_type(&mut on_b, "webrtc_offer").await["sdp"], "v=0 b");
    for (app, sid) in [(&mut on_a, &on_a_sid), (&mut on_b, &on_b_sid)] {
        send(
            app,
            json!({"type": "webrtc_close", "session_id": sid, "reason": "done"}),
        )
        .await;
        assert_eq!(
            recv_type(&mut robot, "webrtc_close").await["session_id"],
            *sid
        );
    }
    for node in &c.nodes {
        node.wait_stats("no session", |s| s["webrtc_sessions_active"] == 0)
            .await;
    }
}

/// Redis loses the robot's presence key (restarted empty, or the key
/// evicted) while the robot stays on A: apps on B are told `instance_lost`;
/// when A re-takes its claim they are told `robot_connected` the same way
/// (unnumbered), instead of being left showing the robot offline while its
/// events keep arriving.
#[tokio::test]
async fn presence_lost_then_retaken_tells_remote_apps_the_robot_is_back() {
    let c = cluster(2).await;
    let (u, _, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "clback", "wimz-back").await;
    let b = &c.nodes[1];

    // A re-takes a vanished claim on its next refresh, so keep deleting the
    // key until B has read it missing once.
    let mut con = c.redis.connection().await;
    let keep_deleting = async {
        loop {
            let _: () = redis::cmd("DEL")
                .arg("wimz:{wimz-back}:presence")
                .query_async(&mut con)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let lost = tokio::select! {
        v = recv_event(&mut on_b, "robot_disconnected") => v,
        () = keep_deleting => unreachable!(),
    };
    assert_eq!(lost["reason"], "instance_lost", "{lost}");

    let back = recv_event(&mut on_b, "robot_connected").await;
    assert_eq!(back["instance"], "A", "{back}");
    assert_eq!(back["unnumbered"], true, "{back}");
    assert_eq!(back["seq"], lost["seq"], "{back}");
    let listed = b.devices(&u).await;
    assert_eq!(listed[0]["online"], true, "{listed}");

    // The robot never left: its events still reach B, numbered on.
    send(
        &mut robot,
        json!({"type": "event", "event": "treat_dispensed", "data": {"n": 1}}),
    )
    .await;
    let v = recv_event(&mut on_b, "treat_dispensed").await;
    assert!(v["seq"].as_u64() > lost["seq"].as_u64(), "{v}");
}

/// An ICE restart of a session whose robot is on another instance, while
/// Redis (the only way there) is down: the app gets an error for its request
/// instead of fresh credentials the robot never hears of; the session is
/// kept, and a restart once Redis is back reaches the robot.
#[tokio::test]
async fn an_ice_restart_that_cannot_reach_the_robots_instance_is_an_error_not_credentials() {
    let mut c = cluster(2).await;
    let (_, _, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "clrestart", "wimz-rst").await;
    let sid = webrtc_session(&mut on_b, &mut robot, "wimz-rst", "s1").await;

    c.redis.stop();
    wait_health(&c.nodes[1], 503).await;
    let restart = |id: &str| {
        json!({"type": "webrtc_request", "device_id": "wimz-rst", "session_id": sid,
               "ice_restart": true, "id": id})
    };
    send(&mut on_b, restart("r-down")).await;
    let e = loop {
        let v = recv(&mut on_b).await;
        assert_ne!(
            v["type"], "webrtc_credentials",
            "the robot cannot hear of it: {v}"
        );
        if v["type"] == "error" {
            break v;
        }
    };
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("internal"), Some("r-down")),
        "{e}"
    );
    assert_eq!(c.nodes[1].stats().await["webrtc_sessions_active"], 1);

    c.redis.restart();
    wait_health(&c.nodes[1], 200).await;
    // Until B learns again where the robot is (presence re-taken), a
    // restart may still fail the same way; it must never leave the app with
    // credentials the robot did not get.
    let deadline = Instant::now() + PATIENCE * 2;
    loop {
        send(&mut on_b, restart("r-up")).await;
        let v = loop {
            let v = recv(&mut on_b).await;
            if v["type"] == "error" || v["type"] == "webrtc_credentials" {
                break v;
            }
        };
        if v["type"] == "webrtc_credentials" {
            assert_eq!(v["session_id"], sid, "{v}");
            assert_eq!(v["ice_restart"], true, "{v}");
            let req = recv_type(&mut robot, "webrtc_request").await;
            assert_eq!(req["session_id"], sid, "{req}");
            assert_eq!(req["ice_restart"], true, "{req}");
            break;
        }
        assert_eq!(v["code"], "internal", "{v}");
        assert!(
            Instant::now() < deadline,
            "the restart never reached the robot"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A command from an app on B, handed to the robot on A, which leaves
/// without answering: A answers `robot_offline` for it on B (the command's
/// id as `ref`); a WebRTC request forwarded the same way is not mistaken
/// for a command.
#[tokio::test]
async fn a_remote_command_the_robot_leaves_unanswered_gets_robot_offline() {
    let c = cluster(2).await;
    let (_, _, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "clleave", "wimz-rlv").await;
    webrtc_session(&mut on_b, &mut robot, "wimz-rlv", "w-1").await;
    send(
        &mut on_b,
        json!({"type": "command", "device_id": "wimz-rlv", "id": "rc-1", "command": "sit"}),
    )
    .await;
    assert_eq!(recv_type(&mut robot, "command").await["id"], "rc-1");
    robot.close(None).await.unwrap();
    let e = recv_type(&mut on_b, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("robot_offline"), Some("rc-1")),
        "{e}"
    );
    // Nothing for the signaling request ("w-1").
    loop {
        let v = tokio::time::timeout(Duration::from_millis(500), recv(&mut on_b)).await;
        let Ok(v) = v else { break };
        assert_ne!(v["type"], "error", "{v}");
    }
}
