//! Targets `robot_frame` and `app_frame`: `wire::frames::parse_robot` /
//! `parse_app` on any text, then the splice the room applies to what it
//! forwards (the event envelope, the command's `from_user`/`reply_to`).
//!
//! Properties: never a panic; a refused frame is `bad_message` or
//! `unsupported` with the frame's own `id` as `ref` and a valid error frame;
//! an accepted frame keeps its raw text untouched (the trimmed input, byte
//! for byte) and its typed fields agree with the JSON; the forwarded frame
//! holds every member the sender wrote, in order and byte for byte, except
//! the relay's own, which appear exactly once with the relay's values.

use crate::members::{check_spliced, Members};
use wimz_relay::ids::DeviceId;
use wimz_relay::wire::encode::{json_str, splice, RelayKeys};
use wimz_relay::wire::frames::{parse_app, parse_robot, AppFrame, RobotFrame};
use wimz_relay::wire::{WireCode, WireError};

/// The room's envelope members (`room/device_room.rs`).
const ENVELOPE_KEYS: &[&str] = &["device_id", "epoch", "seq", "ts_ms"];
/// The members the room puts on a command (`room/device_room.rs`).
const COMMAND_KEYS: &[&str] = &["from_user", "reply_to"];

fn check_refused(text: &str, e: &WireError) {
    assert!(
        matches!(e.code, WireCode::BadMessage | WireCode::Unsupported),
        "unexpected refusal {:?} for {text:?}",
        e.code
    );
    // Members, not a `Value`: a `ref` is the sender's own `id`, passed back
    // byte for byte, and JSON's grammar allows what serde_json's strings
    // refuse (a lone surrogate escape).
    let frame = Members::of(&e.to_frame());
    assert_eq!(frame.get("type"), Some("\"error\""));
    assert_eq!(
        frame.get("ref"),
        e.reference.as_ref().map(|r| r.get()),
        "error frame's ref differs"
    );
    if let Some(r) = &e.reference {
        // A reference exists only once the head parsed: the text is an object.
        let m = Members::of(text.trim());
        assert_eq!(m.get("id"), Some(r.get()), "ref is not the frame's id");
    }
}

/// A member's raw value, `null` counting as absent (as `Option` reads it).
fn non_null(v: Option<&str>) -> Option<&str> {
    v.filter(|v| *v != "null")
}

fn check_reference(text: &str, reference: &Option<Box<serde_json::value::RawValue>>) {
    let m = Members::of(text.trim());
    assert_eq!(
        non_null(m.get("id")),
        reference.as_ref().map(|r| r.get()),
        "ref is not the frame's id"
    );
    assert_eq!(m.count("type"), 1);
}

fn check_device(d: &DeviceId, m: &Members) {
    let parsed = DeviceId::parse(d.as_str()).expect("a parsed device id is valid");
    assert_eq!(&parsed, d);
    let wire: String = serde_json::from_str(m.get("device_id").expect("device_id")).unwrap();
    assert_eq!(wire, d.as_str(), "device id differs from the frame's");
}

