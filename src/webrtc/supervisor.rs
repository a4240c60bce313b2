//! `SessionSupervisor`: owns every WebRTC session of this instance
//! (PROTOCOL.md §3.5). Started once in `startup`, addressed through
//! `AppState::sessions`.
//!
//! Who sends it what:
//! - app sockets: [`FromApp`] (`webrtc_request` with the device's room, its
//!   ownership already proven; `webrtc_answer` / `_ice` / `_close` / `_stats`);
//! - robot sockets: [`FromRobot`] (`webrtc_offer` / `_ice` / `_close` / `_stats`);
//! - both, on every exit path: [`ConnGone`];
//! - `DELETE /api/devices/{id}`: [`EndDeviceSessions`];
//! - the cluster bridge: [`ForSessions`] (a remote robot's signaling for a
//!   session owned here; a device deleted on another instance);
//! - tests: [`ActiveSessions`], [`InjectPanic`].
//!
//! Runs under [`crate::supervise`]: restarted after a panic, sessions kept
//! (see `restarting`).
//!
//! What it sends on: signaling frames, raw as received, to the session's
//! other end only; its own `webrtc_request` / `webrtc_credentials` /
//! `webrtc_close` / `error` frames. Every send is a non-blocking
//! [`Outbox::send`](crate::wire::outbox::Outbox::send); the only awaits (the
//! room's robot link, TURN credentials, history writes) run beside the
//! actor, never inside a handler. A session id used by a connection that is
//! not one of its two ends gets `unknown_session`, exactly like an id that
//! never existed.

use super::messages::*;
use super::session::{AppEnd, RobotEnd, RobotPath, Sending, Session, SessionState};
use crate::cluster::messages::{ForSessions, SessionSlot, SessionSlots, SlotAnswer};
use crate::cluster::ClusterBridge;
use crate::config::{secs, WebrtcSettings};
use crate::ids::{ConnId, DeviceId, SessionId};
use crate::metrics::{gauge_add, inc, Metrics, Refusal};
use crate::room::messages::{EndRemoteRobotSessions, FindRobot, RobotRoute};
use crate::store::Store;
use crate::supervise::InjectPanic;
use crate::turn::TurnService;
use crate::wire::encode::{self, Setup};
use crate::wire::frames::RobotFrame;
use crate::wire::{WireCode, WireError};
use actix::prelude::*;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub(super) type Reference = Option<Box<RawValue>>;

/// How often a clustered instance refreshes its sessions' slots in Redis.
const SLOT_REFRESH: Duration = Duration::from_secs(3);

fn limit_error(max: usize) -> WireError {
    WireError::new(
        WireCode::SessionLimit,
        format!("at most {max} WebRTC sessions per device"),
    )
}

/// A robot on another instance while Redis (the only way there) is down.
pub(super) fn unreachable() -> WireError {
    WireError::new(
        WireCode::Internal,
        "the robot's relay instance cannot be reached; retry",
    )
}

pub struct SessionSupervisor {
    pub(super) settings: WebrtcSettings,
    /// Fresh credentials for every request and ICE restart.
    pub(super) turn: Arc<TurnService>,
    /// Finished sessions are written here (spawned, never awaited in a handler).
    pub(super) store: Store,
    pub(super) metrics: Arc<Metrics>,
    /// Every open session, including ones still fetching their robot link.
    pub(super) sessions: HashMap<SessionId, Session>,
    /// Clustered: reaches robots on other instances.
    pub(super) bridge: Option<Addr<ClusterBridge>>,
    /// This instance's id (session ids name their owner instance).
    pub(super) instance: Arc<str>,
}

/// Which ends hear the relay's `webrtc_close` when a session ends.
#[derive(Clone, Copy)]
pub(super) enum Tell {
    Both,
    App,
    Robot,
    Nobody,
}

