//! What the relay does with frames a WebSocket library would never send
//! (issue 14, items 2 and 4), on the real binary over a raw TCP socket
//! (`raw_ws.rs`): a frame header claiming more than
//! `limits.max_message_bytes`, and a fragmented message growing past it,
//! close the socket with 1009 at once and the relay's memory does not grow
//! (RSS as a bound, not a timing); invalid UTF-8 closes with 1007 and
//! reserved bits with 1002; each reason is logged, never `connection_lost`.

use crate::helpers::*;
use crate::process::{rss_kib, start_relay_with, Relay};
use crate::raw_ws::{self, RawReader, RawWriter, FIN, OP_CONT, OP_TEXT, RSV1};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Bytes a test offers the relay after a bad header before giving up: far
/// more than any buffer the relay should keep for one socket.
const FLOOD: usize = 64 << 20;
/// The most the relay may grow while refusing a flood (a memory bound far
/// from both outcomes: buffering the flood costs at least [`FLOOD`]).
const GROWTH_BOUND_KIB: u64 = 16 << 10;

#[derive(Clone, Copy, Debug)]
enum Peer {
    Robot,
    App,
}

async fn relay(dir: &std::path::Path) -> Relay {
    start_relay_with(
        dir,
        "info",
        &[
            // Freed pages go back at once, so RSS follows what is live.
            ("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0"),
            ("WIMZ__LOG__FORMAT", "json"),
        ],
    )
    .await
}

