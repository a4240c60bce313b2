//! The result of a run: a serialisable [`Report`], its readable table, and
//! the verdict (any loss, duplicate, reorder, misrouting or failed socket
//! fails the run).

use super::args::{LoadtestArgs, Scenario};
use super::procstat::{cpu_pct, Sample};
use super::stats::{get, Hist, Stats};
use serde::Serialize;
use std::collections::BTreeMap;

/// Facts the driver measured around the run.
pub struct RunFacts {
    pub sockets_wanted: u64,
    pub connect_s: f64,
    pub duration_s: f64,
    /// From the end of the sending window to the end of settling.
    pub settle_s: f64,
    pub connected_sockets: u64,
    pub relay_base: Option<Sample>,
    pub relay_connected: Option<Sample>,
    pub relay_run: Option<(Sample, Sample)>,
    /// Deliveries the apps received between the two `relay_run` samples
    /// (the sending window), for CPU per delivery.
    pub run_deliveries: u64,
    pub relay_peak_rss_kib: Option<u64>,
    pub gen_base: Option<Sample>,
    pub gen_run: Option<(Sample, Sample)>,
}

/// CPU time between two samples of a process ÷ `n`, microseconds; `None`
/// when `n` is 0.
pub fn cpu_us_per(a: &Sample, b: &Sample, n: u64) -> Option<f64> {
    (n > 0).then(|| (b.cpu_s - a.cpu_s).max(0.0) * 1e6 / n as f64)
}

/// Percentiles of a histogram, milliseconds.
#[derive(Debug, Serialize, Default)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    fn of(h: &Hist) -> Percentiles {
        let h = h.merged();
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Connections {
    pub wanted: u64,
    pub attempted: u64,
    pub established: u64,
    pub failed: u64,
    /// Up together after the ramp.
    pub concurrent: u64,
    pub unexpected_closes: u64,
    pub ramp_s: f64,
    pub connect_time: Percentiles,
}

#[derive(Debug, Serialize)]
pub struct Events {
    pub sent: u64,
    pub deliveries_expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub seq_gaps: u64,
    pub seq_backwards: u64,
    pub epoch_changes: u64,
    pub misrouted: u64,
    pub latency: Percentiles,
    /// Robot send → relay envelope `ts_ms` (ms resolution: ±1 ms).
    pub latency_to_relay: Percentiles,
    /// Relay envelope `ts_ms` → app receive (ms resolution: ±1 ms).
    pub latency_from_relay: Percentiles,
    pub in_per_s: f64,
    pub out_per_s: f64,
}

#[derive(Debug, Serialize)]
pub struct Traffic {
    pub frames_out: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub bytes_in: u64,
    pub unparsed_frames: u64,
}

#[derive(Debug, Serialize)]
pub struct Commands {
    pub sent: u64,
    pub results: u64,
    pub missing: u64,
    pub misrouted: u64,
    pub round_trip: Percentiles,
}

#[derive(Debug, Serialize)]
pub struct Signaling {
    /// The relay answered `unsupported` to webrtc_request.
    pub unsupported: bool,
    pub requested: u64,
    pub credentials: u64,
    pub offers: u64,
    pub answers_at_robot: u64,
    pub ice: u64,
    pub completed: u64,
    pub closes_at_robot: u64,
    pub closed_by_relay: u64,
    pub timed_out: u64,
    pub misrouted: u64,
    pub sessions_per_s: f64,
    pub setup_time: Percentiles,
}

#[derive(Debug, Serialize)]
pub struct Storm {
    pub reconnects_ok: u64,
    pub reconnect_attempts_failed: u64,
    pub recovered_complete: u64,
    pub recovered_incomplete: u64,
    /// Storm start → socket back (robots) / `recovered` (apps).
    pub recovery: Percentiles,
}

