//! `RobotConn`: the actor of one robot socket.
//!
//! Owns its socket (via [`SocketCore`]). On start it attaches to its
//! device's room (replacing any earlier robot socket, which the room closes
//! with 4001). Sends on: events, command results and proxy responses to the
//! room; WebRTC signaling to the session supervisor. On every exit path
//! (`stopped`) it detaches from the room with the reason and tells the
//! session supervisor its end is gone. If its room fails, the robot is
//! closed with 1011 `device_unavailable` and reconnects to a fresh room.
//!
//! It remembers the credential id it authenticated with. Once attached it
//! reads the device's current one again (a rotation that landed between
//! the handshake and the attach is caught here), and again whenever its
//! room passes on [`RecheckCredential`] (a rotation on any instance): a
//! robot whose credential is no longer current is closed with 4003
//! `credentials_revoked` (`device_deleted` if the device is gone).
//!
//! On shutdown it is closed with 1012 and read until it answers the close.

use super::conn::{on_item, start_common, SocketActor, SocketCore};
use crate::auth::CredentialId;
use crate::ids::DeviceId;
use crate::metrics::{gauge_add, SocketRole};
use crate::room::messages::*;
use crate::room::DeviceRoom;
use crate::webrtc::messages::{ConnGone, FromRobot};
use crate::wire::close;
use crate::wire::frames::{parse_robot, RobotFrame};
use actix::prelude::*;
use actix_ws::{AggregatedMessage, ProtocolError};

pub struct RobotConn {
    core: SocketCore,
    device: DeviceId,
    /// The credential id the robot authenticated with.
    credential: CredentialId,
    /// The device's room, once attached.
    room: Option<Addr<DeviceRoom>>,
}

/// What re-reading the device's credential id found.
enum Standing {
    Current,
    /// Not current any more: close 4003 with this reason.
    Revoked(&'static str),
    /// The store could not say: close 1011 (the robot reconnects and is
    /// authenticated afresh).
    Unknown,
}

impl RobotConn {
    pub fn new(core: SocketCore, device: DeviceId, credential: CredentialId) -> Self {
        RobotConn {
            core,
            device,
            credential,
            room: None,
        }
    }

    /// Reads the device's current credential id and compares it with ours.
    async fn standing(
        state: &crate::state::AppState,
        device: &DeviceId,
        ours: &CredentialId,
    ) -> Standing {
        match state.store.device_credential(device).await {
            Ok(Some(current)) if current == *ours => Standing::Current,
            Ok(Some(_)) => Standing::Revoked("credentials_revoked"),
            Ok(None) => Standing::Revoked("device_deleted"),
            Err(e) => {
                tracing::warn!(device_id = %device, error = %e, "cannot re-read the device's credential");
                Standing::Unknown
            }
        }
    }

    fn act_on(&mut self, standing: Standing, ctx: &mut Context<Self>) {
        match standing {
            Standing::Current => {}
            Standing::Revoked(reason) => {
                tracing::info!(device_id = %self.device, conn_id = %self.core.conn, reason, "robot's credential revoked; closing it");
                self.core.close(ctx, close::REVOKED, reason);
            }
            Standing::Unknown => {
                self.core
                    .close(ctx, close::DEVICE_UNAVAILABLE, "device_unavailable")
            }
        }
    }

    fn attach(&mut self, ctx: &mut Context<Self>) {
        let state = self.core.state.clone();
        let device = self.device.clone();
        let conn = self.core.conn.clone();
        let outbox = self.core.outbox.clone();
        let me = ctx.address();
        let credential = self.credential.clone();
        // `wait`: no frame from the robot is handled before it is attached
        // and its credential re-checked.
        ctx.wait(
            async move {
                let owner = state.store.device_owner(&device).await.ok().flatten()?;
                // Clustered: take the device over (fencing any other
                // instance's robot) and learn where its numbering stands.
                let claim = match &state.cluster {
                    Some(bridge) => bridge
                        .send(crate::cluster::messages::Claim {
                            device: device.clone(),
                        })
                        .await
                        .ok()
                        .and_then(|r| r.ok()),
                    None => None,
                };
                for _ in 0..3 {
                    let room = state
                        .directory
                        .send(GetRoom::here(device.clone(), owner.clone()))
                        .await
                        .ok()?;
                    let attached = room
                        .send(AttachRobot {
                            conn: conn.clone(),
                            outbox: outbox.clone(),
                            socket: RobotSocket {
                                close: me.clone().recipient(),
                                recheck: me.clone().recipient(),
                            },
                            claim: claim.clone(),
                        })
                        .await;
                    if let Ok(Ok(())) = attached {
                        // After attaching: a rotation stored before this
                        // read is seen here, one stored after it finds the
                        // robot in the room (RecheckCredential).
                        let standing = Self::standing(&state, &device, &credential).await;
                        return Some((room, standing));
                    }
                }
                None
            }
            .into_actor(self)
            .map(|attached, act, ctx| match attached {
                Some((room, standing)) => {
                    act.room = Some(room);
                    act.act_on(standing, ctx);
                }
                None => act
                    .core
                    .close(ctx, close::DEVICE_UNAVAILABLE, "device_unavailable"),
            }),
        );
    }

