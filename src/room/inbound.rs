//! What other instances send this instance's rooms: the cluster bridge
//! decodes it ([`ForRooms`]) and hands it to the [`Directory`], which finds
//! the device's room (once, in its own map) and passes it on — one
//! function per kind. What cannot be delivered is answered from here
//! through the bridge, so the sender never waits for nothing: a command
//! with `robot_offline`, a REST call with "robot offline".

use super::directory::Directory;
use super::messages::*;
use crate::cluster::messages::{Directed, ForRooms, SendDirected};
use crate::ids::{ConnId, DeviceId};
use crate::wire::frames::type_and_id;
use crate::wire::WireError;
use actix::prelude::*;

impl Handler<ForRooms> for Directory {
    type Result = ();

    fn handle(&mut self, msg: ForRooms, ctx: &mut Context<Self>) {
        match msg {
            ForRooms::Command { device, conn, raw } => self.remote_command(device, conn, raw, ctx),
            ForRooms::Result { device, conn, raw } => self.remote_result(&device, conn, raw),
            ForRooms::ProxyRequest {
                device,
                request_id,
                frame,
                back,
            } => self.remote_proxy_request(device, request_id, frame, back),
            ForRooms::ProxyResponse {
                device,
                request_id,
                status,
                body,
            } => self.remote_proxy_response(&device, request_id, status, body),
            ForRooms::Replaced { device } => self.robot_replaced_elsewhere(&device),
            ForRooms::Deleted { device } => self.device_deleted(&device),
            ForRooms::Rotated { device } => self.credentials_changed(&device),
        }
    }
}

impl Directory {
    /// A frame for our robot from app connection `conn` on another
    /// instance. Its `id` is read here: for `ref` if the robot is not here
    /// (as on one instance), and, for a command, so that the robot's room
    /// answers for it if the robot leaves without a result.
    fn remote_command(
        &mut self,
        device: DeviceId,
        conn: ConnId,
        raw: String,
        ctx: &mut Context<Self>,
    ) {
        let (ty, reference) = type_and_id(&raw).unwrap_or_default();
        let answer_for = match (&reference, ty == "command") {
            (Some(id), true) => Some((conn.clone(), id.clone())),
            _ => None,
        };
        let room = self.live_room(&device);
        let bridge = self.bridge().cloned();
        ctx.spawn(
            async move {
                let delivered = match &room {
                    Some(r) => r
                        .send(RemoteCommand { raw, answer_for })
                        .await
                        .unwrap_or(false),
                    None => false,
                };
                if delivered {
                    return;
                }
                let (Some(bridge), Some(instance)) = (bridge, conn.instance()) else {
                    return;
                };
                let error = WireError::robot_offline().with_ref(reference).to_frame();
                bridge.do_send(SendDirected {
                    instance: instance.to_string(),
                    msg: Directed::Res {
                        d: device,
                        c: conn.to_string(),
                        raw: error,
                    },
                });
            }
            .into_actor(self),
        );
    }

    /// A frame (command result or error) for app connection `conn`: its
    /// room checks it is a member here.
    fn remote_result(&self, device: &DeviceId, conn: ConnId, raw: String) {
        if let Some(room) = self.live_room(device) {
            room.do_send(DeliverToMember { conn, raw });
        }
    }

    /// A REST call for our robot; with no room here, answered "robot
    /// offline" to `back` at once.
    fn remote_proxy_request(
        &self,
        device: DeviceId,
        request_id: String,
        frame: String,
        back: String,
    ) {
        if let Some(room) = self.live_room(&device) {
            room.do_send(RemoteProxyRequest {
                request_id,
                frame,
                back,
            });
        } else if let Some(bridge) = self.bridge() {
            bridge.do_send(SendDirected {
                instance: back,
                msg: Directed::ProxyRes {
                    d: device,
                    r: request_id,
                    status: None,
                    body: None,
                },
            });
        }
    }

    /// The answer to a REST call a room here forwarded (`status` None: the
    /// robot was not there).
    fn remote_proxy_response(
        &self,
        device: &DeviceId,
        request_id: String,
        status: Option<u16>,
        body: Option<String>,
    ) {
        let Some(room) = self.live_room(device) else {
            return;
        };
        let reply = match status {
            Some(status) => ProxyReply::Response {
                status,
                body: body.and_then(|b| serde_json::value::RawValue::from_string(b).ok()),
            },
            None => ProxyReply::RobotOffline,
        };
        room.do_send(RemoteProxyResponse { request_id, reply });
    }

    /// Our robot of `device` connected to another instance: the room drops
    /// ours.
    fn robot_replaced_elsewhere(&self, device: &DeviceId) {
        if let Some(room) = self.live_room(device) {
            room.do_send(RobotReplacedElsewhere);
        }
    }
}
