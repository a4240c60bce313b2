//! Parse at the edge: a text frame becomes a [`RobotFrame`] or [`AppFrame`]
//! once, and routing code never looks at `"type"` again. Payloads stay raw
//! JSON text: the relay forwards what it was sent, adding only its own
//! fields (spliced in by [`super::encode`], never re-serialising the rest).

use crate::ids::{ConnId, DeviceId, SessionId};
use crate::wire::{WireCode, WireError};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// `type` and `id` of any frame, read first.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
}

fn head(text: &str) -> Result<Head<'_>, WireError> {
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        return Err(WireError::new(
            WireCode::BadMessage,
            "expected a JSON object",
        ));
    }
    serde_json::from_str::<Head>(trimmed).map_err(|e| {
        WireError::new(
            WireCode::BadMessage,
            format!("not a JSON object with a string \"type\": {e}"),
        )
    })
}

/// `type` and `id` (raw JSON) of a frame the relay built itself, e.g. one
/// another instance forwarded for our robot; `None` if it is not an object
/// with a string `type`.
pub(crate) fn type_and_id(text: &str) -> Option<(String, Option<Box<RawValue>>)> {
    head(text)
        .ok()
        .map(|h| (h.ty.into_owned(), h.id.map(|r| r.to_owned())))
}

fn body<'a, T: Deserialize<'a>>(
    text: &'a str,
    reference: &Option<Box<RawValue>>,
) -> Result<T, WireError> {
    serde_json::from_str(text.trim()).map_err(|e| {
        WireError::new(WireCode::BadMessage, format!("invalid message: {e}"))
            .with_ref(reference.clone())
    })
}

/// A robot event as received.
#[derive(Debug, Clone)]
pub struct EventIn {
    pub name: String,
    /// The `data` member, raw, if any (the room keeps snapshots from it).
    pub data: Option<Box<RawValue>>,
    /// The whole frame, raw.
    pub raw: String,
    /// True if the robot sent any envelope key itself; they are dropped.
    pub has_envelope_keys: bool,
}

/// A signaling message from either end, forwarded raw to the other.
#[derive(Debug, Clone)]
pub struct Signal {
    pub session_id: SessionId,
    pub raw: String,
}

/// What a robot may send.
#[derive(Debug)]
pub enum RobotFrame {
    Ping,
    Pong,
    Event(EventIn),
    CommandResult {
        reply_to: ConnId,
        /// The command's `id`, as sent (raw JSON).
        id: Option<Box<serde_json::value::RawValue>>,
        raw: String,
    },
    WebrtcOffer(Signal),
    WebrtcIce(Signal),
    WebrtcClose(Signal),
    WebrtcStats(WebrtcStats),
    HttpResponse(HttpResponseIn),
}

/// `webrtc_stats` from either end.
#[derive(Debug, Clone, Deserialize)]
pub struct WebrtcStats {
    pub session_id: SessionId,
    #[serde(default)]
    pub connection_type: Option<String>,
    #[serde(default)]
    pub rtt_ms: Option<f64>,
}

/// The robot's answer to a proxied REST call.
#[derive(Debug)]
pub struct HttpResponseIn {
    pub request_id: String,
    pub status: u16,
    pub body: Option<Box<RawValue>>,
}

/// What an app may send.
#[derive(Debug)]
pub enum AppFrame {
    Ping,
    Pong,
    Subscribe {
        device: DeviceId,
        since_seq: Option<u64>,
        epoch: Option<i64>,
    },
    Unsubscribe {
        device: DeviceId,
    },
    Command {
        device: DeviceId,
        raw: String,
        /// The app set `from_user`/`reply_to` itself; they are replaced.
        spoofed: bool,
    },
    WebrtcRequest {
        device: DeviceId,
        session_id: Option<SessionId>,
        ice_restart: bool,
    },
    WebrtcAnswer(Signal),
    WebrtcIce(Signal),
    WebrtcClose(Signal),
    WebrtcStats(WebrtcStats),
}

/// A parsed frame with the `id` it carried (for `ref` in errors).
pub struct Parsed<T> {
    pub frame: T,
    pub reference: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct EventBody<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    device_id: Option<IgnoredAny>,
    #[serde(default)]
    epoch: Option<IgnoredAny>,
    #[serde(default)]
    seq: Option<IgnoredAny>,
    #[serde(default)]
    ts_ms: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ReplyBody<'a> {
    #[serde(borrow)]
    reply_to: Cow<'a, str>,
}

