//! A clustered [`DeviceRoom`] as the device's home (its robot is here):
//! claiming the device, numbering each event through Redis (on the lane
//! while the bridge's ticket holds, else through the bridge), one append at
//! a time so events keep the robot's order, and giving the device up or
//! losing it to another instance. With no bridge (single instance) every
//! function here is a no-op.

use super::device_room::{Arrival, DeviceRoom, SnapshotChange};
use super::history::History;
use super::messages::*;
use super::mirror::mirror;
use crate::cluster::messages::{Append, AppendResult, Claimed, Release, Unprove, Unwatch};
use crate::cluster::{ClusterBridge, LaneResult, Ticket};
use crate::ids::unix_now_ms;
use crate::wire::close;
use crate::wire::encode::RelayKeys;
use actix::prelude::*;

/// An event the home publishes, as it goes to its append (and, while
/// another append is in flight, waits in the room's `queued`).
pub(crate) struct Published {
    /// The robot's frame (or the relay's own event), before the envelope.
    pub(super) raw: String,
    pub(super) strip: RelayKeys,
    pub(super) save_snapshot: SnapshotChange,
    /// When the robot's frame was read (none for the relay's own events).
    pub(super) received: Option<std::time::Instant>,
}

impl DeviceRoom {
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
        event: Published,
        ctx: &mut Context<Self>,
    ) {
        if self.appending {
            self.queued.push_back(event);
            return;
        }
        self.appending = true;
        let expected = (self.seq > 0).then_some((self.epoch, self.seq));
        self.seq += 1;
        let (epoch, seq) = (self.epoch, self.seq);
        let frame = self.envelope(&event.raw, event.strip, epoch, seq);
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
            return self.append_through_bridge(bridge, append, event, ctx);
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
                            room.appended(seq, frame, &event, ticket);
                            room.next_queued(bridge, ctx);
                        }
                        // The same event, the same seq: the bridge fences,
                        // proves the stream, or finds Redis down.
                        LaneResult::Stale | LaneResult::Failed => {
                            room.append_through_bridge(bridge, append, event, ctx)
                        }
                    }
                }),
        );
    }

    fn append_through_bridge(
        &mut self,
        bridge: Addr<ClusterBridge>,
        append: Append,
        event: Published,
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
                            room.appended(seq, frame, &event, ticket);
                            room.next_queued(bridge, ctx);
                        }
                        // Degraded: serve local apps; the next append after Redis is
                        // back finds the stream broken and starts a new epoch.
                        AppendResult::Down => {
                            room.deliver(seq, frame, event.received.map(Arrival::Robot));
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
                            room.publish_clustered(bridge, event, ctx);
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
                self.publish_clustered(bridge, q, ctx);
            } else {
                // No longer home (released meanwhile): as `publish` would.
                self.publish(q.raw, q.strip, q.save_snapshot, q.received, ctx);
            }
        }
    }

    /// The event is in Redis (under `ticket`'s term): deliver it here, and
    /// leave its snapshot for the bridge's next flush.
    fn appended(
        &mut self,
        seq: u64,
        frame: bytestring::ByteString,
        event: &Published,
        ticket: Ticket,
    ) {
        self.deliver(seq, frame, event.received.map(Arrival::Robot));
        if event.save_snapshot == SnapshotChange::Changed {
            if let Some(lane) = &self.env.lane {
                lane.save_snapshot(self.device.clone(), self.snapshot(), ticket);
            }
        }
    }

    /// Numbers from `seq` in `epoch` from now on: the events kept for
    /// recovery belong to the old epoch and go.
    pub(super) fn start_epoch(&mut self, epoch: i64, seq: u64) {
        self.epoch = epoch;
        self.seq = seq;
        self.history = History::new(self.env.history_size);
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
}

impl Handler<RobotReplacedElsewhere> for DeviceRoom {
    type Result = ();

    fn handle(&mut self, _msg: RobotReplacedElsewhere, ctx: &mut Context<Self>) {
        if self.robot.is_some() {
            self.lost_robot(ctx);
        }
    }
}