/// An authenticated socket of `peer` (robot: attached to its room), proven
/// by a ping answered with a pong.
async fn open(relay: &Relay, user: &User, peer: Peer, n: usize) -> (RawReader, RawWriter) {
    let opened = match peer {
        Peer::Robot => {
            let device = format!("wimz-wire-{n}");
            let secret = relay.device(user, &device).await;
            let ts = wimz_relay::ids::unix_now();
            let (ts, sig) = (ts.to_string(), sign(&secret, &device, ts));
            let headers = [
                ("X-Device-Id", device.as_str()),
                ("X-Timestamp", ts.as_str()),
                ("X-Signature", sig.as_str()),
            ];
            raw_ws::connect(relay.port, "/ws/device", &headers).await
        }
        Peer::App => {
            let bearer = format!("Bearer {}", user.token);
            raw_ws::connect(relay.port, "/ws/app", &[("Authorization", &bearer)]).await
        }
    };
    let (mut rd, mut wr) = opened.expect("authenticated socket opens");
    assert!(wr.frame(FIN | OP_TEXT, br#"{"type":"ping"}"#).await);
    let (opcode, payload) = rd.frame().await.expect("pong");
    assert_eq!(opcode, OP_TEXT);
    assert!(String::from_utf8_lossy(&payload).contains("pong"));
    (rd, wr)
}

/// Writes `first`, then `next` over and over (up to [`FLOOD`] bytes), until
/// the relay's close frame arrives; returns that frame.
async fn flood_until_close(
    rd: &mut RawReader,
    mut wr: RawWriter,
    first: Vec<u8>,
    next: Vec<u8>,
) -> Option<(u16, String)> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_writer = stop.clone();
    let writer = tokio::spawn(async move {
        let mut sent = first.len();
        if !wr.raw(&first).await {
            return;
        }
        while sent < FLOOD && !stop_writer.load(Ordering::Relaxed) {
            if !wr.raw(&next).await {
                return;
            }
            sent += next.len();
        }
        // Keep the socket open: the relay, not our end, must close it.
        while !stop_writer.load(Ordering::Relaxed) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let close = rd.close_frame().await;
    stop.store(true, Ordering::Relaxed);
    writer.abort();
    close
}

/// Both floods on one socket kind: a header claiming 2^40 bytes then a
/// stream of bytes; a text message fragmented into 16 KiB pieces without
/// end. Each must close with 1009 at once and leave the relay's RSS where
/// it was, and the relay must end the connection.
async fn floods_are_refused(peer: Peer) {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let user = relay.user("flooder").await;
    let piece = vec![b'x'; 16 * 1024];
    let floods = [
        (
            "a header claiming 2^40 bytes",
            RawWriter::header(FIN | OP_TEXT, 1 << 40),
            vec![0u8; 64 * 1024],
        ),
        (
            "a fragmented message without end",
            RawWriter::encode(OP_TEXT, &piece),
            RawWriter::encode(OP_CONT, &piece),
        ),
    ];
    for (n, (what, first, next)) in floods.into_iter().enumerate() {
        let (mut rd, wr) = open(&relay, &user, peer, n).await;
        let before = rss_kib(relay.child.id());
        let close = flood_until_close(&mut rd, wr, first, next).await;
        let after = rss_kib(relay.child.id());
        let grown = after.saturating_sub(before);
        eprintln!("{peer:?}, {what}: close {close:?}, RSS {before} KiB -> {after} KiB");
        assert_eq!(
            close.as_ref().map(|c| c.0),
            Some(1009),
            "{peer:?}, {what}: close frame {close:?} (RSS {before} -> {after} KiB)"
        );
        assert!(
            grown < GROWTH_BOUND_KIB,
            "{peer:?}, {what}: the relay grew {grown} KiB ({before} -> {after} KiB)"
        );
        assert!(
            rd.until_closed().await,
            "{peer:?}, {what}: the relay keeps the connection open after its close frame"
        );
    }
}

#[tokio::test]
async fn robot_floods_close_with_1009_at_once_and_memory_stays() {
    floods_are_refused(Peer::Robot).await;
}

#[tokio::test]
async fn app_floods_close_with_1009_at_once_and_memory_stays() {
    floods_are_refused(Peer::App).await;
}

/// The relay's JSON log lines, parsed.
fn log_lines(relay: &Relay) -> Vec<Value> {
    std::fs::read_to_string(&relay.stderr_path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Invalid UTF-8 (in one frame or across fragments) → 1007, reserved bits
/// → 1002, an oversize fragmented message → 1009; on robot and app sockets alike, each with its reason in
/// the close frame and in the log, and never logged as `connection_lost`.
#[tokio::test]
async fn protocol_violations_close_with_their_rfc_6455_codes_and_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let user = relay.user("violator").await;
    let piece = vec![b' '; 40 * 1024];
    let cases: [(&str, u16, &str, Vec<Vec<u8>>); 4] = [
        (
            "invalid UTF-8 in a text frame",
            1007,
            "invalid_utf8",
            vec![RawWriter::encode(
                FIN | OP_TEXT,
                b"{\"type\":\"ping\",\"x\":\"\xff\"}",
            )],
        ),
        (
            "invalid UTF-8 in a fragmented text message",
            1007,
            "invalid_utf8",
            vec![
                RawWriter::encode(OP_TEXT, b"{\"type\":\"ping\",\"x\":\"\xff"),
                RawWriter::encode(FIN | OP_CONT, b"\"}"),
            ],
        ),
        (
            "a frame with RSV1 set (no extension negotiated)",
            1002,
            "protocol_error",
            vec![RawWriter::encode(
                FIN | RSV1 | OP_TEXT,
                br#"{"type":"ping"}"#,
            )],
        ),
        (
            "a fragmented message over limits.max_message_bytes",
            1009,
            "message_too_big",
            vec![
                RawWriter::encode(OP_TEXT, &piece),
                RawWriter::encode(FIN | OP_CONT, &piece),
            ],
        ),
    ];
    let mut n = 0;
    for (what, code, reason, frames) in &cases {
        for peer in [Peer::Robot, Peer::App] {
            n += 1;
            let (mut rd, mut wr) = open(&relay, &user, peer, n).await;
            for f in frames {
                wr.raw(f).await;
            }
            let close = rd.close_frame().await;
            assert_eq!(
                close,
                Some((*code, reason.to_string())),
                "{peer:?}, {what}: close frame"
            );
        }
    }
    // The log says why each socket was closed (the robot's own line too);
    // nothing was a lost connection.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let lines = log_lines(&relay);
        let with = |message: &str, reason: &str| {
            lines
                .iter()
                .filter(|l| l["fields"]["message"] == message && l["fields"]["reason"] == reason)
                .count()
        };
        let complete = cases.iter().all(|(_, _, reason, _)| {
            let cases = cases.iter().filter(|c| c.2 == *reason).count();
            with("closing socket: protocol violation", reason) == 2 * cases
                && with("robot disconnected", reason) == cases
        });
        if complete {
            let lost = lines
                .iter()
                .filter(|l| l["fields"]["reason"] == "connection_lost")
                .count();
            assert_eq!(lost, 0, "a violation was logged as a lost connection");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log does not give every reason: {}",
            std::fs::read_to_string(&relay.stderr_path).unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
