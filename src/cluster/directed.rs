//! Instance-to-instance messages (`Directed` on `wimz:inst:<id>` and
//! `wimz:all`): sending them, and routing the ones we receive to rooms and
//! the session supervisor.

use super::keys;
use super::messages::*;
use super::ClusterBridge;
use crate::room::messages as room_msg;
use actix::prelude::*;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

impl ClusterBridge {
    pub(super) fn route_directed(&mut self, payload: String, ctx: &mut Context<Self>) {
        let Ok(msg) = serde_json::from_str::<Directed>(&payload) else {
            tracing::debug!("ignoring an undecodable cluster message");
            return;
        };
        let Some(directory) = self.directory.clone() else {
            return;
        };
        let sessions = self.sessions.clone();
        let redis = self.redis.clone();
        ctx.spawn(
            async move {
                match msg {
                    Directed::Cmd { d, c, raw } => {
                        // `id`: for `ref` if the robot is not here (as on one
                        // instance), and, for a command, to answer for it if
                        // the robot leaves without a result.
                        let (ty, reference) =
                            crate::wire::frames::type_and_id(&raw).unwrap_or_default();
                        let answer_for = match (&reference, ty == "command") {
                            (Some(id), true) => {
                                Some((crate::ids::ConnId::from_wire(&c), id.clone()))
                            }
                            _ => None,
                        };
                        let room = directory
                            .send(room_msg::FindRoom { device: d.clone() })
                            .await
                            .ok()
                            .flatten();
                        let delivered = match &room {
                            Some(r) => r
                                .send(room_msg::RemoteCommand { raw, answer_for })
                                .await
                                .unwrap_or(false),
                            None => false,
                        };
                        if !delivered {
                            let err = crate::wire::WireError::robot_offline()
                                .with_ref(reference)
                                .to_frame();
                            let back = Directed::Res {
                                d,
                                c: c.clone(),
                                raw: err,
                            };
                            if let Some(instance) = crate::ids::ConnId::from_wire(&c).instance() {
                                publish_directed(redis, instance, &back).await;
                            }
                        }
                    }
                    Directed::Res { d, c, raw } => {
                        if let Some(room) = directory
                            .send(room_msg::FindRoom { device: d })
                            .await
                            .ok()
                            .flatten()
                        {
                            room.do_send(room_msg::DeliverToMember {
                                conn: crate::ids::ConnId::from_wire(&c),
                                raw,
                            });
                        }
                    }
                    Directed::ProxyReq { d, r, frame, back } => {
                        match directory
                            .send(room_msg::FindRoom { device: d.clone() })
                            .await
                            .ok()
                            .flatten()
                        {
                            Some(room) => room.do_send(room_msg::RemoteProxyRequest {
                                request_id: r,
                                frame,
                                back,
                            }),
                            None => {
                                let res = Directed::ProxyRes {
                                    d,
                                    r,
                                    status: None,
                                    body: None,
                                };
                                publish_directed(redis, &back, &res).await;
                            }
                        }
                    }
                    Directed::ProxyRes { d, r, status, body } => {
                        if let Some(room) = directory
                            .send(room_msg::FindRoom { device: d })
                            .await
                            .ok()
                            .flatten()
                        {
                            let reply = match status {
                                Some(status) => room_msg::ProxyReply::Response {
                                    status,
                                    body: body.and_then(|b| {
                                        serde_json::value::RawValue::from_string(b).ok()
                                    }),
                                },
                                None => room_msg::ProxyReply::RobotOffline,
                            };
                            room.do_send(room_msg::RemoteProxyResponse {
                                request_id: r,
                                reply,
                            });
                        }
                    }
                    Directed::RobotSig { from, d, raw } => {
                        if let (Some(sessions), Ok(parsed)) =
                            (&sessions, crate::wire::frames::parse_robot(&raw))
                        {
                            sessions.do_send(crate::webrtc::messages::FromRobot {
                                conn: crate::webrtc::session::RobotEnd::remote_conn(&from),
                                device: d,
                                outbox: crate::wire::outbox::Outbox::closed(),
                                frame: parsed.frame,
                                reference: None,
                            });
                        }
                    }
                    Directed::Deleted { d } => {
                        if let Some(sessions) = &sessions {
                            sessions.do_send(crate::webrtc::messages::EndDeviceSessions {
                                device: d.clone(),
                                reason: "device_deleted",
                            });
                        }
                        directory.do_send(room_msg::DeviceDeleted { device: d });
                    }
                    Directed::Rotated { d } => {
                        directory.do_send(room_msg::CredentialsChanged { device: d });
                    }
                    Directed::Replaced { d } => {
                        if let Some(room) = directory
                            .send(room_msg::FindRoom { device: d })
                            .await
                            .ok()
                            .flatten()
                        {
                            room.do_send(room_msg::RobotReplacedElsewhere);
                        }
                    }
                }
            }
            .into_actor(self),
        );
    }
}

/// Publishes `msg` to `instance`; true only if that instance is listening
/// (`PUBLISH` reached a subscriber). False when Redis failed or nobody is
/// subscribed to the channel (the instance is gone, e.g. killed before its
/// presence keys expired): nobody will act on it or answer it.
pub(super) async fn publish_directed(
    mut redis: ConnectionManager,
    instance: &str,
    msg: &Directed,
) -> bool {
    let Ok(payload) = serde_json::to_string(msg) else {
        return false;
    };
    // PUBLISH answers how many subscribers heard it: none means the
    // instance's pub/sub connection is not there (it died, or is reconnecting).
    let r: Result<i64, _> = redis
        .publish(keys::instance_channel(instance), payload)
        .await;
    matches!(r, Ok(receivers) if receivers > 0)
}

impl Handler<SendDirected> for ClusterBridge {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: SendDirected, _ctx: &mut Context<Self>) -> Self::Result {
        let redis = self.redis.clone();
        Box::pin(async move { publish_directed(redis, &msg.instance, &msg.msg).await })
    }
}

impl ClusterBridge {
    /// Publishes `msg` on `wimz:all` (every instance, this one included).
    fn broadcast(&mut self, msg: Directed, ctx: &mut Context<Self>) {
        let mut redis = self.redis.clone();
        ctx.spawn(
            async move {
                let Ok(payload) = serde_json::to_string(&msg) else {
                    return;
                };
                let _: Result<i64, _> = redis.publish(keys::ALL, payload).await;
            }
            .into_actor(self),
        );
    }
}

impl Handler<BroadcastDeleted> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: BroadcastDeleted, ctx: &mut Context<Self>) {
        self.broadcast(Directed::Deleted { d: msg.device }, ctx);
    }
}

impl Handler<BroadcastRotated> for ClusterBridge {
    type Result = ();

    fn handle(&mut self, msg: BroadcastRotated, ctx: &mut Context<Self>) {
        self.broadcast(Directed::Rotated { d: msg.device }, ctx);
    }
}
