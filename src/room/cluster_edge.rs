//! A [`DeviceRoom`]'s outward edge when clustered: how a room becomes the
//! device's home (its robot is here: it numbers events through Redis) or a
//! mirror (the robot is elsewhere: it receives numbered events from the
//! bridge), and the cross-instance paths of commands and results.
//! With no bridge (single instance) every function here is a no-op.

use super::device_room::{Arrival, DeviceRoom, SnapshotChange};
use super::history::History;
use super::messages::*;
use super::mirror::MirrorState;
use crate::cluster::messages::{
    Append, AppendResult, Claimed, Directed, HolderIs, InstanceGone, Mirror, Release, RemoteEvent,
    RemoteGap, SendDirected, SyncState, Unprove, Unwatch, Watch,
};
use crate::cluster::{ClusterBridge, LaneResult};
use crate::ids::{unix_now, unix_now_ms, ConnId};
use crate::wire::close;
use crate::wire::encode::{self, Loss, Presence, RelayKeys};
use crate::wire::frames::{parse_robot, RobotFrame};
use actix::prelude::*;

/// An event published while another append was in flight.
pub(crate) struct Queued {
    raw: String,
    strip: RelayKeys,
    save_snapshot: SnapshotChange,
    received: Option<std::time::Instant>,
}

/// This room as the bridge reaches it while it mirrors the device.
fn mirror(ctx: &Context<DeviceRoom>) -> Mirror {
    let me = ctx.address();
    Mirror {
        events: me.clone().recipient(),
        gaps: me.clone().recipient(),
        holder: me.clone().recipient(),
        gone: me.recipient(),
    }
}

impl DeviceRoom {
    /// Mirrors the device (subscribes to its events and reads its state);
    /// holds the room's mailbox until done.
    pub(super) fn watch(&mut self, ctx: &mut Context<Self>) {
        let Some(bridge) = self.env.bridge.clone() else {
            return;
        };
        if self.home || self.mirror.is_some() {
            return;
        }
        self.mirror = Some(MirrorState::new());
        let msg = Watch {
            device: self.device.clone(),
            mirror: mirror(ctx),
            epoch: self.epoch,
        };
        ctx.wait(bridge.send(msg).into_actor(self).map(|res, room, _ctx| {
            if let Ok(Some(state)) = res {
                room.apply_sync(state);
            }
        }));
    }

    fn apply_sync(&mut self, state: SyncState) {
        if self.home {
            return;
        }
        if let Some((epoch, seq)) = state.last {
            if epoch != self.epoch {
                self.start_epoch(epoch, 0);
            }
            for (e, s, f) in state.frames {
                if e == self.epoch && s > self.seq {
                    self.history.push(s, f);
                    self.seq = s;
                }
            }
            self.seq = self.seq.max(seq);
        }
        if let Some(m) = &mut self.mirror {
            m.remote_online = state.holder.is_some();
            m.holder = state.holder;
        }
        let snap = state.snapshot;
        if snap.mode.is_some() {
            self.snapshot.mode = snap.mode;
        }
        if snap.mission.is_some() {
            self.snapshot.mission = snap.mission;
        }
        if snap.battery.is_some() {
            self.snapshot.battery = snap.battery;
        }
        if snap.last_seen.is_some() {
            self.snapshot.last_seen = snap.last_seen;
        }
    }

    /// The robot is attaching here. Returns true if it was held by another
    /// instance (so apps should hear it was replaced).
    pub(super) fn become_home(&mut self, claim: Option<&Claimed>, ctx: &mut Context<Self>) -> bool {
        let Some(bridge) = self.env.bridge.clone() else {
            return false;
        };
        if self.mirror.take().is_some() {
            bridge.do_send(Unwatch {
                device: self.device.clone(),
                mirror: mirror(ctx),
            });
        }
        self.home = true;
        self.ticket = None;
        let Some(claim) = claim else {
            return false; // Redis unreachable: local numbering, a new epoch later
        };
        if let Some((epoch, seq)) = claim.last {
            if epoch != self.epoch {
                self.start_epoch(epoch, seq);
            } else if seq > self.seq {
                self.seq = seq;
            }
        }
        claim.previous.is_some()
    }

    /// The robot is leaving: its last event goes through the bridge, so it
    /// is in the bridge's mailbox ahead of the `Release` that follows it.
    /// On the lane it would not be: a room polls its waiting futures
    /// newest first, so the append would start only after the release
    /// (when another instance may have claimed the device), and a room that
    /// stops right after (`CloseRoom`) would never start it.
    pub(super) fn leaving_home(&mut self) {
        self.ticket = None;
    }

