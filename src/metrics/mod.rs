//! What the relay counts and measures, for `/stats` and `/metrics`. One
//! [`Metrics`] per relay, created in `startup` and shared by `Arc` (no
//! global, and no global recorder: in-process test relays never share a
//! series).
//!
//! Two kinds of series (ARCHITECTURE.md says why):
//! - the relay's own atomics (the public fields): counters and gauges that
//!   `/stats`, shutdown and the cluster totals read back. Recording is one
//!   relaxed atomic add; each scrape copies them into the exporter.
//! - handles of the `metrics` crate, recorded straight into
//!   `metrics-exporter-prometheus` ([`exporter`]): histograms and labelled
//!   counters nobody reads back.
//!
//! The exposition (names, `# HELP`/`# TYPE`, escaping, buckets) is the
//! exporter's; [`catalog`] lists every series.

pub mod catalog;
mod exporter;
pub mod labels;

pub use labels::{AppendPath, ProxyOutcome, Refusal, SocketRole};

use exporter::{Exporter, Handles};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Live gauges and monotonically increasing counters, and the exporter.
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
    handles: Handles,
    exporter: Exporter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    /// Unlabelled, not clustered (unit tests).
    fn default() -> Self {
        Metrics::new("", false)
    }
}

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
    /// Every series labelled `instance=<instance>`; `wimz_redis_up` only
    /// when `clustered`.
    pub fn new(instance: &str, clustered: bool) -> Metrics {
        let (exporter, handles) = Exporter::new(instance, clustered);
        Metrics {
            robots_online: AtomicI64::new(0),
            apps_connected: AtomicI64::new(0),
            rooms: AtomicI64::new(0),
            webrtc_sessions_active: AtomicI64::new(0),
            messages_routed: AtomicU64::new(0),
            events_in: AtomicU64::new(0),
            deliveries_out: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            slow_consumers_closed: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            bad_messages: AtomicU64::new(0),
            heartbeat_timeouts: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            webrtc_sessions_total: AtomicU64::new(0),
            webrtc_relay_sessions: AtomicU64::new(0),
            webrtc_direct_sessions: AtomicU64::new(0),
            proxy_requests: AtomicU64::new(0),
            proxy_timeouts: AtomicU64::new(0),
            proxy_pending: AtomicI64::new(0),
            actor_panics: AtomicU64::new(0),
            actor_restarts: AtomicU64::new(0),
            store_busy: AtomicU64::new(0),
            handles,
            exporter,
        }
    }

    /// Counts one refusal (`wimz_refused_total{reason}`).
    pub fn refused(&self, reason: Refusal) {
        self.handles.refused[reason as usize].increment(1);
    }

    /// One delivery of an event read from its robot at `received`, queued
    /// to an app just now (`wimz_event_routing_seconds`).
    pub fn event_routed(&self, received: Instant) {
        self.handles.event_routing.record(received.elapsed());
    }

    /// One delivery of an event another instance published, read from
    /// Redis at `read`, queued to an app just now
    /// (`wimz_mirror_routing_seconds`).
    pub fn mirror_routed(&self, read: Instant) {
        self.handles.mirror_routing.record(read.elapsed());
    }

    /// A WebSocket upgrade of `role` that began at `started` was answered
    /// 101 just now.
    pub fn handshake_done(&self, role: SocketRole, started: Instant) {
        self.handles.handshake[role as usize].record(started.elapsed());
    }

    /// One Redis publish (an event onto the cluster) that began at
    /// `started` just came back; `ok` false if Redis did not take it.
    /// The one call the cluster's hot path makes for its metrics.
    pub fn redis_published(&self, started: Instant, ok: bool) {
        self.handles.redis_publish.record(started.elapsed());
        if !ok {
            self.handles.redis_publish_failures.increment(1);
        }
    }

    /// An event appended to Redis (clustered, on the robot's instance), by
    /// which way it went.
    pub fn redis_appended(&self, path: AppendPath) {
        self.handles.redis_appends[path as usize].increment(1);
    }

    /// An event not even tried on Redis (known down): delivered locally only.
    pub fn redis_publish_skipped(&self) {
        self.handles.redis_publish_failures.increment(1);
    }

    /// A proxied REST call handed to a room at `started` ended as `outcome`.
    pub fn proxy_done(&self, outcome: ProxyOutcome, started: Instant) {
        self.handles.proxy[outcome as usize].record(started.elapsed());
    }

    /// A WebRTC setup (request, ICE restart or renegotiation) that began at
    /// `since` got the app's answer just now.
    pub fn webrtc_answered(&self, since: Instant) {
        self.handles.webrtc_setup.record(since.elapsed());
    }

    /// A socket of `role` ended with close `code` (1006: no close frame)
    /// for `reason`.
    pub fn ws_closed(&self, role: SocketRole, code: u16, reason: &'static str) {
        self.exporter.ws_closed(role, code, reason).increment(1);
    }

    /// The counter a socket's outbox bumps when its queue fills past 3/4
    /// (`wimz_outbox_saturated_total`); cheap to clone.
    pub fn outbox_saturated(&self) -> metrics::Counter {
        self.handles.outbox_saturated.clone()
    }

    /// The Prometheus text exposition. `redis_up`: clustered, whether
    /// Redis pub/sub is live now.
    pub fn render(&self, redis_up: Option<bool>) -> String {
        self.exporter.render(self, redis_up)
    }

    /// Folds recorded histogram samples into their buckets every `every`
    /// while `metrics` lives (spawn on the runtime; ends by itself).
    pub async fn upkeep(metrics: Weak<Metrics>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match metrics.upgrade() {
                Some(m) => m.run_upkeep(),
                None => return,
            }
        }
    }

    /// Folds recorded histogram samples into their buckets now.
    pub fn run_upkeep(&self) {
        self.exporter.upkeep();
    }

    /// [`Metrics::upkeep`] for a shared `Metrics`.
    pub fn spawn_upkeep(self: &Arc<Metrics>, every: Duration) {
        actix_rt::spawn(Metrics::upkeep(Arc::downgrade(self), every));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample whose line starts with `prefix`.
    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn atomics_histograms_and_refusals_reach_the_exposition() {
        let m = Metrics::new("relay-a", true);
        gauge_add(&m.robots_online, 3);
        inc(&m.events_in);
        inc(&m.events_in);
        m.refused(Refusal::Origin);
        m.event_routed(Instant::now());
        m.ws_closed(SocketRole::App, 1009, "message_too_big");
        let text = m.render(Some(false));
        assert!(text.contains("# TYPE wimz_robots_online gauge"), "{text}");
        assert_eq!(
            sample(&text, "wimz_robots_online{instance=\"relay-a\"}"),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, "wimz_events_in_total{instance=\"relay-a\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                "wimz_refused_total{instance=\"relay-a\",reason=\"origin\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "wimz_refused_total{instance=\"relay-a\",reason=\"bad_token\"}"
            ),
            Some(0.0),
            "every reason exists from the start"
        );
        assert_eq!(
            sample(
                &text,
                "wimz_event_routing_seconds_count{instance=\"relay-a\"}"
            ),
            Some(1.0)
        );
        assert!(
            text.contains("wimz_event_routing_seconds_bucket{instance=\"relay-a\",le=\"0.00005\"}"),
            "{text}"
        );
        assert_eq!(
            sample(&text, "wimz_ws_closed_total{instance=\"relay-a\",role=\"app\",code=\"1009\",reason=\"message_too_big\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "wimz_redis_up{instance=\"relay-a\"}"),
            Some(0.0)
        );
        // A single instance has no Redis to be down.
        assert!(!Metrics::new("solo", false)
            .render(None)
            .contains("wimz_redis_up"));
    }
}
