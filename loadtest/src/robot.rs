//! One simulated robot: connects with a device signature, sends events on
//! schedule, answers commands with `command_result` and plays the robot's
//! side of WebRTC signaling (offer on request, ICE on answer).

use super::args::Scenario;
use super::client::{self, Ws};
use super::payload::{self, js};
use super::shared::{Phase, Shared};
use super::stats::inc;
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::Message;

/// How long a storm-dropped socket keeps trying to come back.
const RECONNECT_WINDOW: Duration = Duration::from_secs(60);

struct Robot {
    sh: Arc<Shared>,
    i: usize,
    /// Last signature timestamp used: each connection needs a new one.
    last_ts: i64,
    /// Counter of the last event sent.
    n: u64,
}

/// Runs robot `i` until the run closes.
pub async fn run(sh: Arc<Shared>, i: usize, permit: OwnedSemaphorePermit) {
    let mut r = Robot {
        sh: sh.clone(),
        i,
        last_ts: 0,
        n: 0,
    };
    let Some(mut ws) = r.first_connect(permit).await else {
        return;
    };
    let st = &sh.stats;
    let mut phase = sh.phase.clone();
    let mut stormed = false;
    let mut next_at: Option<Instant> = None;
    let mut sending_done = !matches!(
        sh.args.scenario,
        Scenario::Steady | Scenario::Burst | Scenario::ReconnectStorm
    ) || (sh.args.rate == 0.0 && sh.args.scenario != Scenario::Burst);
    let period = Duration::from_secs_f64(1.0 / sh.args.rate.max(1e-9));
    loop {
        let ph = *phase.borrow_and_update();
        match ph {
            Phase::Closing => {
                close(&mut ws).await;
                st.robots_up.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            Phase::Storm if !stormed => {
                stormed = true;
                match r.ride_storm(ws).await {
                    Some(new) => ws = new,
                    None => return,
                }
                // Do not catch up on the events the outage skipped.
                next_at = next_at.map(|t| t.max(Instant::now()));
                continue;
            }
            _ => {}
        }
        let running = matches!(ph, Phase::Running | Phase::Storm);
        if running && !sending_done && sh.args.scenario == Scenario::Burst {
            r.burst(&mut ws).await;
            sending_done = true;
            continue;
        }
        if running && !sending_done && next_at.is_none() {
            next_at = r.first_due(period);
        }
        let timer = if running && !sending_done {
            next_at
        } else {
            None
        };
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    return; // the driver is gone
                }
            }
            _ = sleep_until(timer.unwrap_or_else(far_future)), if timer.is_some() => {
                match r.on_timer(&mut ws, timer, period).await {
                    Some(at) => next_at = Some(at),
                    None => sending_done = true,
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    st.frames_in.fetch_add(1, Ordering::Relaxed);
                    st.bytes_in.fetch_add(t.len() as u64, Ordering::Relaxed);
                    r.on_text(&mut ws, t.as_str()).await;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return r.lost_socket(&phase),
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

/// Sends a close and reads until the relay's close (or 5 s).
pub async fn close(ws: &mut Ws) {
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

impl Robot {
    /// The first connection, timed; the ramp's `permit` is released once it
    /// is done either way.
    async fn first_connect(&mut self, permit: OwnedSemaphorePermit) -> Option<Ws> {
        let sh = self.sh.clone();
        let st = &sh.stats;
        let t0 = Instant::now();
        let first = self.connect().await;
        drop(permit);
        inc(&st.first_attempts_done);
        let ws = first?;
        st.connect.record(self.i, t0.elapsed().as_micros() as u64);
        st.robots_up.fetch_add(1, Ordering::Relaxed);
        Some(ws)
    }

    /// The storm: close, reconnect, and time the recovery. `None`: it could
    /// not come back.
    async fn ride_storm(&mut self, mut ws: Ws) -> Option<Ws> {
        let sh = self.sh.clone();
        let st = &sh.stats;
        st.robots_up.fetch_sub(1, Ordering::Relaxed);
        close(&mut ws).await;
        // Release the old descriptor first: at 20,000 sockets the
        // process has no spare ones.
        drop(ws);
        let new = self.reconnect().await?;
        st.robots_up.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = sh.storm_start.get() {
            st.recovery.record(self.i, s.elapsed().as_micros() as u64);
        }
        Some(new)
    }

    /// When this robot sends its first event: robots staggered evenly over
    /// one period from the run's start (none before the run starts).
    fn first_due(&self, period: Duration) -> Option<Instant> {
        let start = self.sh.run_start.get()?;
        let frac = self.i as f64 / self.sh.devices.len() as f64;
        Some(*start + period.mul_f64(frac))
    }

    /// The send timer (due at `timer`) fired: one event while the run is
    /// on. Returns when the next is due; `None` once sending is over (the
    /// run ended, or the socket would not take it).
    async fn on_timer(
        &mut self,
        ws: &mut Ws,
        timer: Option<Instant>,
        period: Duration,
    ) -> Option<Instant> {
        let now = Instant::now();
        match self.sh.run_end() {
            Some(end) if now < end => {}
            _ => return None,
        }
        if !self.send_event(ws).await {
            return None;
        }
        let mut at = timer.unwrap_or(now) + period;
        if at + Duration::from_secs(1) < now {
            at = now; // too far behind: do not burst to catch up
        }
        Some(at)
    }

    /// `--burst` events at once (the burst scenario), until one fails.
    async fn burst(&mut self, ws: &mut Ws) {
        for _ in 0..self.sh.args.burst {
            if !self.send_event(ws).await {
                break;
            }
        }
    }

    /// The socket closed under us: an error unless the run is closing.
    fn lost_socket(&self, phase: &watch::Receiver<Phase>) {
        let st = &self.sh.stats;
        if !matches!(*phase.borrow(), Phase::Closing) {
            inc(&st.unexpected_closes);
            st.error(
                "robot_socket_closed",
                Some("a robot socket closed during the run"),
            );
        }
        st.robots_up.fetch_sub(1, Ordering::Relaxed);
    }

    fn next_ts(&mut self) -> i64 {
        let now = crate::unix_now();
        self.last_ts = now.max(self.last_ts + 1);
        self.last_ts
    }

    /// First connection; failures are counted and end the robot.
    async fn connect(&mut self) -> Option<Ws> {
        let sh = self.sh.clone();
        let st = &sh.stats;
        inc(&st.conn_attempted);
        let ts = self.next_ts();
        let d = &self.sh.devices[self.i];
        match client::robot(&self.sh.target, &d.device_id, &d.secret, ts).await {
            Ok(ws) => {
                inc(&st.conn_established);
                Some(ws)
            }
            Err(e) => {
                inc(&st.conn_failed);
                st.error("connect_failed", Some(&format!("robot: {e}")));
                None
            }
        }
    }

    /// Reconnects after a storm, retrying for [`RECONNECT_WINDOW`].
    async fn reconnect(&mut self) -> Option<Ws> {
        let sh = self.sh.clone();
        let st = &sh.stats;
        let deadline = Instant::now() + RECONNECT_WINDOW;
        while Instant::now() < deadline {
            let ts = self.next_ts();
            let d = &self.sh.devices[self.i];
            match client::robot(&self.sh.target, &d.device_id, &d.secret, ts).await {
                Ok(ws) => {
                    inc(&st.reconnects_ok);
                    return Some(ws);
                }
                Err(_) => {
                    inc(&st.reconnects_failed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        st.error(
            "reconnect_gave_up",
            Some("a robot could not reconnect within 60 s"),
        );
        None
    }

    /// Sends the next event; false if the socket is gone.
    async fn send_event(&mut self, ws: &mut Ws) -> bool {
        let frame = self.sh.maker.event(self.n + 1);
        let len = frame.len() as u64;
        if ws.send(Message::text(frame)).await.is_err() {
            return false;
        }
        self.n += 1;
        let sh = self.sh.clone();
        let st = &sh.stats;
        self.sh.robot_sent[self.i].store(self.n, Ordering::Relaxed);
        inc(&st.events_sent);
        inc(&st.frames_out);
        st.bytes_out.fetch_add(len, Ordering::Relaxed);
        true
    }

    async fn reply(&self, ws: &mut Ws, frame: String) {
        let sh = self.sh.clone();
        let st = &sh.stats;
        st.bytes_out
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        inc(&st.frames_out);
        let _ = ws.send(Message::text(frame)).await;
    }

    async fn on_text(&mut self, ws: &mut Ws, text: &str) {
        let sh = self.sh.clone();
        let st = &sh.stats;
        let Some(m) = payload::parse(text) else {
            inc(&st.unparsed);
            return;
        };
        match m.ty.as_ref() {
            "command" => {
                let (Some(reply_to), Some(id)) = (&m.reply_to, &m.id) else {
                    st.error("command_without_reply_to", Some(text));
                    return;
                };
                let lg = m
                    .data
                    .and_then(|d| d.lg)
                    .map(|s| format!(r#","lg":{{"n":{},"t":{}}}"#, s.n, s.t))
                    .unwrap_or_default();
                let frame = format!(
                    r#"{{"type":"command_result","reply_to":{},"id":{},"ok":true,"data":{{"accepted":true{lg}}}}}"#,
                    js(reply_to),
                    js(id)
                );
                self.reply(ws, frame).await;
            }
            "webrtc_request" => {
                let Some(sid) = &m.session_id else { return };
                let frame = format!(
                    r#"{{"type":"webrtc_offer","session_id":{},"sdp":"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"}}"#,
                    js(sid)
                );
                self.reply(ws, frame).await;
            }
            "webrtc_answer" => {
                let Some(sid) = &m.session_id else { return };
                inc(&st.sess_answers);
                let frame = format!(
                    r#"{{"type":"webrtc_ice","session_id":{},"candidate":{{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}}}}"#,
                    js(sid)
                );
                self.reply(ws, frame).await;
            }
            "webrtc_close" => inc(&st.sess_closed_at_robot),
            "error" => st.error(m.code.as_deref().unwrap_or("?"), m.message.as_deref()),
            _ => {}
        }
    }
}
