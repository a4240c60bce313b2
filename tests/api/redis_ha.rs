//! The cluster on Redis as operators run it for availability and scale:
//! a Redis Cluster (3 masters, sharded pub/sub) running the cluster suite's
//! order, presence and recovery cases, and a Sentinel-watched master killed
//! under traffic (issue 15, items 1 and 2).

use crate::cluster::*;
use crate::helpers::*;
use crate::redis_topologies::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[tokio::test]
async fn on_a_redis_cluster_order_presence_and_recovery_hold() {
    let c = cluster_sharded(3).await;
    let shards = c
        .more
        .as_ref()
        .and_then(|m| m.downcast_ref::<RedisCluster>())
        .unwrap();
    let before = calls(&c.redis, shards).await;
    events_commands_and_strangers(&c).await;
    let after = calls(&c.redis, shards).await;
    let d = |cmd: &str| after.get(cmd).unwrap_or(&0) - before.get(cmd).unwrap_or(&0);
    // 300 events (and a few presence events): each one XADD and one
    // SPUBLISH on its device's shard, no script per event.
    assert!(d("xadd") >= 300, "{after:?}");
    assert!(d("spublish") >= 300, "{after:?}");
    assert!(
        d("evalsha") + d("eval") < 20,
        "scripts ran per event: {after:?}"
    );
    // The device's channel is a shard channel, on exactly one node.
    let mut holders = 0;
    for node in std::iter::once(&c.redis).chain(shards.nodes.iter()) {
        let mut con = node.connection().await;
        let chans: Vec<String> = redis::cmd("PUBSUB")
            .arg("SHARDCHANNELS")
            .arg("wimz:{wimz-cl}:*")
            .query_async(&mut con)
            .await
            .unwrap();
        holders += chans.len().min(1);
    }
    assert_eq!(holders, 1, "one shard holds the device's channel");

    recovers_exactly_elsewhere(&c).await;
    a_moving_robot_continues_the_stream(&c).await;
}

/// Commands run, summed over the Redis Cluster's nodes.
async fn calls(first: &Redis, rest: &RedisCluster) -> HashMap<String, u64> {
    let mut total = commandstats(first).await;
    for (k, v) in rest.commandstats().await {
        *total.entry(k).or_insert(0) += v;
    }
    total
}

/// What one app saw of the robot's numbered `tick` events: each `n` the
/// robot sent either arrives in order or the app was told first
/// (`recovered{complete:false}`); never a silent hole.
struct Watcher {
    name: &'static str,
    ws: Ws,
    last_n: Option<u64>,
    told: bool,
    holes_told: u32,
}

impl Watcher {
    /// Reads until a `tick` with `n >= upto` arrived.
    async fn until(&mut self, upto: u64) {
        loop {
            let v = recv_within(&mut self.ws, PATIENCE * 3).await;
            if v["type"] == "recovered" && v["complete"] == false {
                self.told = true;
                continue;
            }
            if v["type"] != "event" || v["event"] != "tick" {
                continue;
            }
            let n = v["data"]["n"].as_u64().unwrap();
            if let Some(last) = self.last_n {
                if n > last + 1 {
                    assert!(
                        self.told,
                        "{}: ticks {}..{} went missing without a word: {v}",
                        self.name,
                        last + 1,
                        n - 1
                    );
                    self.holes_told += 1;
                }
            }
            self.told = false;
            self.last_n = Some(self.last_n.map_or(n, |l| l.max(n)));
            if n >= upto {
                return;
            }
        }
    }
}

