//! The cluster on Redis as operators run it for availability and scale:
//! a Redis Cluster (3 masters, sharded pub/sub) running the cluster suite's
//! order, presence and recovery cases, and a Sentinel-watched master killed
//! under traffic (issue 15, items 1 and 2).

use crate::cluster::*;
use crate::helpers::*;
use crate::redis_topologies::*;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

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
    let replica_port = replica.port;
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
        // The sentinels reconfiguring it may reset this connection: ask again.
        let Ok(mut s) = redis::Client::open(format!("redis://127.0.0.1:{replica_port}"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
        else {
            return false;
        };
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
    let list = cc.devices(&u).await;
    assert_eq!(list[0]["online"], true, "{list}");
    // The app on A saw every tick (its instance delivered locally while
    // Redis was away); cross-instance traffic goes through the new master.
    assert_eq!(
        watchers[0].holes_told, 0,
        "the robot's own instance lost nothing"
    );
    let (replica, _sentinels) = c
        .more
        .as_ref()
        .and_then(|m| m.downcast_ref::<(Redis, Vec<Redis>)>())
        .unwrap();
    let stats = commandstats(replica).await;
    assert!(stats.get("xadd").copied().unwrap_or(0) > 0, "{stats:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _robot = ticker.await.unwrap();
}
