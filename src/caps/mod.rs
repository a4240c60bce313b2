//! Caps per account and address (docs/SECURITY.md, PROTOCOL.md Part 2 J):
//! live sockets per user, per device and per client address; devices per
//! user; login and registration throttles per address and per username;
//! robot connections per device. [`Caps`] is built once in `startup` and
//! shared through `AppState`; every refusal is a [`Reason`], answered with
//! its own error code and counted in `/metrics` as
//! `wimz_refused_total{reason=..}`.
//!
//! Socket counts and throttles live in this instance's memory: in a
//! cluster they hold per instance (docs/SECURITY.md says why). Devices per
//! user are counted in the shared store, so that cap is cluster-wide.

pub mod sockets;
pub mod throttle;

use crate::config::Settings;
use crate::ids::{DeviceId, UserId};
use crate::metrics::Metrics;
use crate::net::client_ip::{AddrKey, TrustedProxies};
use actix_web::HttpRequest;
use sockets::{SocketCounts, SocketPermit};
use std::sync::Arc;
use std::time::Duration;
use throttle::Throttle;

/// Why a request or socket was refused: its metrics label, error code and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    UserSockets,
    DeviceWatchers,
    IpSockets,
    RobotConnects,
    Devices,
    LoginIp,
    LoginUsername,
    RegisterIp,
    RegisterUsername,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::UserSockets,
        Reason::DeviceWatchers,
        Reason::IpSockets,
        Reason::RobotConnects,
        Reason::Devices,
        Reason::LoginIp,
        Reason::LoginUsername,
        Reason::RegisterIp,
        Reason::RegisterUsername,
    ];

    /// The `error.code` (HTTP) or socket `error` code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::UserSockets => "user_socket_limit",
            Reason::DeviceWatchers => "watcher_limit",
            Reason::IpSockets => "ip_socket_limit",
            Reason::RobotConnects => "robot_connect_limit",
            Reason::Devices => "device_limit",
            Reason::LoginIp | Reason::LoginUsername => "login_throttled",
            Reason::RegisterIp | Reason::RegisterUsername => "registration_throttled",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Reason::UserSockets => "too many app sockets open for this user; close one",
            Reason::DeviceWatchers => "too many app sockets joined to this device",
            Reason::IpSockets => "too many sockets open from this address",
            Reason::RobotConnects => "this robot is reconnecting too often; retry later",
            Reason::Devices => "device limit reached for this user; delete one first",
            Reason::LoginIp => "too many login attempts from this address; retry later",
            Reason::LoginUsername => "too many login attempts for this user; retry later",
            Reason::RegisterIp => "too many registrations from this address; retry later",
            Reason::RegisterUsername => "too many registrations of this username; retry later",
        }
    }

    /// Its `wimz_refused_total` reason.
    pub fn refusal(self) -> crate::metrics::Refusal {
        use crate::metrics::Refusal as R;
        match self {
            Reason::UserSockets => R::UserSockets,
            Reason::DeviceWatchers => R::DeviceWatchers,
            Reason::IpSockets => R::IpSockets,
            Reason::RobotConnects => R::RobotConnects,
            Reason::Devices => R::Devices,
            Reason::LoginIp => R::LoginIp,
            Reason::LoginUsername => R::LoginUsername,
            Reason::RegisterIp => R::RegisterIp,
            Reason::RegisterUsername => R::RegisterUsername,
        }
    }

    /// 403 for a quota waiting does not free (devices); 429 otherwise.
    pub fn status(self) -> actix_web::http::StatusCode {
        match self {
            Reason::Devices => actix_web::http::StatusCode::FORBIDDEN,
            _ => actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

/// A refusal: its reason and, where waiting helps, how long (`Retry-After`, s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub retry_after_s: Option<u64>,
}

/// Usernames as throttle keys: case-folded, and bounded so an absurd name
/// cannot make a large key.
fn username_key(name: &str) -> String {
    let mut k = crate::store::username_key(name.trim());
    k.truncate(64);
    k
}

/// Every cap and throttle of this instance.
pub struct Caps {
    settings: crate::config::caps::CapsSettings,
    trusted: TrustedProxies,
    sockets: SocketCounts,
    login_ip: Throttle<AddrKey>,
    login_username: Throttle<String>,
    register_ip: Throttle<AddrKey>,
    register_username: Throttle<String>,
    robot_connects: Throttle<DeviceId>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Caps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Caps({:?})", self.settings)
    }
}