/// `robot_frame`.
pub fn robot(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = match parse_robot(text) {
        Ok(p) => p,
        Err(e) => return check_refused(text, &e),
    };
    check_reference(text, &parsed.reference);
    let trimmed = text.trim();
    match parsed.frame {
        RobotFrame::Event(e) => {
            assert_eq!(e.raw, trimmed, "event raw text changed");
            let m = Members::of(&e.raw);
            let name: String = serde_json::from_str(m.get("event").expect("event")).unwrap();
            assert_eq!(e.name, name);
            assert_eq!(e.data.as_ref().map(|d| d.get()), non_null(m.get("data")));
            assert_eq!(
                e.envelope_keys,
                RelayKeys::present_if(ENVELOPE_KEYS.iter().any(|k| m.has(k))),
                "envelope keys misdetected in {trimmed:?}"
            );
            let added = [
                ("device_id", "\"wimz-001\""),
                ("epoch", "7"),
                ("seq", "42"),
                ("ts_ms", "1800000000000"),
            ];
            let envelope = added
                .iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect::<Vec<_>>()
                .join(",");
            let out = splice(&e.raw, ENVELOPE_KEYS, e.envelope_keys, &envelope);
            check_spliced(&e.raw, &out, ENVELOPE_KEYS, &added);
        }
        RobotFrame::CommandResult { reply_to, id, raw } => {
            assert_eq!(raw, trimmed, "command_result raw text changed");
            let m = Members::of(&raw);
            let wire: String = serde_json::from_str(m.get("reply_to").expect("reply_to")).unwrap();
            assert_eq!(reply_to.as_str(), wire);
            assert_eq!(id.as_ref().map(|r| r.get()), non_null(m.get("id")));
        }
        RobotFrame::WebrtcOffer(s) | RobotFrame::WebrtcIce(s) | RobotFrame::WebrtcClose(s) => {
            assert_eq!(s.raw, trimmed, "signal raw text changed");
            let m = Members::of(&s.raw);
            let wire: String =
                serde_json::from_str(m.get("session_id").expect("session_id")).unwrap();
            assert_eq!(s.session_id.as_str(), wire);
        }
        RobotFrame::HttpResponse(r) => {
            let m = Members::of(trimmed);
            assert_eq!(r.body.as_ref().map(|b| b.get()), non_null(m.get("body")));
            let status: u64 = serde_json::from_str(m.get("status").expect("status")).unwrap();
            assert_eq!(u64::from(r.status), status);
        }
        RobotFrame::WebrtcStats(_) | RobotFrame::Ping | RobotFrame::Pong => {}
    }
}

/// `app_frame`.
pub fn app(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = match parse_app(text) {
        Ok(p) => p,
        Err(e) => return check_refused(text, &e),
    };
    check_reference(text, &parsed.reference);
    let trimmed = text.trim();
    let m = Members::of(trimmed);
    match parsed.frame {
        AppFrame::Command {
            device,
            raw,
            spoofed,
        } => {
            assert_eq!(raw, trimmed, "command raw text changed");
            check_device(&device, &m);
            assert_eq!(
                spoofed,
                RelayKeys::present_if(COMMAND_KEYS.iter().any(|k| m.has(k))),
                "spoofed from_user/reply_to misdetected in {trimmed:?}"
            );
            let from_user = json_str("0b6b2a1e-user");
            let reply_to = json_str("relay-a.17");
            let added = [
                ("from_user", from_user.as_str()),
                ("reply_to", reply_to.as_str()),
            ];
            let extra = format!("\"from_user\":{from_user},\"reply_to\":{reply_to}");
            let out = splice(&raw, COMMAND_KEYS, spoofed, &extra);
            check_spliced(&raw, &out, COMMAND_KEYS, &added);
        }
        AppFrame::Subscribe {
            device,
            since_seq,
            epoch,
        } => {
            check_device(&device, &m);
            if let Some(s) = since_seq {
                let wire: u64 =
                    serde_json::from_str(m.get("since_seq").expect("since_seq")).unwrap();
                assert_eq!(wire, s);
            }
            if let Some(e) = epoch {
                let wire: i64 = serde_json::from_str(m.get("epoch").expect("epoch")).unwrap();
                assert_eq!(wire, e);
            }
        }
        AppFrame::Unsubscribe { device } | AppFrame::WebrtcRequest { device, .. } => {
            check_device(&device, &m)
        }
        AppFrame::WebrtcAnswer(s) | AppFrame::WebrtcIce(s) | AppFrame::WebrtcClose(s) => {
            assert_eq!(s.raw, trimmed, "signal raw text changed");
            let wire: String =
                serde_json::from_str(m.get("session_id").expect("session_id")).unwrap();
            assert_eq!(s.session_id.as_str(), wire);
        }
        AppFrame::WebrtcStats(_) | AppFrame::Ping | AppFrame::Pong => {}
    }
}
