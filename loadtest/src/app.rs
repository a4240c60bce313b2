//! One simulated app: connects with its owner's token, subscribes to its
//! robot, checks every event it receives (loss, duplicates, order, latency),
//! sends commands and drives the app's side of WebRTC signaling.

use super::args::Scenario;
use super::client::{self, Ws};
use super::payload::{self, js, now_us, Incoming};
use super::robot::close;
use super::shared::{Phase, Shared};
use super::stats::inc;
use super::tracker::Tracker;
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::Message;

/// How long a storm-dropped socket keeps trying to come back.
const RECONNECT_WINDOW: Duration = Duration::from_secs(60);
/// A signaling session not finished by then is counted as timed out.
const SESSION_PATIENCE: Duration = Duration::from_secs(10);

/// The app's WebRTC session in flight.
struct Pending {
    /// Known once `webrtc_credentials` (or the offer) names it.
    session_id: Option<String>,
    started_us: u64,
    started: Instant,
}

struct App {
    sh: Arc<Shared>,
    /// Global app index (robot `a / K`, app `a % K` of it).
    a: usize,
    robot: usize,
    tracker: Tracker,
    /// Between a resumed `subscribed` and `recovered`: replayed events are
    /// checked for loss and order but not timed.
    replaying: bool,
    /// Prefix of this app's command ids (`a17-`).
    cmd_prefix: String,
    cmd_n: u64,
    session: Option<Pending>,
    sess_n: u64,
    /// The relay refused signaling as `unsupported`: stop asking.
    signaling_refused: bool,
}

