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
    let shards = c.more.as_ref().and_then(|m| m.downcast_ref::<RedisCluster>()).unwrap();
    let before = calls(&c.redis, shards).await;
    events_commands_and_strangers(&c).await;
    let after = calls(&c.redis, shards).await;
    let d = |cmd: &str| after.get(cmd).unwrap_or(&0) - before.get(cmd).unwrap_or(&0);
    // 300 events (and a few presence events): each one XADD and one
    // SPUBLISH on its device's shard, no script per event.
    assert!(d("xadd") >= 300, "{after:?}");
    assert!(d("spublish") >= 300, "{after:?}");
    assert!(d("evalsha") + d("eval") < 20, "scripts ran per event: {after:?}");
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
