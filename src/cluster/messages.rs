//! Messages to the [`ClusterBridge`](super::ClusterBridge) and between instances.

use crate::ids::DeviceId;
use crate::room::DeviceRoom;
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
    Ok,
    /// Another instance holds the robot now.
    Fenced,
    /// The stream does not continue from `expected`: start a new epoch.
    Broken,
    /// Redis unreachable.
    Down,
}

/// Mirror `device` here: subscribe to its events and return its state.
#[derive(Message)]
#[rtype(result = "Option<SyncState>")]
pub struct Watch {
    pub device: DeviceId,
    pub room: Addr<DeviceRoom>,
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
    pub room: Addr<DeviceRoom>,
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

/// Store the device's snapshot for other instances.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SaveSnapshot {
    pub device: DeviceId,
    pub snapshot: Snapshot,
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

/// From the subscriber task.
#[derive(Message)]
#[rtype(result = "()")]
pub enum Incoming {
    Event {
        device: DeviceId,
        epoch: i64,
        seq: u64,
        frame: ByteString,
    },
    Gap {
        device: DeviceId,
        epoch: i64,
        from: u64,
        to: u64,
    },
    Directed(String),
    Up,
    Down,
}

/// Instance-to-instance messages on `wimz:inst:<id>`.
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

/// Start-up: where rooms are found.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetDirectory {
    pub directory: Addr<crate::room::Directory>,
    pub sessions: Addr<crate::webrtc::SessionSupervisor>,
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

/// Refresh (`keep`) or give back (`!keep`) session slots.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionSlots {
    pub slots: Vec<(DeviceId, String)>,
    pub keep: bool,
    pub stale_after_s: u64,
}

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