impl SessionSupervisor {
    pub fn new(
        settings: WebrtcSettings,
        turn: Arc<TurnService>,
        store: Store,
        metrics: Arc<Metrics>,
        bridge: Option<Addr<ClusterBridge>>,
        instance: Arc<str>,
    ) -> Self {
        SessionSupervisor {
            settings,
            turn,
            store,
            metrics,
            sessions: HashMap::new(),
            bridge,
            instance,
        }
    }

    /// How often the timeout sweep runs: a fifth of the shortest timeout,
    /// between 20 ms and 1 s.
    fn sweep_every(&self) -> Duration {
        let shortest = self
            .settings
            .setup_timeout_s
            .min(self.settings.idle_timeout_s);
        secs(shortest / 5.0).clamp(Duration::from_millis(20), Duration::from_secs(1))
    }

    /// A cluster session slot not refreshed for this long belongs to a dead
    /// instance and no longer counts.
    fn slot_stale_after_s(&self) -> u64 {
        (SLOT_REFRESH.as_secs() * 4).max(10)
    }

    /// Forgets a session that never started, giving back its cluster slot.
    fn drop_unstarted(&mut self, id: &SessionId) {
        if let Some(s) = self.sessions.remove(id) {
            if let Some(bridge) = &self.bridge {
                bridge.do_send(SessionSlots::GiveBack {
                    slots: vec![(s.device, s.id.to_string())],
                });
            }
        }
    }

    /// Clustered: keeps this instance's session slots alive in Redis.
    fn refresh_slots(&mut self) {
        let Some(bridge) = &self.bridge else { return };
        let slots: Vec<(DeviceId, String)> = self
            .sessions
            .values()
            .map(|s| (s.device.clone(), s.id.to_string()))
            .collect();
        if !slots.is_empty() {
            bridge.do_send(SessionSlots::Refresh {
                slots,
                stale_after_s: self.slot_stale_after_s(),
            });
        }
    }

