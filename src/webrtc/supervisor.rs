//! `SessionSupervisor`: owns every WebRTC session of this instance.
//! (Being built under issue 4; signaling frames are refused until then.)

use super::messages::*;
use crate::error::{WireCode, WireError};
use actix::prelude::*;

#[derive(Default)]
pub struct SessionSupervisor;

impl Actor for SessionSupervisor {
    type Context = Context<Self>;
}

impl Supervised for SessionSupervisor {}

impl Handler<FromApp> for SessionSupervisor {
    type Result = ();
    fn handle(&mut self, msg: FromApp, _ctx: &mut Context<Self>) {
        msg.outbox.send(
            WireError::new(
                WireCode::Unsupported,
                "WebRTC signaling is not available yet",
            )
            .with_ref(msg.reference)
            .to_frame(),
        );
    }
}

impl Handler<FromRobot> for SessionSupervisor {
    type Result = ();
    fn handle(&mut self, msg: FromRobot, _ctx: &mut Context<Self>) {
        msg.outbox.send(
            WireError::new(
                WireCode::Unsupported,
                "WebRTC signaling is not available yet",
            )
            .with_ref(msg.reference)
            .to_frame(),
        );
    }
}

impl Handler<ConnGone> for SessionSupervisor {
    type Result = ();
    fn handle(&mut self, _msg: ConnGone, _ctx: &mut Context<Self>) {}
}

impl Handler<EndDeviceSessions> for SessionSupervisor {
    type Result = ();
    fn handle(&mut self, _msg: EndDeviceSessions, _ctx: &mut Context<Self>) {}
}

impl Handler<ActiveSessions> for SessionSupervisor {
    type Result = usize;
    fn handle(&mut self, _msg: ActiveSessions, _ctx: &mut Context<Self>) -> usize {
        0
    }
}
