//! Every series `/metrics` exposes: its name, its help text and, for
//! histograms, its bucket bounds. The one list docs/PROTOCOL.md (Part 2 L),
//! the Grafana dashboard and the alert rules are checked against (unit test
//! below, `tests/api/observability.rs`).
//!
//! Names are kept from the hand-written exposition this replaced; the new
//! ones follow Prometheus' conventions (base units: `_seconds`; counters end
//! in `_total`). Every series carries `instance` (`server.instance_id`).

use super::Metrics;
use std::sync::atomic::{AtomicI64, AtomicU64};

/// A gauge the relay keeps in its own atomic (read back by `/stats` and
/// shutdown), copied into the exporter at each scrape.
pub struct MirroredGauge {
    pub name: &'static str,
    pub help: &'static str,
    pub value: fn(&Metrics) -> &AtomicI64,
}

/// A counter kept in the relay's own atomic, copied at each scrape.
pub struct MirroredCounter {
    pub name: &'static str,
    pub help: &'static str,
    pub value: fn(&Metrics) -> &AtomicU64,
}

/// A histogram recorded straight into the exporter.
pub struct HistogramSpec {
    pub name: &'static str,
    pub help: &'static str,
    /// Upper bounds in seconds (`le`), ascending; `+Inf` is added.
    pub buckets: &'static [f64],
}

pub const GAUGES: &[MirroredGauge] = &[
    MirroredGauge {
        name: "wimz_robots_online",
        help: "Robot sockets connected to this instance.",
        value: |m| &m.robots_online,
    },
    MirroredGauge {
        name: "wimz_apps_connected",
        help: "App sockets connected to this instance.",
        value: |m| &m.apps_connected,
    },
    MirroredGauge {
        name: "wimz_rooms",
        help: "Device rooms alive on this instance.",
        value: |m| &m.rooms,
    },
    MirroredGauge {
        name: "wimz_webrtc_sessions_active",
        help: "WebRTC sessions being brokered.",
        value: |m| &m.webrtc_sessions_active,
    },
    MirroredGauge {
        name: "wimz_proxy_pending",
        help: "REST proxy requests waiting on a robot.",
        value: |m| &m.proxy_pending,
    },
];

pub const COUNTERS: &[MirroredCounter] = &[
    MirroredCounter {
        name: "wimz_messages_routed_total",
        help: "Socket messages routed.",
        value: |m| &m.messages_routed,
    },
    MirroredCounter {
        name: "wimz_events_in_total",
        help: "Robot events received.",
        value: |m| &m.events_in,
    },
    MirroredCounter {
        name: "wimz_deliveries_out_total",
        help: "Event deliveries queued to apps.",
        value: |m| &m.deliveries_out,
    },
    MirroredCounter {
        name: "wimz_commands_total",
        help: "App commands forwarded to robots.",
        value: |m| &m.commands,
    },
    MirroredCounter {
        name: "wimz_slow_consumers_closed_total",
        help: "Peers closed for not reading (1008 slow_consumer).",
        value: |m| &m.slow_consumers_closed,
    },
    MirroredCounter {
        name: "wimz_rate_limited_total",
        help: "Messages refused by the rate limit.",
        value: |m| &m.rate_limited,
    },
    MirroredCounter {
        name: "wimz_bad_messages_total",
        help: "Malformed socket messages.",
        value: |m| &m.bad_messages,
    },
    MirroredCounter {
        name: "wimz_heartbeat_timeouts_total",
        help: "Sockets closed by the heartbeat.",
        value: |m| &m.heartbeat_timeouts,
    },
    MirroredCounter {
        name: "wimz_auth_failures_total",
        help: "Refused authentications (all kinds; by kind in wimz_refused_total).",
        value: |m| &m.auth_failures,
    },
    MirroredCounter {
        name: "wimz_webrtc_sessions_total",
        help: "WebRTC sessions started.",
        value: |m| &m.webrtc_sessions_total,
    },
    MirroredCounter {
        name: "wimz_webrtc_relay_sessions_total",
        help: "Sessions reported as connection_type relay.",
        value: |m| &m.webrtc_relay_sessions,
    },
    MirroredCounter {
        name: "wimz_webrtc_direct_sessions_total",
        help: "Sessions reported as connection_type direct.",
        value: |m| &m.webrtc_direct_sessions,
    },
    MirroredCounter {
        name: "wimz_proxy_requests_total",
        help: "REST proxy requests.",
        value: |m| &m.proxy_requests,
    },
    MirroredCounter {
        name: "wimz_proxy_timeouts_total",
        help: "REST proxy requests that timed out.",
        value: |m| &m.proxy_timeouts,
    },
    MirroredCounter {
        name: "wimz_actor_panics_total",
        help: "Panics caught in actors (each restarted, or a room ended).",
        value: |m| &m.actor_panics,
    },
    MirroredCounter {
        name: "wimz_actor_restarts_total",
        help: "Restarts of long-lived actors (directory, session supervisor, cluster bridge).",
        value: |m| &m.actor_restarts,
    },
    MirroredCounter {
        name: "wimz_store_busy_total",
        help: "HTTP requests answered 503 store busy (the store could not be had in time).",
        value: |m| &m.store_busy,
    },
];

