//! Process-wide counters for `/stats` and `/metrics`, shared by `Arc`
//! (created in `startup`, passed down; not a global).

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Live gauges and monotonically increasing counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub robots_online: AtomicI64,
    pub apps_connected: AtomicI64,
    pub rooms: AtomicI64,
    pub webrtc_sessions_active: AtomicI64,
    pub messages_routed: AtomicU64,
    pub events_in: AtomicU64,
    pub deliveries_out: AtomicU64,
    pub commands: AtomicU64,
    pub slow_consumers_closed: AtomicU64,
    pub rate_limited: AtomicU64,
    pub bad_messages: AtomicU64,
    pub heartbeat_timeouts: AtomicU64,
    pub auth_failures: AtomicU64,
    pub webrtc_sessions_total: AtomicU64,
    pub webrtc_relay_sessions: AtomicU64,
    pub webrtc_direct_sessions: AtomicU64,
    pub proxy_requests: AtomicU64,
    pub proxy_timeouts: AtomicU64,
    pub proxy_pending: AtomicI64,
    /// Panics caught by [`crate::supervise`] (any supervised actor, rooms included).
    pub actor_panics: AtomicU64,
    /// Restarts of long-lived actors (after a panic or a stop).
    pub actor_restarts: AtomicU64,
    /// HTTP requests answered 503 "store busy" (store contention).
    pub store_busy: AtomicU64,
    /// Refusals by caps and throttles, one counter per [`REFUSED_REASONS`]
    /// label (`wimz_refused_total{reason}`; `crate::caps::count_refused`).
    pub refused: [AtomicU64; REFUSED_REASONS.len()],
}

/// The `reason` labels of `wimz_refused_total`, in the order of
/// `crate::caps::Reason` (which indexes [`Metrics::refused`] with them).
pub const REFUSED_REASONS: [&str; 9] = [
    "user_sockets",
    "device_watchers",
    "ip_sockets",
    "robot_connects",
    "devices",
    "login_ip",
    "login_username",
    "register_ip",
    "register_username",
];

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub fn gauge_add(g: &AtomicI64, d: i64) {
    g.fetch_add(d, Ordering::Relaxed);
}

pub fn get_i(g: &AtomicI64) -> i64 {
    g.load(Ordering::Relaxed).max(0)
}

pub fn get_u(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl Metrics {
    /// Prometheus text exposition.
    ///
    /// Long on purpose: it is the catalogue of every series, one entry per
    /// metric (name, help, value) in the order a reader of `/metrics` sees
    /// them, with no logic between entries; split, the catalogue would only
    /// be scattered. (The `obs` branch replaces it with
    /// metrics-exporter-prometheus.)
    pub fn render(&self, instance: &str) -> String {
        let mut out = String::with_capacity(2048);
        let mut gauge = |name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP wimz_{name} {help}\n# TYPE wimz_{name} gauge\nwimz_{name}{{instance=\"{instance}\"}} {v}");
        };
        gauge(
            "robots_online",
            "Robot sockets connected to this instance.",
            get_i(&self.robots_online),
        );
        gauge(
            "apps_connected",
            "App sockets connected to this instance.",
            get_i(&self.apps_connected),
        );
        gauge(
            "rooms",
            "Device rooms alive on this instance.",
            get_i(&self.rooms),
        );
        gauge(
            "webrtc_sessions_active",
            "WebRTC sessions being brokered.",
            get_i(&self.webrtc_sessions_active),
        );
        gauge(
            "proxy_pending",
            "REST proxy requests waiting on a robot.",
            get_i(&self.proxy_pending),
        );
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP wimz_{name}_total {help}\n# TYPE wimz_{name}_total counter\nwimz_{name}_total{{instance=\"{instance}\"}} {v}");
        };
        counter(
            "messages_routed",
            "Socket messages routed.",
            get_u(&self.messages_routed),
        );
        counter(
            "events_in",
            "Robot events received.",
            get_u(&self.events_in),
        );
        counter(
            "deliveries_out",
            "Event deliveries queued to apps.",
            get_u(&self.deliveries_out),
        );
        counter(
            "commands",
            "App commands forwarded to robots.",
            get_u(&self.commands),
        );
        counter(
            "slow_consumers_closed",
            "Peers closed for not reading.",
            get_u(&self.slow_consumers_closed),
        );
        counter(
            "rate_limited",
            "Messages refused by the rate limit.",
            get_u(&self.rate_limited),
        );
        counter(
            "bad_messages",
            "Malformed socket messages.",
            get_u(&self.bad_messages),
        );
        counter(
            "heartbeat_timeouts",
            "Sockets closed by the heartbeat.",
            get_u(&self.heartbeat_timeouts),
        );
        counter(
            "auth_failures",
            "Refused authentications.",
            get_u(&self.auth_failures),
        );
        counter(
            "webrtc_sessions",
            "WebRTC sessions started.",
            get_u(&self.webrtc_sessions_total),
        );
        counter(
            "webrtc_relay_sessions",
            "Sessions reported as connection_type relay.",
            get_u(&self.webrtc_relay_sessions),
        );
        counter(
            "webrtc_direct_sessions",
            "Sessions reported as connection_type direct.",
            get_u(&self.webrtc_direct_sessions),
        );
        counter(
            "proxy_requests",
            "REST proxy requests.",
            get_u(&self.proxy_requests),
        );
        counter(
            "proxy_timeouts",
            "REST proxy requests that timed out.",
            get_u(&self.proxy_timeouts),
        );
        counter(
            "actor_panics",
            "Panics caught in actors (each restarted, or a room ended).",
            get_u(&self.actor_panics),
        );
        counter(
            "actor_restarts",
            "Restarts of long-lived actors (directory, session supervisor, cluster bridge).",
            get_u(&self.actor_restarts),
        );
        counter(
            "store_busy",
            "HTTP requests answered 503 store busy (the store could not be had in time).",
            get_u(&self.store_busy),
        );
        let _ = writeln!(out, "# HELP wimz_refused_total Requests and sockets refused by a cap or throttle, by reason.\n# TYPE wimz_refused_total counter");
        for (label, count) in REFUSED_REASONS.iter().zip(&self.refused) {
            let _ = writeln!(
                out,
                "wimz_refused_total{{reason=\"{label}\",instance=\"{instance}\"}} {}",
                get_u(count)
            );
        }
        out
    }
}
