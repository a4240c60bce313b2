//! Messages to the [`ClusterBridge`](super::ClusterBridge), between
//! instances ([`Directed`]), and from the bridge up to this instance: to a
//! mirror room ([`RemoteEvent`], [`RemoteGap`] from the subscriber task,
//! [`HolderIs`], [`InstanceGone`], through the [`Mirror`] its `Watch`
//! gave), and what other instances sent to its rooms
//! ([`ForRooms`]) and its session supervisor ([`ForSessions`]), through the
//! [`Upstream`] the bridge is built with. The bridge knows the actors above
//! it only through these recipients.

use crate::ids::{ConnId, DeviceId};
use crate::wire::Snapshot;
use actix::prelude::*;
use bytestring::ByteString;
use serde::{Deserialize, Serialize};

/// The robot of `device` connected here: take the device over.
#[derive(Message)]
#[rtype(result = "Result<Claimed, ()>")]
pub struct Claim {
    pub device: DeviceId,
}

/// What a claim found.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The instance that held the robot before (not us), if any.
    pub previous: Option<String>,
    /// Last appended `(epoch, seq)`, to continue from.
    pub last: Option<(i64, u64)>,
}

/// The robot of `device` left this instance.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Release {
    pub device: DeviceId,
}

/// Append an enveloped event to the device's stream and publish it.
#[derive(Message)]
#[rtype(result = "AppendResult")]
pub struct Append {
    pub device: DeviceId,
    pub expected: Option<(i64, u64)>,
    pub epoch: i64,
    pub seq: u64,
    pub frame: ByteString,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendResult {
    /// Appended and published; the ticket lets the room append the next
    /// events on its [`Lane`](super::Lane) while it holds.
    Ok(super::Ticket),
    /// Another instance holds the robot now.
    Fenced,
    /// The stream does not continue from `expected`: start a new epoch.
    Broken,
    /// Redis unreachable.
    Down,
}

/// A lane append of `device` failed (refused, or Redis did not answer):
/// its term must be proven again before the bridge's next fast append.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unprove {
    pub device: DeviceId,
}

/// Mirror `device` here: subscribe to its events and return its state.
#[derive(Message)]
#[rtype(result = "Option<SyncState>")]
pub struct Watch {
    pub device: DeviceId,
    pub mirror: Mirror,
    /// The room's epoch, reserved for the device if it has none yet.
    pub epoch: i64,
}

/// A device's cluster state, read when a mirror starts.
#[derive(Debug, Clone, Default)]
pub struct SyncState {
    pub last: Option<(i64, u64)>,
    pub frames: Vec<(i64, u64, ByteString)>,
    /// Instance holding the robot, if not us.
    pub holder: Option<String>,
    pub snapshot: Snapshot,
}

/// Stop mirroring `device` (its room retired, or its robot came here).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unwatch {
    pub device: DeviceId,
    /// The mirror that watched (a newer room's watch is kept).
    pub mirror: Mirror,
}

/// Send a message to another instance. Answers true if that instance
/// received it (is subscribed to its channel); false if Redis failed or the
/// instance is not there.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct SendDirected {
    pub instance: String,
    pub msg: Directed,
}

/// Cluster-wide presence and snapshot of a device, for `/api/devices`.
#[derive(Message)]
#[rtype(result = "Option<Snapshot>")]
pub struct DeviceStatus {
    pub device: DeviceId,
}

/// Sum of every live instance's `/stats`.
#[derive(Message)]
#[rtype(result = "Option<serde_json::Value>")]
pub struct ClusterTotals;

/// From the subscriber task. (A mirrored device's events and gaps go
/// from the subscriber to its mirror room directly, not through here.)
#[derive(Message)]
#[rtype(result = "()")]
pub enum Incoming {
    Directed(String),
    Up,
    Down,
}

/// Instance-to-instance messages on `wimz:inst:{<id>}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Directed {
    /// A command for the robot held by the receiving instance.
    Cmd { d: DeviceId, c: String, raw: String },
    /// A frame for app connection `c` (command result or error).
    Res { d: DeviceId, c: String, raw: String },
    /// The receiving instance's robot for `d` was replaced elsewhere.
    Replaced { d: DeviceId },
    /// A signaling frame from the robot of `d` on instance `from`, for a
    /// WebRTC session the receiving instance owns.
    RobotSig {
        from: String,
        d: DeviceId,
        raw: String,
    },
    /// Device `d` was deleted (on another instance): drop its robot and sessions.
    Deleted { d: DeviceId },
    /// Instance `i` stopped (on `wimz:{all}`): a robot its claims still named
    /// is gone from it now, not once the claim would have expired.
    Gone { i: String },
    /// The secret of `d` was rotated (on any instance): a robot of `d`
    /// connected here with the old one is closed (it re-reads the store).
    Rotated { d: DeviceId },
    /// A REST call for the robot held by the receiving instance; answer to `back`.
    ProxyReq {
        d: DeviceId,
        r: String,
        frame: String,
        back: String,
    },
    /// The answer to `ProxyReq` `r` (`status` None: the robot is not there).
    /// (`body` is the robot's JSON as text: tagged enums cannot hold raw values.)
    ProxyRes {
        d: DeviceId,
        r: String,
        status: Option<u16>,
        body: Option<String>,
    },
}

