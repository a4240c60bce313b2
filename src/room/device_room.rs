//! `DeviceRoom`: the one place a device's live state lives.
//!
//! Owns: the robot link (at most one robot socket), the member apps (and
//! which of them are subscribed), the event `epoch` and `seq`, the recovery
//! [`History`], the last-known snapshot (mode, mission, battery) and the REST
//! proxy requests waiting on the robot.
//!
//! Receives: robot events and results from the robot socket actor; joins,
//! subscriptions, commands and leaves from app socket actors; proxy requests
//! from HTTP handlers. Its mailbox is the order of the device: events are
//! numbered and fanned out in the order they arrive, into each subscriber's
//! bounded [`Outbox`] (never awaited: a full outbox closes that peer, not the
//! room).
//!
//! This file: the room's state, its life cycle, the robot link and event
//! fan-out. The app side (join, subscribe, commands) is in `members.rs`, the
//! REST proxy's waiting requests in `proxy.rs`; clustered, the home's
//! numbering through Redis in `home.rs`, mirroring in `mirror.rs`, commands
//! and REST calls to and from other instances in `remote.rs`: all
//! `impl DeviceRoom`, one actor.
//!
//! Stops itself after `rooms.idle_grace_s` with no robot and no members,
//! telling the [`Directory`](super::Directory).
//!
//! Runs under [`crate::supervise`] with `OnStop::End`: a panic in a handler
//! is caught and the room ends cleanly instead of vanishing (see
//! `restarting`): its robot is closed with 1011 and reconnects to a fresh
//! room, its members re-subscribe there.

use super::history::History;
use super::messages::*;
use super::mirror::MirrorState;
use super::Directory;
use crate::ids::{unix_now, unix_now_ms, ConnId, DeviceId, UserId};
use crate::metrics::{self, Metrics};
use crate::supervise::InjectPanic;
use crate::wire::close;
use crate::wire::encode::{self, DeviceJson, Presence, RelayKeys};
use crate::wire::outbox::Outbox;
use crate::wire::Snapshot;
use actix::prelude::*;
use bytestring::ByteString;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The attached robot socket.
pub(super) struct RobotSide {
    pub(super) conn: ConnId,
    pub(super) outbox: Outbox,
    pub(super) socket: RobotSocket,
}

/// An app socket that joined this room.
pub(super) struct Member {
    pub(super) user: UserId,
    pub(super) outbox: Outbox,
    pub(super) socket: AppSocket,
    pub(super) subscribed: bool,
}

/// What a room needs from outside, shared by all rooms.
#[derive(Clone)]
pub struct RoomEnv {
    pub metrics: Arc<Metrics>,
    pub history_size: usize,
    pub idle_grace: Duration,
    pub max_pending_proxy: usize,
    /// `caps.app_sockets_per_device`: app sockets that may be members at once (0 = no cap).
    pub max_members: usize,
    /// Set when clustered: the room's outward edge.
    pub bridge: Option<Addr<crate::cluster::ClusterBridge>>,
    /// Set when clustered: a home room's own way to append its events
    /// while the bridge's ticket holds (`crate::cluster::Lane`).
    pub lane: Option<crate::cluster::Lane>,
    /// Told when a robot on another instance goes away (its sessions here end).
    pub sessions: Option<Recipient<EndRemoteRobotSessions>>,
    pub instance: std::sync::Arc<str>,
}

/// Whether an event changed the room's snapshot (clustered, the home
/// saves a changed one beside the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SnapshotChange {
    Changed,
    Same,
}

/// Where and when an event came into this instance, for its routing
/// histogram.
#[derive(Clone, Copy)]
pub(super) enum Arrival {
    /// Read from the robot's socket (`wimz_event_routing_seconds`).
    Robot(Instant),
    /// Read from Redis, published by the robot's instance
    /// (`wimz_mirror_routing_seconds`).
    Mirror(Instant),
}

