//! The cluster bridge (PROTOCOL.md §5): the room's outward edge when
//! `cluster.redis_url` is set.
//!
//! `ClusterBridge` is its own actor; rooms never touch Redis. It owns the
//! Redis command connection (a reconnecting `ConnectionManager`), the
//! pub/sub task ([`subscriber`]), the map of mirrored devices to their local
//! rooms, and the set of devices whose robot is here (their presence keys
//! are refreshed every `presence_ttl_s / 3`). Runs under
//! [`crate::supervise`]: restarted with its state after a panic.
//!
//! Rooms send it: `Claim`/`Release` (robot arrives/leaves), `Append` (an
//! event to number across the cluster), `Watch`/`Unwatch` (mirror a device
//! whose robot is elsewhere), `SendDirected` (commands and results for
//! other instances), `SaveSnapshot`, `SessionSlot(s)`.
//!
//! It knows nothing above it by type (`tools/modgraph`: `cluster` imports
//! neither rooms nor sockets nor the session supervisor): a mirror room
//! hears `RemoteEvent`, `RemoteGap` and `HolderIs` through the [`Mirror`]
//! it watched with; what other instances send ([`Directed`]) is decoded and
//! handed to the [`Upstream`] the bridge was built with — [`ForRooms`] to
//! the directory (which finds the device's room), [`ForSessions`] to the
//! session supervisor — as centrifuge's broker hands publications to its
//! node's `BrokerEventHandler`.
//!
//! Files: [`presence`] (claims, refresh, stats totals), [`events`] (append,
//! mirrors, snapshots), [`directed`] (instance-to-instance messages),
//! [`slots`] (cluster-wide WebRTC session limit), [`subscriber`] (the
//! pub/sub task), [`keys`], [`scripts`] (Lua), [`messages`].

mod directed;
mod events;
pub mod keys;
pub mod messages;
mod presence;
pub mod scripts;
mod slots;
pub mod subscriber;

use crate::ids::DeviceId;
use actix::prelude::*;
use messages::*;
use redis::aio::ConnectionManager;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use subscriber::{SubCmd, Subscriber};
use tokio::sync::mpsc;

pub struct ClusterBridge {
    instance: Arc<str>,
    redis: ConnectionManager,
    client: redis::Client,
    /// Requests to the pub/sub task.
    sub: Option<mpsc::UnboundedSender<SubCmd>>,
    /// Rooms mirroring a device whose robot is elsewhere.
    mirrors: HashMap<DeviceId, Mirror>,
    /// Devices whose robot is connected here (presence refreshed).
    homes: HashSet<DeviceId>,
    /// Where messages from other instances go: the directory (for rooms)
    /// and the session supervisor.
    upstream: Upstream,
    /// True while pub/sub is live (read by `/health`).
    connected: Arc<AtomicBool>,
    presence_ttl_s: u64,
    history_size: usize,
    /// Reports this instance's numbers for cluster totals.
    metrics: Arc<crate::metrics::Metrics>,
}

impl ClusterBridge {
    pub async fn connect(
        url: &str,
        instance: Arc<str>,
        presence_ttl_s: u64,
        history_size: usize,
        metrics: Arc<crate::metrics::Metrics>,
        connected: Arc<AtomicBool>,
        upstream: Upstream,
    ) -> anyhow::Result<ClusterBridge> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(2)
            .set_max_delay(2000);
        // Reconnects by itself after this first connection.
        let redis = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| anyhow::anyhow!("cluster.redis_url: cannot connect to Redis: {e}"))?;
        Ok(ClusterBridge {
            instance,
            redis,
            client,
            sub: None,
            mirrors: HashMap::new(),
            homes: HashSet::new(),
            upstream,
            connected,
            presence_ttl_s: presence_ttl_s.max(1),
            history_size,
            metrics,
        })
    }
}

impl Actor for ClusterBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
        // After a restart the subscriber task is still running (it is not
        // one of the context's futures) and still reaches this mailbox.
        if self.sub.as_ref().is_none_or(|tx| tx.is_closed()) {
            let (tx, rx) = mpsc::unbounded_channel();
            self.sub = Some(tx);
            let sub = Subscriber {
                client: self.client.clone(),
                redis: self.redis.clone(),
                instance: self.instance.clone(),
                bridge: ctx.address(),
                connected: self.connected.clone(),
                cmds: rx,
            };
            actix_rt::spawn(sub.run());
        }
        let every = Duration::from_secs_f64((self.presence_ttl_s as f64 / 3.0).max(0.5));
        ctx.run_interval(every, |bridge, ctx| bridge.refresh_presence(ctx));
    }
}

impl Supervised for ClusterBridge {
    /// After a panic (or a stop), under [`crate::supervise`]: mirrors, homes,
    /// the Redis connections and the subscriber task are kept; `started`
    /// re-arms the presence refresh. Fire-and-forget Redis work the context
    /// was running (routing a directed message that came in, a snapshot
    /// write, a slot update, a presence refresh, a deletion broadcast) is
    /// dropped with it, as if Redis had failed it; presence and slots are
    /// rewritten by their next refresh. Work answering a `send`
    /// (`ResponseFuture`: appends, claims, watches) runs beside the context
    /// and is not affected.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.mirrors.retain(|_, mirror| mirror.connected());
        tracing::warn!(
            mirrors = self.mirrors.len(),
            homes = self.homes.len(),
            "cluster bridge restarting; its state is kept"
        );
    }
}

impl Handler<crate::supervise::InjectPanic> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, _msg: crate::supervise::InjectPanic, _ctx: &mut Context<Self>) {
        panic!("injected panic (test)");
    }
}

impl Handler<Incoming> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: Incoming, ctx: &mut Context<Self>) {
        match msg {
            Incoming::Event {
                device,
                epoch,
                seq,
                frame,
            } => {
                if let Some(mirror) = self.mirrors.get(&device) {
                    mirror.events.do_send(RemoteEvent { epoch, seq, frame });
                }
            }
            Incoming::Gap {
                device,
                epoch,
                from,
                to,
            } => {
                if let Some(mirror) = self.mirrors.get(&device) {
                    mirror.gaps.do_send(RemoteGap { epoch, from, to });
                }
            }
            Incoming::Directed(payload) => self.route_directed(&payload),
            Incoming::Up => {
                self.connected.store(true, Ordering::Relaxed);
                self.refresh_presence(ctx);
            }
            Incoming::Down => self.connected.store(false, Ordering::Relaxed),
        }
    }
}
