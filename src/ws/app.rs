//! `AppConn`: the actor of one app socket.
//!
//! Owns its socket (via [`SocketCore`]), the rooms it has joined (ownership
//! proven against the store once per device, then cached) and the devices
//! it is subscribed to. Sends on: subscribe/unsubscribe/command to rooms,
//! WebRTC signaling to the session supervisor. Rooms write events straight
//! into its outbox. On every exit path (`stopped`) it leaves each room and
//! tells the session supervisor. A room that fails (`RoomFailed`, or found
//! dead on the heartbeat tick) is forgotten and its subscription moved to a
//! fresh room.

use super::conn::{on_item, start_common, SocketActor, SocketCore};
use crate::ids::{DeviceId, UserId};
use crate::metrics::{gauge_add, SocketRole};
use crate::room::messages::*;
use crate::room::DeviceRoom;
use crate::webrtc::messages::{ConnGone, FromApp};
use crate::wire::encode::{self, DeviceJson};
use crate::wire::frames::{parse_app, AppFrame};
use crate::wire::{WireCode, WireError};
use actix::prelude::*;
use actix_ws::{AggregatedMessage, ProtocolError};
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};

pub struct AppConn {
    core: SocketCore,
    user: UserId,
    /// Rooms joined (the user owns each device), by device.
    rooms: HashMap<DeviceId, Addr<DeviceRoom>>,
    /// Devices whose events this socket receives.
    subscribed: HashSet<DeviceId>,
    /// `?device_id=` from the handshake: subscribed at start.
    initial: Option<DeviceId>,
}

/// Why `with_room` could not reach a device's room.
enum RoomError {
    NotOwner,
    Unavailable,
    /// The device has `caps.app_sockets_per_device` app sockets already.
    Full,
}

impl AppConn {
    pub fn new(core: SocketCore, user: UserId, initial: Option<DeviceId>) -> Self {
        AppConn {
            core,
            user,
            rooms: HashMap::new(),
            subscribed: HashSet::new(),
            initial,
        }
    }

    /// Runs `then` with the room of `device` once ownership is proven. The
    /// first time for a device this waits (no other frame of this socket is
    /// handled meanwhile, so the socket's order is kept).
    fn with_room<F>(
        &mut self,
        device: DeviceId,
        reference: Option<Box<RawValue>>,
        ctx: &mut Context<Self>,
        then: F,
    ) where
        F: FnOnce(&mut Self, Addr<DeviceRoom>, &mut Context<Self>) + 'static,
    {
        self.with_room_or(device, ctx, then, move |act, err| match err {
            RoomError::NotOwner => act.core.send_error(
                WireError::new(WireCode::NotOwner, "not your device").with_ref(reference),
            ),
            RoomError::Unavailable => act.core.send_error(
                WireError::new(WireCode::Internal, "device temporarily unavailable; retry")
                    .with_ref(reference),
            ),
            RoomError::Full => act.core.send_error(
                WireError::new(
                    WireCode::WatcherLimit,
                    crate::caps::Reason::DeviceWatchers.message(),
                )
                .with_ref(reference),
            ),
        });
    }

