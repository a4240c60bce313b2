//! Instance-to-instance messages (`Directed` on `wimz:inst:<id>` and
//! `wimz:all`): sending them, and handing the ones we receive up to the
//! directory ([`ForRooms`]) or the session supervisor ([`ForSessions`]).

use super::keys;
use super::messages::*;
use super::ClusterBridge;
use crate::ids::ConnId;
use actix::prelude::*;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

impl ClusterBridge {
    /// A message another instance sent us: decoded and handed up, to the
    /// directory (for a device's room) or the session supervisor. Nothing
    /// waits here: what needs an answer back (a command nobody here can
    /// take, a REST call for a robot that is not here) is answered by the
    /// side that handles it, through [`SendDirected`].
    pub(super) fn route_directed(&mut self, payload: &str) {
        let Ok(msg) = serde_json::from_str::<Directed>(payload) else {
            tracing::debug!("ignoring an undecodable cluster message");
            return;
        };
        let Upstream { rooms, sessions } = &self.upstream;
        match msg {
            Directed::Cmd { d, c, raw } => rooms.do_send(ForRooms::Command {
                device: d,
                conn: ConnId::from_wire(&c),
                raw,
            }),
            Directed::Res { d, c, raw } => rooms.do_send(ForRooms::Result {
                device: d,
                conn: ConnId::from_wire(&c),
                raw,
            }),
            Directed::ProxyReq { d, r, frame, back } => rooms.do_send(ForRooms::ProxyRequest {
                device: d,
                request_id: r,
                frame,
                back,
            }),
            Directed::ProxyRes { d, r, status, body } => rooms.do_send(ForRooms::ProxyResponse {
                device: d,
                request_id: r,
                status,
                body,
            }),
            Directed::RobotSig { from, d, raw } => sessions.do_send(ForSessions::RobotSignal {
                from,
                device: d,
                raw,
            }),
            Directed::Deleted { d } => {
                sessions.do_send(ForSessions::Deleted { device: d.clone() });
                rooms.do_send(ForRooms::Deleted { device: d });
            }
            Directed::Rotated { d } => rooms.do_send(ForRooms::Rotated { device: d }),
            Directed::Replaced { d } => rooms.do_send(ForRooms::Replaced { device: d }),
        }
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
