//! Counters and histograms shared by every simulated socket of a run.
//!
//! Counters are atomics (read live by the progress line); histograms are
//! sharded behind mutexes so thousands of tasks rarely contend, and merged
//! once at the end.

use super::tracker::Tracker;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Histogram shards; a task records into `shard % SHARDS`.
const SHARDS: usize = 16;

/// A histogram of microseconds, 1 µs to 10 min, 3 significant digits.
pub struct Hist {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            shards: (0..SHARDS).map(|_| Mutex::new(new_hist())).collect(),
        }
    }
}

fn new_hist() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5).
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

impl Hist {
    pub fn record(&self, shard: usize, micros: u64) {
        let mut h = self.shards[shard % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        h.saturating_record(micros.max(1));
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut all = new_hist();
        for s in &self.shards {
            let h = s.lock().unwrap_or_else(|p| p.into_inner());
            // Same bounds on both sides, so adding cannot fail.
            let _ = all.add(&*h);
        }
        all
    }
}

/// Sums of every subscription's [`Tracker`].
#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub expected: u64,
    pub received: u64,
    pub unique: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub seq_gaps: u64,
    pub seq_backwards: u64,
    pub epoch_changes: u64,
}

impl Totals {
    pub fn add(&mut self, t: &Tracker, expected: u64) {
        self.expected += expected;
        self.received += t.received;
        self.unique += t.unique;
        self.duplicated += t.duplicated;
        self.reordered += t.reordered;
        self.seq_gaps += t.seq_gaps;
        self.seq_backwards += t.seq_backwards;
        self.epoch_changes += t.epoch_changes;
    }
}

/// Everything a run counts.
#[derive(Default)]
pub struct Stats {
    pub conn_attempted: AtomicU64,
    pub conn_established: AtomicU64,
    pub conn_failed: AtomicU64,
    /// Robots connected now.
    pub robots_up: AtomicU64,
    /// Apps connected and subscribed now.
    pub apps_up: AtomicU64,
    /// Sockets that finished their first connection attempt (either way).
    pub first_attempts_done: AtomicU64,
    /// Sockets the relay closed (or that broke) while the run wanted them.
    pub unexpected_closes: AtomicU64,

    pub events_sent: AtomicU64,
    /// Event frames with a counter received by apps (live progress).
    pub events_received: AtomicU64,
    pub unique_received: AtomicU64,
    /// Events whose `device_id` was not the subscribed device.
    pub events_misrouted: AtomicU64,
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub unparsed: AtomicU64,

    pub commands_sent: AtomicU64,
    pub results_received: AtomicU64,
    pub results_misrouted: AtomicU64,

    pub sess_requested: AtomicU64,
    pub sess_credentials: AtomicU64,
    pub sess_offers: AtomicU64,
    pub sess_answers: AtomicU64,
    pub sess_ice: AtomicU64,
    pub sess_completed: AtomicU64,
    pub sess_closed_at_robot: AtomicU64,
    pub sess_closed_by_relay: AtomicU64,
    pub sess_misrouted: AtomicU64,
    pub sess_timed_out: AtomicU64,

    pub reconnects_ok: AtomicU64,
    pub reconnects_failed: AtomicU64,
    pub recovered_complete: AtomicU64,
    pub recovered_incomplete: AtomicU64,

    /// `error` frames by code.
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// First message of each error code, for the report.
    pub error_samples: Mutex<BTreeMap<String, String>>,
    pub totals: Mutex<Totals>,

    /// End-to-end event latency (robot send → app receive).
    pub latency: Hist,
    /// Robot send → the relay's envelope `ts_ms` (millisecond resolution).
    pub to_relay: Hist,
    /// The relay's envelope `ts_ms` → app receive (millisecond resolution).
    pub from_relay: Hist,
    /// TCP + WebSocket handshake (+ subscribe for apps).
    pub connect: Hist,
    /// Command → its result at the asking app.
    pub command_rtt: Hist,
    /// webrtc_request → ice at the app.
    pub session_setup: Hist,
    /// Storm start → socket back (robots) or `recovered` (apps).
    pub recovery: Hist,
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl Stats {
    pub fn error(&self, code: &str, message: Option<&str>) {
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        *e.entry(code.to_string()).or_default() += 1;
        if let Some(m) = message {
            let mut s = self.error_samples.lock().unwrap_or_else(|p| p.into_inner());
            s.entry(code.to_string()).or_insert_with(|| m.to_string());
        }
    }

    pub fn add_tracker(&self, t: &Tracker, expected: u64) {
        self.totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(t, expected);
    }
}