impl Caps {
    pub fn new(settings: &Settings, metrics: Arc<Metrics>) -> Caps {
        let t = &settings.throttle;
        Caps {
            settings: settings.caps.clone(),
            trusted: settings.server.trusted_proxies.clone(),
            sockets: SocketCounts::default(),
            login_ip: Throttle::new(t.login_per_ip),
            login_username: Throttle::new(t.login_per_username),
            register_ip: Throttle::new(t.register_per_ip),
            register_username: Throttle::new(t.register_per_username),
            robot_connects: Throttle::new(settings.caps.robot_connects_per_device),
            metrics,
        }
    }

    /// The client's address key (see [`crate::net::client_ip`]).
    pub fn client(&self, req: &HttpRequest) -> AddrKey {
        let Some(peer) = req.peer_addr() else {
            return AddrKey::unknown();
        };
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok());
        AddrKey::of(self.trusted.client(peer.ip(), forwarded))
    }

    /// Counts `reason` and makes its refusal (answered as an HTTP error,
    /// `crate::error::ApiError::Refused`).
    pub fn refuse(&self, reason: Reason, wait: Option<Duration>) -> Refusal {
        self.count(reason);
        let retry_after_s = wait.map(|w| w.as_secs_f64().ceil().max(1.0) as u64);
        Refusal {
            reason,
            retry_after_s,
        }
    }

    /// Counts a refusal made elsewhere (a room's watcher cap).
    pub fn count(&self, reason: Reason) {
        self.metrics.refused(reason.refusal());
    }

    fn socket_wait(&self) -> Option<Duration> {
        Some(Duration::from_secs(
            self.settings.socket_retry_after_s.max(1),
        ))
    }

    /// An app socket of `user` from `addr`, if the caps allow.
    pub fn app_socket(&self, addr: AddrKey, user: &UserId) -> Result<SocketPermit, Refusal> {
        let c = &self.settings;
        self.sockets
            .admit(addr, Some(user), c.app_sockets_per_user, c.sockets_per_ip)
            .map_err(|reason| self.refuse(reason, self.socket_wait()))
    }

    /// A robot socket of `device` from `addr` (already authenticated, so a
    /// stranger cannot spend a device's connection budget).
    pub fn robot_socket(&self, addr: AddrKey, device: &DeviceId) -> Result<SocketPermit, Refusal> {
        self.robot_connects
            .check(device)
            .map_err(|wait| self.refuse(Reason::RobotConnects, Some(wait)))?;
        self.sockets
            .admit(addr, None, 0, self.settings.sockets_per_ip)
            .map_err(|reason| self.refuse(reason, self.socket_wait()))
    }

    /// One login attempt for `username` from `addr`.
    pub fn login(&self, addr: AddrKey, username: &str) -> Result<(), Refusal> {
        self.by_addr_and_name(
            (&self.login_ip, Reason::LoginIp),
            (&self.login_username, Reason::LoginUsername),
            addr,
            username,
        )
    }

    /// One registration attempt of `username` from `addr`.
    pub fn register(&self, addr: AddrKey, username: &str) -> Result<(), Refusal> {
        self.by_addr_and_name(
            (&self.register_ip, Reason::RegisterIp),
            (&self.register_username, Reason::RegisterUsername),
            addr,
            username,
        )
    }

    /// The address's throttle first, then the username's.
    fn by_addr_and_name(
        &self,
        (by_addr, addr_reason): (&Throttle<AddrKey>, Reason),
        (by_name, name_reason): (&Throttle<String>, Reason),
        addr: AddrKey,
        username: &str,
    ) -> Result<(), Refusal> {
        by_addr
            .check(&addr)
            .map_err(|w| self.refuse(addr_reason, Some(w)))?;
        by_name
            .check(&username_key(username))
            .map_err(|w| self.refuse(name_reason, Some(w)))
    }

    /// `caps.devices_per_user` (0 = no cap).
    pub fn devices_per_user(&self) -> usize {
        self.settings.devices_per_user
    }

    /// `caps.app_sockets_per_device` (0 = no cap).
    pub fn app_sockets_per_device(&self) -> usize {
        self.settings.app_sockets_per_device
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reason keeps its own `wimz_refused_total` label.
    #[test]
    fn each_reason_has_its_own_metrics_label() {
        let labels = Reason::ALL.map(|r| r.refusal().label());
        assert_eq!(
            labels,
            [
                "user_sockets",
                "device_watchers",
                "ip_sockets",
                "robot_connects",
                "devices",
                "login_ip",
                "login_username",
                "register_ip",
                "register_username",
            ]
        );
    }
}