    /// Ends sessions whose setup or idle timeout has passed.
    fn sweep(&mut self) {
        let setup = secs(self.settings.setup_timeout_s);
        let idle = secs(self.settings.idle_timeout_s);
        let expired: Vec<(SessionId, &'static str)> = self
            .sessions
            .values()
            .filter_map(|s| {
                if s.state != SessionState::Answered && s.setup_since.elapsed() > setup {
                    Some((s.id.clone(), "timeout"))
                } else if s.last_activity.elapsed() > idle {
                    Some((s.id.clone(), "idle_timeout"))
                } else {
                    None
                }
            })
            .collect();
        for (id, reason) in expired {
            self.end(&id, reason, Tell::Both);
        }
    }

    /// Removes a session, tells the ends named by `tell`, and (if it had
    /// become active) writes its history row.
    pub(super) fn end(&mut self, id: &SessionId, reason: &str, tell: Tell) {
        let Some(s) = self.sessions.remove(id) else {
            return;
        };
        if let Some(bridge) = &self.bridge {
            bridge.do_send(SessionSlots::GiveBack {
                slots: vec![(s.device.clone(), s.id.to_string())],
            });
        }
        let frame = s.close_frame(reason);
        if matches!(tell, Tell::Both | Tell::App) {
            s.app.outbox.send(frame.clone());
        }
        if let (Tell::Both | Tell::Robot, Some(r)) = (tell, &s.robot) {
            r.send(&s.device, &s.app.conn, frame);
        }
        if s.robot.is_none() {
            return; // never became active: nothing to record
        }
        gauge_add(&self.metrics.webrtc_sessions_active, -1);
        tracing::info!(session_id = %s.id, device_id = %s.device, reason, "webrtc session ended");
        let record = s.record(reason);
        let store = self.store.clone();
        actix::spawn(async move {
            if let Err(e) = store.record_session(&record).await {
                tracing::warn!(session_id = %record.session_id, error = %e, "session history not written");
            }
        });
    }

    /// Clustered: a robot frame for a session owned by another instance is
    /// sent there. True if it was.
    fn forward_to_owner(&self, msg: &FromRobot) -> bool {
        let Some(bridge) = &self.bridge else {
            return false;
        };
        let (id, raw) = match &msg.frame {
            RobotFrame::WebrtcOffer(s) | RobotFrame::WebrtcIce(s) | RobotFrame::WebrtcClose(s) => {
                (&s.session_id, s.raw.clone())
            }
            RobotFrame::WebrtcStats(st) => (&st.session_id, encode::webrtc_stats(st)),
            _ => return false,
        };
        if self.sessions.contains_key(id) {
            return false;
        }
        match id.instance() {
            Some(owner) if owner != &*self.instance => {
                bridge.do_send(crate::cluster::messages::SendDirected {
                    instance: owner.to_string(),
                    msg: crate::cluster::messages::Directed::RobotSig {
                        from: self.instance.to_string(),
                        d: msg.device.clone(),
                        raw,
                    },
                });
                true
            }
            _ => false,
        }
    }

    /// A frame from a robot socket here, or from a remote robot: sent to
    /// the session's owner if that is another instance, else handled, its
    /// error (if any) to the sender.
    fn on_robot_frame(&mut self, msg: FromRobot) {
        if self.forward_to_owner(&msg) {
            return;
        }
        let outbox = msg.outbox.clone();
        let reference = msg.reference.clone();
        if let Err(e) = self.on_robot(msg) {
            outbox.send(e.with_ref(reference).to_frame());
        }
    }

    /// Ends every session of `device`, telling both ends.
    fn end_device(&mut self, device: &DeviceId, reason: &'static str) {
        let ids: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|s| &s.device == device)
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            self.end(&id, reason, Tell::Both);
        }
    }

    /// The session `id` if `conn` is its app end.
    pub(super) fn app_side(&mut self, id: &SessionId, conn: &ConnId) -> Option<&mut Session> {
        self.sessions.get_mut(id).filter(|s| s.is_app(conn))
    }

    /// The session `id` if `conn` is its robot end.
    pub(super) fn robot_side(&mut self, id: &SessionId, conn: &ConnId) -> Option<&mut Session> {
        self.sessions.get_mut(id).filter(|s| s.is_robot(conn))
    }

    pub(super) fn new_session(
        &mut self,
        msg: FromApp,
        device: DeviceId,
        ctx: &mut Context<Self>,
    ) -> Result<(), WireError> {
        let room = msg
            .room
            .ok_or_else(|| WireError::new(WireCode::Internal, "no room for webrtc_request"))?;
        let open = self
            .sessions
            .values()
            .filter(|s| s.device == device)
            .count();
        let max = self.settings.max_sessions_per_device;
        if open >= max {
            self.metrics.refused(Refusal::WebrtcSessions);
            return Err(limit_error(max));
        }
        let id = SessionId::new_on(&self.instance);
        let app = AppEnd {
            conn: msg.conn,
            user: msg.user,
            outbox: msg.outbox,
        };
        self.sessions
            .insert(id.clone(), Session::new(id.clone(), device.clone(), app));
        let turn = self.turn.clone();
        let bridge = self.bridge.clone();
        let metrics = self.metrics.clone();
        let slot = self.bridge.clone().map(|b| {
            (
                b,
                SessionSlot {
                    device: device.clone(),
                    session: id.to_string(),
                    max: self.settings.max_sessions_per_device,
                    stale_after_s: self.slot_stale_after_s(),
                },
            )
        });
        let fetch = async move {
            // Clustered: the limit counts every instance's sessions. Redis
            // unreachable: this instance's limit holds and a robot here is
            // reached as usual; one elsewhere cannot be.
            let mut redis_down = false;
            if let Some((bridge, slot)) = slot {
                match bridge.send(slot).await.unwrap_or(SlotAnswer::Down) {
                    SlotAnswer::Taken => {}
                    SlotAnswer::Full => {
                        metrics.refused(Refusal::WebrtcSessions);
                        return Err(limit_error(max));
                    }
                    SlotAnswer::Down => redis_down = true,
                }
            }
            let link = match room.send(FindRobot).await {
                Ok(Some(RobotRoute::Local(conn, outbox))) => RobotEnd {
                    conn,
                    path: RobotPath::Local(outbox),
                },
                Ok(Some(RobotRoute::Remote(_))) if redis_down => return Err(unreachable()),
                Ok(Some(RobotRoute::Remote(instance))) => RobotEnd {
                    conn: RobotEnd::remote_conn(&instance),
                    path: RobotPath::Remote {
                        instance,
                        bridge: bridge.ok_or_else(WireError::robot_offline)?,
                    },
                },
                Ok(None) | Err(_) => return Err(WireError::robot_offline()),
            };
            let creds = turn.credentials(&device).await.map_err(|e| {
                tracing::warn!(device_id = %device, error = %e, "no TURN credentials");
                WireError::new(WireCode::Internal, "TURN credentials unavailable")
            })?;
            Ok((link, creds))
        };
        let reference = msg.reference;
        ctx.spawn(fetch.into_actor(self).map(move |res, act, ctx| {
            act.established(id, res, reference, ctx);
        }));
        Ok(())
    }

    /// The robot link and credentials of a new session arrived (or failed):
    /// the robot is sent its `webrtc_request`. A local robot is reached at
    /// once; a remote one only through Redis, so the app hears its
    /// credentials only once the robot's instance has heard the request
    /// (Redis unreachable: `error internal`, the session is dropped).
    fn established(
        &mut self,
        id: SessionId,
        res: Result<(RobotEnd, Value), WireError>,
        reference: Reference,
        ctx: &mut Context<Self>,
    ) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return; // the app left meanwhile
        };
        let (robot, creds) = match res {
            Ok(ok) => ok,
            Err(e) => {
                s.app.outbox.send(e.with_ref(reference).to_frame());
                self.drop_unstarted(&id);
                return;
            }
        };
        let frame = s.robot_request_frame(&creds, Setup::New);
        let ends = (s.device.clone(), s.app.conn.clone());
        match robot.send_confirmed(&ends.0, &ends.1, frame) {
            Sending::Done(told) => self.robot_told(id, ends, robot, creds, reference, told),
            Sending::Remote(heard) => {
                ctx.spawn(heard.into_actor(self).map(move |heard, act, _ctx| {
                    let told = heard.unwrap_or(false);
                    act.robot_told(id, ends, robot, creds, reference, told);
                }));
            }
        }
    }

    /// The robot end of a new session was (`told`) or could not be sent its
    /// `webrtc_request`: the session starts, or the app hears why not.
    fn robot_told(
        &mut self,
        id: SessionId,
        (device, app): (DeviceId, ConnId),
        robot: RobotEnd,
        creds: Value,
        reference: Reference,
        told: bool,
    ) {
        let Some(s) = self.sessions.get_mut(&id) else {
            // The app left while the request travelled: the robot may
            // already have it, so it hears the session is over.
            if told {
                let close = encode::webrtc_close(&id, "app_disconnected");
                robot.send(&device, &app, close);
            }
            return;
        };
        if !told {
            let e = match robot.path {
                RobotPath::Local(_) => WireError::robot_offline(),
                RobotPath::Remote { .. } => unreachable(),
            };
            s.app.outbox.send(e.with_ref(reference).to_frame());
            self.drop_unstarted(&id);
            return;
        }
        s.app
            .outbox
            .send(s.app_credentials_frame(&creds, Setup::New));
        s.robot = Some(robot);
        // The setup window starts when both ends have been told (a slow
        // credentials API does not eat into it).
        s.setup_since = std::time::Instant::now();
        s.touch();
        gauge_add(&self.metrics.webrtc_sessions_active, 1);
        inc(&self.metrics.webrtc_sessions_total);
        tracing::info!(session_id = %id, device_id = %s.device, "webrtc session started");
    }
}

