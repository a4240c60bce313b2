//! Messages to the [`Directory`](super::Directory) and to a
//! [`DeviceRoom`](super::DeviceRoom). One struct per message.

use super::device_room::DeviceRoom;
use crate::ids::{ConnId, DeviceId, UserId};
use crate::wire::encode::RelayKeys;
use crate::wire::frames::EventIn;
use crate::wire::outbox::Outbox;
use crate::wire::Snapshot;
use actix::prelude::*;
use actix_ws::CloseCode;
use serde_json::value::RawValue;
use tokio::sync::oneshot;

// ---- to the Directory ----------------------------------------------------

/// Find or start the room of `device`, owned by `owner` (checked against the store by the caller).
/// A new room is started on `home`: the arbiter (worker thread) of the
/// socket or request that needs it, so a room usually shares a thread with
/// its robot and events cross no thread on their way in.
#[derive(Message)]
#[rtype(result = "Addr<DeviceRoom>")]
pub struct GetRoom {
    pub device: DeviceId,
    pub owner: UserId,
    pub home: actix::ArbiterHandle,
}

impl GetRoom {
    /// Asked from the current arbiter (a worker thread or an actor's arbiter).
    pub fn here(device: DeviceId, owner: UserId) -> Self {
        GetRoom {
            device,
            owner,
            home: actix::Arbiter::current(),
        }
    }
}

/// The room of `device` if one is alive.
#[derive(Message)]
#[rtype(result = "Option<Addr<DeviceRoom>>")]
pub struct FindRoom {
    pub device: DeviceId,
}

/// The live snapshot of `device`, if it has a room.
#[derive(Message)]
#[rtype(result = "Option<Snapshot>")]
pub struct SnapshotOf {
    pub device: DeviceId,
}

/// A room stopped itself for being idle; forget it (if it is still `room_id`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomRetired {
    pub device: DeviceId,
    pub room_id: u64,
}

/// The device was deleted: close its room and robot.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeviceDeleted {
    pub device: DeviceId,
}

/// The device's credential id changed (its secret was rotated, here or
/// on another instance): the room's robot re-checks its own.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CredentialsChanged {
    pub device: DeviceId,
}

/// Shutdown: wait until every room has handled all it was sent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DrainRooms;

// ---- to a DeviceRoom -----------------------------------------------------

/// The room stopped (idle or device deleted) before this message reached it; ask the directory again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retired;

/// A robot socket for this device authenticated; it becomes the robot link (replacing any other).
#[derive(Message)]
#[rtype(result = "Result<(), Retired>")]
pub struct AttachRobot {
    pub conn: ConnId,
    pub outbox: Outbox,
    pub socket: RobotSocket,
    /// Clustered: what claiming the device in Redis found (None: single
    /// instance, or Redis unreachable).
    pub claim: Option<crate::cluster::messages::Claimed>,
}

/// The robot socket `conn` ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DetachRobot {
    pub conn: ConnId,
    pub reason: &'static str,
}

/// An event from the robot `conn`, to be enveloped and fanned out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RobotEvent {
    pub conn: ConnId,
    pub event: EventIn,
    /// When the robot's frame was read (`wimz_event_routing_seconds`
    /// measures from here to each app's outbox).
    pub received: std::time::Instant,
}

/// A `command_result` from the robot, for the app `reply_to` only.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CommandResult {
    pub conn: ConnId,
    pub reply_to: ConnId,
    /// The command's `id` (raw JSON), if the robot echoed one.
    pub id: Option<Box<serde_json::value::RawValue>>,
    pub raw: String,
}

/// Why an app could not join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    Retired,
    NotOwner,
    /// `caps.app_sockets_per_device` app sockets are members already.
    Full,
}

/// An app socket starts talking to this device (subscribe or command); it
/// stays a member until it sends [`Leave`].
#[derive(Message)]
#[rtype(result = "Result<(), JoinError>")]
pub struct Join {
    pub conn: ConnId,
    pub user: UserId,
    pub outbox: Outbox,
    pub socket: AppSocket,
}

/// Subscribe member `conn` to events, replaying after `since_seq` if given.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub conn: ConnId,
    pub since_seq: Option<u64>,
    pub epoch: Option<i64>,
    /// Set when the app socket re-subscribes by itself because its earlier
    /// room of this device failed: the room replays its whole buffer and
    /// says `recovered{complete:false}` with a reason.
    pub after_failure: Option<FailedRoom>,
}

/// The room an app socket was subscribed to failed.
#[derive(Debug, Clone, Copy)]
pub struct FailedRoom {
    /// Its epoch, if the socket was told ([`RoomFailed`]); `None` when the
    /// socket found the room gone by itself.
    pub epoch: Option<i64>,
}