#[tokio::test]
async fn a_sentinel_failover_under_traffic_is_followed_by_every_instance_and_no_gap_is_silent() {
    let set = SentinelSet::start().await;
    let urls = set.urls();
    let SentinelSet {
        master,
        replica,
        sentinels,
    } = set;
    let (old_master, replica_port) = (master.port, replica.port);
    let mut c = cluster_on(
        master,
        Some(Box::new((replica, sentinels))),
        Backend::Sentinel(urls),
        &["A", "B", "C"],
    )
    .await;
    let (a, b, cc) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let u = a.user("sentineluser").await;
    let secret = a.device(&u, "wimz-sen").await;
    let mut robot = a.robot("wimz-sen", &secret).await;
    let mut watchers = Vec::new();
    for (name, node) in [("A", a), ("B", b), ("C", cc)] {
        let (ws, sub) = node.subscribed_app(&u, "wimz-sen").await;
        assert_eq!(sub["robot_online"], true, "{name}: {sub}");
        watchers.push(Watcher {
            name,
            ws,
            last_n: None,
            told: false,
            holes_told: 0,
        });
    }

    // The robot sends a tick every 20 ms from here to the end.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ticker = {
        let (sent, stop) = (sent.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                send(
                    &mut robot,
                    json!({"type": "event", "event": "tick", "data": {"n": n}}),
                )
                .await;
                sent.store(n, std::sync::atomic::Ordering::Relaxed);
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            robot
        })
    };
    for w in &mut watchers {
        w.until(20).await;
    }

    // Kill the master under traffic.
    c.redis.stop();
    wait_for("the sentinels to promote the replica", || async {
        let mut s = redis::Client::open(format!("redis://127.0.0.1:{replica_port}"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query_async(&mut s)
            .await
            .unwrap_or_default();
        matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master")
    })
    .await;
    let promoted = redis::Client::open(format!("redis://127.0.0.1:{replica_port}")).unwrap();
    let mut promoted = promoted.get_multiplexed_async_connection().await.unwrap();
    // Every instance follows the new master.
    for node in &c.nodes {
        wait_for("every instance healthy on the new master", || async {
            node.get("/health", None).await.status() == 200
        })
        .await;
    }
    let after = sent.load(std::sync::atomic::Ordering::Relaxed) + 10;
    for w in &mut watchers {
        w.until(after).await;
    }
    // Presence rebuilt on the new master.
    let holder: Option<String> = redis::cmd("GET")
        .arg("wimz:{wimz-sen}:presence")
        .query_async(&mut promoted)
        .await
        .unwrap();
    assert_eq!(holder.as_deref(), Some("A"));
    let list: Value = cc
        .get("/api/devices", Some(&u.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["online"], true, "{list}");
    // The app on A saw every tick (its instance delivered locally while
    // Redis was away); cross-instance traffic goes through the new master.
    assert_eq!(
        watchers[0].holes_told, 0,
        "the robot's own instance lost nothing"
    );
    let stats = commandstats_of(&mut promoted).await;
    assert!(stats.get("xadd").copied().unwrap_or(0) > 0, "{stats:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _robot = ticker.await.unwrap();
    let _ = (old_master, Instant::now());
}

async fn commandstats_of(c: &mut redis::aio::MultiplexedConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(c)
        .await
        .unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .collect()
}

/// The hot path's fence, on a real Redis and through the relay's own
/// code: once instance B has claimed a device, the appends of A (which
/// held it) are refused by Redis itself (`XADD` with A's older term), and
/// the `PUBLISH` pipelined with each refused append reaches subscribers
/// only after B's claim announced a higher stream id, so mirrors drop it.
/// No seq is stored twice.
#[tokio::test]
async fn a_claim_fences_the_previous_holders_appends_without_a_script_per_event() {
    use wimz_relay::cluster::link::{Link, Topology};
    use wimz_relay::cluster::messages::Append;
    use wimz_relay::cluster::stream_ids::{Published, StreamId};
    use wimz_relay::cluster::{fast_append, keys, scripts, Fast};
    let redis = Redis::start();
    let topology = Topology::Single(redis.url());
    let mut link = Link::connect(&topology).await.unwrap();
    let device = wimz_relay::ids::DeviceId::parse("wimz-fence").unwrap();
    let claim = redis::Script::new(&scripts::claim());
    let claims = link.clone();
    let claim_as = |who: &'static str| {
        let (claim, device, mut link) = (claim.clone(), device.clone(), claims.clone());
        async move {
            let (_prev, epoch, seq, term): (String, String, u64, u64) = claim
                .key(keys::presence(&device))
                .key(keys::stream(&device))
                .key(keys::device_channel(&device))
                .arg(who)
                .arg(30)
                .arg(wimz_relay::ids::unix_now_ms())
                .arg(wimz_relay::ids::unix_now_ms())
                .arg(100)
                .arg("PUBLISH")
                .invoke_async(&mut link)
                .await
                .unwrap();
            (epoch.parse::<i64>().unwrap(), seq, term)
        }
    };
    let event = |epoch: i64, seq: u64| Append {
        device: device.clone(),
        expected: None,
        epoch,
        seq,
        frame: format!("{{\"type\":\"event\",\"seq\":{seq}}}").into(),
    };

    let (epoch, seq, term_a) = claim_as("A").await;
    assert_eq!(seq, 0);
    assert_eq!(
        fast_append(&mut link, &event(epoch, 1), term_a, 100).await,
        Fast::Ok
    );

    let mut sub = link.pubsub(&topology).await.unwrap();
    sub.subscribe(&keys::device_channel(&device)).await.unwrap();
    let (epoch_b, seq_b, term_b) = claim_as("B").await;
    assert_eq!((epoch_b, seq_b), (epoch, 1), "B continues A's numbering");
    assert!(term_b > term_a);
    // A, not yet told, appends its next event: Redis refuses it.
    assert_eq!(
        fast_append(&mut link, &event(epoch, 2), term_a, 100).await,
        Fast::Refused
    );
    assert_eq!(
        fast_append(&mut link, &event(epoch, 2), term_b, 100).await,
        Fast::Ok
    );

    // On the channel: B's claim, then A's refused event (below it), then B's.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let (_, payload) = tokio::time::timeout(PATIENCE, sub.next())
            .await
            .unwrap()
            .unwrap();
        seen.push(Published::parse(&payload).unwrap());
    }
    assert!(
        seen[0].frame.is_none(),
        "the claim's marker comes first: {seen:?}"
    );
    assert_eq!(
        seen[0].at.id,
        StreamId {
            term: term_b,
            seq: 1
        }
    );
    assert!(
        seen[1].at.id < seen[0].at.id,
        "A's refused event is below B's claim: {seen:?}"
    );
    assert_eq!(
        seen[2].at.id,
        StreamId {
            term: term_b,
            seq: 2
        }
    );

    // The stream holds seq 2 once, B's.
    let mut con = redis.connection().await;
    let ids: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(keys::stream(&device))
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    let ids: Vec<StreamId> = ids
        .iter()
        .map(|(id, _)| StreamId::parse(id).unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            StreamId {
                term: term_a,
                seq: 0
            },
            StreamId {
                term: term_a,
                seq: 1
            },
            StreamId {
                term: term_b,
                seq: 1
            },
            StreamId {
                term: term_b,
                seq: 2
            },
        ]
    );
    // No script ran for an event: the two claims only (the first one's
    // EVALSHA answered NOSCRIPT and was retried after SCRIPT LOAD).
    let stats = commandstats(&redis).await;
    let scripts_run =
        stats.get("evalsha").copied().unwrap_or(0) + stats.get("eval").copied().unwrap_or(0);
    assert!(scripts_run <= 3, "{stats:?}");
    assert_eq!(
        stats.get("xadd"),
        Some(&5),
        "2 markers, 3 events: {stats:?}"
    );
}
