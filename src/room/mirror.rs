//! What a [`DeviceRoom`](super::DeviceRoom) knows only while it mirrors a
//! device whose robot may be on another instance (clustered, not the home):
//! where the robot is, and how fresh that knowledge is. The room holds it as
//! `Option<MirrorState>`: `Some` from `watch` (it receives the device's
//! events from Redis) until it becomes the home, so a home or a room with no
//! cluster has none of it. `cluster_edge.rs` reads and writes it.

use std::time::Instant;

pub(super) struct MirrorState {
    /// The robot is online on another instance...
    pub(super) remote_online: bool,
    /// ...this one.
    pub(super) holder: Option<String>,
    /// When the mirror last learned the robot's presence from an event (or
    /// began mirroring: a presence read older than that is stale).
    pub(super) presence_changed: Instant,
    /// Apps were told `instance_lost` from presence alone; if presence shows
    /// a holder again before any numbered presence event, they are told
    /// `robot_connected` the same way.
    pub(super) announced_lost: bool,
}

impl MirrorState {
    /// Mirroring begins: the robot's presence is not known yet (the state
    /// read by `Watch` says).
    pub(super) fn new() -> Self {
        MirrorState {
            remote_online: false,
            holder: None,
            presence_changed: Instant::now(),
            announced_lost: false,
        }
    }

    /// The other instance holding the robot, if it is online there.
    pub(super) fn online_holder(&self) -> Option<&str> {
        self.holder.as_deref().filter(|_| self.remote_online)
    }
}
