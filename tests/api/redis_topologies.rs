//! Redis deployed the ways operators run it, started by the tests on free
//! loopback ports and killed on drop: a master + replica watched by three
//! `redis-sentinel`s ([`SentinelSet`]), and a 3-master Redis Cluster
//! ([`RedisCluster`], `redis-cli --cluster create`). Every wait is bounded
//! (a hang guard, not a timing assertion).

use crate::cluster::Redis;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a Redis set-up may take to come up (cluster slots agreed,
/// sentinels agreeing on the master) before the test gives up.
const SETUP_PATIENCE: Duration = Duration::from_secs(30);

/// A master, one replica and three sentinels (quorum 2) watching them as
/// `wimz`: a failover takes about `down-after-milliseconds` (1 s) plus an
/// election.
pub struct SentinelSet {
    pub master: Redis,
    pub replica: Redis,
    pub sentinels: Vec<Redis>,
}

pub const MASTER_NAME: &str = "wimz";

impl SentinelSet {
    pub async fn start() -> SentinelSet {
        let master = Redis::start_with(&[]);
        let replica = Redis::start_with(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
        wait_for("the replica to sync", || async {
            info(&replica, "replication")
                .await
                .contains("master_link_status:up")
        })
        .await;
        let sentinels = (0..3)
            .map(|_| Redis::start_sentinel(MASTER_NAME, master.port))
            .collect::<Vec<_>>();
        let set = SentinelSet {
            master,
            replica,
            sentinels,
        };
        wait_for(
            "the sentinels to know the replica and each other",
            || async {
                let mut ready = true;
                for s in &set.sentinels {
                    let mut c = s.connection().await;
                    let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
                        .arg("REPLICAS")
                        .arg(MASTER_NAME)
                        .query_async(&mut c)
                        .await
                        .unwrap_or_default();
                    let peers: Vec<redis::Value> = redis::cmd("SENTINEL")
                        .arg("SENTINELS")
                        .arg(MASTER_NAME)
                        .query_async(&mut c)
                        .await
                        .unwrap_or_default();
                    ready &= !replicas.is_empty() && peers.len() == 2;
                }
                ready
            },
        )
        .await;
        set
    }

    pub fn urls(&self) -> Vec<String> {
        self.sentinels.iter().map(|s| s.url()).collect()
    }
}

/// Three masters (no replicas) sharing the 16,384 slots.
pub struct RedisCluster {
    pub nodes: Vec<Redis>,
}

impl RedisCluster {
    pub async fn start() -> RedisCluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                Redis::start_with(&["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli is installed (.ci/services installs it)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { nodes };
        wait_for("every node to say cluster_state:ok", || async {
            let mut ok = true;
            for n in &cluster.nodes {
                let mut c = n.connection().await;
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut c)
                    .await
                    .unwrap_or_default();
                ok &= info.contains("cluster_state:ok");
            }
            ok
        })
        .await;
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url()).collect()
    }

    /// `INFO commandstats` calls summed over the nodes, by command.
    pub async fn commandstats(&self) -> std::collections::HashMap<String, u64> {
        let mut total = std::collections::HashMap::new();
        for n in &self.nodes {
            for (k, v) in commandstats(n).await {
                *total.entry(k).or_insert(0) += v;
            }
        }
        total
    }
}

pub async fn info(r: &Redis, section: &str) -> String {
    let mut c = r.connection().await;
    redis::cmd("INFO")
        .arg(section)
        .query_async(&mut c)
        .await
        .unwrap_or_default()
}

/// Calls per command (`cmdstat_xadd:calls=12,...` -> `xadd: 12`).
pub async fn commandstats(r: &Redis) -> std::collections::HashMap<String, u64> {
    info(r, "commandstats")
        .await
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .collect()
}

/// Polls `ready` every 100 ms until it holds (panics after SETUP_PATIENCE).
pub async fn wait_for<F, Fut>(what: &str, ready: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + SETUP_PATIENCE;
    while !ready().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
