//! What every simulated socket of a run shares: the settings, the target,
//! the counters, the phase of the run and each robot's send counter.

use super::args::LoadtestArgs;
use super::payload::EventMaker;
use super::provision::DeviceCreds;
use super::stats::Stats;
use super::target::Target;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use tokio::sync::watch;
use tokio::time::Instant;

/// Where the run is; sockets watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sockets are being opened (ramp); nothing is sent yet.
    Connecting,
    /// The scenario runs.
    Running,
    /// reconnect-storm: everyone drops and reconnects now, then runs on.
    Storm,
    /// Sending has stopped; waiting for deliveries to arrive.
    Settling,
    /// Report and close.
    Closing,
}

impl Shared {
    /// The relay app `a` connects to.
    pub fn app_target(&self, a: usize) -> &Target {
        match self.app_targets.len() {
            0 => &self.target,
            n => &self.app_targets[a % n],
        }
    }
}

pub struct Shared {
    pub args: LoadtestArgs,
    pub target: Target,
    /// Where apps connect (`--app-targets`; empty: `target`).
    pub app_targets: Vec<Target>,
    pub stats: Stats,
    /// The run's phase, set by the driver.
    pub phase: watch::Receiver<Phase>,
    pub maker: EventMaker,
    /// This process's robots (its shard of the provisioning file).
    pub devices: Vec<DeviceCreds>,
    /// Bearer token of each device's owner, by device index.
    pub tokens: Vec<String>,
    /// Counter of the last event each robot sent (its `n`).
    pub robot_sent: Vec<AtomicU64>,
    /// Apps subscribed to each robot before the run started.
    pub robot_subs: Vec<AtomicU64>,
    /// When `Running` began.
    pub run_start: OnceLock<Instant>,
    /// When the storm began.
    pub storm_start: OnceLock<Instant>,
}

impl Shared {
    /// The end of the sending window.
    pub fn run_end(&self) -> Option<Instant> {
        self.run_start
            .get()
            .map(|s| *s + std::time::Duration::from_secs_f64(self.args.duration))
    }

    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }
}