#[derive(Deserialize)]
struct SessionBody<'a> {
    #[serde(borrow)]
    session_id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct HttpResponseBody<'a> {
    #[serde(borrow)]
    request_id: Cow<'a, str>,
    status: u16,
    #[serde(default)]
    body: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct DeviceBody {
    device_id: DeviceId,
    #[serde(default)]
    since_seq: Option<u64>,
    #[serde(default)]
    epoch: Option<i64>,
}

#[derive(Deserialize)]
struct CommandBody<'a> {
    device_id: DeviceId,
    #[serde(borrow)]
    #[allow(dead_code)]
    command: Cow<'a, str>,
    #[serde(default)]
    from_user: Option<IgnoredAny>,
    #[serde(default)]
    reply_to: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct WebrtcRequestBody {
    device_id: DeviceId,
    #[serde(default)]
    session_id: Option<SessionId>,
    #[serde(default)]
    ice_restart: bool,
}

fn signal(text: &str, reference: &Option<Box<RawValue>>) -> Result<Signal, WireError> {
    let b: SessionBody = body(text, reference)?;
    Ok(Signal {
        session_id: SessionId::from_wire(&b.session_id),
        raw: text.trim().to_string(),
    })
}

fn unsupported(ty: &str, reference: Option<Box<RawValue>>) -> WireError {
    WireError::new(
        WireCode::Unsupported,
        format!("unknown message type {ty:?}"),
    )
    .with_ref(reference)
}

/// Parses a robot's text frame.
pub fn parse_robot(text: &str) -> Result<Parsed<RobotFrame>, WireError> {
    let h = head(text)?;
    let reference = h.id.map(|r| r.to_owned());
    let frame = match h.ty.as_ref() {
        "ping" => RobotFrame::Ping,
        "pong" => RobotFrame::Pong,
        "event" => {
            let b: EventBody = body(text, &reference)?;
            RobotFrame::Event(EventIn {
                name: b.event.into_owned(),
                data: b.data,
                raw: text.trim().to_string(),
                has_envelope_keys: b.device_id.is_some()
                    || b.epoch.is_some()
                    || b.seq.is_some()
                    || b.ts_ms.is_some(),
            })
        }
        "command_result" => {
            let b: ReplyBody = body(text, &reference)?;
            RobotFrame::CommandResult {
                reply_to: ConnId::from_wire(&b.reply_to),
                id: reference.clone(),
                raw: text.trim().to_string(),
            }
        }
        "webrtc_offer" => RobotFrame::WebrtcOffer(signal(text, &reference)?),
        "webrtc_ice" => RobotFrame::WebrtcIce(signal(text, &reference)?),
        "webrtc_close" => RobotFrame::WebrtcClose(signal(text, &reference)?),
        "webrtc_stats" => RobotFrame::WebrtcStats(body(text, &reference)?),
        "http_response" => {
            let b: HttpResponseBody = body(text, &reference)?;
            RobotFrame::HttpResponse(HttpResponseIn {
                request_id: b.request_id.into_owned(),
                status: b.status,
                body: b.body,
            })
        }
        other => return Err(unsupported(other, reference)),
    };
    Ok(Parsed { frame, reference })
}

