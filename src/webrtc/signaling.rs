//! Signaling routing of the [`SessionSupervisor`]: what each app or robot
//! frame does to its session (PROTOCOL.md §3.5 steps 2–7). Payloads are
//! forwarded raw (`Signal::raw`), never re-serialised; a session id that is
//! not the sender's gets `unknown_session` and the session is not touched.

use super::session::{Sending, SessionState};
use super::supervisor::{unreachable, Reference, SessionSupervisor, Tell};
use crate::ids::{ConnId, DeviceId, SessionId};
use crate::metrics::inc;
use crate::webrtc::messages::{FromApp, FromRobot};
use crate::wire::encode::Setup;
use crate::wire::frames::{AppFrame, RobotFrame, Signal, WebrtcStats};
use crate::wire::{WireCode, WireError};
use actix::prelude::*;
use serde_json::Value;

impl SessionSupervisor {
    /// ICE restart (§3.5.6): same session, fresh credentials to both ends.
    fn restart(
        &mut self,
        msg: &FromApp,
        device: &DeviceId,
        id: Option<SessionId>,
        ctx: &mut Context<Self>,
    ) -> Result<(), WireError> {
        let id = id.ok_or_else(|| {
            WireError::new(WireCode::BadMessage, "ice_restart needs the session_id")
        })?;
        match self.app_side(&id, &msg.conn) {
            Some(s) if &s.device == device && s.robot.is_some() => s.touch(),
            _ => return Err(unknown_session()),
        }
        let turn = self.turn.clone();
        let device = device.clone();
        let reference = msg.reference.clone();
        let fetch = async move { turn.credentials(&device).await };
        ctx.spawn(fetch.into_actor(self).map(move |res, act, ctx| {
            let Some(s) = act.sessions.get_mut(&id) else {
                return; // ended meanwhile
            };
            let creds = match res {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(session_id = %id, error = %e, "no TURN credentials for restart");
                    s.app.outbox.send(
                        WireError::new(WireCode::Internal, "TURN credentials unavailable")
                            .with_ref(reference)
                            .to_frame(),
                    );
                    return;
                }
            };
            let frame = s.robot_request_frame(&creds, Setup::IceRestart);
            let Some(robot) = &s.robot else { return };
            // A remote robot is reached only through Redis: the app gets new
            // credentials only once the robot's instance has heard.
            match robot.send_confirmed(&s.device, &s.app.conn, frame) {
                Sending::Done(_) => act.restarted(&id, creds, reference, true),
                Sending::Remote(heard) => {
                    ctx.spawn(heard.into_actor(act).map(move |heard, act, _ctx| {
                        act.restarted(&id, creds, reference, heard.unwrap_or(false));
                    }));
                }
            }
        }));
        Ok(())
    }

    /// The robot end was (`told`) or could not be sent an ICE restart's
    /// `webrtc_request`: the app gets the fresh credentials, or an error and
    /// the session stays as it was.
    fn restarted(&mut self, id: &SessionId, creds: Value, reference: Reference, told: bool) {
        let Some(s) = self.sessions.get_mut(id) else {
            return; // ended meanwhile
        };
        if !told {
            s.app
                .outbox
                .send(unreachable().with_ref(reference).to_frame());
            return;
        }
        s.ice_restarts += 1;
        s.state = SessionState::Requested;
        s.setup_since = std::time::Instant::now();
        s.touch();
        s.app
            .outbox
            .send(s.app_credentials_frame(&creds, Setup::IceRestart));
    }

    /// `webrtc_stats` from an end: recorded, never forwarded.
    fn stats(&mut self, st: WebrtcStats, conn: &ConnId) -> Result<(), WireError> {
        let ctype = match st.connection_type.as_deref() {
            None => None,
            Some("direct") => Some("direct"),
            Some("relay") => Some("relay"),
            Some(_) => {
                return Err(WireError::new(
                    WireCode::BadMessage,
                    "connection_type must be \"direct\" or \"relay\"",
                ))
            }
        };
        if st.rtt_ms.is_some_and(|r| !r.is_finite() || r < 0.0) {
            return Err(WireError::new(
                WireCode::BadMessage,
                "rtt_ms must be a non-negative number",
            ));
        }
        let s = self
            .sessions
            .get_mut(&st.session_id)
            .filter(|s| s.is_app(conn) || s.is_robot(conn))
            .ok_or_else(unknown_session)?;
        s.touch();
        if let Some(t) = ctype {
            if s.connection_type != Some(t) {
                s.connection_type = Some(t);
                inc(if t == "relay" {
                    &self.metrics.webrtc_relay_sessions
                } else {
                    &self.metrics.webrtc_direct_sessions
                });
            }
        }
        if st.rtt_ms.is_some() {
            s.rtt_ms = st.rtt_ms;
        }
        Ok(())
    }

    pub(super) fn on_app(
        &mut self,
        msg: FromApp,
        ctx: &mut Context<Self>,
    ) -> Result<(), WireError> {
        let conn = msg.conn.clone();
        match &msg.frame {
            AppFrame::WebrtcRequest {
                device,
                session_id,
                ice_restart,
            } => {
                let device = device.clone();
                if *ice_restart {
                    let id = session_id.clone();
                    self.restart(&msg, &device, id, ctx)
                } else {
                    self.new_session(msg, device, ctx)
                }
            }
            AppFrame::WebrtcAnswer(sig) => self.relay_to_robot(sig, &conn, Relayed::Sdp),
            AppFrame::WebrtcIce(sig) => self.relay_to_robot(sig, &conn, Relayed::IceOrClose),
            AppFrame::WebrtcClose(sig) => {
                self.relay_to_robot(sig, &conn, Relayed::IceOrClose)?;
                self.end(&sig.session_id, "closed_by_app", Tell::Nobody);
                Ok(())
            }
            AppFrame::WebrtcStats(_) => {
                let AppFrame::WebrtcStats(st) = msg.frame else {
                    return Ok(());
                };
                self.stats(st, &conn)
            }
            _ => Err(WireError::new(
                WireCode::Unsupported,
                "not a signaling message",
            )),
        }
    }

    /// App → robot, raw. The answer (`Sdp`) moves an offered session to
    /// answered.
    fn relay_to_robot(
        &mut self,
        sig: &Signal,
        conn: &ConnId,
        kind: Relayed,
    ) -> Result<(), WireError> {
        let s = self
            .app_side(&sig.session_id, conn)
            .filter(|s| s.robot.is_some())
            .ok_or_else(unknown_session)?;
        s.touch();
        let answered = kind == Relayed::Sdp && s.state == SessionState::Offered;
        if answered {
            s.state = SessionState::Answered;
        }
        let setup_since = s.setup_since;
        if let Some(r) = &s.robot {
            r.send(&s.device, &s.app.conn, sig.raw.clone());
        }
        if answered {
            self.metrics.webrtc_answered(setup_since);
        }
        Ok(())
    }

    /// Robot → app, raw. The offer (`Sdp`) moves the session to offered.
    fn relay_to_app(
        &mut self,
        sig: &Signal,
        conn: &ConnId,
        kind: Relayed,
    ) -> Result<(), WireError> {
        let s = self
            .robot_side(&sig.session_id, conn)
            .ok_or_else(unknown_session)?;
        s.touch();
        if kind == Relayed::Sdp {
            if s.state == SessionState::Answered {
                // A renegotiation: its own setup window starts now.
                s.setup_since = std::time::Instant::now();
            }
            s.state = SessionState::Offered;
        }
        s.app.outbox.send(sig.raw.clone());
        Ok(())
    }

    pub(super) fn on_robot(&mut self, msg: FromRobot) -> Result<(), WireError> {
        match msg.frame {
            RobotFrame::WebrtcOffer(sig) => self.relay_to_app(&sig, &msg.conn, Relayed::Sdp),
            RobotFrame::WebrtcIce(sig) => self.relay_to_app(&sig, &msg.conn, Relayed::IceOrClose),
            RobotFrame::WebrtcClose(sig) => {
                self.relay_to_app(&sig, &msg.conn, Relayed::IceOrClose)?;
                self.end(&sig.session_id, "closed_by_robot", Tell::Nobody);
                Ok(())
            }
            RobotFrame::WebrtcStats(st) => self.stats(st, &msg.conn),
            _ => Err(WireError::new(
                WireCode::Unsupported,
                "not a signaling message",
            )),
        }
    }
}
/// What a relayed signaling frame is to the session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relayed {
    /// The robot's offer or the app's answer: the session moves on.
    Sdp,
    /// A candidate or a close: the state stays.
    IceOrClose,
}

fn unknown_session() -> WireError {
    WireError::new(
        WireCode::UnknownSession,
        "no such session on this connection",
    )
}
