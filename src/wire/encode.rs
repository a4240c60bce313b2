//! Every frame the relay writes to a robot or an app is built here and
//! nowhere else, as mini-redis's `Connection::write_frame` is the one place
//! its frames are written: callers say what to send, this module knows the
//! bytes. The unit tests below pin them, kind by kind.
//!
//! Two kinds of frame:
//! - the relay's own (`pong`, `error`, `subscribed`, `recovered`,
//!   `unsubscribed`, presence events, `webrtc_request`,
//!   `webrtc_credentials`, `webrtc_close`, `http_request`), built whole;
//! - frames it forwards with members of its own added (an event's
//!   envelope; a command's `from_user` and `reply_to`): these are
//!   **spliced** into the sender's raw text ([`splice`]). A robot's event is
//!   never parsed into a tree and written again: on the hot path it costs
//!   one copy into one allocation.

use super::error::{WireCode, WireError};
use super::frames::WebrtcStats;
use super::snapshot::Snapshot;
use crate::ids::{ConnId, DeviceId, SessionId, UserId};
use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// Keys the relay owns in an event envelope; a robot's own copies are dropped.
const ENVELOPE_KEYS: &[&str] = &["device_id", "epoch", "seq", "ts_ms"];
/// Keys the relay owns in a forwarded command.
const COMMAND_KEYS: &[&str] = &["from_user", "reply_to"];

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A device id encoded once as a JSON string literal, for the frames that
/// name the device (a room keeps one: every event it envelopes names it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceJson(String);

impl DeviceJson {
    pub fn new(device: &DeviceId) -> DeviceJson {
        DeviceJson(json_str(device.as_str()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `pong`, the answer to an application-level `ping`.
pub fn pong(ts_ms: i64) -> String {
    format!("{{\"type\":\"pong\",\"ts_ms\":{ts_ms}}}")
}

/// `error`: code, message and, when the offending frame had an `id`, `ref`.
pub fn error(e: &WireError) -> String {
    #[derive(Serialize)]
    struct Frame<'a> {
        #[serde(rename = "type")]
        ty: &'static str,
        code: WireCode,
        message: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a RawValue>,
    }
    serde_json::to_string(&Frame {
        ty: "error",
        code: e.code,
        message: &e.message,
        reference: e.reference.as_deref(),
    })
    .unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"error"}"#.into())
}

/// A robot's event as apps get it: its raw text with the relay's envelope
/// (`device_id`, `epoch`, `seq`, `ts_ms`) spliced in; `strip` when the
/// robot wrote envelope keys itself (they are dropped).
pub fn event(
    raw: &str,
    strip: bool,
    device: &DeviceJson,
    epoch: i64,
    seq: u64,
    ts_ms: i64,
) -> ByteString {
    let envelope = format!(
        "\"device_id\":{},\"epoch\":{epoch},\"seq\":{seq},\"ts_ms\":{ts_ms}",
        device.0
    );
    ByteString::from(splice(raw, ENVELOPE_KEYS, strip, &envelope))
}

/// A presence event: the robot connected (to `instance`) or disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence<'a> {
    Connected { instance: &'a str },
    Disconnected { reason: &'a str },
}

impl Presence<'_> {
    /// The event before its envelope: the robot's home numbers it and
    /// envelopes it like any event of the robot's ([`event`]).
    pub fn raw(self, timestamp: i64) -> String {
        match self {
            Presence::Connected { instance } => format!(
                "{{\"type\":\"event\",\"event\":\"robot_connected\",\"timestamp\":{timestamp},\"instance\":{}}}",
                json_str(instance)
            ),
            Presence::Disconnected { reason } => format!(
                "{{\"type\":\"event\",\"event\":\"robot_disconnected\",\"timestamp\":{timestamp},\"reason\":{}}}",
                json_str(reason)
            ),
        }
    }

    /// The event as only a mirror knows it (read from presence, not sent by
    /// the home): enveloped with the last numbered event's `epoch` and
    /// `seq`, and marked `"unnumbered":true` (it is not one of the stream's
    /// events and not kept for recovery).
    pub fn unnumbered(
        self,
        timestamp: i64,
        device: &DeviceJson,
        epoch: i64,
        seq: u64,
        ts_ms: i64,
    ) -> ByteString {
        let envelope = format!(
            "\"device_id\":{},\"epoch\":{epoch},\"seq\":{seq},\"ts_ms\":{ts_ms},\"unnumbered\":true",
            device.0
        );
        ByteString::from(splice(&self.raw(timestamp), &[], false, &envelope))
    }
}

/// A command (or signaling frame) from app connection `conn` of `user`,
/// for the robot: its raw text with `from_user` and `reply_to` spliced in.
/// `spoofed`: the app set either itself; its values are dropped.
pub fn command(raw: &str, spoofed: bool, user: &UserId, conn: &ConnId) -> String {
    let extra = format!(
        "\"from_user\":{},\"reply_to\":{}",
        json_str(user.as_str()),
        json_str(conn.as_str())
    );
    splice(raw, COMMAND_KEYS, spoofed, &extra)
}

/// `subscribed`: the device's state when an app subscribes.
pub fn subscribed(device: &DeviceId, snapshot: &Snapshot, epoch: i64, seq: u64) -> String {
    json!({
        "type": "subscribed",
        "device_id": device,
        "robot_online": snapshot.online,
        "epoch": epoch,
        "seq": seq,
        "snapshot": {
            "mode": snapshot.mode,
            "mission": snapshot.mission,
            "battery": snapshot.battery,
        },
    })
    .to_string()
}

/// Why events may have been lost (`recovered{complete:false,reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Events between two the app got are gone.
    Gap,
    /// The device's numbering started again (a new epoch).
    EpochChanged,
}

impl Loss {
    pub fn as_str(self) -> &'static str {
        match self {
            Loss::Gap => "gap",
            Loss::EpochChanged => "epoch_changed",
        }
    }
}

