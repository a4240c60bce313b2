//! What a stopping instance does for the rest of the cluster: refuse new
//! connections at once, hand its devices off (the instance a robot moves to
//! continues its numbering after every event the stopping one read), and
//! give them up within its budget.

use crate::cluster::{Backend, Redis};
use crate::helpers::*;
use crate::instances::{device_token, shared_store, Instance};
use crate::process::{sigterm, start_relay_on};
use crate::redis_topologies::{RedisCluster, SentinelSet};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// While an instance stops, a new connection to it is refused at once (so
/// nginx, or a client, goes to another instance), not queued unanswered in
/// its accept queue until it exits; and a socket asked for over a
/// connection it accepted before (a proxy's kept-alive one) is answered
/// 503, not upgraded only to be closed: by the time its robots hear the
/// close, nothing new gets in.
#[tokio::test]
async fn a_stopping_instance_refuses_new_connections_and_sockets_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut relay = start_relay_on(
        dir.path(),
        port,
        "warn",
        // The robot below never answers the close: the instance stays in
        // its robots' phase (0.4 of this) while the test looks.
        &[("WIMZ__SERVER__SHUTDOWN_TIMEOUT_S", "10")],
    )
    .await;
    let user = relay.user("refused").await;
    let secret = relay.device(&user, "wimz-closing").await;
    let mut robot = relay.robot("wimz-closing", &secret).await;
    let mut kept = KeptAlive::open(port).await;
    assert!(kept
        .request("GET /health HTTP/1.1\r\nHost: relay\r\n\r\n")
        .await
        .starts_with("HTTP/1.1 200"));
    // A second one to read /metrics over once the upgrade is refused (the
    // first is not kept after a refused upgrade).
    let mut scraper = KeptAlive::open(port).await;
    assert!(scraper
        .request("GET /health HTTP/1.1\r\nHost: relay\r\n\r\n")
        .await
        .starts_with("HTTP/1.1 200"));
    sigterm(&relay.child);
    assert_eq!(recv_close(&mut robot).await, Some(1012));
    // The robot does not answer the close: the instance is still stopping.
    let refused = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(
        matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "a new connection to a stopping instance: {refused:?}"
    );
    let upgrade = format!(
        "GET /ws/app HTTP/1.1\r\nHost: relay\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Authorization: Bearer {}\r\n\r\n",
        user.token
    );
    let answer = kept.request(&upgrade).await;
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "a socket asked for while stopping: {answer}"
    );
    // Counted under its own refusal reason.
    let metrics = scraper
        .request("GET /metrics HTTP/1.1\r\nHost: relay\r\n\r\n")
        .await;
    let scrape = crate::scrape::Scrape {
        text: metrics.split_once("\r\n\r\n").unwrap().1.to_string(),
    };
    assert_eq!(
        scrape.count("wimz_refused_total", &[("reason", "restarting")]),
        1,
        "{metrics}"
    );
    assert!(relay.child.try_wait().unwrap().is_none(), "still stopping");
    let status = tokio::task::spawn_blocking(move || relay.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

/// `progress{n}` for every `n` of `ns`, written back to back (one flush).
async fn burst(robot: &mut Ws, ns: std::ops::Range<u64>) {
    for n in ns {
        let ev = json!({"type": "event", "event": "progress", "data": {"n": n}});
        robot
            .feed(Message::Text(ev.to_string().into()))
            .await
            .unwrap();
    }
    robot.flush().await.unwrap();
}

/// A client's HTTP/1.1 connection kept open between requests.
struct KeptAlive(tokio::net::TcpStream);

impl KeptAlive {
    async fn open(port: u16) -> KeptAlive {
        KeptAlive(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        )
    }

    /// Sends `request`; returns the answer's head and body (`Content-Length`).
    async fn request(&mut self, request: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.0.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let read = async {
            loop {
                let mut buf = [0u8; 4096];
                let n = self.0.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if n == 0 || body.len() >= len {
                        return text;
                    }
                } else if n == 0 {
                    return text;
                }
            }
        };
        tokio::time::timeout(PATIENCE, read)
            .await
            .expect("an answer")
    }
}