/// Runs app `a` until the run closes.
pub async fn run(sh: Arc<Shared>, a: usize, permit: OwnedSemaphorePermit) {
    let k = sh.args.apps_per_robot;
    let mut app = App::new(sh.clone(), a);
    let Some(mut ws) = app.first_connect(permit).await else {
        return;
    };
    let st = &sh.stats;
    let mut phase = sh.phase.clone();
    let mut stormed = false;
    // The app's own timer: commands or signaling, per scenario.
    let period = match sh.args.scenario {
        Scenario::Commands => Some(Duration::from_secs_f64(1.0 / sh.args.commands_per_s)),
        Scenario::Signaling if a % k == 0 => Some(Duration::from_secs_f64(
            sh.devices.len() as f64 / sh.args.sessions_per_s,
        )),
        _ => None,
    };
    let mut next_at: Option<Instant> = None;
    loop {
        let ph = *phase.borrow_and_update();
        match ph {
            Phase::Closing => {
                app.count();
                close(&mut ws).await;
                st.apps_up.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            Phase::Storm if !stormed => {
                stormed = true;
                match app.ride_storm(ws).await {
                    Some(new) => ws = new,
                    None => return,
                }
                continue;
            }
            _ => {}
        }
        let running = matches!(ph, Phase::Running | Phase::Storm);
        if running && next_at.is_none() {
            if let (Some(p), Some(start)) = (period, sh.run_start.get()) {
                let frac = (a as f64 / (sh.devices.len() * k) as f64).fract();
                next_at = Some(*start + p.mul_f64(frac));
            }
        }
        let timer = if running { next_at } else { None };
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = sleep_until(timer.unwrap_or_else(far_future)), if timer.is_some() => {
                let now = Instant::now();
                let in_window = sh.run_end().is_some_and(|end| now < end);
                if in_window {
                    app.tick(&mut ws).await;
                }
                // period is Some whenever a timer is armed.
                let p = period.unwrap_or(Duration::from_secs(1));
                next_at = Some(if in_window { (timer.unwrap_or(now) + p).max(now) } else { far_future() });
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => app.on_text(&mut ws, t.as_str()).await,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return app.lost_socket(&mut phase).await,
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

impl App {
    fn new(sh: Arc<Shared>, a: usize) -> App {
        let robot = a / sh.args.apps_per_robot;
        App {
            sh,
            a,
            robot,
            tracker: Tracker::default(),
            replaying: false,
            cmd_prefix: format!("a{a}-"),
            cmd_n: 0,
            session: None,
            sess_n: 0,
            signaling_refused: false,
        }
    }

    /// The first connection, counted; the ramp's `permit` is released once
    /// it is done either way.
    async fn first_connect(&mut self, permit: OwnedSemaphorePermit) -> Option<Ws> {
        let sh = self.sh.clone();
        let st = &sh.stats;
        let t0 = Instant::now();
        inc(&st.conn_attempted);
        let first = self.connect(None).await;
        drop(permit);
        inc(&st.first_attempts_done);
        let Some(ws) = first else {
            inc(&st.conn_failed);
            return None;
        };
        inc(&st.conn_established);
        st.connect.record(self.a, t0.elapsed().as_micros() as u64);
        st.apps_up.fetch_add(1, Ordering::Relaxed);
        sh.robot_subs[self.robot].fetch_add(1, Ordering::Relaxed);
        Some(ws)
    }

    /// Adds what this app received to the run's totals, against what its
    /// robot sent.
    fn count(&self) {
        let expected = self.sh.robot_sent[self.robot].load(Ordering::Relaxed);
        self.sh.stats.add_tracker(&self.tracker, expected);
    }

    /// The storm: close, read what is still queued to us (it counts), then
    /// reconnect and resume. `None`: it could not come back (counted).
    async fn ride_storm(&mut self, mut ws: Ws) -> Option<Ws> {
        let sh = self.sh.clone();
        let st = &sh.stats;
        st.apps_up.fetch_sub(1, Ordering::Relaxed);
        let _ = ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    self.on_text(&mut ws, t.as_str()).await;
                }
            }
        })
        .await;
        // Release the old descriptor first (see robot.rs).
        drop(ws);
        let Some(new) = self.reconnect().await else {
            self.count();
            return None;
        };
        st.apps_up.fetch_add(1, Ordering::Relaxed);
        Some(new)
    }

    /// The socket closed under us: an error unless the run is closing; the
    /// count waits for the run's end (the robot may still be sending).
    async fn lost_socket(&self, phase: &mut watch::Receiver<Phase>) {
        let st = &self.sh.stats;
        if !matches!(*phase.borrow(), Phase::Closing) {
            inc(&st.unexpected_closes);
            st.error(
                "app_socket_closed",
                Some("an app socket closed during the run (slow consumer?)"),
            );
        }
        st.apps_up.fetch_sub(1, Ordering::Relaxed);
        while !matches!(*phase.borrow_and_update(), Phase::Closing) {
            if phase.changed().await.is_err() {
                break;
            }
        }
        self.count();
    }

    fn device_id(&self) -> &str {
        &self.sh.devices[self.robot].device_id
    }

    /// Opens the socket and subscribes (`since_seq` when resuming); returns
    /// once `subscribed` arrived. Counts failures.
    async fn connect(&mut self, since: Option<(u64, i64)>) -> Option<Ws> {
        let sh = self.sh.clone();
        let st = &sh.stats;
        let token = &self.sh.tokens[self.robot];
        let mut ws = match client::app(self.sh.app_target(self.a), token).await {
            Ok(ws) => ws,
            Err(e) => {
                st.error("connect_failed", Some(&format!("app: {e}")));
                return None;
            }
        };
        let sub = match since {
            None => format!(
                r#"{{"type":"subscribe","device_id":{}}}"#,
                js(self.device_id())
            ),
            Some((seq, epoch)) => format!(
                r#"{{"type":"subscribe","device_id":{},"since_seq":{seq},"epoch":{epoch}}}"#,
                js(self.device_id())
            ),
        };
        if ws.send(Message::text(sub)).await.is_err() {
            st.error(
                "connect_failed",
                Some("app: socket closed before subscribe"),
            );
            return None;
        }
        let wait = async {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    let subscribed =
                        matches!(payload::parse(t.as_str()), Some(p) if p.ty == "subscribed");
                    self.on_text(&mut ws, t.as_str()).await;
                    if subscribed {
                        return true;
                    }
                }
            }
            false
        };
        match tokio::time::timeout(Duration::from_secs(15), wait).await {
            Ok(true) => Some(ws),
            _ => {
                st.error("subscribe_failed", Some("no `subscribed` within 15 s"));
                None
            }
        }
    }

    async fn reconnect(&mut self) -> Option<Ws> {
        let sh = self.sh.clone();
        let st = &sh.stats;
        let deadline = Instant::now() + RECONNECT_WINDOW;
        while Instant::now() < deadline {
            let since = self.tracker.epoch.map(|e| (self.tracker.last_seq, e));
            match self.connect(since).await {
                Some(ws) => {
                    inc(&st.reconnects_ok);
                    return Some(ws);
                }
                None => {
                    inc(&st.reconnects_failed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        st.error(
            "reconnect_gave_up",
            Some("an app could not reconnect within 60 s"),
        );
        None
    }

    async fn send(&self, ws: &mut Ws, frame: String) {
        let sh = self.sh.clone();
        let st = &sh.stats;
        st.bytes_out
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        inc(&st.frames_out);
        let _ = ws.send(Message::text(frame)).await;
    }

    /// The app's timer: a command, or a new signaling session.
    async fn tick(&mut self, ws: &mut Ws) {
        let sh = self.sh.clone();
        let st = &sh.stats;
        match self.sh.args.scenario {
            Scenario::Commands => {
                self.cmd_n += 1;
                let frame = format!(
                    r#"{{"type":"command","device_id":{},"id":"{}{}","command":"start_mission","data":{{"mission":"sit_training","lg":{{"n":{},"t":{}}}}}}}"#,
                    js(self.device_id()),
                    self.cmd_prefix,
                    self.cmd_n,
                    self.cmd_n,
                    now_us()
                );
                inc(&st.commands_sent);
                self.send(ws, frame).await;
            }
            Scenario::Signaling => {
                if self.signaling_refused {
                    return;
                }
                if let Some(p) = &self.session {
                    if p.started.elapsed() < SESSION_PATIENCE {
                        return; // one session at a time per app
                    }
                    inc(&st.sess_timed_out);
                    self.session = None;
                }
                self.sess_n += 1;
                let frame = format!(
                    r#"{{"type":"webrtc_request","device_id":{},"id":"w{}-{}"}}"#,
                    js(self.device_id()),
                    self.a,
                    self.sess_n
                );
                self.session = Some(Pending {
                    session_id: None,
                    started_us: now_us(),
                    started: Instant::now(),
                });
                inc(&st.sess_requested);
                self.send(ws, frame).await;
            }
            _ => {}
        }
    }

    /// True if `sid` is this app's session (adopting it if still unnamed).
    fn own_session(&mut self, sid: Option<&str>) -> bool {
        match (&mut self.session, sid) {
            (Some(p), Some(sid)) => match &p.session_id {
                Some(mine) => mine == sid,
                None => {
                    p.session_id = Some(sid.to_string());
                    true
                }
            },
            _ => false,
        }
    }

    /// The session a robot's signaling frame names, if it is this app's
    /// (a frame naming another app's session is counted as misrouted).
    fn robots_session(&mut self, m: &Incoming<'_>) -> Option<String> {
        let sid = m.session_id.as_deref()?.to_string();
        if self.own_session(Some(&sid)) {
            Some(sid)
        } else {
            inc(&self.sh.stats.sess_misrouted);
            None
        }
    }

    /// One frame from the relay: counted, then handled by its type.
    async fn on_text(&mut self, ws: &mut Ws, text: &str) {
        let sh = self.sh.clone();
        let st = &sh.stats;
        st.frames_in.fetch_add(1, Ordering::Relaxed);
        st.bytes_in.fetch_add(text.len() as u64, Ordering::Relaxed);
        let Some(m) = payload::parse(text) else {
            inc(&st.unparsed);
            return;
        };
        match m.ty.as_ref() {
            "event" => self.on_event(m),
            "subscribed" => {
                let resumed = self.tracker.epoch.is_some();
                self.tracker
                    .on_subscribed(m.epoch.unwrap_or(0), m.seq.unwrap_or(0), resumed);
                self.replaying = resumed;
            }
            "recovered" => self.on_recovered(&m),
            "command_result" => self.on_command_result(m),
            "webrtc_credentials" => {
                if self.own_session(m.session_id.as_deref()) {
                    inc(&st.sess_credentials);
                } else {
                    inc(&st.sess_misrouted);
                }
            }
            "webrtc_offer" => self.on_offer(ws, &m).await,
            "webrtc_ice" => self.on_ice(ws, &m).await,
            "webrtc_close" if self.own_session(m.session_id.as_deref()) => {
                inc(&st.sess_closed_by_relay);
                self.session = None;
            }
            "error" => self.on_error(&m),
            _ => {}
        }
    }

    /// An event: tracked for loss, duplicates and order; timed unless
    /// replayed.
    fn on_event(&mut self, m: Incoming<'_>) {
        let st = &self.sh.stats;
        if m.device_id.as_deref() != Some(self.device_id()) {
            inc(&st.events_misrouted);
            return;
        }
        let stamp = m.data.and_then(|d| d.lg);
        let before = self.tracker.unique;
        self.tracker
            .on_event(m.epoch, m.seq, stamp.as_ref().map(|s| s.n));
        if let Some(s) = stamp {
            inc(&st.events_received);
            if self.tracker.unique > before {
                inc(&st.unique_received);
            }
            if !self.replaying {
                let now = now_us();
                st.latency.record(self.a, now.saturating_sub(s.t));
                if let Some(relay_us) = m.ts_ms.map(|ms| ms * 1000) {
                    st.to_relay.record(self.a, relay_us.saturating_sub(s.t));
                    st.from_relay.record(self.a, now.saturating_sub(relay_us));
                }
            }
        }
    }

    /// `recovered`: the replay after a resumed subscribe is over.
    fn on_recovered(&mut self, m: &Incoming<'_>) {
        let st = &self.sh.stats;
        self.replaying = false;
        if m.complete == Some(true) {
            inc(&st.recovered_complete);
        } else {
            inc(&st.recovered_incomplete);
        }
        if let Some(s) = self.sh.storm_start.get() {
            st.recovery.record(self.a, s.elapsed().as_micros() as u64);
        }
    }

    /// A command's result: ours (by id prefix) and its round trip.
    fn on_command_result(&mut self, m: Incoming<'_>) {
        let st = &self.sh.stats;
        let mine =
            m.id.as_deref()
                .is_some_and(|id| id.starts_with(&self.cmd_prefix));
        if !mine {
            inc(&st.results_misrouted);
            return;
        }
        inc(&st.results_received);
        if let Some(s) = m.data.and_then(|d| d.lg) {
            st.command_rtt.record(self.a, now_us().saturating_sub(s.t));
        }
    }

    /// The robot's offer for our session: answered at once.
    async fn on_offer(&mut self, ws: &mut Ws, m: &Incoming<'_>) {
        let Some(sid) = self.robots_session(m) else {
            return;
        };
        inc(&self.sh.stats.sess_offers);
        let frame = format!(
            r#"{{"type":"webrtc_answer","session_id":{},"sdp":"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}}"#,
            js(&sid)
        );
        self.send(ws, frame).await;
    }

    /// The robot's ICE candidate: the session is set up; we close it.
    async fn on_ice(&mut self, ws: &mut Ws, m: &Incoming<'_>) {
        let Some(sid) = self.robots_session(m) else {
            return;
        };
        let sh = self.sh.clone();
        let st = &sh.stats;
        inc(&st.sess_ice);
        if let Some(p) = self.session.take() {
            st.session_setup
                .record(self.a, now_us().saturating_sub(p.started_us));
        }
        inc(&st.sess_completed);
        let frame = format!(
            r#"{{"type":"webrtc_close","session_id":{},"reason":"done"}}"#,
            js(&sid)
        );
        self.send(ws, frame).await;
    }

    /// An `error`: counted by code; it answers a pending `webrtc_request`.
    fn on_error(&mut self, m: &Incoming<'_>) {
        let code = m.code.as_deref().unwrap_or("?");
        self.sh.stats.error(code, m.message.as_deref());
        if self.session.is_some() && self.sh.args.scenario == Scenario::Signaling {
            // An error while a request is pending answers it.
            let only_pending = self
                .session
                .as_ref()
                .is_some_and(|p| p.session_id.is_none());
            if only_pending {
                self.session = None;
                if code == "unsupported" {
                    self.signaling_refused = true;
                }
            }
        }
    }
}
