//! Messages to the [`SessionSupervisor`](super::SessionSupervisor).

use crate::ids::{ConnId, DeviceId, UserId};
use crate::room::DeviceRoom;
use crate::wire::frames::{AppFrame, RobotFrame};
use crate::wire::outbox::Outbox;
use actix::prelude::*;
use serde_json::value::RawValue;

/// A signaling frame from an app socket. `room` is set for `webrtc_request`
/// (ownership already proven by the app socket).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromApp {
    pub conn: ConnId,
    pub user: UserId,
    pub outbox: Outbox,
    pub room: Option<Addr<DeviceRoom>>,
    pub frame: AppFrame,
    pub reference: Option<Box<RawValue>>,
}

/// A signaling frame from a robot socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromRobot {
    pub conn: ConnId,
    pub device: DeviceId,
    pub outbox: Outbox,
    pub frame: RobotFrame,
    pub reference: Option<Box<RawValue>>,
}

/// A socket ended: close the sessions it was an end of.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConnGone {
    pub conn: ConnId,
    pub robot: bool,
}

/// The device was deleted: close its sessions.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndDeviceSessions {
    pub device: DeviceId,
    pub reason: &'static str,
}

/// How many sessions are open (tests and `/stats`).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ActiveSessions;
