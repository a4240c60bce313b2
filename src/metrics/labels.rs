//! The closed sets of label values the relay's series use: why something
//! was refused ([`Refusal`], `wimz_refused_total{reason}`), which end of a
//! socket ([`SocketRole`]), how a proxied REST call ended
//! ([`ProxyOutcome`]), which way an event reached Redis ([`AppendPath`]). Typed so a label cannot be misspelt at a call site,
//! and listed (`ALL`) so every series exists from start-up, at 0.

/// Why a request, socket or message was refused: the `reason` label of
/// `wimz_refused_total`. The first nine are the caps and throttles
/// (`crate::caps::Reason` maps onto them); the rest are the relay's other
/// refusals. docs/PROTOCOL.md (Part 2 L) lists them with what each means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UserSockets,
    DeviceWatchers,
    IpSockets,
    RobotConnects,
    Devices,
    LoginIp,
    LoginUsername,
    RegisterIp,
    RegisterUsername,
    /// A browser `Origin` not in `server.allowed_origins` (403 `forbidden`).
    Origin,
    /// A socket message over `limits.messages_per_s` (`error rate_limited`).
    RateLimited,
    /// An expired, tampered or malformed token (401; a request with no
    /// token at all is not counted).
    BadToken,
    /// A device token whose credential was rotated or deleted (401).
    RevokedToken,
    /// A device signature out of its window, wrong, replayed or of an
    /// unknown device (401).
    BadSignature,
    /// A login with a wrong password or an unknown username (401).
    BadPassword,
    /// More than `proxy.max_pending_per_device` REST calls waiting (429).
    ProxyPending,
    /// More than `webrtc.max_sessions_per_device` sessions (`error session_limit`).
    WebrtcSessions,
    /// A socket asked for while the instance is stopping (503; a rolling
    /// restart's clients go to another instance).
    Restarting,
}

impl Refusal {
    pub const COUNT: usize = 18;
    pub const ALL: [Refusal; Refusal::COUNT] = [
        Refusal::UserSockets,
        Refusal::DeviceWatchers,
        Refusal::IpSockets,
        Refusal::RobotConnects,
        Refusal::Devices,
        Refusal::LoginIp,
        Refusal::LoginUsername,
        Refusal::RegisterIp,
        Refusal::RegisterUsername,
        Refusal::Origin,
        Refusal::RateLimited,
        Refusal::BadToken,
        Refusal::RevokedToken,
        Refusal::BadSignature,
        Refusal::BadPassword,
        Refusal::ProxyPending,
        Refusal::WebrtcSessions,
        Refusal::Restarting,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::UserSockets => "user_sockets",
            Refusal::DeviceWatchers => "device_watchers",
            Refusal::IpSockets => "ip_sockets",
            Refusal::RobotConnects => "robot_connects",
            Refusal::Devices => "devices",
            Refusal::LoginIp => "login_ip",
            Refusal::LoginUsername => "login_username",
            Refusal::RegisterIp => "register_ip",
            Refusal::RegisterUsername => "register_username",
            Refusal::Origin => "origin",
            Refusal::RateLimited => "rate_limited",
            Refusal::BadToken => "bad_token",
            Refusal::RevokedToken => "revoked_token",
            Refusal::BadSignature => "bad_signature",
            Refusal::BadPassword => "bad_password",
            Refusal::ProxyPending => "proxy_pending",
            Refusal::WebrtcSessions => "webrtc_sessions",
            Refusal::Restarting => "restarting",
        }
    }
}

/// Which end of the relay a socket is: the `role` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketRole {
    Robot,
    App,
}

impl SocketRole {
    pub const ALL: [SocketRole; 2] = [SocketRole::Robot, SocketRole::App];

    pub fn label(self) -> &'static str {
        match self {
            SocketRole::Robot => "robot",
            SocketRole::App => "app",
        }
    }
}

/// How a proxied REST call that reached a room ended: the `outcome` label
/// of `wimz_proxy_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyOutcome {
    /// The robot answered (whatever its status).
    Answered,
    /// `proxy.timeout_s` passed (504).
    Timeout,
    /// The robot was not there or left meanwhile (503).
    Offline,
    /// Too many calls waiting on the robot (429).
    Refused,
}

impl ProxyOutcome {
    pub const ALL: [ProxyOutcome; 4] = [
        ProxyOutcome::Answered,
        ProxyOutcome::Timeout,
        ProxyOutcome::Offline,
        ProxyOutcome::Refused,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ProxyOutcome::Answered => "answered",
            ProxyOutcome::Timeout => "timeout",
            ProxyOutcome::Offline => "offline",
            ProxyOutcome::Refused => "refused",
        }
    }
}

/// Which way an event reached Redis on the robot's instance: the `path`
/// label of `wimz_redis_appends_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendPath {
    /// The room's own worker connection, under the bridge's ticket.
    Lane,
    /// Through the cluster bridge (the first event after a claim, after
    /// Redis changed, or one the lane handed back).
    Bridge,
}

impl AppendPath {
    pub const ALL: [AppendPath; 2] = [AppendPath::Lane, AppendPath::Bridge];

    pub fn label(self) -> &'static str {
        match self {
            AppendPath::Lane => "lane",
            AppendPath::Bridge => "bridge",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_listed_once_at_its_own_index() {
        for (i, r) in Refusal::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
        let mut labels: Vec<_> = Refusal::ALL.iter().map(|r| r.label()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), Refusal::COUNT);
        for (i, o) in ProxyOutcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i, "{o:?}");
        }
        for (i, r) in SocketRole::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
        for (i, p) in AppendPath::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i, "{p:?}");
        }
    }
}
