//! The instance's way to Redis, however Redis is deployed (`[cluster]`):
//!
//! - one server, `cluster.redis_url`;
//! - a master watched by Sentinel, `cluster.sentinels` + `cluster.sentinel_master`:
//!   the master is asked of the sentinels (which check its `ROLE`) whenever a
//!   connection is needed, so after a failover the next connection goes to
//!   the promoted replica;
//! - a Redis Cluster, `cluster.redis_cluster_nodes`: the `redis` crate's
//!   cluster client routes each command (and each pipeline, whose commands
//!   all name one device's hash tag) to the shard owning the slot, and
//!   follows `MOVED`/failovers itself.
//!
//! [`Link`] is the command side: a cheap clone implementing the crate's
//! `ConnectionLike`, so scripts, pipelines and commands run on it unchanged.
//! On one server or Sentinel it is one multiplexed connection, made lazily
//! and dropped on any connection error or `READONLY` (a demoted master):
//! each new connection bumps [`Link::generation`], which the bridge uses to
//! re-verify its claims after Redis may have changed under it.
//! [`PubSub`] is the subscriber side (RESP3 pushes): `SUBSCRIBE`/`PUBLISH`
//! on a server, sharded `SSUBSCRIBE`/`SPUBLISH` on a Redis Cluster.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo,
    PushKind, RedisError, RedisFuture, RedisResult, Value,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long to wait for a connection, and for any one answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where Redis is (from `[cluster]`, validated by the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    Single(String),
    Sentinel {
        sentinels: Vec<String>,
        master: String,
    },
    Cluster(Vec<String>),
}

impl Topology {
    /// True when device channels are sharded (`SPUBLISH`/`SSUBSCRIBE`).
    pub fn sharded(&self) -> bool {
        matches!(self, Topology::Cluster(_))
    }
}

/// The command side; clones share the connection(s).
#[derive(Clone)]
pub struct Link {
    inner: Inner,
    sharded: bool,
}

#[derive(Clone)]
enum Inner {
    Node(Arc<NodeLink>),
    Cluster(ClusterConnection),
}

/// One server, found directly or through the sentinels.
struct NodeLink {
    find: Finder,
    current: Mutex<Option<MultiplexedConnection>>,
    /// Serialises (re)connecting, so a burst of requests makes one connection.
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

enum Finder {
    Url(Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

impl Finder {
    /// The current master (or the one server), speaking `protocol`.
    async fn client(&self, protocol: ProtocolVersion) -> RedisResult<Client> {
        let info = match self {
            Finder::Url(c) => c.get_connection_info().clone(),
            Finder::Sentinel(s) => s
                .lock()
                .await
                .async_get_client()
                .await?
                .get_connection_info()
                .clone(),
        };
        let settings = info.redis_settings().clone().set_protocol(protocol);
        Client::open(info.set_redis_settings(settings))
    }
}

fn config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

impl NodeLink {
    async fn conn(self: &Arc<Self>) -> RedisResult<MultiplexedConnection> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        // Boxed: making a connection is a large future, and every
        // request's future would otherwise carry (and be moved with) its
        // size although it almost always has a connection already.
        Box::pin(self.connect_anew()).await
    }

    async fn connect_anew(self: &Arc<Self>) -> RedisResult<MultiplexedConnection> {
        let _one = self.connecting.lock().await;
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let client = self.find.client(ProtocolVersion::RESP3).await?;
        // The connection says when it closes: dropped at once, so the next
        // request connects anew instead of failing on a dead socket.
        let (tx, mut rx) = mpsc::unbounded_channel::<PushInfo>();
        let conn = client
            .get_multiplexed_async_connection_with_config(&config().set_push_sender(tx))
            .await?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(push) = rx.recv().await {
                if push.kind == PushKind::Disconnection {
                    break;
                }
            }
            if let Some(me) = me.upgrade() {
                if me.generation.load(Ordering::Relaxed) == generation {
                    *me.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
            }
        });
        Ok(conn)
    }