/// An instance that cannot append all its robot's events within
/// `server.shutdown_timeout_s` still exits in time, deletes its claim and
/// tells the others at once: the apps on the other instances hear the
/// robot left now, not `cluster.presence_ttl_s` (60 s here) later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_budget_an_instance_exits_and_gives_its_devices_up_at_once() {
    let redis = Redis::start();
    gives_its_devices_up_at_once(&Backend::Single(redis.url()), &[&redis]).await;
}

/// The same with the instances on a Sentinel-watched master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sentinel_out_of_budget_an_instance_gives_its_devices_up_at_once() {
    let set = SentinelSet::start().await;
    gives_its_devices_up_at_once(&Backend::Sentinel(set.urls()), &[&set.master]).await;
}

/// The same on a 3-master Redis Cluster: the claim and its hand-off mark
/// are deleted on the device's shard, and `Gone`, sharded-published on
/// `wimz:{all}`, reaches both other instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_out_of_budget_an_instance_gives_its_devices_up_at_once() {
    let shards = RedisCluster::start().await;
    let nodes: Vec<&Redis> = shards.nodes.iter().collect();
    gives_its_devices_up_at_once(&Backend::Sharded(shards.urls()), &nodes).await;
}

/// A (1 s budget) holds a robot that just sent 100,000 events, watched by
/// apps on B and C; A is stopped. `nodes`: where the device's keys may be.
async fn gives_its_devices_up_at_once(backend: &Backend, nodes: &[&Redis]) {
    let store = shared_store().await;
    let dir = tempfile::tempdir().unwrap();
    let ttl = [("WIMZ__CLUSTER__PRESENCE_TTL_S", "60")];
    let mut a = Instance::on("A", backend, &store.url, &ttl);
    a.env
        .push(("WIMZ__SERVER__SHUTDOWN_TIMEOUT_S".into(), "1".into()));
    // The apps read everything A got to append; never slow consumers here.
    let others_env = [ttl[0], ("WIMZ__LIMITS__OUTBOUND_QUEUE", "200000")];
    let mut b = Instance::on("B", backend, &store.url, &others_env);
    let mut c = Instance::on("C", backend, &store.url, &others_env);
    for i in [&mut a, &mut b, &mut c] {
        i.start(dir.path()).await;
    }
    let [on_a, on_b, on_c] = [&a, &b, &c].map(|i| &i.relay.as_ref().unwrap().client);
    let user = on_a.user("budget").await;
    let secret = on_a.device(&user, "wimz-flood").await;
    let mut robot = on_a.robot("wimz-flood", &secret).await;
    let mut apps = Vec::new();
    for on in [on_b, on_c] {
        let (app, subscribed) = on.subscribed_app(&user, "wimz-flood").await;
        assert_eq!(subscribed["robot_online"], true, "{subscribed}");
        apps.push(app);
    }

    // Far more events than one Redis round trip each can append in a
    // second: most are still waiting in the room when the budget ends.
    burst(&mut robot, 0..100_000).await;
    // Hang guard: the 1 s budget and plenty of slack for a loaded machine
    // (appending all 100,000 events took this relay over 11 s here).
    let (took, status) = tokio::task::spawn_blocking(move || {
        let r = a.terminate_within(Duration::from_secs(8));
        drop(a);
        r
    })
    .await
    .unwrap();
    assert!(status.success(), "{status}");
    eprintln!("A stopped in {took:?} (budget 1 s)");
    assert_eq!(
        key_anywhere(nodes, "wimz:{wimz-flood}:presence").await,
        None,
        "A's claim is gone with it"
    );
    assert_eq!(
        key_anywhere(nodes, "wimz:{wimz-flood}:handoff").await,
        None,
        "and its hand-off mark"
    );
    for app in &mut apps {
        let gone = recv_event(app, "robot_disconnected").await;
        assert_eq!(gone["reason"], "relay_shutdown", "{gone}");
    }
    drop(robot);
}

/// `GET key` on whichever of `nodes` answers for it (on a Redis Cluster the
/// others answer `MOVED`); panics if none does.
async fn key_anywhere(nodes: &[&Redis], key: &str) -> Option<String> {
    for node in nodes {
        let mut c = node.connection().await;
        if let Ok(v) = redis::cmd("GET").arg(key).query_async(&mut c).await {
            return v;
        }
    }
    panic!("no node answered GET {key}");
}

