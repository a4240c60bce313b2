//! The frames the simulated clients send, and the one-pass reader of what
//! they receive.
//!
//! Every event carries, inside `data.lg`, the robot's own counter `n`
//! (1, 2, 3 ... per robot) and the send time `t` (Unix microseconds): the
//! receiving app checks loss, duplicates and order from `n` (and from the
//! relay's `seq`) and latency from `t`.

use serde::Deserialize;
use std::borrow::Cow;

/// Unix time in microseconds.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Builds `mission_progress`-shaped events of about `bytes` bytes.
#[derive(Debug, Clone)]
pub struct EventMaker {
    /// Padding that brings a frame to the requested size.
    pad: String,
}

const EVENT_HEAD: &str = r#"{"type":"event","event":"mission_progress","data":{"mission":"sit_training","status":"watching","stage":3,"total_stages":5,"dog":"rex","confidence":0.91,"treats_left":12"#;

impl EventMaker {
    pub fn new(bytes: usize) -> Self {
        // Counter and timestamp take ~25 bytes; the fixed parts the rest.
        let fixed = EVENT_HEAD.len() + r#","lg":{"n":1234,"t":1732250000000000},"note":""}}"#.len();
        EventMaker {
            pad: "x".repeat(bytes.saturating_sub(fixed)),
        }
    }

    /// Event number `n`, stamped now.
    pub fn event(&self, n: u64) -> String {
        format!(
            r#"{EVENT_HEAD},"lg":{{"n":{n},"t":{}}},"note":"{}"}}}}"#,
            now_us(),
            self.pad
        )
    }
}

/// `{"n","t"}` inside an event's or command's `data`.
#[derive(Debug, Deserialize)]
pub struct Stamp {
    pub n: u64,
    pub t: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct Data {
    #[serde(default)]
    pub lg: Option<Stamp>,
}

/// Any frame the relay sends, with only the fields the generator reads.
#[derive(Debug, Deserialize)]
pub struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    pub ty: Cow<'a, str>,
    #[serde(default, borrow)]
    pub event: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub device_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub epoch: Option<i64>,
    #[serde(default)]
    pub seq: Option<u64>,
    /// The relay's receive time (envelope), milliseconds.
    #[serde(default)]
    pub ts_ms: Option<u64>,
    #[serde(default)]
    pub data: Option<Data>,
    #[serde(default)]
    pub complete: Option<bool>,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub session_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub reply_to: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub message: Option<Cow<'a, str>>,
}

/// Parses a relay frame; `None` if it is not a JSON object with a `type`
/// or has fields of unexpected shapes (counted by the caller).
pub fn parse(text: &str) -> Option<Incoming<'_>> {
    serde_json::from_str(text).ok()
}

/// A JSON string literal.
pub fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_the_requested_size_and_read_back() {
        let m = EventMaker::new(300);
        let e = m.event(17);
        assert!((280..=320).contains(&e.len()), "{} bytes", e.len());
        let v = parse(&e).unwrap();
        assert_eq!(v.ty, "event");
        let lg = v.data.unwrap().lg.unwrap();
        assert_eq!(lg.n, 17);
        assert!(lg.t > 0);
    }
}