/// `recovered` after a replay: `complete` when nothing asked for was missing.
pub fn recovered(device: &DeviceJson, complete: bool) -> String {
    format!(
        "{{\"type\":\"recovered\",\"device_id\":{},\"complete\":{complete}}}",
        device.0
    )
}

/// `recovered{complete:false}` with the reason events were lost.
pub fn lost(device: &DeviceJson, loss: Loss) -> String {
    format!(
        "{{\"type\":\"recovered\",\"device_id\":{},\"complete\":false,\"reason\":{}}}",
        device.0,
        json_str(loss.as_str())
    )
}

/// `unsubscribed`: the app asked (`reason` None), or the relay ended the
/// subscription (`device_deleted`, `device_unavailable`).
pub fn unsubscribed(device: &DeviceJson, reason: Option<&str>) -> String {
    match reason {
        None => format!("{{\"type\":\"unsubscribed\",\"device_id\":{}}}", device.0),
        Some(reason) => format!(
            "{{\"type\":\"unsubscribed\",\"device_id\":{},\"reason\":{}}}",
            device.0,
            json_str(reason)
        ),
    }
}

/// What a `webrtc_request` / `webrtc_credentials` starts: a new session,
/// or an ICE restart of one (`"ice_restart":true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    New,
    IceRestart,
}

/// Robot ← `webrtc_request`: a session for `from_user`, with TURN credentials.
pub fn webrtc_request(
    session: &SessionId,
    device: &DeviceId,
    from_user: &UserId,
    credentials: &Value,
    setup: Setup,
) -> String {
    let mut v = json!({
        "type": "webrtc_request",
        "session_id": session.as_str(),
        "device_id": device.as_str(),
        "from_user": from_user,
        "turn_credentials": credentials,
    });
    if setup == Setup::IceRestart {
        v["ice_restart"] = Value::Bool(true);
    }
    v.to_string()
}

/// App ← `webrtc_credentials`: the session's id and TURN credentials.
pub fn webrtc_credentials(
    session: &SessionId,
    device: &DeviceId,
    credentials: &Value,
    setup: Setup,
) -> String {
    let mut v = json!({
        "type": "webrtc_credentials",
        "session_id": session.as_str(),
        "device_id": device.as_str(),
        "credentials": credentials,
    });
    if setup == Setup::IceRestart {
        v["ice_restart"] = Value::Bool(true);
    }
    v.to_string()
}

/// The relay's own `webrtc_close` to a session's surviving end.
pub fn webrtc_close(session: &SessionId, reason: &str) -> String {
    json!({"type": "webrtc_close", "session_id": session.as_str(), "reason": reason}).to_string()
}