pub struct DeviceRoom {
    pub(super) device: DeviceId,
    /// The device id as a JSON string, encoded once for envelopes.
    pub(super) device_json: DeviceJson,
    pub(super) owner: UserId,
    room_id: u64,
    pub(super) epoch: i64,
    /// Last assigned event number in this epoch (0 = none yet).
    pub(super) seq: u64,
    pub(super) robot: Option<RobotSide>,
    pub(super) members: HashMap<ConnId, Member>,
    pub(super) history: History,
    pub(super) snapshot: Snapshot,
    /// Proxied REST calls waiting on the robot, by request id.
    pub(super) pending: HashMap<String, oneshot::Sender<ProxyReply>>,
    /// Bumped whenever the room becomes non-empty; an idle timer only
    /// retires the room if it still matches.
    pub(super) idle_generation: u64,
    /// Set once the room has stopped accepting members.
    pub(super) retired: bool,
    /// Set when a handler panicked: the room is ending (see `restarting`).
    failed: bool,
    /// The room counts in the `rooms` gauge (taken back once, in `stopped`).
    counted: bool,
    directory: Addr<Directory>,
    pub(super) env: RoomEnv,
    /// Clustered: this instance holds the robot and numbers the events.
    pub(super) home: bool,
    /// Home: the bridge's word that the device's term is proven, from its
    /// last good append; while it holds, events go on the lane.
    pub(super) ticket: Option<crate::cluster::Ticket>,
    /// Home: an append is in flight; events published meanwhile (by the
    /// same handler: the mailbox waits for the append) queue behind it, so
    /// each is delivered here after the one before (`home.rs`).
    pub(super) appending: bool,
    pub(super) queued: std::collections::VecDeque<super::home::Published>,
    /// Clustered, `Some` while this room receives the device's events from
    /// Redis (it mirrors the device): where the robot is.
    pub(super) mirror: Option<MirrorState>,
    /// Home: REST calls from other instances waiting on our robot, by
    /// request id: the instance to answer and when it was asked.
    pub(super) remote_pending: HashMap<String, (String, std::time::Instant)>,
    /// Commands handed to the robot and not answered yet, by (app
    /// connection, command `id` as raw JSON), with when: answered
    /// `robot_offline` if the robot leaves first (see `members.rs`).
    pub(super) waiting_commands: HashMap<(ConnId, String), std::time::Instant>,
}