/// Parses an app's text frame.
pub fn parse_app(text: &str) -> Result<Parsed<AppFrame>, WireError> {
    let h = head(text)?;
    let reference = h.id.map(|r| r.to_owned());
    let frame = match h.ty.as_ref() {
        "ping" => AppFrame::Ping,
        "pong" => AppFrame::Pong,
        "subscribe" => {
            let b: DeviceBody = body(text, &reference)?;
            AppFrame::Subscribe {
                device: b.device_id,
                since_seq: b.since_seq,
                epoch: b.epoch,
            }
        }
        "unsubscribe" => {
            let b: DeviceBody = body(text, &reference)?;
            AppFrame::Unsubscribe {
                device: b.device_id,
            }
        }
        "command" => {
            let b: CommandBody = body(text, &reference)?;
            AppFrame::Command {
                device: b.device_id,
                raw: text.trim().to_string(),
                spoofed: b.from_user.is_some() || b.reply_to.is_some(),
            }
        }
        "webrtc_request" => {
            let b: WebrtcRequestBody = body(text, &reference)?;
            AppFrame::WebrtcRequest {
                device: b.device_id,
                session_id: b.session_id,
                ice_restart: b.ice_restart,
            }
        }
        "webrtc_answer" => AppFrame::WebrtcAnswer(signal(text, &reference)?),
        "webrtc_ice" => AppFrame::WebrtcIce(signal(text, &reference)?),
        "webrtc_close" => AppFrame::WebrtcClose(signal(text, &reference)?),
        "webrtc_stats" => AppFrame::WebrtcStats(body(text, &reference)?),
        other => return Err(unsupported(other, reference)),
    };
    Ok(Parsed { frame, reference })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode::splice;

    #[test]
    fn robot_event_parses_and_keeps_raw() {
        let t = r#"{"type":"event","event":"mission_progress","data":{"stage":3},"extra":[1,2]}"#;
        let p = parse_robot(t).unwrap();
        match p.frame {
            RobotFrame::Event(e) => {
                assert_eq!(e.name, "mission_progress");
                assert_eq!(e.data.unwrap().get(), r#"{"stage":3}"#);
                assert!(!e.has_envelope_keys);
                assert_eq!(e.raw, t);
            }
            _ => panic!("not an event"),
        }
    }

    #[test]
    fn bad_frames_are_bad_message_or_unsupported() {
        for bad in [
            "",
            "[]",
            "3",
            "{",
            r#"{"type":3}"#,
            r#"{"no":"type"}"#,
            "nul\u{0}",
        ] {
            assert_eq!(
                parse_robot(bad).err().unwrap().code,
                WireCode::BadMessage,
                "{bad:?}"
            );
            assert_eq!(
                parse_app(bad).err().unwrap().code,
                WireCode::BadMessage,
                "{bad:?}"
            );
        }
        let e = parse_app(r#"{"type":"fly","id":"x1"}"#).err().unwrap();
        assert_eq!(e.code, WireCode::Unsupported);
        assert_eq!(e.reference.unwrap().get(), "\"x1\"");
        let e = parse_app(r#"{"type":"subscribe","id":7}"#).err().unwrap();
        assert_eq!(e.code, WireCode::BadMessage);
        assert_eq!(e.reference.unwrap().get(), "7");
        let e = parse_app(r#"{"type":"subscribe","device_id":"../x"}"#)
            .err()
            .unwrap();
        assert_eq!(e.code, WireCode::BadMessage);
    }

    #[test]
    fn command_spoofing_detected() {
        let p =
            parse_app(r#"{"type":"command","device_id":"d1","command":"sit","from_user":"admin"}"#)
                .unwrap();
        match p.frame {
            AppFrame::Command { spoofed, .. } => assert!(spoofed),
            _ => panic!(),
        }
    }

    /// Hostile input never panics the parsers or the splicer: valid frames
    /// cut, flipped and recombined at random (seeded, so a failure repeats).
    #[test]
    fn random_and_mangled_frames_never_panic() {
        use rand::{Rng, SeedableRng};
        let seeds = [
            r#"{"type":"event","event":"mission_progress","data":{"stage":3},"seq":9}"#,
            r#"{"type":"command","device_id":"d1","id":"c","command":"sit","from_user":"x"}"#,
            r#"{"type":"subscribe","device_id":"d1","since_seq":5,"epoch":7}"#,
            r#"{"type":"webrtc_request","device_id":"d1","session_id":"s.a.b","ice_restart":true}"#,
            r#"{"type":"webrtc_stats","session_id":"s","connection_type":"relay","rtt_ms":1e308}"#,
            r#"{"type":"http_response","request_id":"r","status":70000,"body":[1,{"a":null}]}"#,
            r#"{"type":"command_result","reply_to":"a.1","id":{"nested":["\u0000"]}}"#,
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for _ in 0..20_000 {
            let base = seeds[rng.gen_range(0..seeds.len())].as_bytes().to_vec();
            let mut b = base.clone();
            for _ in 0..rng.gen_range(0..6) {
                match rng.gen_range(0..4) {
                    0 if !b.is_empty() => {
                        let i = rng.gen_range(0..b.len());
                        b[i] = rng.gen();
                    }
                    1 if !b.is_empty() => {
                        let i = rng.gen_range(0..b.len());
                        b.truncate(i);
                    }
                    2 => {
                        let other = seeds[rng.gen_range(0..seeds.len())].as_bytes();
                        let i = rng.gen_range(0..=b.len());
                        b.splice(i..i, other[..rng.gen_range(0..other.len())].iter().copied());
                    }
                    _ => {
                        let junk = br#"{}[]",:\0-e"#;
                        b.push(junk[rng.gen_range(0..junk.len())]);
                    }
                }
            }
            let text = String::from_utf8_lossy(&b);
            let _ = parse_robot(&text);
            let _ = parse_app(&text);
            if let Ok(p) = parse_robot(&text) {
                if let RobotFrame::Event(e) = p.frame {
                    let out = splice(&e.raw, &["seq"], e.has_envelope_keys, r#""seq":1"#);
                    serde_json::from_str::<serde_json::Value>(&out)
                        .expect("splice keeps JSON valid");
                }
            }
        }
    }
}