/// A robot's `webrtc_stats` as read, for the session's owner instance.
pub fn webrtc_stats(stats: &WebrtcStats) -> String {
    json!({"type": "webrtc_stats", "session_id": stats.session_id,
        "connection_type": stats.connection_type, "rtt_ms": stats.rtt_ms})
    .to_string()
}

/// Robot ← `http_request`: a proxied REST call. `query` and `body` are
/// JSON text (the query's parameters as an object; the body as sent, or
/// `null`).
pub fn http_request(request_id: &str, method: &str, path: &str, query: &str, body: &str) -> String {
    format!(
        "{{\"type\":\"http_request\",\"request_id\":{},\"method\":{},\"path\":{},\"query\":{query},\"body\":{body}}}",
        json_str(request_id),
        json_str(method),
        json_str(path),
    )
}

/// Returns `raw` (a JSON object) with the keys in `drop` removed and `extra`
/// (already-encoded `"key":value` pairs, comma-separated) appended. When
/// nothing is dropped the original text is kept byte for byte and the new
/// members are spliced in before the closing brace.
pub fn splice(raw: &str, drop: &[&str], must_drop: bool, extra: &str) -> String {
    let raw = raw.trim();
    if !must_drop {
        let mut out = String::with_capacity(raw.len() + extra.len() + 1);
        // `raw` parsed as an object, so it ends with '}' and is not empty.
        out.push_str(&raw[..raw.len() - 1]);
        if raw[..raw.len() - 1].trim_end() != "{" {
            out.push(',');
        }
        out.push_str(extra);
        out.push('}');
        return out;
    }
    // Rare path: rebuild from the members, raw values untouched.
    let members: Vec<(String, Box<RawValue>)> = match serde_json::from_str::<OrderedRaw>(raw) {
        Ok(m) => m.0,
        Err(_) => Vec::new(),
    };
    let mut out = String::with_capacity(raw.len() + extra.len());
    out.push('{');
    let mut first = true;
    for (k, v) in members.iter().filter(|(k, _)| !drop.contains(&k.as_str())) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&serde_json::to_string(k).unwrap_or_else(|_| "\"\"".into()));
        out.push(':');
        out.push_str(v.get());
    }
    if !first {
        out.push(',');
    }
    out.push_str(extra);
    out.push('}');
    out
}

