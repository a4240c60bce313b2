//! One simulated robot's connection to the relay: connect (signed, fresh
//! timestamp each time), send a `status_update`, then tick the robot and
//! answer what the relay hands it (commands, REST calls, WebRTC requests)
//! until the socket ends; then reconnect with jittered exponential backoff.
//! The robot's state outlives its connections, as a real robot's does.
//! It stops for good when told to (closing with 1000), when its device is
//! deleted (4003) or when another connection replaces it (4001).

use super::commands;
use super::rest;
use super::wimz::{Event, Wimz};
use super::FleetOptions;
use crate::client::{self, Ws};
use crate::target::Target;
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// A device the simulator drives: its id and secret (PROTOCOL.md §2).
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct RobotCreds {
    pub device_id: String,
    pub secret: String,
}

/// First pause before reconnecting; doubled per failure up to
/// [`FleetOptions::max_backoff`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How long a closing robot waits for the relay's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What the relay sends a robot, parsed once here.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Incoming {
    Command {
        #[serde(default)]
        id: Value,
        #[serde(default)]
        reply_to: Value,
        #[serde(default)]
        command: Option<String>,
        #[serde(default)]
        data: Value,
    },
    HttpRequest {
        request_id: Value,
        #[serde(default)]
        method: String,
        #[serde(default)]
        path: String,
        #[serde(default)]
        body: Value,
    },
    WebrtcRequest {
        session_id: Value,
    },
    #[serde(other)]
    Other,
}

/// How a connection ended.
enum End {
    /// Told to stop: closed cleanly.
    Stopped,
    /// The relay will not want this robot back (deleted, replaced).
    Final(&'static str),
    /// Lost: reconnect.
    Lost(String),
}

/// Jittered exponential backoff: each pause is uniform in [d/2, d], d
/// doubling from [`FIRST_BACKOFF`] to `max`.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn pause(&mut self, rng: &mut impl Rng) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        rng.gen_range(d / 2..=d)
    }
}

