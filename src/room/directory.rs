//! `Directory`: finds or starts the [`DeviceRoom`] of a device.
//!
//! Owns the map device → live room. A new room is started on the arbiter
//! of whoever first asks for it (`GetRoom::home`: the worker thread of the
//! robot's or app's socket), so a room shares a thread with its robot in the
//! common case and an event's way in crosses no thread; rooms still spread
//! over the workers as sockets do, and each room stays single-threaded.
//! Rooms tell it when they retire; a caller that reaches a retired room asks
//! again.
//!
//! Started once at start-up under [`crate::supervise`] (restarted, state
//! kept, after a panic). Rooms run under it too, with [`OnStop::End`]: a
//! room that panics ends itself cleanly (see `DeviceRoom`'s `restarting`).

use super::device_room::{DeviceRoom, RoomEnv};
use super::messages::*;
use crate::ids::{unix_now_ms, DeviceId};
use crate::supervise::{self, InjectPanic, OnStop};
use crate::wire::Snapshot;
use actix::prelude::*;
use futures_util::future::join_all;
use std::collections::HashMap;

pub struct Directory {
    /// Live rooms by device, with the id the room was started with (a
    /// retirement notice from an older room must not remove a newer one).
    rooms: HashMap<DeviceId, (u64, Addr<DeviceRoom>)>,
    next_room_id: u64,
    /// Last epoch handed out: epochs only grow, even within one millisecond.
    last_epoch: i64,
    env: RoomEnv,
}

impl Directory {
    pub fn new(env: RoomEnv) -> Self {
        Directory {
            rooms: HashMap::new(),
            next_room_id: 0,
            last_epoch: 0,
            env,
        }
    }

    fn next_epoch(&mut self) -> i64 {
        self.last_epoch = unix_now_ms().max(self.last_epoch + 1);
        self.last_epoch
    }

    /// The room of `device`, if one is alive.
    pub(super) fn live_room(&self, device: &DeviceId) -> Option<Addr<DeviceRoom>> {
        self.rooms
            .get(device)
            .map(|(_, a)| a.clone())
            .filter(|a| a.connected())
    }

    /// The device was deleted (here or on another instance): its room
    /// closes its robot and members.
    pub(super) fn device_deleted(&mut self, device: &DeviceId) {
        if let Some((_, room)) = self.rooms.remove(device) {
            room.do_send(CloseRoom {
                reason: "device_deleted",
            });
        }
    }

    /// The device's secret was rotated: its robot re-checks its credential.
    pub(super) fn credentials_changed(&self, device: &DeviceId) {
        if let Some((_, room)) = self.rooms.get(device) {
            room.do_send(RecheckCredential);
        }
    }

    /// Clustered: where this instance's rooms send what goes to other instances.
    pub(super) fn bridge(&self) -> Option<&Addr<crate::cluster::ClusterBridge>> {
        self.env.bridge.as_ref()
    }
}

impl Actor for Directory {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl Supervised for Directory {
    /// After a panic (or a stop): the map, arbiters and last epoch are kept,
    /// so live rooms stay reachable and epochs keep growing; entries whose
    /// room is gone (it ended while a handler was half-run) are dropped.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        let before = self.rooms.len();
        self.rooms.retain(|_, (_, addr)| addr.connected());
        tracing::warn!(
            rooms = self.rooms.len(),
            dropped = before - self.rooms.len(),
            "directory restarting; live rooms are kept"
        );
    }
}

impl Handler<GetRoom> for Directory {
    type Result = MessageResult<GetRoom>;

    fn handle(&mut self, msg: GetRoom, ctx: &mut Context<Self>) -> Self::Result {
        if let Some((_, addr)) = self.rooms.get(&msg.device) {
            if addr.connected() {
                return MessageResult(addr.clone());
            }
        }
        self.next_room_id += 1;
        let room_id = self.next_room_id;
        let epoch = self.next_epoch();
        let room = DeviceRoom::new(
            msg.device.clone(),
            msg.owner,
            room_id,
            epoch,
            ctx.address(),
            self.env.clone(),
        );
        let metrics = self.env.metrics.clone();
        let addr =
            supervise::start_in_arbiter(&msg.home, "device_room", metrics, OnStop::End, |_| room);
        self.rooms.insert(msg.device, (room_id, addr.clone()));
        MessageResult(addr)
    }
}

impl Handler<FindRoom> for Directory {
    type Result = Option<Addr<DeviceRoom>>;

    fn handle(&mut self, msg: FindRoom, _ctx: &mut Context<Self>) -> Self::Result {
        self.live_room(&msg.device)
    }
}

impl Handler<SnapshotOf> for Directory {
    type Result = ResponseFuture<Option<Snapshot>>;

    fn handle(&mut self, msg: SnapshotOf, _ctx: &mut Context<Self>) -> Self::Result {
        let room = self.rooms.get(&msg.device).map(|(_, a)| a.clone());
        Box::pin(async move {
            match room {
                Some(r) => r.send(GetSnapshot).await.ok(),
                None => None,
            }
        })
    }
}

impl Handler<RoomRetired> for Directory {
    type Result = ();

    fn handle(&mut self, msg: RoomRetired, _ctx: &mut Context<Self>) {
        if self.rooms.get(&msg.device).map(|(id, _)| *id) == Some(msg.room_id) {
            self.rooms.remove(&msg.device);
        }
    }
}

impl Handler<DeviceDeleted> for Directory {
    type Result = ();

    fn handle(&mut self, msg: DeviceDeleted, _ctx: &mut Context<Self>) {
        self.device_deleted(&msg.device);
    }
}

impl Handler<CredentialsChanged> for Directory {
    type Result = ();

    fn handle(&mut self, msg: CredentialsChanged, _ctx: &mut Context<Self>) {
        self.credentials_changed(&msg.device);
    }
}

impl Handler<DrainRooms> for Directory {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: DrainRooms, _ctx: &mut Context<Self>) -> Self::Result {
        let rooms: Vec<_> = self.rooms.values().map(|(_, a)| a.clone()).collect();
        Box::pin(async move {
            join_all(rooms.iter().map(|r| r.send(Flush))).await;
        })
    }
}

impl Handler<InjectPanic> for Directory {
    type Result = ();

    fn handle(&mut self, _msg: InjectPanic, _ctx: &mut Context<Self>) {
        panic!("injected panic (test)");
    }
}
