//! [`Snapshot`]: a device's live state as apps see it (in `subscribed`)
//! and `/api/devices` lists it; rooms keep it, the cluster stores it in
//! Redis for other instances.

use serde::Serialize;
use serde_json::value::RawValue;

/// The live state of a device as `/api/devices` and `subscribed` show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub online: bool,
    pub mode: Option<serde_json::Value>,
    /// The last `mission_progress` data and `battery`, kept as the robot
    /// sent them: checked JSON, never parsed again (every progress event
    /// replaces `mission`, so this is on the hot path).
    pub mission: Option<Box<RawValue>>,
    pub battery: Option<Box<RawValue>>,
    pub last_seen: Option<i64>,
}