    /// [`with_room`](Self::with_room), with the failure handled by `or`.
    fn with_room_or<F, E>(&mut self, device: DeviceId, ctx: &mut Context<Self>, then: F, or: E)
    where
        F: FnOnce(&mut Self, Addr<DeviceRoom>, &mut Context<Self>) + 'static,
        E: FnOnce(&mut Self, RoomError) + 'static,
    {
        if let Some(room) = self.rooms.get(&device) {
            if room.connected() {
                let room = room.clone();
                then(self, room, ctx);
                return;
            }
            // The room died without telling us: a subscription moves on.
            self.room_lost(device.clone(), FailedRoom { epoch: None }, ctx);
        }
        let state = self.core.state.clone();
        let user = self.user.clone();
        let conn = self.core.conn.clone();
        let outbox = self.core.outbox.clone();
        let me = ctx.address();
        let dev = device.clone();
        ctx.wait(
            async move {
                let owner = match state.store.device_owner(&dev).await {
                    Ok(Some(owner)) => owner,
                    Ok(None) => return Err(RoomError::NotOwner),
                    Err(_) => return Err(RoomError::Unavailable),
                };
                if owner != user {
                    return Err(RoomError::NotOwner);
                }
                for _ in 0..3 {
                    let room = state
                        .directory
                        .send(GetRoom::here(dev.clone(), owner.clone()))
                        .await
                        .map_err(|_| RoomError::Unavailable)?;
                    let joined = room
                        .send(Join {
                            conn: conn.clone(),
                            user: user.clone(),
                            outbox: outbox.clone(),
                            socket: AppSocket {
                                failed: me.clone().recipient(),
                                gone: me.clone().recipient(),
                            },
                        })
                        .await;
                    match joined {
                        Ok(Ok(())) => return Ok(room),
                        Ok(Err(JoinError::NotOwner)) => return Err(RoomError::NotOwner),
                        Ok(Err(JoinError::Full)) => return Err(RoomError::Full),
                        _ => continue, // retired meanwhile: ask again
                    }
                }
                Err(RoomError::Unavailable)
            }
            .into_actor(self)
            .map(move |res, act, ctx| match res {
                Ok(room) => {
                    act.rooms.insert(device, room.clone());
                    then(act, room, ctx);
                }
                Err(e) => or(act, e),
            }),
        );
    }

    /// The room of `device` is gone (it failed): forget it and, if this
    /// socket was subscribed, subscribe to a fresh room, which replays what
    /// it has and says `recovered{complete:false}`. If no room can be had,
    /// the app hears `unsubscribed` with reason `device_unavailable`.
    fn room_lost(&mut self, device: DeviceId, failed: FailedRoom, ctx: &mut Context<Self>) {
        self.rooms.remove(&device);
        if !self.subscribed.remove(&device) {
            return;
        }
        tracing::info!(conn_id = %self.core.conn, device_id = %device, "room failed; subscribing again");
        let unavailable =
            encode::unsubscribed(&DeviceJson::new(&device), Some("device_unavailable"));
        self.with_room_or(
            device.clone(),
            ctx,
            move |act, room, _ctx| {
                room.do_send(Subscribe {
                    conn: act.core.conn.clone(),
                    since_seq: None,
                    epoch: None,
                    after_failure: Some(failed),
                });
                act.subscribed.insert(device);
            },
            move |act, _err| {
                act.core.outbox.send(unavailable);
            },
        );
    }

    /// The room confirms an `unsubscribe` (`unsubscribed`). A room that is
    /// gone without having told us (it stopped, or failed and its
    /// `RoomFailed` is still on the way) cannot: the socket confirms it
    /// itself and forgets the room, so the app is never left waiting. The
    /// socket waits for the room's answer (one handler, no await in it)
    /// so a `subscribe` sent next is handled after it.
    fn unsubscribe(&mut self, device: DeviceId, room: Addr<DeviceRoom>, ctx: &mut Context<Self>) {
        let asked = room.send(Unsubscribe {
            conn: self.core.conn.clone(),
        });
        ctx.wait(asked.into_actor(self).map(move |answer, act, _ctx| {
            if answer.is_ok() {
                return;
            }
            if act.rooms.get(&device) == Some(&room) {
                act.rooms.remove(&device);
            }
            act.core
                .outbox
                .send(encode::unsubscribed(&DeviceJson::new(&device), None));
        }));
    }

    fn subscribe(
        &mut self,
        device: DeviceId,
        since_seq: Option<u64>,
        epoch: Option<i64>,
        reference: Option<Box<RawValue>>,
        ctx: &mut Context<Self>,
    ) {
        self.with_room(device.clone(), reference, ctx, move |act, room, _ctx| {
            room.do_send(Subscribe {
                conn: act.core.conn.clone(),
                since_seq,
                epoch,
                after_failure: None,
            });
            act.subscribed.insert(device);
        });
    }
}

impl Actor for AppConn {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        gauge_add(&self.core.state.metrics.apps_connected, 1);
        tracing::debug!(user_id = %self.user, conn_id = %self.core.conn, "app connected");
        let shutdown = self.core.state.apps_shutdown.clone();
        start_common(self, ctx, shutdown);
        if let Some(device) = self.initial.take() {
            self.subscribe(device, None, None, None, ctx);
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        // Counted before the gauge drops: whoever sees the socket gone
        // from the gauge finds its close counted.
        self.core.count_close(SocketRole::App);
        gauge_add(&self.core.state.metrics.apps_connected, -1);
        for room in self.rooms.values() {
            room.do_send(Leave {
                conn: self.core.conn.clone(),
            });
        }
        self.core.state.sessions.do_send(ConnGone {
            conn: self.core.conn.clone(),
            robot: false,
        });
        tracing::debug!(user_id = %self.user, conn_id = %self.core.conn, reason = self.core.stop_reason, "app disconnected");
    }
}

