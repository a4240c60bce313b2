//! The socket boundary's error: [`WireError`], the `code` ([`WireCode`]),
//! message and `ref` of an `{"type":"error",...}` frame (PROTOCOL.md §3).

use serde::Serialize;

/// The `code` of a socket `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WireCode {
    BadMessage,
    Unsupported,
    UnknownDevice,
    NotOwner,
    RobotOffline,
    UnknownSession,
    SessionLimit,
    RateLimited,
    NotSubscribed,
    Internal,
    /// `caps.app_sockets_per_device` reached (PROTOCOL.md Part 2 J).
    WatcherLimit,
}

/// A socket error to send back: code, message and the offending message's `id`.
#[derive(Debug, Clone)]
pub struct WireError {
    pub code: WireCode,
    pub message: String,
    pub reference: Option<Box<serde_json::value::RawValue>>,
}

impl WireError {
    pub fn new(code: WireCode, message: impl Into<String>) -> Self {
        WireError {
            code,
            message: message.into(),
            reference: None,
        }
    }

    /// `robot_offline` "the robot is offline": the device's robot cannot be
    /// reached (not connected, or its instance is gone).
    pub fn robot_offline() -> Self {
        WireError::new(WireCode::RobotOffline, "the robot is offline")
    }

    pub fn with_ref(mut self, reference: Option<Box<serde_json::value::RawValue>>) -> Self {
        self.reference = reference;
        self
    }

    /// The `{"type":"error",...}` frame ([`super::encode::error`]).
    pub fn to_frame(&self) -> String {
        super::encode::error(self)
    }
}
