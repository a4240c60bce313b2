//! The cluster bridge (PROTOCOL.md §5): the room's outward edge when
//! `cluster.redis_url` is set.
//!
//! `ClusterBridge` is its own actor; rooms never touch Redis. It owns the
//! Redis command side (a [`link::Link`]: one server, a Sentinel-watched
//! master or a Redis Cluster), the pub/sub task ([`subscriber`]), the map of
//! mirrored devices to their local rooms, the devices whose robot is here
//! (their presence keys are refreshed every `presence_ttl_s / 3`, and the
//! term each holds, [`stream_ids`]), and writes the snapshots the rooms
//! left in the [`Lane`] (every `cluster.snapshot_flush_ms`, never per
//! event). Runs under
//! [`crate::supervise`]: restarted with its state after a panic.
//!
//! Rooms send it: `Claim`/`Release` (robot arrives/leaves), `Append` (an
//! event to number across the cluster), `Watch`/`Unwatch` (mirror a device
//! whose robot is elsewhere), `SendDirected` (commands and results for
//! other instances), `SessionSlot(s)`; shutdown sends
//! `BeginHandOff`/`FinishHandOff`.
//!
//! It knows nothing above it by type (`tools/modgraph`: `cluster` imports
//! neither rooms nor sockets nor the session supervisor): a mirror room
//! hears `HolderIs` and `InstanceGone` through the [`Mirror`] it watched
//! with, and `RemoteEvent` and `RemoteGap` through the subscriber task's
//! copy of it (straight from the task, not through the bridge's
//! mailbox); what other instances send
//! ([`Directed`]) is decoded and handed to the [`Upstream`] the bridge was
//! built with — [`ForRooms`] to the directory (which finds the device's
//! room), [`ForSessions`] to the session supervisor — as centrifuge's
//! broker hands publications to its node's `BrokerEventHandler`.
//!
//! Files: [`presence`] (claims, refresh, stats totals), [`handoff`] (giving
//! the devices up on shutdown), [`events`] (append, mirrors, snapshots),
//! [`directed`] (instance-to-instance messages), [`slots`] (cluster-wide
//! WebRTC session limit), [`subscriber`] (the pub/sub task), [`link`] (the
//! connections), [`keys`], [`stream_ids`], [`scripts`] (Lua, none per
//! event), [`messages`].

mod directed;
mod events;
mod handoff;
pub use events::{fast_append, Fast};
pub mod keys;
mod lane;
pub use lane::{Lane, LaneResult, Ticket};
pub mod link;
pub mod messages;
mod presence;
pub mod scripts;
mod slots;
pub mod stream_ids;
pub mod subscriber;

use crate::ids::DeviceId;
use actix::prelude::*;
use link::{Link, Topology};
use messages::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use subscriber::{SubCmd, Subscriber};
use tokio::sync::mpsc;

pub struct ClusterBridge {
    instance: Arc<str>,
    redis: Link,
    topology: Topology,
    scripts: Scripts,
    /// Requests to the pub/sub task.
    sub: Option<mpsc::UnboundedSender<SubCmd>>,
    /// Rooms mirroring a device whose robot is elsewhere.
    mirrors: HashMap<DeviceId, Mirror>,
    /// Devices whose robot is connected here (presence refreshed), each with
    /// the term its events are appended under — `None` until a claim or a
    /// slow append proved where the stream stands (after Redis was
    /// unreachable, or the link reconnected, it must be proven again).
    homes: HashMap<DeviceId, Home>,
    /// Set by [`FinishHandOff`] (shutdown): nothing more is claimed or appended.
    closing: bool,
    /// How often the snapshots the rooms left in the lane are written.
    snapshot_flush: Duration,
    /// Where messages from other instances go: the directory (for rooms)
    /// and the session supervisor.
    upstream: Upstream,
    /// When pub/sub last came up: right after Redis was unreachable (or
    /// restarted empty) a missing presence key is no evidence yet — its
    /// holder re-takes it on its next refresh.
    up_since: Option<std::time::Instant>,
    /// True while pub/sub is live (read by `/health`).
    connected: Arc<AtomicBool>,
    presence_ttl_s: u64,
    history_size: usize,
    /// Reports this instance's numbers for cluster totals.
    metrics: Arc<crate::metrics::Metrics>,
    /// The rooms' own way to append; the bridge gives its tickets and
    /// invalidates them, and writes the snapshots rooms leave there.
    lane: Lane,
}