impl DeviceRoom {
    pub fn new(
        device: DeviceId,
        owner: UserId,
        room_id: u64,
        epoch: i64,
        directory: Addr<Directory>,
        env: RoomEnv,
    ) -> Self {
        DeviceRoom {
            device_json: DeviceJson::new(&device),
            device,
            owner,
            room_id,
            epoch,
            seq: 0,
            robot: None,
            members: HashMap::new(),
            history: History::new(env.history_size),
            snapshot: Snapshot::default(),
            pending: HashMap::new(),
            idle_generation: 0,
            retired: false,
            failed: false,
            counted: false,
            directory,
            env,
            home: false,
            ticket: None,
            appending: false,
            queued: std::collections::VecDeque::new(),
            mirror: None,
            remote_pending: HashMap::new(),
            waiting_commands: HashMap::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.robot.is_none() && self.members.is_empty()
    }

    /// Arms the idle timer if the room just became empty.
    pub(super) fn check_idle(&mut self, ctx: &mut Context<Self>) {
        if !self.is_empty() || self.retired {
            return;
        }
        self.idle_generation += 1;
        let generation = self.idle_generation;
        ctx.run_later(self.env.idle_grace, move |room, ctx| {
            if room.is_empty() && room.idle_generation == generation && !room.retired {
                room.retire(ctx);
            }
        });
    }

    fn retire(&mut self, ctx: &mut Context<Self>) {
        self.retired = true;
        self.directory.do_send(RoomRetired {
            device: self.device.clone(),
            room_id: self.room_id,
        });
        ctx.stop();
    }

    /// Numbers an event and sends it out: to local subscribers at once on a
    /// single instance; through the cluster first (append, then local
    /// delivery) when clustered and the robot is here. `received`: when
    /// the robot's frame was read (none for the relay's own events).
    pub(super) fn publish(
        &mut self,
        raw: String,
        envelope_keys: RelayKeys,
        snapshot: SnapshotChange,
        received: Option<Instant>,
        ctx: &mut Context<Self>,
    ) {
        match self.env.bridge.clone() {
            Some(bridge) if self.home => {
                let event = super::home::Published {
                    raw,
                    strip: envelope_keys,
                    save_snapshot: snapshot,
                    received,
                };
                self.publish_clustered(bridge, event, ctx)
            }
            _ => {
                self.seq += 1;
                let frame = self.envelope(&raw, envelope_keys, self.epoch, self.seq);
                self.deliver(self.seq, frame, received.map(Arrival::Robot));
            }
        }
    }

    /// The event with the relay's envelope spliced in.
    pub(super) fn envelope(
        &self,
        raw: &str,
        envelope_keys: RelayKeys,
        epoch: i64,
        seq: u64,
    ) -> ByteString {
        encode::event(
            raw,
            envelope_keys,
            &self.device_json,
            epoch,
            seq,
            unix_now_ms(),
        )
    }

    /// Keeps a numbered frame for recovery and queues it to every
    /// subscriber; an event that came in at a known instant (`arrival`) is
    /// timed per delivery.
    pub(super) fn deliver(&mut self, seq: u64, frame: ByteString, arrival: Option<Arrival>) {
        let mut delivered = 0u64;
        for m in self.members.values() {
            if m.subscribed && m.outbox.send(frame.clone()) {
                delivered += 1;
                match arrival {
                    Some(Arrival::Robot(t)) => self.env.metrics.event_routed(t),
                    Some(Arrival::Mirror(t)) => self.env.metrics.mirror_routed(t),
                    None => {}
                }
            }
        }
        self.history.push(seq, frame);
        self.env
            .metrics
            .deliveries_out
            .fetch_add(delivered, std::sync::atomic::Ordering::Relaxed);
    }

    /// `robot_connected` (to this instance), numbered like the robot's events.
    fn robot_connected(&mut self, ctx: &mut Context<Self>) {
        let instance = self.env.instance.clone();
        let frame = Presence::Connected {
            instance: &instance,
        }
        .raw(unix_now());
        self.publish(frame, RelayKeys::Absent, SnapshotChange::Same, None, ctx);
    }

    /// `robot_disconnected` with `reason`, numbered like the robot's events.
    pub(super) fn robot_disconnected(&mut self, reason: &str, ctx: &mut Context<Self>) {
        let frame = Presence::Disconnected { reason }.raw(unix_now());
        self.publish(frame, RelayKeys::Absent, SnapshotChange::Same, None, ctx);
    }

    /// Updates the snapshot from an event; says whether it changed.
    pub(super) fn update_snapshot(
        &mut self,
        name: &str,
        data: Option<Box<serde_json::value::RawValue>>,
    ) -> SnapshotChange {
        if !matches!(
            name,
            "mission_progress" | "mode_changed" | "battery" | "status_update"
        ) {
            return SnapshotChange::Same;
        }
        let Some(data) = data else {
            return SnapshotChange::Same;
        };
        match name {
            // the event's own copy, kept (no second one per event)
            "mission_progress" => self.snapshot.mission = Some(data),
            "battery" => self.snapshot.battery = Some(data),
            _ => {
                // mode_changed / status_update: rare; these carry fields.
                let Ok(value) = serde_json::from_str::<serde_json::Value>(data.get()) else {
                    return SnapshotChange::Same;
                };
                if name == "mode_changed" {
                    self.snapshot.mode = Some(value.get("mode").cloned().unwrap_or(value));
                } else {
                    if let Some(mode) = value.get("mode") {
                        self.snapshot.mode = Some(mode.clone());
                    }
                    if let Some(b) = value.get("battery") {
                        self.snapshot.battery = serde_json::value::to_raw_value(b).ok();
                    }
                }
            }
        }
        SnapshotChange::Changed
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        let mut s = self.snapshot.clone();
        s.online = self.robot.is_some() || self.mirror.as_ref().is_some_and(|m| m.remote_online);
        s
    }

    pub(super) fn send_error(&self, conn: &ConnId, err: crate::wire::WireError) {
        if let Some(m) = self.members.get(conn) {
            m.outbox.send(err.to_frame());
        }
    }
}

impl Actor for DeviceRoom {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.failed {
            return; // restarted only to end (see `restarting`)
        }
        self.counted = true;
        metrics::gauge_add(&self.env.metrics.rooms, 1);
        // Bounds `send` (joins, snapshots) only; robots use `do_send`, which
        // is not held back, so a robot never waits on its room.
        ctx.set_mailbox_capacity(4096);
        // Clustered: start as a mirror (the robot may be elsewhere); nothing
        // else is handled until the device's state is read from Redis.
        self.watch(ctx);
        self.check_idle(ctx);
        tracing::debug!(device_id = %self.device, epoch = self.epoch, "room started");
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        if std::mem::take(&mut self.counted) {
            metrics::gauge_add(&self.env.metrics.rooms, -1);
        }
        self.fail_pending();
        self.leave_cluster(ctx);
        tracing::debug!(device_id = %self.device, "room stopped");
    }
}