impl Actor for SessionSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.sweep_every(), |act, _ctx| act.sweep());
        ctx.run_interval(SLOT_REFRESH, |act, _ctx| act.refresh_slots());
    }
}

impl Supervised for SessionSupervisor {
    /// After a panic (or a stop), under [`crate::supervise`]: sessions are
    /// kept, and `started` re-arms the sweep and the slot refresh. The
    /// restart dropped the context's futures, among them the robot-link and
    /// credential fetches of sessions still being set up; those sessions
    /// would wait for their setup timeout, so they end now: the app hears
    /// `error internal` (retry) and the slot is given back.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        let unstarted: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|s| s.robot.is_none())
            .map(|s| s.id.clone())
            .collect();
        tracing::warn!(
            sessions = self.sessions.len(),
            unstarted = unstarted.len(),
            "session supervisor restarting; sessions are kept"
        );
        for id in unstarted {
            if let Some(s) = self.sessions.get(&id) {
                s.app.outbox.send(
                    WireError::new(WireCode::Internal, "WebRTC session setup failed; retry")
                        .to_frame(),
                );
            }
            self.drop_unstarted(&id);
        }
    }
}

impl Handler<InjectPanic> for SessionSupervisor {
    type Result = ();
    fn handle(&mut self, _msg: InjectPanic, _ctx: &mut Context<Self>) {
        panic!("injected panic (test)");
    }
}