impl SocketActor for AppConn {
    fn core(&mut self) -> &mut SocketCore {
        &mut self.core
    }

    fn check_rooms(&mut self, ctx: &mut Context<Self>) {
        let gone: Vec<DeviceId> = self
            .rooms
            .iter()
            .filter(|(_, room)| !room.connected())
            .map(|(device, _)| device.clone())
            .collect();
        for device in gone {
            self.room_lost(device, FailedRoom { epoch: None }, ctx);
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let parsed = match parse_app(text) {
            Ok(p) => p,
            Err(e) => {
                crate::metrics::inc(&self.core.state.metrics.bad_messages);
                self.core.send_error(e);
                return;
            }
        };
        let reference = parsed.reference;
        match parsed.frame {
            AppFrame::Ping => {
                self.core.outbox.send(SocketCore::pong_frame());
            }
            AppFrame::Pong => {}
            AppFrame::Subscribe {
                device,
                since_seq,
                epoch,
            } => self.subscribe(device, since_seq, epoch, reference, ctx),
            AppFrame::Unsubscribe { device } => {
                match (self.subscribed.remove(&device), self.rooms.get(&device)) {
                    (true, Some(room)) => self.unsubscribe(device, room.clone(), ctx),
                    _ => self.core.send_error(
                        WireError::new(WireCode::NotSubscribed, "not subscribed to that device")
                            .with_ref(reference),
                    ),
                }
            }
            AppFrame::Command {
                device,
                raw,
                spoofed,
            } => {
                let r = reference.clone();
                self.with_room(device, reference, ctx, move |act, room, _ctx| {
                    room.do_send(Command {
                        conn: act.core.conn.clone(),
                        raw,
                        spoofed,
                        reference: r,
                    });
                });
            }
            frame @ AppFrame::WebrtcRequest { .. } => {
                let AppFrame::WebrtcRequest { device, .. } = &frame else {
                    return;
                };
                let device = device.clone();
                let r = reference.clone();
                self.with_room(device, reference, ctx, move |act, room, _ctx| {
                    act.core.state.sessions.do_send(FromApp {
                        conn: act.core.conn.clone(),
                        user: act.user.clone(),
                        outbox: act.core.outbox.clone(),
                        room: Some(room),
                        frame,
                        reference: r,
                    });
                });
            }
            frame @ (AppFrame::WebrtcAnswer(_)
            | AppFrame::WebrtcIce(_)
            | AppFrame::WebrtcClose(_)
            | AppFrame::WebrtcStats(_)) => {
                self.core.state.sessions.do_send(FromApp {
                    conn: self.core.conn.clone(),
                    user: self.user.clone(),
                    outbox: self.core.outbox.clone(),
                    room: None,
                    frame,
                    reference,
                });
            }
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for AppConn {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        on_item(self, item, ctx);
    }
}

impl Handler<DeviceGone> for AppConn {
    type Result = ();

    fn handle(&mut self, msg: DeviceGone, _ctx: &mut Context<Self>) {
        self.rooms.remove(&msg.device);
        self.subscribed.remove(&msg.device);
    }
}

impl Handler<RoomFailed> for AppConn {
    type Result = ();

    fn handle(&mut self, msg: RoomFailed, ctx: &mut Context<Self>) {
        if self.rooms.get(&msg.device) != Some(&msg.room) {
            return; // already moved on (found the room dead before this came)
        }
        let failed = FailedRoom {
            epoch: Some(msg.epoch),
        };
        self.room_lost(msg.device, failed, ctx);
    }
}

impl Handler<CloseSocket> for AppConn {
    type Result = ();

    fn handle(&mut self, msg: CloseSocket, ctx: &mut Context<Self>) {
        self.core.close(ctx, msg.code, msg.reason);
    }
}