    /// The robot left: give the device up in Redis (after its last event),
    /// and keep mirroring for the members still here.
    pub(super) fn release_home(&mut self, ctx: &mut Context<Self>) {
        let Some(bridge) = self.env.bridge.clone() else {
            return;
        };
        if !self.home {
            return;
        }
        ctx.wait(
            bridge
                .send(Release {
                    device: self.device.clone(),
                })
                .into_actor(self)
                .map(|_, room, ctx| {
                    room.home = false;
                    room.ticket = None;
                    if !room.members.is_empty() {
                        room.watch(ctx);
                    }
                }),
        );
    }

    pub(super) fn leave_cluster(&mut self, ctx: &mut Context<Self>) {
        let Some(bridge) = self.env.bridge.clone() else {
            return;
        };
        if self.mirror.is_some() {
            bridge.do_send(Unwatch {
                device: self.device.clone(),
                mirror: mirror(ctx),
            });
        }
        if self.home {
            bridge.do_send(Release {
                device: self.device.clone(),
            });
        }
    }

    /// Numbers the event through Redis, then delivers it here: on the lane
    /// while the bridge's ticket holds, else through the bridge. The room's
    /// mailbox waits for the append, so events keep the robot's order; and
    /// one append at a time: a second event published by the same handler
    /// (a replaced robot's `robot_disconnected`, then `robot_connected`)
    /// waits in `queued` until the first is delivered — two waiting appends
    /// would be finished newest first (actix polls `ctx.wait` futures from
    /// the most recent), delivering here out of order.
    pub(super) fn publish_clustered(
        &mut self,
        bridge: Addr<ClusterBridge>,
        raw: String,
        strip: RelayKeys,
        save_snapshot: SnapshotChange,
        received: Option<std::time::Instant>,
        ctx: &mut Context<Self>,
    ) {
        if self.appending {
            self.queued.push_back(Queued {
                raw,
                strip,
                save_snapshot,
                received,
            });
            return;
        }
        self.appending = true;
        let expected = (self.seq > 0).then_some((self.epoch, self.seq));
        self.seq += 1;
        let (epoch, seq) = (self.epoch, self.seq);
        let frame = self.envelope(&raw, strip, epoch, seq);
        let append = Append {
            device: self.device.clone(),
            expected,
            epoch,
            seq,
            frame: frame.clone(),
        };
        let lane = match (&self.env.lane, self.ticket) {
            (Some(lane), Some(ticket)) if lane.holds(ticket) => Some((lane.clone(), ticket)),
            _ => None,
        };
        let Some((lane, ticket)) = lane else {
            self.ticket = None;
            return self.append_through_bridge(
                bridge,
                append,
                raw,
                strip,
                save_snapshot,
                received,
                ctx,
            );
        };
        let appended = async move {
            let result = lane.append(&append, ticket).await;
            (result, append)
        };
        ctx.wait(
            appended
                .into_actor(self)
                .map(move |(result, append), room, ctx| {
                    if result != LaneResult::Ok {
                        room.ticket = None;
                    }
                    if result == LaneResult::Failed {
                        // Before the bridge's next append of this device (one
                        // mailbox: it is read first).
                        bridge.do_send(Unprove {
                            device: room.device.clone(),
                        });
                    }
                    match result {
                        LaneResult::Ok => {
                            room.appended(seq, frame, save_snapshot, received);
                            room.next_queued(bridge, ctx);
                        }
                        // The same event, the same seq: the bridge fences,
                        // proves the stream, or finds Redis down.
                        LaneResult::Stale | LaneResult::Failed => room.append_through_bridge(
                            bridge,
                            append,
                            raw,
                            strip,
                            save_snapshot,
                            received,
                            ctx,
                        ),
                    }
                }),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn append_through_bridge(
        &mut self,
        bridge: Addr<ClusterBridge>,
        append: Append,
        raw: String,
        strip: RelayKeys,
        save_snapshot: SnapshotChange,
        received: Option<std::time::Instant>,
        ctx: &mut Context<Self>,
    ) {
        let (seq, frame) = (append.seq, append.frame.clone());
        ctx.wait(
            bridge
                .clone()
                .send(append)
                .into_actor(self)
                .map(move |res, room, ctx| {
                    match res.unwrap_or(AppendResult::Down) {
                        AppendResult::Ok(ticket) => {
                            room.ticket = room.home.then_some(ticket);
                            room.appended(seq, frame, save_snapshot, received);
                            room.next_queued(bridge, ctx);
                        }
                        // Degraded: serve local apps; the next append after Redis is
                        // back finds the stream broken and starts a new epoch.
                        AppendResult::Down => {
                            room.deliver(seq, frame, received.map(Arrival::Robot));
                            room.next_queued(bridge, ctx);
                        }
                        // The robot is another instance's: what it queued goes
                        // with it (it would be fenced too).
                        AppendResult::Fenced => {
                            room.appending = false;
                            room.queued.clear();
                            room.lost_robot(ctx);
                        }
                        AppendResult::Broken => {
                            // Continuity cannot be proven: a new epoch for everyone,
                            // this event first, then what queued behind it.
                            room.appending = false;
                            room.start_epoch(unix_now_ms().max(room.epoch + 1), 0);
                            room.publish_clustered(
                                bridge,
                                raw,
                                strip,
                                save_snapshot,
                                received,
                                ctx,
                            );
                        }
                    }
                }),
        );
    }

    /// The append in flight is done: start the next queued one, if any.
    fn next_queued(&mut self, bridge: Addr<ClusterBridge>, ctx: &mut Context<Self>) {
        self.appending = false;
        if let Some(q) = self.queued.pop_front() {
            if self.home {
                self.publish_clustered(bridge, q.raw, q.strip, q.save_snapshot, q.received, ctx);
            } else {
                // No longer home (released meanwhile): as `publish` would.
                self.publish(q.raw, q.strip, q.save_snapshot, q.received, ctx);
            }
        }
    }

    /// The event is in Redis: deliver it here, and leave its snapshot for
    /// the bridge's next flush.
    fn appended(
        &mut self,
        seq: u64,
        frame: bytestring::ByteString,
        save_snapshot: SnapshotChange,
        received: Option<std::time::Instant>,
    ) {
        self.deliver(seq, frame, received.map(Arrival::Robot));
        if save_snapshot == SnapshotChange::Changed {
            if let Some(lane) = &self.env.lane {
                lane.save_snapshot(self.device.clone(), self.snapshot());
            }
        }
    }

    /// Numbers from `seq` in `epoch` from now on: the events kept for
    /// recovery belong to the old epoch and go.
    fn start_epoch(&mut self, epoch: i64, seq: u64) {
        self.epoch = epoch;
        self.seq = seq;
        self.history = History::new(self.env.history_size);
    }

    /// The other instance the robot is online at, while this room mirrors it.
    pub(super) fn remote_holder(&self) -> Option<&str> {
        self.mirror.as_ref().and_then(MirrorState::online_holder)
    }

    /// Another instance took the robot over: drop ours without publishing.
    fn lost_robot(&mut self, ctx: &mut Context<Self>) {
        if let Some(robot) = self.robot.take() {
            robot.socket.close.do_send(CloseSocket {
                code: close::REPLACED,
                reason: "replaced",
            });
        }
        self.fail_pending();
        self.home = false;
        self.ticket = None;
        self.watch(ctx);
    }

    /// A command for a robot on another instance; false if there is none.
    /// If the holder turns out not to be listening (it is gone, or Redis
    /// failed), the app gets `robot_offline` for it from here: nobody else
    /// would answer.
    pub(super) fn command_to_other_instance(
        &self,
        conn: &ConnId,
        raw: &str,
        spoofed: RelayKeys,
        reference: Option<Box<serde_json::value::RawValue>>,
        ctx: &mut Context<Self>,
    ) -> bool {
        let (Some(bridge), Some(holder)) = (&self.env.bridge, self.remote_holder()) else {
            return false;
        };
        let Some(member) = self.members.get(conn) else {
            return false;
        };
        let sent = bridge.send(SendDirected {
            instance: holder.to_string(),
            msg: Directed::Cmd {
                d: self.device.clone(),
                c: conn.to_string(),
                raw: encode::command(raw, spoofed, &member.user, conn),
            },
        });
        let conn = conn.clone();
        ctx.spawn(sent.into_actor(self).map(move |received, room, _ctx| {
            if !received.unwrap_or(false) {
                room.send_error(
                    &conn,
                    crate::wire::WireError::robot_offline().with_ref(reference),
                );
            }
        }));
        true
    }

    pub(super) fn result_to_other_instance(&self, reply_to: ConnId, raw: String) {
        let Some(bridge) = &self.env.bridge else {
            return;
        };
        let Some(instance) = reply_to.instance() else {
            return;
        };
        if instance == &*self.env.instance {
            return;
        }
        bridge.do_send(SendDirected {
            instance: instance.to_string(),
            msg: Directed::Res {
                d: self.device.clone(),
                c: reply_to.to_string(),
                raw,
            },
        });
    }

    /// Forwards a REST call to the instance holding the robot; false if none.
    /// The caller keeps it pending; if the holder turns out not to be
    /// listening (it is gone, or Redis failed), it is answered "robot
    /// offline" (503) from here at once instead of timing out.
    pub(super) fn proxy_to_other_instance(
        &self,
        request_id: &str,
        frame: &str,
        ctx: &mut Context<Self>,
    ) -> bool {
        let (Some(bridge), Some(holder)) = (&self.env.bridge, self.remote_holder()) else {
            return false;
        };
        let sent = bridge.send(SendDirected {
            instance: holder.to_string(),
            msg: Directed::ProxyReq {
                d: self.device.clone(),
                r: request_id.to_string(),
                frame: frame.to_string(),
                back: self.env.instance.to_string(),
            },
        });
        let request_id = request_id.to_string();
        ctx.spawn(sent.into_actor(self).map(move |received, room, _ctx| {
            if !received.unwrap_or(false) {
                room.fail_one_pending(&request_id);
            }
        }));
        true
    }

    pub(super) fn proxy_answer_other_instance(
        &self,
        back: String,
        request_id: String,
        status: Option<u16>,
        body: Option<Box<serde_json::value::RawValue>>,
    ) {
        if let Some(bridge) = &self.env.bridge {
            bridge.do_send(SendDirected {
                instance: back,
                msg: Directed::ProxyRes {
                    d: self.device.clone(),
                    r: request_id,
                    status,
                    body: body.map(|b| b.get().to_string()),
                },
            });
        }
    }

    /// The robot on another instance went away: its WebRTC sessions here end.
    fn end_remote_sessions(&self) {
        if let Some(sessions) = &self.env.sessions {
            sessions.do_send(EndRemoteRobotSessions {
                device: self.device.clone(),
            });
        }
    }

    /// Tells subscribers that events were lost (a gap or a new epoch).
    fn notify_incomplete(&self, loss: Loss) {
        let frame = encode::lost(&self.device_json, loss);
        for m in self.members.values().filter(|m| m.subscribed) {
            m.outbox.send(frame.clone());
        }
    }
}

impl Handler<RemoteEvent> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: RemoteEvent, _ctx: &mut Context<Self>) {
        if self.home {
            return;
        }
        if msg.epoch != self.epoch {
            // Subscribers were told the old epoch (in `subscribed`, or by
            // its events): say it changed, even if none of its events came.
            self.start_epoch(msg.epoch, 0);
            self.notify_incomplete(Loss::EpochChanged);
        }
        if msg.seq <= self.seq {
            return; // already have it
        }
        if self.seq > 0 && msg.seq > self.seq + 1 {
            self.notify_incomplete(Loss::Gap);
        }
        self.seq = msg.seq;
        if let Ok(parsed) = parse_robot(&msg.frame) {
            if let RobotFrame::Event(e) = parsed.frame {
                match e.name.as_str() {
                    "robot_connected" => {
                        if let Some(m) = &mut self.mirror {
                            m.remote_online = true;
                            m.holder = instance_of(&msg.frame);
                            m.presence_changed = std::time::Instant::now();
                            m.announced_lost = false;
                        }
                    }
                    "robot_disconnected" => {
                        if let Some(m) = &mut self.mirror {
                            m.remote_online = false;
                            m.holder = None;
                            m.presence_changed = std::time::Instant::now();
                            m.announced_lost = false;
                        }
                        self.end_remote_sessions();
                    }
                    name => {
                        self.update_snapshot(name, e.data);
                    }
                }
            }
        }
        // The robot's frame was read by another instance (timed there, from
        // its read to its own apps); here, from reading it off Redis.
        self.deliver(msg.seq, msg.frame, Some(Arrival::Mirror(msg.read)));
    }
}