/// A robot `token` authenticates on the relay at `base` (`ws://host:port`),
/// attached to its room when this returns (a pong proves it). The attach
/// may wait, by design, for a stopping holder to append its last events:
/// `patience` is the hang guard.
async fn robot_with_token(base: &str, token: &str, patience: Duration) -> Ws {
    let mut req = format!("{base}/ws/device").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut ws = tokio_tungstenite::connect_async(req)
        .await
        .expect("robot socket opens")
        .0;
    send(&mut ws, json!({"type": "ping"})).await;
    while recv_within(&mut ws, patience).await["type"] != "pong" {}
    ws
}

/// A robot moved by a restart continues its device's numbering on the
/// instance it reconnects to, after every event the stopping instance read
/// from it: that instance's claim waits while the stopping one still
/// appends what it holds, then releases the device. An app on another
/// instance gets every event once, in order, in one epoch, and hears the
/// robot leave and come back as numbered events at once (the presence TTL
/// here is 60 s: nothing waits for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_moved_by_a_restart_continues_after_every_event_it_sent() {
    let redis = Redis::start();
    a_moved_robot_continues(&Backend::Single(redis.url())).await;
}

/// The same on a 3-master Redis Cluster: the claim script reads the
/// hand-off mark on the device's shard (its hash tag), and waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_a_robot_moved_by_a_restart_continues_after_every_event() {
    let shards = RedisCluster::start().await;
    a_moved_robot_continues(&Backend::Sharded(shards.urls())).await;
}

/// A robot on A sends a burst, A is stopped, the robot moves to B; an app
/// on C checks the numbering.
async fn a_moved_robot_continues(backend: &Backend) {
    /// Sent in one burst just before the SIGTERM: most are still waiting
    /// in the stopping instance's room when the robot reconnects elsewhere.
    const BURST: u64 = 20_000;
    /// Sent from the new instance afterwards.
    const AFTER: u64 = 10;
    let store = shared_store().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("WIMZ__CLUSTER__PRESENCE_TTL_S", "60"),
        ("WIMZ__LIMITS__OUTBOUND_QUEUE", "100000"),
    ];
    let mut a = Instance::on("A", backend, &store.url, &env);
    // Room enough to append the whole burst (the process exits as soon as
    // it has: this only keeps a loaded machine from cutting it short).
    a.env
        .push(("WIMZ__SERVER__SHUTDOWN_TIMEOUT_S".into(), "30".into()));
    let mut b = Instance::on("B", backend, &store.url, &env);
    let mut c = Instance::on("C", backend, &store.url, &env);
    for i in [&mut a, &mut b, &mut c] {
        i.start(dir.path()).await;
    }
    let [on_a, on_b, on_c] = [&a, &b, &c].map(|i| RelayClient::new(i.port));
    let user = on_a.user("mover").await;
    let secret = on_a.device(&user, "wimz-mover").await;
    let token = device_token(&on_a, "wimz-mover", &secret).await;
    let mut robot = robot_with_token(&on_a.ws_base, &token, PATIENCE).await;
    let (mut app, subscribed) = on_c.subscribed_app(&user, "wimz-mover").await;
    assert_eq!(subscribed["robot_online"], true, "{subscribed}");
    let epoch = subscribed["epoch"].as_i64().unwrap();
    let first_seq = subscribed["seq"].as_u64().unwrap() + 1;

    burst(&mut robot, 0..BURST).await;
    let signalled = Instant::now();
    a.signal();
    // The robot answers A's close and, once A ends the connection, goes
    // straight to B.
    assert_eq!(recv_close(&mut robot).await, Some(1012));
    let _ = tokio::time::timeout(PATIENCE, async { while robot.next().await.is_some() {} }).await;
    // B's claim waits until A appended the burst (20,000 round trips, on
    // a loaded machine and a Redis Cluster well over PATIENCE).
    let mut robot = robot_with_token(&on_b.ws_base, &token, PATIENCE * 6).await;
    for n in BURST..BURST + AFTER {
        send(
            &mut robot,
            json!({"type": "event", "event": "progress", "data": {"n": n}}),
        )
        .await;
    }

    // Every event, once, in order, one epoch, numbered without a gap; the
    // move is told with numbered events (no `instance_lost`).
    let mut ns = Vec::new();
    let mut told = Vec::new();
    let mut seq = first_seq;
    while ns.len() < (BURST + AFTER) as usize {
        let v = recv_within(&mut app, PATIENCE * 3).await;
        if v["type"] != "event" {
            continue;
        }
        assert_eq!(v["unnumbered"], Value::Null, "{v}");
        assert_eq!(
            (v["epoch"].as_i64(), v["seq"].as_u64()),
            (Some(epoch), Some(seq)),
            "after {} progress events: {v}",
            ns.len()
        );
        seq += 1;
        match v["event"].as_str() {
            Some("progress") => ns.push(v["data"]["n"].as_u64().unwrap()),
            _ => told.push((ns.len() as u64, v)),
        }
    }
    assert_eq!(ns, (0..BURST + AFTER).collect::<Vec<_>>());
    let told: Vec<_> = told
        .iter()
        .map(|(at, v)| (*at, v["event"].as_str().unwrap(), v["reason"].as_str()))
        .collect();
    assert_eq!(
        told,
        [
            (BURST, "robot_disconnected", Some("relay_shutdown")),
            (BURST, "robot_connected", None),
        ],
        "the robot left A after its last event and came back on B"
    );

    // Hang guard: A's 30 s budget and slack.
    let (_, status) =
        tokio::task::spawn_blocking(move || a.wait_exit(signalled, Duration::from_secs(60)))
            .await
            .unwrap();
    assert!(status.success(), "{status}");
}