/// Stop sending events to `conn` (it stays a member for command results).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub conn: ConnId,
}

/// The app socket `conn` ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub conn: ConnId,
}

/// A command from member `conn` for the robot.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Command {
    pub conn: ConnId,
    pub raw: String,
    /// Whether the app wrote `from_user`/`reply_to` itself.
    pub spoofed: RelayKeys,
    pub reference: Option<Box<RawValue>>,
}

/// The room's live state.
#[derive(Message)]
#[rtype(result = "Snapshot")]
pub struct GetSnapshot;

/// Where the device's robot is, for a WebRTC session: here, or (clustered)
/// on which other instance.
#[derive(Message)]
#[rtype(result = "Option<RobotRoute>")]
pub struct FindRobot;

pub enum RobotRoute {
    Local(ConnId, Outbox),
    Remote(String),
}

/// Answered once everything sent before it has been handled.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

/// Close the robot and end every membership: the device is gone.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseRoom {
    pub reason: &'static str,
}

/// The robot's answer to a proxied REST call, or why there is none.
#[derive(Debug)]
pub enum ProxyReply {
    Response {
        status: u16,
        body: Option<Box<RawValue>>,
    },
    RobotOffline,
    TooMany,
}

/// Forward a REST call to the robot; the answer comes on `reply`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ProxyRequest {
    pub request_id: String,
    pub frame: String,
    pub reply: oneshot::Sender<ProxyReply>,
}

/// The caller gave up waiting (timeout): forget the request.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ProxyCancel {
    pub request_id: String,
}

/// `http_response` from the robot.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ProxyResponse {
    pub conn: ConnId,
    pub request_id: String,
    pub status: u16,
    pub body: Option<Box<RawValue>>,
}

/// How many proxied requests wait on this robot (tests check it returns to 0).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct PendingProxyCount;

/// Stops the room without telling anyone, as a room lost to a bug would.
/// Only tests send it (no route or frame does), to prove that sockets cope
/// with a room that is gone.
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectSilentStop;

// ---- from a room to its sockets ----------------------------------------------

/// How a room reaches its robot socket, besides the socket's outbox: the
/// two messages it sends it (the socket actor handles them; the room does
/// not know its type).
#[derive(Clone)]
pub struct RobotSocket {
    pub close: Recipient<CloseSocket>,
    pub recheck: Recipient<RecheckCredential>,
}

/// How a room reaches a member app socket, besides its outbox.
#[derive(Clone)]
pub struct AppSocket {
    pub failed: Recipient<RoomFailed>,
    pub gone: Recipient<DeviceGone>,
}

/// The device is gone (deleted); drop it from the app's caches.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeviceGone {
    pub device: DeviceId,
}

/// The room of `device` failed (a handler panicked) and ended. The app
/// socket forgets it and, if it was subscribed, re-subscribes to a fresh room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomFailed {
    pub device: DeviceId,
    /// The failed room (a socket that already moved to a newer room of the
    /// device ignores this).
    pub room: Addr<DeviceRoom>,
    /// The failed room's epoch.
    pub epoch: i64,
}

/// Close this socket with `code` and `reason` (replacement, device deleted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSocket {
    /// One of `wire::close`'s.
    pub code: CloseCode,
    pub reason: &'static str,
}

/// To a room, then its robot socket: re-read the device's credential id
/// from the store and close (4003) if it is no longer the one the robot
/// authenticated with.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecheckCredential;

// ---- from a room to the session supervisor -----------------------------------

/// Clustered: the device's robot on another instance went away; end the
/// sessions whose robot end is remote.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndRemoteRobotSessions {
    pub device: DeviceId,
}

// ---- from the directory to a room, for other instances ---------------------
// (the mirror's own `RemoteEvent`, `RemoteGap` come from the bridge's
// subscriber task, `HolderIs`, `InstanceGone` from the bridge:
// `crate::cluster::messages`)

/// A command (already carrying `from_user`/`reply_to`) from an app on another instance.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct RemoteCommand {
    pub raw: String,
    /// A command's app connection and `id`: answered `robot_offline` if
    /// the robot leaves without a result. `None` for signaling frames and
    /// commands without an `id`.
    pub answer_for: Option<(ConnId, Box<serde_json::value::RawValue>)>,
}

/// A frame for app connection `conn`, if it is a member here.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeliverToMember {
    pub conn: ConnId,
    pub raw: String,
}

/// A REST call from another instance for our robot; answer goes to `back`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoteProxyRequest {
    pub request_id: String,
    pub frame: String,
    pub back: String,
}

/// The answer to a REST call we forwarded to another instance.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoteProxyResponse {
    pub request_id: String,
    pub reply: ProxyReply,
}

/// The robot connected to another instance: drop ours (4001) without publishing.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RobotReplacedElsewhere;
