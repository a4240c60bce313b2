//! Redis key and channel names (ARCHITECTURE.md "The cluster" lists them).

use crate::ids::DeviceId;

/// Which instance holds the device's robot; `EX cluster.presence_ttl_s`.
pub fn presence(d: &DeviceId) -> String {
    format!("wimz:presence:{d}")
}
/// Set (to the holder's id, with a TTL of its shutdown budget) while the
/// holder of the device's robot is stopping and still appending its last
/// events: a claim from another instance waits until it is gone.
pub fn handoff(d: &DeviceId) -> String {
    format!("wimz:handoff:{d}")
}
/// `"<epoch>:<seq>"` of the last event appended for the device.
pub fn last(d: &DeviceId) -> String {
    format!("wimz:last:{d}")
}
/// Capped stream of the device's enveloped events (`e`, `s`, `f` fields).
pub fn stream(d: &DeviceId) -> String {
    format!("wimz:stream:{d}")
}
/// Hash of the device's snapshot (`mode`, `mission`, `battery` as JSON).
pub fn snapshot(d: &DeviceId) -> String {
    format!("wimz:snap:{d}")
}
/// Pub/sub channel of the device's events: `"<epoch> <seq> <frame>"`.
pub fn device_channel(d: &DeviceId) -> String {
    format!("wimz:dev:{d}")
}
/// Pub/sub channel of messages for one instance (JSON `Directed`).
pub fn instance_channel(instance: &str) -> String {
    format!("wimz:inst:{instance}")
}
/// Pub/sub channel every instance listens on (JSON `Directed`).
pub const ALL: &str = "wimz:all";
/// This instance's `/stats` numbers, JSON, with a short TTL.
pub fn stats(instance: &str) -> String {
    format!("wimz:stats:{instance}")
}
/// Set of instance ids that have reported stats.
pub const INSTANCES: &str = "wimz:instances";
/// WebRTC session slots of a device (sorted set: session id -> last refresh).
pub fn sessions(d: &DeviceId) -> String {
    format!("wimz:sessions:{d}")
}
/// Used device signatures (`SET NX EX`).
pub fn signature(key: &str) -> String {
    format!("wimz:sig:{key}")
}
