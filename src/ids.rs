//! Newtype identifiers. Each one can only hold a valid value: device ids are
//! parsed at the edge (HTTP bodies, socket frames, query strings) and carried
//! typed everywhere after.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A robot's id, as its owner registered it: 1–64 of `[A-Za-z0-9_.:-]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DeviceId(Arc<str>);

impl DeviceId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 64 {
            return Err("device_id must be 1 to 64 characters".into());
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        {
            return Err("device_id may hold only letters, digits, '_', '-', '.', ':'".into());
        }
        Ok(DeviceId(Arc::from(s)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        DeviceId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.0)
    }
}

/// A user's id (a UUID string made at registration).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(Arc<str>);

impl UserId {
    pub fn new_random() -> Self {
        UserId(Arc::from(uuid::Uuid::new_v4().to_string()))
    }
    pub fn from_stored(s: &str) -> Self {
        UserId(Arc::from(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

/// One socket connection, unique across the cluster: `<instance>.<n>`.
/// Apps see it as `reply_to` on their commands.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnId(Arc<str>);

impl ConnId {
    pub fn new(instance: &str, n: u64) -> Self {
        ConnId(Arc::from(format!("{instance}.{n}")))
    }
    pub fn from_wire(s: &str) -> Self {
        ConnId(Arc::from(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The instance the connection lives on (before the last `.`).
    pub fn instance(&self) -> Option<&str> {
        self.0
            .rsplit_once('.')
            .map(|(i, _)| i)
            .filter(|i| !i.is_empty())
    }
}
impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({})", self.0)
    }
}

/// A WebRTC session id (random, unguessable).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(Arc<str>);

impl SessionId {
    pub fn new_random() -> Self {
        SessionId(Arc::from(format!("s-{}", uuid::Uuid::new_v4().simple())))
    }
    /// A new id owned by `instance`: `s.<instance>.<uuid>`, so the robot's
    /// instance knows where a session lives.
    pub fn new_on(instance: &str) -> Self {
        SessionId(Arc::from(format!(
            "s.{instance}.{}",
            uuid::Uuid::new_v4().simple()
        )))
    }
    /// The instance that owns the session, if the id names one.
    pub fn instance(&self) -> Option<&str> {
        self.0
            .strip_prefix("s.")
            .and_then(|r| r.rsplit_once('.'))
            .map(|(i, _)| i)
            .filter(|i| !i.is_empty())
    }
    pub fn from_wire(s: &str) -> Self {
        SessionId(Arc::from(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds now.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_are_checked() {
        assert!(DeviceId::parse("wimz-001").is_ok());
        assert!(DeviceId::parse("a.b:c_d").is_ok());
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse("has space").is_err());
        assert!(DeviceId::parse("../etc").is_err());
        assert!(DeviceId::parse(&"x".repeat(65)).is_err());
        let parsed: Result<DeviceId, _> = serde_json::from_str("\"a/b\"");
        assert!(parsed.is_err());
    }
}