    /// The room died without closing us (a failed room closes its robot
    /// itself): close with 1011 so the robot reconnects to a fresh room.
    fn room_gone(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!(device_id = %self.device, conn_id = %self.core.conn, "room gone; closing the robot");
        self.room = None;
        self.core
            .close(ctx, close::DEVICE_UNAVAILABLE, "device_unavailable");
    }

    fn touch(&self) {
        self.core.state.last_seen.note(&self.device);
    }
}

impl Actor for RobotConn {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        gauge_add(&self.core.state.metrics.robots_online, 1);
        tracing::info!(device_id = %self.device, conn_id = %self.core.conn, "robot connected");
        let shutdown = self.core.state.robots_shutdown.clone();
        start_common(self, ctx, shutdown);
        self.attach(ctx);
        self.touch();
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        // Counted before the gauge drops (see AppConn::stopped).
        self.core.count_close(SocketRole::Robot);
        gauge_add(&self.core.state.metrics.robots_online, -1);
        if let Some(room) = &self.room {
            room.do_send(DetachRobot {
                conn: self.core.conn.clone(),
                reason: self.core.stop_reason,
            });
        }
        self.core.state.sessions.do_send(ConnGone {
            conn: self.core.conn.clone(),
            robot: true,
        });
        self.touch();
        if self.core.closing {
            // Everything read is with the room: the connection can go.
            self.core.peer.kill();
        }
        tracing::info!(device_id = %self.device, conn_id = %self.core.conn, reason = self.core.stop_reason, "robot disconnected");
    }
}

impl SocketActor for RobotConn {
    fn core(&mut self) -> &mut SocketCore {
        &mut self.core
    }

    /// Close with 1012 but go on reading until the robot answers the close
    /// (or [`Phase::Now`](crate::state::Phase::Now)): an event it sent
    /// before it saw our close still reaches the room, before we detach.
    fn on_shutdown(&mut self, _ctx: &mut Context<Self>) {
        self.core.close_and_read(close::RESTART, "relay_shutdown");
    }

    fn check_rooms(&mut self, ctx: &mut Context<Self>) {
        if self.room.as_ref().is_some_and(|room| !room.connected()) {
            self.room_gone(ctx);
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let parsed = match parse_robot(text) {
            Ok(p) => p,
            Err(e) => {
                crate::metrics::inc(&self.core.state.metrics.bad_messages);
                self.core.send_error(e);
                return;
            }
        };
        let Some(room) = &self.room else { return };
        if !room.connected() {
            return self.room_gone(ctx);
        }
        let conn = self.core.conn.clone();
        match parsed.frame {
            RobotFrame::Ping => {
                self.core.outbox.send(SocketCore::pong_frame());
            }
            RobotFrame::Pong => {}
            RobotFrame::Event(event) => room.do_send(RobotEvent {
                conn,
                event,
                received: self.core.last_seen,
            }),
            RobotFrame::CommandResult { reply_to, id, raw } => room.do_send(CommandResult {
                conn,
                reply_to,
                id,
                raw,
            }),
            RobotFrame::HttpResponse(r) => room.do_send(ProxyResponse {
                conn,
                request_id: r.request_id,
                status: r.status,
                body: r.body,
            }),
            frame @ (RobotFrame::WebrtcOffer(_)
            | RobotFrame::WebrtcIce(_)
            | RobotFrame::WebrtcClose(_)
            | RobotFrame::WebrtcStats(_)) => {
                self.core.state.sessions.do_send(FromRobot {
                    conn,
                    device: self.device.clone(),
                    outbox: self.core.outbox.clone(),
                    frame,
                    reference: parsed.reference,
                });
            }
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for RobotConn {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        on_item(self, item, ctx);
    }
}

impl Handler<RecheckCredential> for RobotConn {
    type Result = ();

    fn handle(&mut self, _msg: RecheckCredential, ctx: &mut Context<Self>) {
        let state = self.core.state.clone();
        let (device, credential) = (self.device.clone(), self.credential.clone());
        ctx.spawn(
            async move { Self::standing(&state, &device, &credential).await }
                .into_actor(self)
                .map(|standing, act, ctx| act.act_on(standing, ctx)),
        );
    }
}

impl Handler<CloseSocket> for RobotConn {
    type Result = ();

    fn handle(&mut self, msg: CloseSocket, ctx: &mut Context<Self>) {
        self.core.close(ctx, msg.code, msg.reason);
    }
}