/// A robot that keeps sending while the relay's 1012 is on its way loses
/// nothing: the stopping relay goes on reading it until it answers the
/// close, so every event it wrote before it saw the close reaches the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_relay_reads_a_robot_to_the_end_of_the_closing_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let limits = [
        ("WIMZ__LIMITS__MESSAGES_PER_S", "1000000"),
        ("WIMZ__LIMITS__MESSAGES_BURST", "1000000"),
        ("WIMZ__LIMITS__OUTBOUND_QUEUE", "1000000"),
    ];
    let mut relay = start_relay_on(dir.path(), free_port(), "warn", &limits).await;
    let user = relay.user("reader").await;
    let secret = relay.device(&user, "wimz-chatty").await;
    let robot = relay.robot("wimz-chatty", &secret).await;
    let (mut app, _) = relay.subscribed_app(&user, "wimz-chatty").await;

    // The robot writes as fast as it can, never waiting for the relay; its
    // reader alone sees the close (and answers it, after which writes fail).
    let (mut tx, mut rx) = robot.split();
    let writer = tokio::spawn(async move {
        let mut sent = 0u64;
        loop {
            let ev = json!({"type": "event", "event": "progress", "data": {"n": sent}});
            if tx.send(Message::Text(ev.to_string().into())).await.is_err() {
                return sent;
            }
            sent += 1;
            if sent % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let reader = tokio::spawn(async move {
        loop {
            match rx.next().await {
                Some(Ok(Message::Close(f))) => {
                    let code = f.map(|f| u16::from(f.code));
                    // Read on until the relay ends the connection.
                    let _ = tokio::time::timeout(PATIENCE, async {
                        while rx.next().await.is_some() {}
                    })
                    .await;
                    return code;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    });
    // Let it run, then stop the relay mid-stream.
    let mut got = 0u64;
    while got < 500 {
        let v = recv(&mut app).await;
        if v["event"] == "progress" {
            assert_eq!(v["data"]["n"], got);
            got += 1;
        }
    }
    sigterm(&relay.child);
    assert_eq!(
        tokio::time::timeout(PATIENCE, reader)
            .await
            .unwrap()
            .unwrap(),
        Some(1012)
    );
    let sent = tokio::time::timeout(PATIENCE, writer)
        .await
        .unwrap()
        .unwrap();
    // The app gets every one of them, then its own close.
    loop {
        match tokio::time::timeout(PATIENCE, app.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["event"] == "progress" {
                    assert_eq!(v["data"]["n"], got, "in order, none missing");
                    got += 1;
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => {}
        }
    }
    assert_eq!(
        got, sent,
        "the robot wrote {sent} events before it saw the close"
    );
    let status = tokio::task::spawn_blocking(move || relay.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}