#[derive(Debug, Serialize)]
pub struct Process {
    pub rss_before_kib: u64,
    pub rss_connected_kib: u64,
    pub rss_peak_kib: u64,
    /// (connected − before) / sockets up.
    pub rss_per_connection_bytes: u64,
    /// During the run, percent of one core (`None`: not readable).
    pub cpu_pct: Option<f64>,
    /// The process's utime + stime over the sending window ÷ the
    /// deliveries apps received in it, microseconds (`None`: no
    /// deliveries in the window, or not readable). The figure noise moves
    /// least: it does not depend on how busy the rest of the box is.
    pub cpu_us_per_delivery: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub target: String,
    pub robots: usize,
    pub apps_per_robot: usize,
    pub rate_per_robot: f64,
    pub duration_s: f64,
    pub settle_s: f64,
    pub connections: Connections,
    pub events: Events,
    pub traffic: Traffic,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commands: Option<Commands>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signaling: Option<Signaling>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm: Option<Storm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<Process>,
    /// The generator's own CPU during the run, percent of one core.
    pub generator_cpu_pct: Option<f64>,
    pub generator_rss_kib: Option<u64>,
    pub errors: BTreeMap<String, u64>,
    pub error_samples: BTreeMap<String, String>,
    pub passed: bool,
    /// Why it failed (empty when passed).
    pub failures: Vec<String>,
}

impl Report {
    /// The report of a finished run: each section from the counters, then
    /// the verdict ([`failures`]).
    pub fn build(args: &LoadtestArgs, st: &Stats, f: RunFacts) -> Report {
        let events = Events::of(st, &f);
        let commands = (args.scenario == Scenario::Commands).then(|| Commands::of(st));
        let errors = st.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let signaling = (args.scenario == Scenario::Signaling)
            .then(|| Signaling::of(st, errors.contains_key("unsupported"), &f));
        let storm = (args.scenario == Scenario::ReconnectStorm).then(|| Storm::of(st));
        let established = get(&st.conn_established);
        let failed = get(&st.conn_failed);
        let closes = get(&st.unexpected_closes);
        let failures = failures(
            failed,
            closes,
            &events,
            commands.as_ref(),
            signaling.as_ref(),
            storm.as_ref(),
        );
        Report {
            scenario: args.scenario,
            target: args.target.clone(),
            robots: args.robots,
            apps_per_robot: args.apps_per_robot,
            rate_per_robot: args.rate,
            duration_s: f.duration_s,
            settle_s: f.settle_s,
            connections: Connections {
                wanted: f.sockets_wanted,
                attempted: get(&st.conn_attempted),
                established,
                failed,
                concurrent: f.connected_sockets,
                unexpected_closes: closes,
                ramp_s: f.connect_s,
                connect_time: Percentiles::of(&st.connect),
            },
            events,
            traffic: Traffic {
                frames_out: get(&st.frames_out),
                bytes_out: get(&st.bytes_out),
                frames_in: get(&st.frames_in),
                bytes_in: get(&st.bytes_in),
                unparsed_frames: get(&st.unparsed),
            },
            commands,
            signaling,
            storm,
            relay: Process::relay(&f),
            generator_cpu_pct: f.gen_run.map(|(a, b)| cpu_pct(&a, &b)),
            generator_rss_kib: f.gen_base.map(|s| s.rss_kib),
            errors,
            error_samples: st
                .error_samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            passed: failures.is_empty(),
            failures,
        }
    }
}

impl Events {
    fn of(st: &Stats, f: &RunFacts) -> Events {
        let totals = st.totals.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Events {
            sent: get(&st.events_sent),
            deliveries_expected: totals.expected,
            received: totals.received,
            lost: totals.expected.saturating_sub(totals.unique),
            duplicated: totals.duplicated,
            reordered: totals.reordered + totals.seq_backwards,
            seq_gaps: totals.seq_gaps,
            seq_backwards: totals.seq_backwards,
            epoch_changes: totals.epoch_changes,
            misrouted: get(&st.events_misrouted),
            latency: Percentiles::of(&st.latency),
            latency_to_relay: Percentiles::of(&st.to_relay),
            latency_from_relay: Percentiles::of(&st.from_relay),
            in_per_s: get(&st.events_sent) as f64 / f.duration_s,
            out_per_s: totals.received as f64 / (f.duration_s + f.settle_s).max(1e-9),
        }
    }
}

impl Commands {
    fn of(st: &Stats) -> Commands {
        let (sent, results) = (get(&st.commands_sent), get(&st.results_received));
        Commands {
            sent,
            results,
            missing: sent.saturating_sub(results),
            misrouted: get(&st.results_misrouted),
            round_trip: Percentiles::of(&st.command_rtt),
        }
    }
}