/// Take a cluster-wide WebRTC session slot for `device` (limit `max`).
#[derive(Message)]
#[rtype(result = "SlotAnswer")]
pub struct SessionSlot {
    pub device: DeviceId,
    pub session: String,
    pub max: usize,
    pub stale_after_s: u64,
}

/// What [`SessionSlot`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotAnswer {
    Taken,
    /// The device is at its cluster-wide limit.
    Full,
    /// Redis cannot be asked (pub/sub known down: not even tried): degraded,
    /// the per-instance limit still holds, and robots on other instances
    /// cannot be reached.
    Down,
}

/// Session slots (device, session id) this instance holds.
#[derive(Message)]
#[rtype(result = "()")]
pub enum SessionSlots {
    /// Still in use: marked fresh now (a device's set of slots expires
    /// `stale_after_s` after its last refresh).
    Refresh {
        slots: Vec<(DeviceId, String)>,
        stale_after_s: u64,
    },
    /// Ended (or never started): given back at once.
    GiveBack { slots: Vec<(DeviceId, String)> },
}

/// Shutdown begins: mark every device whose robot is here as being handed
/// off (`wimz:{<device>}:handoff`, for `ttl`), so an instance its robot
/// reconnects to waits for our last events before taking it over.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BeginHandOff {
    pub ttl: std::time::Duration,
}

/// Shutdown, after the rooms drained: from now on nothing is appended for
/// this instance; claims still ours are deleted, and every instance is told
/// we are gone ([`Directed::Gone`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FinishHandOff;

/// Tell every other instance that a device was deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BroadcastDeleted {
    pub device: DeviceId,
}

/// Tell every instance that a device's secret was rotated.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BroadcastRotated {
    pub device: DeviceId,
}

// ---- from the bridge to a mirror room -----------------------------------------

/// An event numbered by the robot's instance (this room mirrors the device).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoteEvent {
    pub epoch: i64,
    pub seq: u64,
    pub frame: ByteString,
    /// When this instance read it from Redis (`wimz_mirror_routing_seconds`).
    pub read: std::time::Instant,
}

/// Events `from..=to` of `epoch` could not be recovered from Redis.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoteGap {
    pub epoch: i64,
    pub from: u64,
    pub to: u64,
}

/// Which other instance holds this device's robot now (None: no one).
#[derive(Message)]
#[rtype(result = "()")]
pub struct HolderIs {
    pub holder: Option<String>,
    /// When the read started: a read older than the room's last presence
    /// change is stale and ignored.
    pub read_at: std::time::Instant,
}

/// Instance `instance` stopped (shutdown, `Directed::Gone`): if it held this
/// device's robot, the robot is gone from it (it would otherwise be noticed
/// when its claim expires).
#[derive(Message)]
#[rtype(result = "()")]
pub struct InstanceGone {
    pub instance: String,
}

/// A room mirroring a device, as the bridge reaches it (given with
/// [`Watch`]). Equal when it is the same room.
#[derive(Clone, PartialEq, Eq)]
pub struct Mirror {
    pub events: Recipient<RemoteEvent>,
    pub gaps: Recipient<RemoteGap>,
    pub holder: Recipient<HolderIs>,
    pub gone: Recipient<InstanceGone>,
}

impl Mirror {
    /// The room is still there.
    pub fn connected(&self) -> bool {
        self.events.connected()
    }
}

// ---- from the bridge up: what other instances sent ----------------------------

/// A message from another instance for a device's room here, handed to the
/// instance's directory (which finds the room). Decoded from [`Directed`].
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum ForRooms {
    /// `Directed::Cmd`: a frame (command or signaling) for our robot of
    /// `device`, from app connection `conn` on another instance.
    Command {
        device: DeviceId,
        conn: ConnId,
        raw: String,
    },
    /// `Directed::Res`: a frame for app connection `conn`, a member here.
    Result {
        device: DeviceId,
        conn: ConnId,
        raw: String,
    },
    /// `Directed::ProxyReq`: a REST call for our robot; answer to `back`.
    ProxyRequest {
        device: DeviceId,
        request_id: String,
        frame: String,
        back: String,
    },
    /// `Directed::ProxyRes`: the answer to a REST call we forwarded
    /// (`status` None: the robot is not there).
    ProxyResponse {
        device: DeviceId,
        request_id: String,
        status: Option<u16>,
        body: Option<String>,
    },
    /// `Directed::Replaced`: our robot of `device` connected elsewhere.
    Replaced { device: DeviceId },
    /// `Directed::Deleted`: the device was deleted.
    Deleted { device: DeviceId },
    /// `Directed::Rotated`: the device's secret was rotated.
    Rotated { device: DeviceId },
}

/// A message from another instance for this instance's session supervisor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum ForSessions {
    /// `Directed::RobotSig`: a signaling frame from the robot of `device`
    /// on instance `from`, for a session owned here.
    RobotSignal {
        from: String,
        device: DeviceId,
        raw: String,
    },
    /// `Directed::Deleted`: the device was deleted; its sessions end.
    Deleted { device: DeviceId },
}

/// Where the bridge hands what it receives from other instances: the
/// actors above it, known only as recipients (their mailboxes are made
/// before the bridge: see `startup`).
#[derive(Clone)]
pub struct Upstream {
    /// The instance's directory.
    pub rooms: Recipient<ForRooms>,
    /// The instance's session supervisor.
    pub sessions: Recipient<ForSessions>,
}