/// The scripts, hashed once (`EVALSHA`, loaded on first use).
#[derive(Clone)]
pub(crate) struct Scripts {
    pub claim: redis::Script,
    pub append: redis::Script,
    pub reserve: redis::Script,
    pub release: redis::Script,
    pub refresh: redis::Script,
    pub session_slot: redis::Script,
    pub snapshot: redis::Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            claim: redis::Script::new(&scripts::claim()),
            append: redis::Script::new(&scripts::append()),
            reserve: redis::Script::new(&scripts::reserve()),
            release: redis::Script::new(scripts::RELEASE),
            refresh: redis::Script::new(scripts::REFRESH),
            session_slot: redis::Script::new(scripts::SESSION_SLOT),
            snapshot: redis::Script::new(scripts::SNAPSHOT),
        }
    }
}

/// A device whose robot is here.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Home {
    /// Its claim went through at least once (so a refresh that finds
    /// another holder means the robot was replaced elsewhere).
    claimed: bool,
    term: Option<Term>,
}

/// A home's term, the link generation it was proven on, and the lane's
/// invalidation count when its proof began (any invalidation since — a
/// worker's Redis connection made anew, a hand-off — means proving again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Term {
    term: u64,
    generation: u64,
    invalidations: u64,
}

/// What the bridge is built from (`[cluster]`, `history.size`).
pub struct BridgeConfig {
    pub topology: Topology,
    pub instance: Arc<str>,
    pub presence_ttl_s: u64,
    pub history_size: usize,
    pub snapshot_flush: Duration,
}

impl ClusterBridge {
    pub fn new(
        redis: Link,
        config: BridgeConfig,
        metrics: Arc<crate::metrics::Metrics>,
        connected: Arc<AtomicBool>,
        upstream: Upstream,
    ) -> ClusterBridge {
        let BridgeConfig {
            topology,
            instance,
            presence_ttl_s,
            history_size,
            snapshot_flush,
        } = config;
        let lane = Lane::new(
            topology.clone(),
            redis.clone(),
            connected.clone(),
            history_size,
            metrics.clone(),
        );
        ClusterBridge {
            instance,
            redis,
            topology,
            scripts: Scripts::new(),
            sub: None,
            mirrors: HashMap::new(),
            homes: HashMap::new(),
            closing: false,
            snapshot_flush,
            up_since: None,
            upstream,
            connected,
            presence_ttl_s: presence_ttl_s.max(1),
            history_size: history_size.max(1),
            metrics,
            lane,
        }
    }

    /// The rooms' lane (given to them when the relay starts).
    pub fn lane(&self) -> Lane {
        self.lane.clone()
    }

    /// Forget every home's term: the next event of each proves the stream
    /// again (Redis was unreachable, or may have restarted or failed over).
    /// The rooms' tickets go with them.
    fn unprove_homes(&mut self) {
        for home in self.homes.values_mut() {
            home.term = None;
        }
        self.lane.invalidate();
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
                topology: self.topology.clone(),
                redis: self.redis.clone(),
                instance: self.instance.clone(),
                bridge: ctx.address(),
                connected: self.connected.clone(),
                cmds: rx,
                reserve: self.scripts.reserve.clone(),
                history_size: self.history_size,
            };
            actix_rt::spawn(sub.run());
        }
        let every = Duration::from_secs_f64((self.presence_ttl_s as f64 / 3.0).max(0.5));
        ctx.run_interval(every, |bridge, ctx| bridge.refresh_presence(ctx));
        ctx.run_interval(self.snapshot_flush, |bridge, ctx| {
            bridge.flush_snapshots(ctx)
        });
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
            Incoming::Directed(payload) => self.route_directed(&payload),
            Incoming::Up => {
                self.unprove_homes();
                self.up_since = Some(std::time::Instant::now());
                self.connected.store(true, Ordering::Relaxed);
                self.refresh_presence(ctx);
            }
            Incoming::Down => {
                self.unprove_homes();
                self.connected.store(false, Ordering::Relaxed);
            }
        }
    }
}
