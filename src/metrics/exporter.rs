//! The relay's Prometheus exposition, through `metrics-exporter-prometheus`:
//! one [`PrometheusRecorder`] per relay (no global recorder; the `metrics`
//! macros are not used), every series of [`catalog`] registered at start-up
//! so each exists from the first scrape, at 0.
//!
//! Histogram handles record into the exporter's lock-free buckets
//! (`metrics-util`'s `AtomicBucket`: no lock and no bucket search on the
//! recording thread); [`Exporter::upkeep`] folds them into the bucketed
//! histograms, and so does every render.

use super::catalog::{self, HistogramSpec};
use super::labels::{AppendPath, ProxyOutcome, Refusal, SocketRole};
use super::Metrics;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::sync::atomic::Ordering;

static META: Metadata<'static> = Metadata::new("wimz_relay::metrics", Level::INFO, None);

/// The handles the relay records into.
pub struct Handles {
    pub event_routing: Histogram,
    pub mirror_routing: Histogram,
    pub redis_publish: Histogram,
    pub webrtc_setup: Histogram,
    /// By [`SocketRole`].
    pub handshake: [Histogram; 2],
    /// By [`ProxyOutcome`].
    pub proxy: [Histogram; 4],
    /// By [`Refusal`].
    pub refused: [Counter; Refusal::COUNT],
    pub outbox_saturated: Counter,
    pub redis_publish_failures: Counter,
    /// By [`AppendPath`].
    pub redis_appends: [Counter; 2],
}

pub struct Exporter {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Same order as [`catalog::GAUGES`] / [`catalog::COUNTERS`].
    gauges: Vec<Gauge>,
    counters: Vec<Counter>,
    /// Registered only on a clustered relay (a single instance has no Redis
    /// to be down).
    redis_up: Option<Gauge>,
}

impl Exporter {
    /// `instance` labels every series (left out when empty).
    pub fn new(instance: &str, clustered: bool) -> (Exporter, Handles) {
        let mut builder = PrometheusBuilder::new();
        if !instance.is_empty() {
            builder = builder.add_global_label("instance", instance);
        }
        for h in catalog::HISTOGRAMS {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(h.name.to_string()), h.buckets)
                // Only an empty bucket list is refused; the catalog's are not
                // (unit test there).
                .expect("catalog buckets are not empty");
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let gauges = catalog::GAUGES
            .iter()
            .map(|g| gauge(&recorder, g.name, g.help, &[]))
            .collect();
        let counters = catalog::COUNTERS
            .iter()
            .map(|c| counter(&recorder, c.name, c.help, &[]))
            .collect();
        let redis_up = clustered.then(|| {
            let (name, help) = catalog::REDIS_UP;
            gauge(&recorder, name, help, &[])
        });
        let (name, help) = catalog::BUILD_INFO;
        gauge(
            &recorder,
            name,
            help,
            &[("version", env!("CARGO_PKG_VERSION"))],
        )
        .set(1.0);
        let handles = Handles {
            event_routing: histogram(&recorder, &catalog::EVENT_ROUTING, &[]),
            mirror_routing: histogram(&recorder, &catalog::MIRROR_ROUTING, &[]),
            redis_publish: histogram(&recorder, &catalog::REDIS_PUBLISH, &[]),
            webrtc_setup: histogram(&recorder, &catalog::WEBRTC_SETUP, &[]),
            handshake: SocketRole::ALL
                .map(|r| histogram(&recorder, &catalog::WS_HANDSHAKE, &[("role", r.label())])),
            proxy: ProxyOutcome::ALL
                .map(|o| histogram(&recorder, &catalog::PROXY, &[("outcome", o.label())])),
            refused: Refusal::ALL.map(|r| {
                let (name, help) = catalog::REFUSED;
                counter(&recorder, name, help, &[("reason", r.label())])
            }),
            outbox_saturated: {
                let (name, help) = catalog::OUTBOX_SATURATED;
                counter(&recorder, name, help, &[])
            },
            redis_publish_failures: {
                let (name, help) = catalog::REDIS_PUBLISH_FAILURES;
                counter(&recorder, name, help, &[])
            },
            redis_appends: AppendPath::ALL.map(|p| {
                let (name, help) = catalog::REDIS_APPENDS;
                counter(&recorder, name, help, &[("path", p.label())])
            }),
        };
        let (name, help) = catalog::WS_CLOSED;
        recorder.describe_counter(KeyName::from_const_str(name), None, help.into());
        let exporter = Exporter {
            recorder,
            handle,
            gauges,
            counters,
            redis_up,
        };
        (exporter, handles)
    }

    /// The counter of sockets ended with `code` and `reason`, by `role`
    /// (registered on first use: reasons come from every close path).
    pub fn ws_closed(&self, role: SocketRole, code: u16, reason: &'static str) -> Counter {
        let key = Key::from_parts(
            catalog::WS_CLOSED.0,
            vec![
                Label::from_static_parts("role", role.label()),
                Label::new("code", code.to_string()),
                Label::from_static_parts("reason", reason),
            ],
        );
        self.recorder.register_counter(&key, &META)
    }

    /// Folds recorded histogram samples into their buckets (bounds the
    /// memory samples take between scrapes).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Copies the relay's own atomics in, then renders the text format.
    pub fn render(&self, m: &Metrics, redis_up: Option<bool>) -> String {
        for (spec, g) in catalog::GAUGES.iter().zip(&self.gauges) {
            g.set((spec.value)(m).load(Ordering::Relaxed).max(0) as f64);
        }
        for (spec, c) in catalog::COUNTERS.iter().zip(&self.counters) {
            c.absolute((spec.value)(m).load(Ordering::Relaxed));
        }
        if let (Some(g), Some(up)) = (&self.redis_up, redis_up) {
            g.set(if up { 1.0 } else { 0.0 });
        }
        self.handle.render()
    }
}

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::from_static_parts(k, v))
        .collect();
    Key::from_parts(name, labels)
}

fn counter(
    r: &PrometheusRecorder,
    name: &'static str,
    help: &'static str,
    labels: &[(&'static str, &'static str)],
) -> Counter {
    r.describe_counter(KeyName::from_const_str(name), None, help.into());
    r.register_counter(&key(name, labels), &META)
}

fn gauge(
    r: &PrometheusRecorder,
    name: &'static str,
    help: &'static str,
    labels: &[(&'static str, &'static str)],
) -> Gauge {
    r.describe_gauge(KeyName::from_const_str(name), None, help.into());
    r.register_gauge(&key(name, labels), &META)
}

fn histogram(
    r: &PrometheusRecorder,
    spec: &HistogramSpec,
    labels: &[(&'static str, &'static str)],
) -> Histogram {
    r.describe_histogram(KeyName::from_const_str(spec.name), None, spec.help.into());
    r.register_histogram(&key(spec.name, labels), &META)
}