fn instance_of(frame: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct I {
        instance: Option<String>,
    }
    serde_json::from_str::<I>(frame)
        .ok()
        .and_then(|i| i.instance)
}

impl Handler<RemoteGap> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: RemoteGap, _ctx: &mut Context<Self>) {
        if !self.home && msg.epoch == self.epoch {
            tracing::warn!(device_id = %self.device, from = msg.from, to = msg.to, "events lost between instances");
            self.notify_incomplete(Loss::Gap);
        }
    }
}

impl Handler<RemoteCommand> for DeviceRoom {
    type Result = bool;

    fn handle(&mut self, msg: RemoteCommand, _ctx: &mut Context<Self>) -> bool {
        let Some(robot) = &self.robot else {
            return false;
        };
        crate::metrics::inc(&self.env.metrics.commands);
        if !robot.outbox.send(msg.raw) {
            return false;
        }
        if let Some((conn, id)) = msg.answer_for {
            self.command_handed(conn, id.get());
        }
        true
    }
}

impl Handler<DeliverToMember> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: DeliverToMember, _ctx: &mut Context<Self>) {
        if let Some(m) = self.members.get(&msg.conn) {
            m.outbox.send(msg.raw);
        }
    }
}

impl Handler<HolderIs> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: HolderIs, _ctx: &mut Context<Self>) {
        // Only a mirror (never the home) reads presence, and only reads
        // newer than what it learned from events count.
        let Some(m) = &mut self.mirror else {
            return;
        };
        if msg.read_at < m.presence_changed {
            return;
        }
        match msg.holder {
            Some(h) => {
                let announced_lost = std::mem::take(&mut m.announced_lost);
                m.holder = Some(h.clone());
                m.remote_online = true;
                if announced_lost {
                    // Told `instance_lost` from presence alone, and the claim
                    // is back (e.g. Redis lost it and the holder re-took it):
                    // say so the same way, or apps would show it offline.
                    self.announce_unnumbered(Presence::Connected { instance: &h });
                }
            }
            // The robot's instance stopped refreshing its claim (it died).
            None if m.remote_online => self.holder_lost("instance_lost"),
            None => {}
        }
    }
}