    fn cached(&self) -> Option<MultiplexedConnection> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// After a failed request: a lost connection or a demoted master is
    /// dropped, so the next request connects (through the sentinels) anew.
    fn failed(&self, e: &RedisError) {
        let demoted = e.code() == Some("READONLY");
        if demoted
            || e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
        {
            *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

impl Link {
    /// Connects (the first connection is made here, so a wrong address
    /// stops start-up with one line).
    pub async fn connect(topology: &Topology) -> anyhow::Result<Link> {
        let inner = match topology {
            Topology::Single(url) => Inner::Node(Arc::new(NodeLink::new(Finder::Url(
                Client::open(url.as_str())?,
            )))),
            Topology::Sentinel { sentinels, master } => {
                let node = SentinelNodeConnectionInfo::default();
                let client = SentinelClient::build(
                    sentinels.clone(),
                    master.clone(),
                    Some(node),
                    SentinelServerType::Master,
                )?;
                Inner::Node(Arc::new(NodeLink::new(Finder::Sentinel(
                    tokio::sync::Mutex::new(client),
                ))))
            }
            Topology::Cluster(nodes) => Inner::Cluster(
                cluster_builder(nodes)?
                    .build()?
                    .get_async_connection()
                    .await?,
            ),
        };
        let link = Link {
            inner,
            sharded: topology.sharded(),
        };
        if let Inner::Node(n) = &link.inner {
            n.conn().await?;
        }
        Ok(link)
    }

    /// Counts the connections made so far (one server or Sentinel): a change
    /// means later commands may reach a different (or restarted) Redis.
    /// Always 0 on a Redis Cluster, whose client reconnects by itself.
    pub fn generation(&self) -> u64 {
        match &self.inner {
            Inner::Node(n) => n.generation.load(Ordering::Relaxed),
            Inner::Cluster(_) => 0,
        }
    }

    /// Device and instance channels are sharded (a Redis Cluster).
    /// `PUBLISH` or, on a Redis Cluster, `SPUBLISH` (one shard, by the
    /// channel's hash tag, instead of a broadcast to every node): for
    /// [`Self::publish_cmd`], and for the scripts that publish (their
    /// `pub` argument).
    pub fn publish_name(&self) -> &'static str {
        if self.sharded {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// A publish of `payload` on `channel` ([`Self::publish_name`]).
    pub fn publish_cmd(&self, channel: &str, payload: &str) -> Cmd {
        let mut c = redis::cmd(self.publish_name());
        c.arg(channel).arg(payload);
        c
    }

    /// A new subscriber connection (to the current master, or to the cluster).
    pub async fn pubsub(&self, topology: &Topology) -> RedisResult<PubSub> {
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = match (&self.inner, topology) {
            (Inner::Node(n), _) => {
                let client = n.find.client(ProtocolVersion::RESP3).await?;
                let config = config().set_push_sender(tx);
                PubConn::Node(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            }
            (Inner::Cluster(_), Topology::Cluster(nodes)) => PubConn::Cluster(
                cluster_builder(nodes)?
                    .use_protocol(ProtocolVersion::RESP3)
                    .push_sender(tx)
                    .build()?
                    .get_async_connection()
                    .await?,
            ),
            (Inner::Cluster(_), _) => {
                return Err(RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "cluster link without cluster nodes",
                )))
            }
        };
        Ok(PubSub {
            conn,
            rx,
            sharded: self.sharded,
        })
    }
}

impl NodeLink {
    fn new(find: Finder) -> NodeLink {
        NodeLink {
            find,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        }
    }
}

fn cluster_builder(nodes: &[String]) -> RedisResult<ClusterClientBuilder> {
    let infos = nodes
        .iter()
        .map(|n| n.as_str().into_connection_info())
        .collect::<RedisResult<Vec<_>>>()?;
    Ok(ClusterClientBuilder::new(infos)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .retries(2))
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Cluster(c) => c.req_packed_command(cmd),
            Inner::Node(n) => {
                let n = n.clone();
                Box::pin(async move {
                    let mut conn = n.conn().await?;
                    let r = conn.req_packed_command(cmd).await;
                    if let Err(e) = &r {
                        n.failed(e);
                    }
                    r
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Inner::Node(n) => {
                let n = n.clone();
                Box::pin(async move {
                    let mut conn = n.conn().await?;
                    let r = conn.req_packed_commands(cmd, offset, count).await;
                    if let Err(e) = &r {
                        n.failed(e);
                    }
                    r
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// The subscriber side: one RESP3 connection (or cluster connection) whose
/// pushes arrive on a channel.
pub struct PubSub {
    conn: PubConn,
    rx: mpsc::UnboundedReceiver<PushInfo>,
    sharded: bool,
}

enum PubConn {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl PubSub {
    pub async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match &mut self.conn {
            PubConn::Node(c) => c.subscribe(channel).await,
            PubConn::Cluster(c) if self.sharded => c.ssubscribe(channel).await,
            PubConn::Cluster(c) => c.subscribe(channel).await,
        }
    }

    pub async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match &mut self.conn {
            PubConn::Node(c) => c.unsubscribe(channel).await,
            PubConn::Cluster(c) if self.sharded => c.sunsubscribe(channel).await,
            PubConn::Cluster(c) => c.unsubscribe(channel).await,
        }
    }

    /// The next message as `(channel, payload)`; `None` once any of its
    /// connections was lost (messages may have been missed: the caller
    /// rebuilds the subscriber and catches up from the streams).
    pub async fn next(&mut self) -> Option<(String, String)> {
        loop {
            let push = self.rx.recv().await?;
            match push.kind {
                PushKind::Disconnection => return None,
                PushKind::Message | PushKind::SMessage => {
                    if let [channel, payload] = &push.data[..] {
                        let (Ok(channel), Ok(payload)) = (
                            redis::from_redis_value_ref::<String>(channel),
                            redis::from_redis_value_ref::<String>(payload),
                        ) else {
                            continue;
                        };
                        return Some((channel, payload));
                    }
                }
                _ => {} // subscription confirmations
            }
        }
    }
}
