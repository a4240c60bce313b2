//! A clustered [`DeviceRoom`]'s paths to and from the instance holding the
//! robot: an app's command and the robot's result, and a REST call and its
//! answer, each carried by the bridge as a directed message to one
//! instance. With no bridge (single instance) every function here is a
//! no-op.

use super::device_room::DeviceRoom;
use super::messages::*;
use crate::cluster::messages::{Directed, SendDirected};
use crate::ids::ConnId;
use crate::wire::encode::{self, RelayKeys};
use actix::prelude::*;

impl DeviceRoom {
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