impl Signaling {
    /// `unsupported`: the relay answered `webrtc_request` with that error.
    fn of(st: &Stats, unsupported: bool, f: &RunFacts) -> Signaling {
        Signaling {
            unsupported,
            requested: get(&st.sess_requested),
            credentials: get(&st.sess_credentials),
            offers: get(&st.sess_offers),
            answers_at_robot: get(&st.sess_answers),
            ice: get(&st.sess_ice),
            completed: get(&st.sess_completed),
            closes_at_robot: get(&st.sess_closed_at_robot),
            closed_by_relay: get(&st.sess_closed_by_relay),
            timed_out: get(&st.sess_timed_out),
            misrouted: get(&st.sess_misrouted),
            sessions_per_s: get(&st.sess_completed) as f64 / f.duration_s,
            setup_time: Percentiles::of(&st.session_setup),
        }
    }
}

impl Storm {
    fn of(st: &Stats) -> Storm {
        Storm {
            reconnects_ok: get(&st.reconnects_ok),
            reconnect_attempts_failed: get(&st.reconnects_failed),
            recovered_complete: get(&st.recovered_complete),
            recovered_incomplete: get(&st.recovered_incomplete),
            recovery: Percentiles::of(&st.recovery),
        }
    }
}

impl Process {
    /// The relay's memory and CPU, when `--relay-pid` was given and read.
    fn relay(f: &RunFacts) -> Option<Process> {
        let (b, c) = (f.relay_base?, f.relay_connected?);
        Some(Process {
            rss_before_kib: b.rss_kib,
            rss_connected_kib: c.rss_kib,
            rss_peak_kib: f.relay_peak_rss_kib.unwrap_or(c.rss_kib),
            rss_per_connection_bytes: (c.rss_kib.saturating_sub(b.rss_kib) * 1024)
                .checked_div(f.connected_sockets)
                .unwrap_or(0),
            cpu_pct: f.relay_run.map(|(a, b)| cpu_pct(&a, &b)),
            cpu_us_per_delivery: f
                .relay_run
                .and_then(|(a, b)| cpu_us_per(&a, &b, f.run_deliveries)),
        })
    }
}

/// Why the run failed, one line a reason (empty: it passed): failed
/// connections, unexpected closes, and whatever the scenario's sections
/// count as lost, doubled, out of order or misrouted.
fn failures(
    failed: u64,
    closes: u64,
    events: &Events,
    commands: Option<&Commands>,
    signaling: Option<&Signaling>,
    storm: Option<&Storm>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |cond: bool, what: String| {
        if cond {
            failures.push(what);
        }
    };
    fail(failed > 0, format!("{failed} connections failed"));
    fail(events.lost > 0, format!("{} deliveries lost", events.lost));
    fail(
        events.duplicated > 0,
        format!("{} duplicated", events.duplicated),
    );
    fail(
        events.reordered > 0,
        format!("{} reordered", events.reordered),
    );
    fail(
        events.seq_gaps > 0,
        format!("{} relay frames missing by seq", events.seq_gaps),
    );
    fail(
        events.misrouted > 0,
        format!("{} events to the wrong app", events.misrouted),
    );
    fail(closes > 0, format!("{closes} sockets closed unexpectedly"));
    if let Some(c) = commands {
        fail(
            c.missing > 0,
            format!("{} command results missing", c.missing),
        );
        fail(
            c.misrouted > 0,
            format!("{} command results to the wrong app", c.misrouted),
        );
    }
    if let Some(s) = signaling {
        fail(
            s.unsupported,
            "the relay answered `unsupported` to webrtc_request: signaling not implemented".into(),
        );
        fail(
            s.misrouted > 0,
            format!("{} signaling frames to the wrong app", s.misrouted),
        );
        fail(
            s.timed_out > 0,
            format!("{} sessions timed out", s.timed_out),
        );
    }
    if let Some(s) = storm {
        fail(
            s.recovered_incomplete > 0,
            format!("{} recoveries incomplete", s.recovered_incomplete),
        );
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(cpu_s: f64) -> Sample {
        Sample {
            rss_kib: 1,
            cpu_s,
            at: std::time::Instant::now(),
        }
    }

    #[test]
    fn cpu_per_delivery_divides_the_window_cpu_by_its_deliveries() {
        // 3 s of CPU for 200,000 deliveries: 15 µs each.
        let per = cpu_us_per(&at(10.0), &at(13.0), 200_000).unwrap();
        assert!((per - 15.0).abs() < 1e-9, "{per}");
        assert_eq!(cpu_us_per(&at(10.0), &at(13.0), 0), None);
    }
}
