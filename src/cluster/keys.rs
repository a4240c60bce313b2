//! Redis key and channel names (ARCHITECTURE.md "The cluster" lists them).
//!
//! Everything about one device carries the hash tag `{<device>}`, so in a
//! Redis Cluster its stream, presence, hand-off mark, snapshot, session
//! slots and event channel sit in one slot (one shard): the event pipeline
//! (`XADD` + `SPUBLISH`) and every script touch one node. A device id cannot hold `{`
//! or `}` (`DeviceId::parse`), so the tag is exactly the id. Each instance's
//! channel is tagged by the instance, `wimz:{all}` has its own tag.

use crate::ids::DeviceId;

/// Which instance holds the device's robot; `EX cluster.presence_ttl_s`.
pub fn presence(d: &DeviceId) -> String {
    format!("wimz:{{{d}}}:presence")
}
/// Set (to the holder's id, with a TTL of its shutdown budget) while the
/// holder of the device's robot is stopping and still appending its last
/// events: a claim from another instance waits until it is gone. Tagged
/// like the presence key, so the claim script reads it on the same shard.
pub fn handoff(d: &DeviceId) -> String {
    format!("wimz:{{{d}}}:handoff")
}
/// Capped stream of the device's numbered events. Entry ids are
/// `<term>-<seq>` (set explicitly, so `XADD` itself refuses an id that does
/// not follow the last); fields `e` (epoch) and `f` (the enveloped frame),
/// or `e` and `m` for a marker (a claim or a reserved epoch, no event).
pub fn stream(d: &DeviceId) -> String {
    format!("wimz:{{{d}}}:stream")
}
/// Hash of the device's snapshot (`mode`, `mission`, `battery` as JSON).
pub fn snapshot(d: &DeviceId) -> String {
    format!("wimz:{{{d}}}:snap")
}
/// Pub/sub channel of the device's events (sharded in a Redis Cluster):
/// see [`super::stream_ids::Published`].
pub fn device_channel(d: &DeviceId) -> String {
    format!("wimz:{{{d}}}:dev")
}
/// The device a [`device_channel`] name is for.
pub fn device_of_channel(channel: &str) -> Option<DeviceId> {
    let tagged = channel.strip_prefix("wimz:{")?.strip_suffix("}:dev")?;
    DeviceId::parse(tagged).ok()
}
/// Pub/sub channel of messages for one instance (JSON `Directed`).
pub fn instance_channel(instance: &str) -> String {
    format!("wimz:inst:{{{instance}}}")
}
/// Pub/sub channel every instance listens on (JSON `Directed`).
pub const ALL: &str = "wimz:{all}";
/// This instance's `/stats` numbers, JSON, with a short TTL.
pub fn stats(instance: &str) -> String {
    format!("wimz:stats:{instance}")
}
/// Set of instance ids that have reported stats.
pub const INSTANCES: &str = "wimz:instances";
/// WebRTC session slots of a device (sorted set: session id -> last refresh).
pub fn sessions(d: &DeviceId) -> String {
    format!("wimz:{{{d}}}:sessions")
}
/// Used device signatures (`SET NX EX`).
pub fn signature(key: &str) -> String {
    format!("wimz:sig:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_devices_keys_share_one_hash_tag() {
        let d = DeviceId::parse("wimz-001:a.b").unwrap();
        for k in [
            presence(&d),
            handoff(&d),
            stream(&d),
            snapshot(&d),
            device_channel(&d),
            sessions(&d),
        ] {
            assert!(k.contains("{wimz-001:a.b}"), "{k}");
            assert_eq!(k.matches('{').count(), 1, "{k}");
        }
        assert_eq!(device_of_channel(&device_channel(&d)), Some(d));
        assert_eq!(device_of_channel("wimz:inst:{A}"), None);
    }
}