impl Supervised for DeviceRoom {
    /// Called only after a caught panic (a room that stops is not
    /// restarted). A handler stopped half-way, so the room's state is not
    /// trusted further: the room ends, telling everyone who depends on it.
    /// The directory forgets it first (so a member asking again gets a fresh
    /// room: a new epoch on a single instance); its robot is closed with 1011
    /// `device_unavailable` (it reconnects and attaches to the fresh room);
    /// each member app socket gets [`RoomFailed`] (subscribers re-subscribe
    /// and hear `recovered{complete:false}`); waiting REST calls fail (503).
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        tracing::error!(device_id = %self.device, epoch = self.epoch, seq = self.seq, "room failed; closing its robot and members");
        self.failed = true;
        self.retired = true;
        self.directory.do_send(RoomRetired {
            device: self.device.clone(),
            room_id: self.room_id,
        });
        if let Some(robot) = self.robot.take() {
            robot.socket.close.do_send(CloseSocket {
                code: close::DEVICE_UNAVAILABLE,
                reason: "device_unavailable",
            });
        }
        for (_, m) in self.members.drain() {
            m.socket.failed.do_send(RoomFailed {
                device: self.device.clone(),
                room: ctx.address(),
                epoch: self.epoch,
            });
        }
        self.fail_pending();
        // `stopped` leaves the cluster (Unwatch / Release).
        ctx.stop();
    }
}

impl Handler<InjectPanic> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, _msg: InjectPanic, _ctx: &mut Context<Self>) {
        // Half-way through a change, like a real bug would be.
        self.seq += 1;
        panic!("injected panic (test)");
    }
}

impl Handler<InjectSilentStop> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, _msg: InjectSilentStop, ctx: &mut Context<Self>) {
        self.retired = true;
        ctx.stop();
    }
}

impl Handler<AttachRobot> for DeviceRoom {
    type Result = Result<(), Retired>;

    fn handle(&mut self, msg: AttachRobot, ctx: &mut Context<Self>) -> Self::Result {
        if self.retired {
            return Err(Retired);
        }
        let replaced_elsewhere = self.become_home(msg.claim.as_ref(), ctx);
        if let Some(old) = self.robot.take() {
            old.socket.close.do_send(CloseSocket {
                code: close::REPLACED,
                reason: "replaced",
            });
            self.fail_pending();
            self.robot_disconnected("replaced", ctx);
        } else if replaced_elsewhere {
            self.robot_disconnected("replaced", ctx);
        }
        tracing::info!(device_id = %self.device, conn_id = %msg.conn, "robot attached");
        self.robot = Some(RobotSide {
            conn: msg.conn,
            outbox: msg.outbox,
            socket: msg.socket,
        });
        self.snapshot.last_seen = Some(unix_now());
        self.robot_connected(ctx);
        self.idle_generation += 1;
        Ok(())
    }
}

