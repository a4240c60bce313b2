//! The readable table of a [`Report`], printed at the end of a run.

use super::report::{Percentiles, Report};
use std::fmt::Write as _;

impl Report {
    /// The readable table: the run, its connections and events, the
    /// scenario's own sections, the processes, errors and the verdict.
    pub fn table(&self) -> String {
        let mut o = String::new();
        self.connections_and_events(&mut o);
        self.scenario_sections(&mut o);
        self.processes(&mut o);
        self.errors_and_verdict(&mut o);
        o
    }

    fn connections_and_events(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "loadtest {:?} against {}: {} robots x {} apps, {} ev/s per robot, {} s",
            self.scenario,
            self.target,
            self.robots,
            self.apps_per_robot,
            self.rate_per_robot,
            self.duration_s
        );
        let c = &self.connections;
        let _ = writeln!(
            o,
            "  connections            wanted {} attempted {} established {} failed {} concurrent {} unexpected closes {} (ramp {:.1} s)",
            c.wanted, c.attempted, c.established, c.failed, c.concurrent, c.unexpected_closes, c.ramp_s
        );
        p(o, "connect time", &c.connect_time);
        let e = &self.events;
        let _ = writeln!(
            o,
            "  events                 sent {} expected deliveries {} received {} lost {} duplicated {} reordered {} seq gaps {} misrouted {}",
            e.sent, e.deliveries_expected, e.received, e.lost, e.duplicated, e.reordered, e.seq_gaps, e.misrouted
        );
        let _ = writeln!(
            o,
            "  throughput             in {:.0} ev/s, out {:.0} deliveries/s",
            e.in_per_s, e.out_per_s
        );
        p(o, "end-to-end latency", &e.latency);
        if e.latency.count > 0 {
            p(o, "  robot -> relay ts_ms", &e.latency_to_relay);
            p(o, "  relay ts_ms -> app", &e.latency_from_relay);
        }
    }

    /// Commands, signaling or the reconnect storm, for the scenarios that
    /// have them.
    fn scenario_sections(&self, o: &mut String) {
        if let Some(cm) = &self.commands {
            let _ = writeln!(
                o,
                "  commands               sent {} results {} missing {} misrouted {}",
                cm.sent, cm.results, cm.missing, cm.misrouted
            );
            p(o, "command round trip", &cm.round_trip);
        }
        if let Some(s) = &self.signaling {
            if s.unsupported {
                let _ = writeln!(
                    o,
                    "  signaling              THE RELAY ANSWERED `unsupported`: WebRTC signaling is not implemented there"
                );
            }
            let _ = writeln!(
                o,
                "  signaling              requested {} credentials {} offers {} answers@robot {} ice {} completed {} closes@robot {} closed by relay {} timed out {} misrouted {} ({:.1} sessions/s)",
                s.requested, s.credentials, s.offers, s.answers_at_robot, s.ice, s.completed, s.closes_at_robot, s.closed_by_relay, s.timed_out, s.misrouted, s.sessions_per_s
            );
            p(o, "session setup", &s.setup_time);
        }
        if let Some(s) = &self.storm {
            let _ = writeln!(
                o,
                "  reconnect storm        reconnected {} (failed attempts {}) recovered complete {} incomplete {}",
                s.reconnects_ok, s.reconnect_attempts_failed, s.recovered_complete, s.recovered_incomplete
            );
            p(o, "storm recovery", &s.recovery);
        }
    }

    fn processes(&self, o: &mut String) {
        if let Some(r) = &self.relay {
            let _ = writeln!(
                o,
                "  relay process          RSS before {} KiB, connected {} KiB, peak {} KiB, {} B per connection; CPU {} of a core, {} per delivery",
                r.rss_before_kib,
                r.rss_connected_kib,
                r.rss_peak_kib,
                r.rss_per_connection_bytes,
                r.cpu_pct.map_or("?".to_string(), |c| format!("{c:.0}%")),
                r.cpu_us_per_delivery
                    .map_or("?".to_string(), |c| format!("{c:.1} µs"))
            );
        }
        if let Some(g) = self.generator_cpu_pct {
            let _ = writeln!(o, "  generator              CPU {g:.0}% of a core");
        }
    }

    fn errors_and_verdict(&self, o: &mut String) {
        for (code, n) in &self.errors {
            let sample = self
                .error_samples
                .get(code)
                .map(String::as_str)
                .unwrap_or("");
            let _ = writeln!(o, "  error {code:<16} x{n}  {sample}");
        }
        let _ = writeln!(
            o,
            "  verdict                {}",
            if self.passed {
                "PASS".to_string()
            } else {
                format!("FAIL: {}", self.failures.join("; "))
            }
        );
    }
}

/// One line of percentiles.
fn p(o: &mut String, name: &str, h: &Percentiles) {
    let _ = writeln!(
        o,
        "  {name:<22} n={:<9} p50 {:>8.2}  p90 {:>8.2}  p99 {:>8.2}  p99.9 {:>8.2}  max {:>8.2} ms",
        h.count, h.p50_ms, h.p90_ms, h.p99_ms, h.p999_ms, h.max_ms
    );
}