impl Handler<FromApp> for SessionSupervisor {
    type Result = ();
    fn handle(&mut self, msg: FromApp, ctx: &mut Context<Self>) {
        let outbox = msg.outbox.clone();
        let reference = msg.reference.clone();
        if let Err(e) = self.on_app(msg, ctx) {
            outbox.send(e.with_ref(reference).to_frame());
        }
    }
}

impl Handler<FromRobot> for SessionSupervisor {
    type Result = ();
    fn handle(&mut self, msg: FromRobot, _ctx: &mut Context<Self>) {
        self.on_robot_frame(msg);
    }
}

impl Handler<ForSessions> for SessionSupervisor {
    type Result = ();
    fn handle(&mut self, msg: ForSessions, _ctx: &mut Context<Self>) {
        match msg {
            // A remote robot's frame, as if from a robot socket here whose
            // errors go nowhere (its instance answers the robot).
            ForSessions::RobotSignal { from, device, raw } => {
                if let Ok(parsed) = crate::wire::frames::parse_robot(&raw) {
                    self.on_robot_frame(FromRobot {
                        conn: RobotEnd::remote_conn(&from),
                        device,
                        outbox: crate::wire::Outbox::closed(),
                        frame: parsed.frame,
                        reference: None,
                    });
                }
            }
            ForSessions::Deleted { device } => self.end_device(&device, "device_deleted"),
        }
    }
}

impl Handler<ConnGone> for SessionSupervisor {
    type Result = ();
    fn handle(&mut self, msg: ConnGone, _ctx: &mut Context<Self>) {
        let (reason, tell) = if msg.robot {
            ("robot_disconnected", Tell::App)
        } else {
            ("app_disconnected", Tell::Robot)
        };
        let ids: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|s| {
                if msg.robot {
                    s.is_robot(&msg.conn)
                } else {
                    s.is_app(&msg.conn)
                }
            })
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            self.end(&id, reason, tell);
        }
    }
}

impl Handler<EndDeviceSessions> for SessionSupervisor {
    type Result = ();
    fn handle(&mut self, msg: EndDeviceSessions, _ctx: &mut Context<Self>) {
        self.end_device(&msg.device, msg.reason);
    }
}

impl Handler<EndRemoteRobotSessions> for SessionSupervisor {
    type Result = ();
    fn handle(&mut self, msg: EndRemoteRobotSessions, _ctx: &mut Context<Self>) {
        let ids: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|s| {
                s.device == msg.device
                    && s.robot
                        .as_ref()
                        .is_some_and(|r| matches!(r.path, RobotPath::Remote { .. }))
            })
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            self.end(&id, "robot_disconnected", Tell::App);
        }
    }
}

impl Handler<ActiveSessions> for SessionSupervisor {
    type Result = usize;
    fn handle(&mut self, _msg: ActiveSessions, _ctx: &mut Context<Self>) -> usize {
        self.sessions.values().filter(|s| s.robot.is_some()).count()
    }
}