impl Handler<InstanceGone> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: InstanceGone, _ctx: &mut Context<Self>) {
        if self.remote_holder() == Some(msg.instance.as_str()) {
            // It stopped without detaching our robot in its budget.
            self.holder_lost("relay_shutdown");
        }
    }
}

impl DeviceRoom {
    /// The robot's instance is gone without a numbered `robot_disconnected`.
    /// No instance can number this event: it carries the last seq.
    fn holder_lost(&mut self, reason: &str) {
        if let Some(m) = &mut self.mirror {
            m.remote_online = false;
            m.holder = None;
            m.presence_changed = std::time::Instant::now();
            m.announced_lost = true;
        }
        self.end_remote_sessions();
        self.announce_unnumbered(Presence::Disconnected { reason });
    }
}

impl Handler<RobotReplacedElsewhere> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, _msg: RobotReplacedElsewhere, ctx: &mut Context<Self>) {
        if self.robot.is_some() {
            self.lost_robot(ctx);
        }
    }
}

impl Handler<RemoteProxyRequest> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: RemoteProxyRequest, _ctx: &mut Context<Self>) {
        // Callers time out on their side; forget calls nobody waits for.
        let stale = std::time::Duration::from_secs(120);
        self.remote_pending
            .retain(|_, (_, at)| at.elapsed() < stale);
        let sent = match &self.robot {
            Some(robot) if self.remote_pending.len() < self.env.max_pending_proxy => {
                robot.outbox.send(msg.frame)
            }
            _ => false,
        };
        if sent {
            self.remote_pending
                .insert(msg.request_id, (msg.back, std::time::Instant::now()));
        } else {
            self.proxy_answer_other_instance(msg.back, msg.request_id, None, None);
        }
    }
}

impl Handler<RemoteProxyResponse> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, msg: RemoteProxyResponse, _ctx: &mut Context<Self>) {
        if let Some(tx) = self.pending.remove(&msg.request_id) {
            crate::metrics::gauge_add(&self.env.metrics.proxy_pending, -1);
            let _ = tx.send(msg.reply);
        }
    }
}

impl DeviceRoom {
    /// A presence event only this mirror knows of (read from presence, not
    /// sent by the home): to every subscribed member, outside the numbered
    /// stream — it carries the last numbered event's `seq` and is not kept
    /// for recovery.
    fn announce_unnumbered(&self, presence: Presence) {
        let frame = presence.unnumbered(
            unix_now(),
            &self.device_json,
            self.epoch,
            self.seq,
            unix_now_ms(),
        );
        for m in self.members.values().filter(|m| m.subscribed) {
            m.outbox.send(frame.clone());
        }
    }
}
