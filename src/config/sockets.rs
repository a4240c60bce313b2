//! The sections about live sockets and the rooms they join: `[heartbeat]`,
//! `[limits]` (per connection), `[history]` (per room's recovery buffer)
//! and `[rooms]`.

use super::{at_least, seconds, ConfigError};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatSettings {
    pub interval_s: f64,
    pub timeout_s: f64,
}

impl Default for HeartbeatSettings {
    fn default() -> Self {
        HeartbeatSettings {
            interval_s: 30.0,
            timeout_s: 90.0,
        }
    }
}

impl HeartbeatSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        seconds("heartbeat.interval_s", self.interval_s)?;
        seconds("heartbeat.timeout_s", self.timeout_s)?;
        if self.timeout_s <= self.interval_s {
            return Err(ConfigError::new(
                "heartbeat.timeout_s",
                "must be longer than heartbeat.interval_s",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// A frame (refused at its header) or a fragmented message (as its
    /// fragments arrive) larger than this closes the socket with 1009.
    pub max_message_bytes: usize,
    /// Token bucket per connection: sustained rate...
    pub messages_per_s: f64,
    /// ...and burst size.
    pub messages_burst: f64,
    /// Frames queued to one peer before it counts as not reading and is closed.
    pub outbound_queue: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_message_bytes: 65_536,
            messages_per_s: 50.0,
            messages_burst: 200.0,
            outbound_queue: 1024,
        }
    }
}

impl LimitSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.messages_per_s.is_finite() && self.messages_per_s > 0.0) {
            return Err(ConfigError::new(
                "limits.messages_per_s",
                "must be a positive number",
            ));
        }
        if self.messages_burst < 1.0 {
            return Err(ConfigError::new(
                "limits.messages_burst",
                "must be at least 1",
            ));
        }
        at_least(
            "limits.max_message_bytes",
            self.max_message_bytes as u64,
            1024,
        )?;
        at_least("limits.outbound_queue", self.outbound_queue as u64, 1)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    /// Events kept per device for `since_seq` recovery.
    pub size: usize,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings { size: 512 }
    }
}

impl HistorySettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least("history.size", self.size as u64, 1)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomSettings {
    /// A room with no robot and no apps is stopped after this long (its
    /// recovery buffer goes with it; the next room starts a new epoch).
    pub idle_grace_s: f64,
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings {
            idle_grace_s: 300.0,
        }
    }
}

impl RoomSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        seconds("rooms.idle_grace_s", self.idle_grace_s)
    }
}
