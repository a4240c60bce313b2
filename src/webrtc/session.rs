//! One WebRTC session as the [`SessionSupervisor`](super::SessionSupervisor)
//! keeps it: its two ends, its state and what the history row needs. Pure
//! data and the frames the relay itself makes for a session; no routing.

use crate::cluster::messages::{Directed, SendDirected};
use crate::ids::{unix_now, ConnId, DeviceId, SessionId, UserId};
use crate::store::SessionRecord;
use crate::wire::encode::{self, Setup};
use crate::wire::outbox::Outbox;
use serde_json::Value;
use std::time::Instant;

/// Where a session is in its offer/answer exchange. A closed session is
/// removed from the supervisor; what remains of it is its history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Credentials sent; waiting for the robot's offer (also after an ICE restart).
    Requested,
    /// The robot's offer went to the app; waiting for the answer.
    Offered,
    /// Offer and answer exchanged: setup complete.
    Answered,
}

/// The app end: the socket that sent `webrtc_request`.
pub struct AppEnd {
    pub conn: ConnId,
    pub user: UserId,
    pub outbox: Outbox,
}

/// The robot end: the device's robot socket when the session was made,
/// on this instance or (clustered) on another one.
pub struct RobotEnd {
    /// The robot socket's id; for a remote robot `remote:<instance>`.
    pub conn: ConnId,
    pub path: RobotPath,
}

/// How frames reach the robot end.
pub enum RobotPath {
    Local(Outbox),
    /// Through the instance holding the robot (its room hands the frame to
    /// the robot socket).
    Remote {
        instance: String,
        bridge: actix::Addr<crate::cluster::ClusterBridge>,
    },
}

impl RobotEnd {
    pub fn remote_conn(instance: &str) -> ConnId {
        ConnId::from_wire(&format!("remote:{instance}"))
    }

    /// Queues a frame to the robot; false if it cannot be delivered. A
    /// remote robot's frame is published without waiting to hear whether
    /// its instance got it (see [`RobotEnd::send_confirmed`]).
    pub fn send(&self, device: &DeviceId, app: &ConnId, frame: String) -> bool {
        match &self.path {
            RobotPath::Local(outbox) => outbox.send(frame),
            RobotPath::Remote { instance, bridge } => {
                bridge.do_send(directed(instance, device, app, frame));
                true
            }
        }
    }

    /// Queues a frame to the robot and tells whether it got there: at once
    /// for a robot here; for a remote one, once Redis has said whether its
    /// instance heard it.
    pub fn send_confirmed(&self, device: &DeviceId, app: &ConnId, frame: String) -> Sending {
        match &self.path {
            RobotPath::Local(outbox) => Sending::Done(outbox.send(frame)),
            RobotPath::Remote { instance, bridge } => Sending::Remote(Box::new(
                bridge.send(directed(instance, device, app, frame)),
            )),
        }
    }
}

/// What [`RobotEnd::send_confirmed`] did.
pub enum Sending {
    /// Queued to the robot here (true), or not.
    Done(bool),
    /// On its way to the robot's instance; answers whether it heard it.
    Remote(Box<actix::dev::Request<crate::cluster::ClusterBridge, SendDirected>>),
}

fn directed(instance: &str, device: &DeviceId, app: &ConnId, frame: String) -> SendDirected {
    SendDirected {
        instance: instance.to_string(),
        msg: Directed::Cmd {
            d: device.clone(),
            c: app.to_string(),
            raw: frame,
        },
    }
}

pub struct Session {
    pub id: SessionId,
    pub device: DeviceId,
    pub app: AppEnd,
    /// `None` while the robot link and credentials are being fetched; such
    /// a session holds a slot of the device's limit but is not yet active.
    pub robot: Option<RobotEnd>,
    pub state: SessionState,
    /// Unix seconds at creation (history row).
    pub started_at: i64,
    /// Monotonic creation time (duration).
    pub created: Instant,
    /// When the current offer/answer exchange began (request or ICE
    /// restart): `webrtc.setup_timeout_s` counts from here.
    pub setup_since: Instant,
    /// Last signaling or stats from either end: `webrtc.idle_timeout_s`.
    pub last_activity: Instant,
    pub ice_restarts: u32,
    /// `direct` or `relay`, as last reported by `webrtc_stats`.
    pub connection_type: Option<&'static str>,
    pub rtt_ms: Option<f64>,
}

impl Session {
    pub fn new(id: SessionId, device: DeviceId, app: AppEnd) -> Self {
        let now = Instant::now();
        Session {
            id,
            device,
            app,
            robot: None,
            state: SessionState::Requested,
            started_at: unix_now(),
            created: now,
            setup_since: now,
            last_activity: now,
            ice_restarts: 0,
            connection_type: None,
            rtt_ms: None,
        }
    }

    pub fn touch(&mut self) {
        self.last_activity = Instant::now();
    }

    pub fn is_app(&self, conn: &ConnId) -> bool {
        &self.app.conn == conn
    }

    pub fn is_robot(&self, conn: &ConnId) -> bool {
        self.robot.as_ref().is_some_and(|r| &r.conn == conn)
    }

    /// Robot ← `webrtc_request` (with `ice_restart: true` on a restart).
    pub fn robot_request_frame(&self, creds: &Value, setup: Setup) -> String {
        encode::webrtc_request(&self.id, &self.device, &self.app.user, creds, setup)
    }

    /// App ← `webrtc_credentials` (with `ice_restart: true` on a restart).
    pub fn app_credentials_frame(&self, creds: &Value, setup: Setup) -> String {
        encode::webrtc_credentials(&self.id, &self.device, creds, setup)
    }

    /// The relay's own `webrtc_close` to a surviving end.
    pub fn close_frame(&self, reason: &str) -> String {
        encode::webrtc_close(&self.id, reason)
    }

    /// The history row of this session, ending now with `reason`.
    pub fn record(&self, reason: &str) -> SessionRecord {
        SessionRecord {
            session_id: self.id.as_str().to_string(),
            device_id: self.device.as_str().to_string(),
            user_id: self.app.user.to_string(),
            started_at: self.started_at,
            ended_at: unix_now(),
            duration_ms: self.created.elapsed().as_millis().min(i64::MAX as u128) as i64,
            connection_type: self.connection_type.map(String::from),
            rtt_ms: self.rtt_ms,
            ice_restarts: i64::from(self.ice_restarts),
            close_reason: reason.to_string(),
        }
    }
}