impl Handler<DetachRobot> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: DetachRobot, ctx: &mut Context<Self>) {
        if self.robot.as_ref().map(|r| &r.conn) != Some(&msg.conn) {
            return; // a replaced socket going away
        }
        self.robot = None;
        self.snapshot.last_seen = Some(unix_now());
        self.fail_pending();
        tracing::info!(device_id = %self.device, conn_id = %msg.conn, reason = msg.reason, "robot detached");
        self.leaving_home();
        self.robot_disconnected(msg.reason, ctx);
        self.release_home(ctx);
        self.check_idle(ctx);
    }
}

impl Handler<RobotEvent> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: RobotEvent, ctx: &mut Context<Self>) {
        if self.robot.as_ref().map(|r| &r.conn) != Some(&msg.conn) {
            return; // from a socket that was replaced
        }
        metrics::inc(&self.env.metrics.events_in);
        let changed = self.update_snapshot(&msg.event.name, msg.event.data);
        self.publish(
            msg.event.raw,
            msg.event.envelope_keys,
            changed,
            Some(msg.received),
            ctx,
        );
    }
}

impl Handler<CommandResult> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: CommandResult, _ctx: &mut Context<Self>) {
        if self.robot.as_ref().map(|r| &r.conn) != Some(&msg.conn) {
            return;
        }
        // Only an app that is a member of this room can be answered: a robot
        // cannot reach arbitrary connections by guessing ids. An app on
        // another instance is checked the same way by that instance's room.
        if let Some(id) = &msg.id {
            self.waiting_commands
                .remove(&(msg.reply_to.clone(), id.get().to_string()));
        }
        if let Some(m) = self.members.get(&msg.reply_to) {
            m.outbox.send(msg.raw);
        } else {
            self.result_to_other_instance(msg.reply_to, msg.raw);
        }
    }
}

impl Handler<GetSnapshot> for DeviceRoom {
    type Result = MessageResult<GetSnapshot>;

    fn handle(&mut self, _msg: GetSnapshot, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.snapshot())
    }
}

impl Handler<FindRobot> for DeviceRoom {
    type Result = Option<RobotRoute>;

    fn handle(&mut self, _msg: FindRobot, _ctx: &mut Context<Self>) -> Self::Result {
        match (&self.robot, self.remote_holder()) {
            (Some(r), _) => Some(RobotRoute::Local(r.conn.clone(), r.outbox.clone())),
            (None, Some(h)) => Some(RobotRoute::Remote(h.to_string())),
            (None, None) => None,
        }
    }
}

impl Handler<Flush> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, _msg: Flush, _ctx: &mut Context<Self>) {}
}

impl Handler<RecheckCredential> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: RecheckCredential, _ctx: &mut Context<Self>) {
        if let Some(robot) = &self.robot {
            robot.socket.recheck.do_send(msg);
        }
    }
}

impl Handler<CloseRoom> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: CloseRoom, ctx: &mut Context<Self>) {
        if let Some(robot) = self.robot.take() {
            robot.socket.close.do_send(CloseSocket {
                code: close::REVOKED,
                reason: msg.reason,
            });
            self.leaving_home();
            self.robot_disconnected(msg.reason, ctx);
            self.release_home(ctx);
        }
        for (_, m) in self.members.drain() {
            m.outbox
                .send(encode::unsubscribed(&self.device_json, Some(msg.reason)));
            m.socket.gone.do_send(DeviceGone {
                device: self.device.clone(),
            });
        }
        self.fail_pending();
        self.retire(ctx);
    }
}