/// Sub-millisecond to a second: an event's way through the relay.
const FAST: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
/// A millisecond to half a minute: calls that wait on the store, a robot or
/// a person's browser.
const SLOW: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub const EVENT_ROUTING: HistogramSpec = HistogramSpec {
    name: "wimz_event_routing_seconds",
    help: "Robot event frame read -> queued to an app's outbox, one sample per delivery (on the robot's instance; clustered, the Redis append is inside).",
    buckets: FAST,
};
pub const MIRROR_ROUTING: HistogramSpec = HistogramSpec {
    name: "wimz_mirror_routing_seconds",
    help: "Clustered: an event another instance published, read from Redis -> queued to an app's outbox here, one sample per delivery (on each instance mirroring the device).",
    buckets: FAST,
};
pub const WS_HANDSHAKE: HistogramSpec = HistogramSpec {
    name: "wimz_ws_handshake_seconds",
    help: "WebSocket upgrade request -> 101 answer (authentication, caps), by role; refused handshakes are in wimz_refused_total.",
    buckets: SLOW,
};
pub const REDIS_PUBLISH: HistogramSpec = HistogramSpec {
    name: "wimz_redis_publish_seconds",
    help: "Round trip of publishing one event through Redis (clustered, on the robot's instance), failed ones included.",
    buckets: FAST,
};
pub const PROXY: HistogramSpec = HistogramSpec {
    name: "wimz_proxy_seconds",
    help: "REST proxy call handed to a room -> answered, by outcome.",
    buckets: SLOW,
};
pub const WEBRTC_SETUP: HistogramSpec = HistogramSpec {
    name: "wimz_webrtc_setup_seconds",
    help: "webrtc_request (or ICE restart, or renegotiating offer) -> the app's webrtc_answer.",
    buckets: SLOW,
};
pub const HISTOGRAMS: [&HistogramSpec; 6] = [
    &EVENT_ROUTING,
    &MIRROR_ROUTING,
    &WS_HANDSHAKE,
    &REDIS_PUBLISH,
    &PROXY,
    &WEBRTC_SETUP,
];

/// Counters and gauges recorded straight into the exporter (labelled, or
/// only written).
pub const REFUSED: (&str, &str) = (
    "wimz_refused_total",
    "Requests, sockets and messages refused, by reason (caps, throttles, origins, rate limit, authentication, proxy and WebRTC limits).",
);
pub const WS_CLOSED: (&str, &str) = (
    "wimz_ws_closed_total",
    "Sockets ended, by role, close code (1006: lost without a close frame) and reason.",
);
pub const OUTBOX_SATURATED: (&str, &str) = (
    "wimz_outbox_saturated_total",
    "Times a socket's outbound queue filled past 3/4 of limits.outbound_queue (a full one closes the peer, 1008).",
);
pub const REDIS_PUBLISH_FAILURES: (&str, &str) = (
    "wimz_redis_publish_failures_total",
    "Events Redis did not take (down or erroring): delivered locally only.",
);
pub const REDIS_APPENDS: (&str, &str) = (
    "wimz_redis_appends_total",
    "Clustered: events appended to Redis on the robot's instance, by path: lane (the room's own worker connection, under the term the bridge proved) or bridge (through the cluster bridge: the first event after a claim, after Redis changed, or one the lane handed back).",
);
pub const REDIS_UP: (&str, &str) = (
    "wimz_redis_up",
    "Clustered only: 1 while Redis pub/sub is live, 0 while degraded.",
);
pub const BUILD_INFO: (&str, &str) = (
    "wimz_build_info",
    "Always 1; the relay's version in the version label.",
);

/// Every series name, as exposed (histograms without their suffixes).
pub fn all_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = GAUGES.iter().map(|g| g.name).collect();
    names.extend(COUNTERS.iter().map(|c| c.name));
    names.extend(HISTOGRAMS.iter().map(|h| h.name));
    names.extend(
        [
            REFUSED,
            WS_CLOSED,
            OUTBOX_SATURATED,
            REDIS_PUBLISH_FAILURES,
            REDIS_APPENDS,
            REDIS_UP,
            BUILD_INFO,
        ]
        .iter()
        .map(|(n, _)| *n),
    );
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_buckets_ascend() {
        let mut names = all_names();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "a name is listed twice");
        for h in HISTOGRAMS {
            assert!(h.buckets.windows(2).all(|w| w[0] < w[1]), "{}", h.name);
            assert!(h.name.ends_with("_seconds"), "{}", h.name);
        }
    }

    /// docs/PROTOCOL.md names every series (the operator's contract).
    #[test]
    fn protocol_doc_names_every_series() {
        let doc = include_str!("../../docs/PROTOCOL.md");
        for name in all_names() {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/PROTOCOL.md does not name `{name}`"
            );
        }
    }
}