/// Drives one robot until `stop` says so (or the relay will not have it).
pub async fn run(
    target: &Target,
    creds: RobotCreds,
    opts: &FleetOptions,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut wimz = Wimz::new(&creds.device_id, &mut rng);
    let id = creds.device_id.as_str();
    let mut failures = 0u32;
    let mut backoff = Backoff {
        next: FIRST_BACKOFF,
        max: opts.max_backoff.max(FIRST_BACKOFF),
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let ts = crate::unix_now();
        let connected = tokio::select! {
            r = client::robot(target, id, &creds.secret, ts) => r,
            _ = stop.changed() => return,
        };
        match connected {
            Ok(ws) => {
                opts.say(&format!("{id} connected"));
                failures = 0;
                backoff.next = FIRST_BACKOFF;
                match session(ws, &mut wimz, &mut rng, opts, &mut stop).await {
                    End::Stopped => return,
                    End::Final(why) => {
                        opts.warn(&format!("{id}: {why}; this robot stops"));
                        return;
                    }
                    End::Lost(why) => opts.say(&format!("{id} lost its connection ({why})")),
                }
            }
            Err(e) => {
                failures += 1;
                // Say the first failure and then every tenth, not each one.
                if failures % 10 == 1 {
                    opts.warn(&format!("{id}: cannot connect ({e:#}); retrying"));
                }
            }
        }
        let pause = backoff.pause(&mut rng);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One connection's life: ticks out, relay frames in.
async fn session(
    ws: Ws,
    wimz: &mut Wimz,
    rng: &mut StdRng,
    opts: &FleetOptions,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let (mut tx, mut rx) = ws.split();
    let mut tick = tokio::time::interval(opts.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let first = event_frame(&Event {
        name: "status_update",
        data: wimz.status(),
    });
    if let Err(e) = tx.send(first).await {
        return End::Lost(e.to_string());
    }
    loop {
        let out: Vec<Message> = tokio::select! {
            _ = stop.changed() => {
                let bye = CloseFrame { code: CloseCode::Normal, reason: "simulator stopping".into() };
                let _ = tx.send(Message::Close(Some(bye))).await;
                // The relay answers with its own close; wait for it briefly.
                let _ = tokio::time::timeout(CLOSE_WAIT, async {
                    while let Some(Ok(m)) = rx.next().await {
                        if m.is_close() { break; }
                    }
                }).await;
                return End::Stopped;
            }
            _ = tick.tick() => wimz.tick(rng).iter().map(event_frame).collect(),
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => answer(wimz, t.as_str()),
                Some(Ok(Message::Close(frame))) => return closed(frame),
                // Pings are answered by tungstenite; flushed below.
                Some(Ok(_)) => Vec::new(),
                Some(Err(e)) => return End::Lost(e.to_string()),
                None => return End::Lost("connection ended".into()),
            },
        };
        for m in out {
            if let Err(e) = tx.feed(m).await {
                return End::Lost(e.to_string());
            }
        }
        if let Err(e) = tx.flush().await {
            return End::Lost(e.to_string());
        }
    }
}

fn closed(frame: Option<CloseFrame>) -> End {
    match frame.map(|f| u16::from(f.code)) {
        Some(4001) => End::Final("replaced by another connection for the same device (4001)"),
        Some(4003) => End::Final("its device was deleted (4003)"),
        Some(code) => End::Lost(format!("closed by the relay, code {code}")),
        None => End::Lost("closed by the relay".into()),
    }
}

fn event_frame(e: &Event) -> Message {
    Message::text(json!({"type": "event", "event": e.name, "data": e.data}).to_string())
}

/// The frames the robot sends back for one frame from the relay.
fn answer(wimz: &mut Wimz, text: &str) -> Vec<Message> {
    let Ok(incoming) = serde_json::from_str::<Incoming>(text) else {
        return Vec::new();
    };
    match incoming {
        Incoming::Command {
            id,
            reply_to,
            command,
            data,
        } => {
            let o = commands::run(wimz, command.as_deref().unwrap_or(""), &data);
            let result = json!({
                "type": "command_result",
                "reply_to": reply_to,
                "id": id,
                "ok": o.ok,
                "data": o.data,
            });
            std::iter::once(Message::text(result.to_string()))
                .chain(o.events.iter().map(event_frame))
                .collect()
        }
        Incoming::HttpRequest {
            request_id,
            method,
            path,
            body,
        } => {
            let today = crate::unix_now().div_euclid(86_400);
            let a = rest::answer(wimz, &method.to_ascii_uppercase(), &path, &body, today);
            let response = json!({
                "type": "http_response",
                "request_id": request_id,
                "status": a.status,
                "body": a.body,
            });
            std::iter::once(Message::text(response.to_string()))
                .chain(a.events.iter().map(event_frame))
                .collect()
        }
        // No camera here: say so at once rather than let the app wait for
        // the relay's setup timeout.
        Incoming::WebrtcRequest { session_id } => vec![Message::text(
            json!({"type": "webrtc_close", "session_id": session_id, "reason": "video_unavailable"})
                .to_string(),
        )],
        Incoming::Other => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn robot() -> Wimz {
        Wimz::new("sim-1", &mut StdRng::seed_from_u64(5))
    }

    fn texts(out: Vec<Message>) -> Vec<Value> {
        out.into_iter()
            .map(|m| serde_json::from_str(m.to_text().unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn relay_frames_get_their_answers() {
        let mut w = robot();
        let out = texts(answer(
            &mut w,
            r#"{"type":"command","device_id":"sim-1","id":"c-1","command":"start_mission","data":{"mission":"sit_training"},"from_user":"u","reply_to":"r.1"}"#,
        ));
        assert_eq!(out[0]["type"], "command_result");
        assert_eq!(
            (&out[0]["id"], &out[0]["reply_to"]),
            (&json!("c-1"), &json!("r.1"))
        );
        assert_eq!(out[0]["ok"], true);
        assert_eq!(out[2]["event"], "mission_progress");
        let out = texts(answer(
            &mut w,
            r#"{"type":"command","id":"c-2","command":"fly","reply_to":"r.1"}"#,
        ));
        assert_eq!((&out[0]["ok"], out.len()), (&json!(false), 1));
        let out = texts(answer(
            &mut w,
            r#"{"type":"http_request","request_id":"q1","method":"GET","path":"/mode","query":{},"body":null}"#,
        ));
        assert_eq!(out[0]["type"], "http_response");
        assert_eq!(
            (&out[0]["request_id"], &out[0]["status"]),
            (&json!("q1"), &json!(200))
        );
        let out = texts(answer(
            &mut w,
            r#"{"type":"webrtc_request","session_id":"s.1","from_user":"u"}"#,
        ));
        assert_eq!(out[0]["type"], "webrtc_close");
        for junk in [
            "",
            "[]",
            "{}",
            r#"{"type":"pong"}"#,
            r#"{"type":"command"}"#,
        ] {
            let out = texts(answer(&mut w, junk));
            assert!(out.len() <= 1, "{junk}");
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut b = Backoff {
            next: FIRST_BACKOFF,
            max: Duration::from_secs(4),
        };
        let pauses: Vec<Duration> = (0..8).map(|_| b.pause(&mut rng)).collect();
        for (i, p) in pauses.iter().enumerate() {
            let d = (FIRST_BACKOFF * 2u32.pow(i as u32)).min(Duration::from_secs(4));
            assert!(
                *p >= d / 2 && *p <= d,
                "{i}: {p:?} not in [{:?}, {d:?}]",
                d / 2
            );
        }
    }
}
