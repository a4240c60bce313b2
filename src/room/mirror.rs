//! What a [`DeviceRoom`](super::DeviceRoom) knows only while it mirrors a
//! device whose robot may be on another instance (clustered, not the home):
//! where the robot is, and how fresh that knowledge is. The room holds it as
//! `Option<MirrorState>`: `Some` from `watch` (it receives the device's
//! events from Redis) until it becomes the home, so a home or a room with no
//! cluster has none of it.
//!
//! Here too, how a room mirrors: it watches the device through the bridge
//! (subscribes to its events and reads its state), takes numbered events
//! from other instances in order (telling its apps of a gap or a new
//! epoch), and follows the robot's presence (numbered events first, the
//! presence read only when newer; an instance gone without detaching the
//! robot is told unnumbered).

use super::device_room::{Arrival, DeviceRoom};
use super::messages::*;
use crate::cluster::messages::{
    HolderIs, InstanceGone, Mirror, RemoteEvent, RemoteGap, SyncState, Watch,
};
use crate::ids::{unix_now, unix_now_ms};
use crate::wire::encode::{self, Loss, Presence};
use crate::wire::frames::{parse_robot, RobotFrame};
use actix::prelude::*;
use std::time::Instant;

pub(super) struct MirrorState {
    /// The robot is online on another instance...
    pub(super) remote_online: bool,
    /// ...this one.
    pub(super) holder: Option<String>,
    /// When the mirror last learned the robot's presence from an event (or
    /// began mirroring: a presence read older than that is stale).
    pub(super) presence_changed: Instant,
    /// Apps were told `instance_lost` from presence alone; if presence shows
    /// a holder again before any numbered presence event, they are told
    /// `robot_connected` the same way.
    pub(super) announced_lost: bool,
}

impl MirrorState {
    /// Mirroring begins: the robot's presence is not known yet (the state
    /// read by `Watch` says).
    pub(super) fn new() -> Self {
        MirrorState {
            remote_online: false,
            holder: None,
            presence_changed: Instant::now(),
            announced_lost: false,
        }
    }

    /// The other instance holding the robot, if it is online there.
    pub(super) fn online_holder(&self) -> Option<&str> {
        self.holder.as_deref().filter(|_| self.remote_online)
    }
}

/// This room as the bridge reaches it while it mirrors the device.
pub(super) fn mirror(ctx: &Context<DeviceRoom>) -> Mirror {
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

    /// The other instance the robot is online at, while this room mirrors it.
    pub(super) fn remote_holder(&self) -> Option<&str> {
        self.mirror.as_ref().and_then(MirrorState::online_holder)
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