/// An object's members in order, values raw.
struct OrderedRaw(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for OrderedRaw {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedRaw;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedRaw, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = map.next_entry::<String, Box<RawValue>>()? {
                    v.push((k, val));
                }
                Ok(OrderedRaw(v))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceId {
        DeviceId::parse("wimz-001").unwrap()
    }

    fn raw(s: &str) -> Option<Box<RawValue>> {
        RawValue::from_string(s.to_string()).ok()
    }

    #[test]
    fn pong_and_error() {
        assert_eq!(
            pong(1_700_000_000_123),
            r#"{"type":"pong","ts_ms":1700000000123}"#
        );
        let e = WireError::new(WireCode::NotOwner, "not your device");
        assert_eq!(
            error(&e),
            r#"{"type":"error","code":"not_owner","message":"not your device"}"#
        );
        assert_eq!(
            error(&e.with_ref(raw(r#"{"n":1}"#))),
            r#"{"type":"error","code":"not_owner","message":"not your device","ref":{"n":1}}"#
        );
        assert_eq!(
            WireError::robot_offline().to_frame(),
            r#"{"type":"error","code":"robot_offline","message":"the robot is offline"}"#
        );
    }

    #[test]
    fn an_event_keeps_the_robots_bytes_and_gets_the_envelope() {
        let d = DeviceJson::new(&device());
        let sent = r#"{"type":"event", "event":"battery","data":{"level":80.50}}"#;
        assert_eq!(
            event(sent, false, &d, 1_700_000_000_000, 7, 1_700_000_000_123).as_ref() as &str,
            r#"{"type":"event", "event":"battery","data":{"level":80.50},"device_id":"wimz-001","epoch":1700000000000,"seq":7,"ts_ms":1700000000123}"#
        );
        // The robot's own envelope keys are dropped, everything else kept raw.
        let spoofed = r#"{"type":"event","seq":99,"event":"x","device_id":"other","data":[1.0]}"#;
        assert_eq!(
            event(spoofed, true, &d, 5, 1, 9).as_ref() as &str,
            r#"{"type":"event","event":"x","data":[1.0],"device_id":"wimz-001","epoch":5,"seq":1,"ts_ms":9}"#
        );
    }

    #[test]
    fn presence_events_numbered_and_not() {
        let up = Presence::Connected {
            instance: "relay-a",
        };
        let down = Presence::Disconnected { reason: "replaced" };
        assert_eq!(
            up.raw(1_700_000_000),
            r#"{"type":"event","event":"robot_connected","timestamp":1700000000,"instance":"relay-a"}"#
        );
        assert_eq!(
            down.raw(1_700_000_000),
            r#"{"type":"event","event":"robot_disconnected","timestamp":1700000000,"reason":"replaced"}"#
        );
        let d = DeviceJson::new(&device());
        let lost = Presence::Disconnected {
            reason: "instance_lost",
        };
        assert_eq!(
            lost.unnumbered(1_700_000_000, &d, 5, 12, 1_700_000_000_123)
                .as_ref() as &str,
            r#"{"type":"event","event":"robot_disconnected","timestamp":1700000000,"reason":"instance_lost","device_id":"wimz-001","epoch":5,"seq":12,"ts_ms":1700000000123,"unnumbered":true}"#
        );
        assert_eq!(
            up.unnumbered(1_700_000_000, &d, 5, 12, 1_700_000_000_123)
                .as_ref() as &str,
            r#"{"type":"event","event":"robot_connected","timestamp":1700000000,"instance":"relay-a","device_id":"wimz-001","epoch":5,"seq":12,"ts_ms":1700000000123,"unnumbered":true}"#
        );
    }

    #[test]
    fn a_command_gets_who_sent_it() {
        let user = UserId::from_stored("u-1");
        let conn = ConnId::from_wire("relay-a.3");
        assert_eq!(
            command(
                r#"{"type":"command","device_id":"wimz-001","id":"c1","command":"sit"}"#,
                false,
                &user,
                &conn
            ),
            r#"{"type":"command","device_id":"wimz-001","id":"c1","command":"sit","from_user":"u-1","reply_to":"relay-a.3"}"#
        );
        assert_eq!(
            command(
                r#"{"type":"command","from_user":"admin","command":"sit","reply_to":"x"}"#,
                true,
                &user,
                &conn
            ),
            r#"{"type":"command","command":"sit","from_user":"u-1","reply_to":"relay-a.3"}"#
        );
    }

    #[test]
    fn subscribed_recovered_unsubscribed() {
        let snapshot = Snapshot {
            online: true,
            mode: Some(json!("training")),
            mission: raw(r#"{"stage":3}"#),
            battery: raw(r#"{"level":80}"#),
            last_seen: Some(1),
        };
        assert_eq!(
            subscribed(&device(), &snapshot, 1_700_000_000_000, 7),
            r#"{"device_id":"wimz-001","epoch":1700000000000,"robot_online":true,"seq":7,"snapshot":{"battery":{"level":80},"mission":{"stage":3},"mode":"training"},"type":"subscribed"}"#
        );
        assert_eq!(
            subscribed(&device(), &Snapshot::default(), 3, 0),
            r#"{"device_id":"wimz-001","epoch":3,"robot_online":false,"seq":0,"snapshot":{"battery":null,"mission":null,"mode":null},"type":"subscribed"}"#
        );
        let d = DeviceJson::new(&device());
        assert_eq!(
            recovered(&d, true),
            r#"{"type":"recovered","device_id":"wimz-001","complete":true}"#
        );
        assert_eq!(
            recovered(&d, false),
            r#"{"type":"recovered","device_id":"wimz-001","complete":false}"#
        );
        assert_eq!(
            lost(&d, Loss::Gap),
            r#"{"type":"recovered","device_id":"wimz-001","complete":false,"reason":"gap"}"#
        );
        assert_eq!(
            lost(&d, Loss::EpochChanged),
            r#"{"type":"recovered","device_id":"wimz-001","complete":false,"reason":"epoch_changed"}"#
        );
        assert_eq!(
            unsubscribed(&d, None),
            r#"{"type":"unsubscribed","device_id":"wimz-001"}"#
        );
        assert_eq!(
            unsubscribed(&d, Some("device_deleted")),
            r#"{"type":"unsubscribed","device_id":"wimz-001","reason":"device_deleted"}"#
        );
    }

    #[test]
    fn webrtc_frames() {
        let session = SessionId::from_wire("s-relay-a.1");
        let user = UserId::from_stored("u-1");
        let creds = json!({"urls": ["turn:127.0.0.1:3478"], "username": "u", "credential": "c"});
        assert_eq!(
            webrtc_request(&session, &device(), &user, &creds, Setup::New),
            r#"{"device_id":"wimz-001","from_user":"u-1","session_id":"s-relay-a.1","turn_credentials":{"credential":"c","urls":["turn:127.0.0.1:3478"],"username":"u"},"type":"webrtc_request"}"#
        );
        assert_eq!(
            webrtc_request(&session, &device(), &user, &creds, Setup::IceRestart),
            r#"{"device_id":"wimz-001","from_user":"u-1","ice_restart":true,"session_id":"s-relay-a.1","turn_credentials":{"credential":"c","urls":["turn:127.0.0.1:3478"],"username":"u"},"type":"webrtc_request"}"#
        );
        assert_eq!(
            webrtc_credentials(&session, &device(), &creds, Setup::New),
            r#"{"credentials":{"credential":"c","urls":["turn:127.0.0.1:3478"],"username":"u"},"device_id":"wimz-001","session_id":"s-relay-a.1","type":"webrtc_credentials"}"#
        );
        assert_eq!(
            webrtc_credentials(&session, &device(), &creds, Setup::IceRestart),
            r#"{"credentials":{"credential":"c","urls":["turn:127.0.0.1:3478"],"username":"u"},"device_id":"wimz-001","ice_restart":true,"session_id":"s-relay-a.1","type":"webrtc_credentials"}"#
        );
        assert_eq!(
            webrtc_close(&session, "timeout"),
            r#"{"reason":"timeout","session_id":"s-relay-a.1","type":"webrtc_close"}"#
        );
        let stats = WebrtcStats {
            session_id: session.clone(),
            connection_type: Some("relay".into()),
            rtt_ms: Some(12.5),
        };
        assert_eq!(
            webrtc_stats(&stats),
            r#"{"connection_type":"relay","rtt_ms":12.5,"session_id":"s-relay-a.1","type":"webrtc_stats"}"#
        );
        let empty = WebrtcStats {
            session_id: session,
            connection_type: None,
            rtt_ms: None,
        };
        assert_eq!(
            webrtc_stats(&empty),
            r#"{"connection_type":null,"rtt_ms":null,"session_id":"s-relay-a.1","type":"webrtc_stats"}"#
        );
    }

    #[test]
    fn http_request_frame() {
        assert_eq!(
            http_request(
                "r-1",
                "POST",
                "/missions/start",
                r#"{"a":"1"}"#,
                r#"{"mission":"sit"}"#
            ),
            r#"{"type":"http_request","request_id":"r-1","method":"POST","path":"/missions/start","query":{"a":"1"},"body":{"mission":"sit"}}"#
        );
        assert_eq!(
            http_request("r-2", "GET", "/mode", "{}", "null"),
            r#"{"type":"http_request","request_id":"r-2","method":"GET","path":"/mode","query":{},"body":null}"#
        );
    }

    #[test]
    fn splice_appends_or_rebuilds() {
        let raw = r#"{"type":"event","event":"x","data":{"a":1}}"#;
        assert_eq!(
            splice(raw, &["seq"], false, r#""seq":5"#),
            r#"{"type":"event","event":"x","data":{"a":1},"seq":5}"#
        );
        let spoof = r#"{"type":"event","seq":99,"event":"x"}"#;
        let out = splice(spoof, &["seq"], true, r#""seq":5"#);
        assert_eq!(out, r#"{"type":"event","event":"x","seq":5}"#);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["seq"], 5);
        // An empty object: no comma, the (trimmed) text kept as it was.
        assert_eq!(splice("{ }", &[], false, r#""a":1"#), r#"{ "a":1}"#);
    }
}
