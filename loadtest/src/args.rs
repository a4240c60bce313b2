//! The `loadtest` command line: what to drive, how hard, for how long.
//!
//! Every knob is bounded (see [`LoadtestArgs::validate`]) so a typo cannot
//! turn the tool into an unbounded flood, and every run stops by itself.

use clap::{Args, ValueEnum};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Most sockets one run may open (robots × (1 + apps per robot)).
pub const MAX_SOCKETS: usize = 200_000;
/// Longest scenario, in seconds.
pub const MAX_DURATION_S: f64 = 3600.0;

/// What the simulated robots and apps do once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Hold the sockets open (heartbeats only): measures memory per connection.
    Idle,
    /// Each robot sends `mission_progress` events at `--rate` for `--duration`.
    Steady,
    /// Each robot sends `--burst` events back to back, all at once.
    Burst,
    /// Steady sending; at `--storm-at` every socket drops and reconnects at
    /// once, apps resubscribing with `since_seq`. Nothing may be missing.
    ReconnectStorm,
    /// WebRTC signaling churn: request → offer → answer → ice → close.
    Signaling,
    /// Apps send commands; robots answer `command_result`.
    Commands,
}

/// `wimz-loadtest` (or `wimz-relay loadtest`): drive a relay that speaks PROTOCOL.md with
/// simulated robots and apps and measure loss, order and latency.
#[derive(Args, Debug, Clone)]
pub struct LoadtestArgs {
    /// The relay's HTTP base URL (ws:// is derived from it).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub target: String,
    /// Where the apps connect instead, round-robin (a comma list of base
    /// URLs): e.g. robots on one cluster instance, their apps on the others,
    /// so every event crosses instances. Default: `--target`.
    #[arg(long, value_delimiter = ',')]
    pub app_targets: Vec<String>,
    /// Allow a target outside 127.0.0.0/8 (you must own it).
    #[arg(long)]
    pub allow_remote: bool,
    #[arg(long, value_enum, default_value = "steady")]
    pub scenario: Scenario,
    /// Simulated robots (devices) this process drives.
    #[arg(long, default_value_t = 100)]
    pub robots: usize,
    /// App sockets subscribed to each robot.
    #[arg(long, default_value_t = 1)]
    pub apps_per_robot: usize,
    /// Events per second per robot (steady, reconnect-storm).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Length of the sending phase, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Events per robot in the `burst` scenario.
    #[arg(long, default_value_t = 100)]
    pub burst: u64,
    /// WebRTC sessions started per second, all robots together (signaling).
    #[arg(long, default_value_t = 10.0)]
    pub sessions_per_s: f64,
    /// Commands per second per app (commands).
    #[arg(long, default_value_t = 1.0)]
    pub commands_per_s: f64,
    /// Seconds into the run at which reconnect-storm drops everyone
    /// (default: half of --duration).
    #[arg(long)]
    pub storm_at: Option<f64>,
    /// Approximate size of one event frame, bytes.
    #[arg(long, default_value_t = 300)]
    pub payload_bytes: usize,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 2000.0)]
    pub ramp: f64,
    /// Handshakes in flight at once while ramping.
    #[arg(long, default_value_t = 256)]
    pub max_inflight: usize,
    /// Source addresses to spread sockets over, e.g. 127.0.0.2-127.0.0.9
    /// (a range or a comma list). Default: the kernel's choice.
    #[arg(long)]
    pub source_ips: Option<String>,
    /// Provisioning file: users and devices are created once and reused.
    #[arg(long, default_value = "loadgen-provision.json")]
    pub provision: PathBuf,
    /// Prefix of the provisioned user names and device ids.
    #[arg(long, default_value = "lg")]
    pub prefix: String,
    /// Devices owned by one provisioned user.
    #[arg(long, default_value_t = 100)]
    pub devices_per_user: usize,
    /// Drive only shard I of M of the provisioned devices ("I/M"), so
    /// several generator processes can share one provisioning file.
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// Sample this relay process's RSS and CPU from /proc.
    #[arg(long)]
    pub relay_pid: Option<u32>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// After sending stops, wait at most this long for deliveries, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub settle: f64,
    /// No progress lines on standard error.
    #[arg(long)]
    pub quiet: bool,
    /// Threads the generator runs on (0 = one per core). On a machine it
    /// shares with the relay under test, 1 costs the relay least.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl LoadtestArgs {
    /// Parses a command line (`argv[0]` the program's name) into the
    /// generator's arguments, for callers that run it in-process (tests of
    /// the relay and of the floor).
    pub fn try_parse_from<I, T>(argv: I) -> Result<LoadtestArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: LoadtestArgs,
        }
        Cli::try_parse_from(argv).map(|cli| cli.args)
    }

    /// Refuses out-of-bounds or inconsistent values with a readable reason.
    pub fn validate(&self) -> anyhow::Result<()> {
        let sockets = self.robots.saturating_mul(1 + self.apps_per_robot);
        anyhow::ensure!(self.robots > 0, "--robots must be at least 1");
        anyhow::ensure!(
            sockets <= MAX_SOCKETS,
            "{sockets} sockets requested; at most {MAX_SOCKETS} per run"
        );
        anyhow::ensure!(
            self.duration > 0.0 && self.duration <= MAX_DURATION_S,
            "--duration must be in (0, {MAX_DURATION_S}]"
        );
        anyhow::ensure!(
            self.rate >= 0.0 && self.rate <= 10_000.0,
            "--rate must be in [0, 10000]"
        );
        anyhow::ensure!(self.burst <= 100_000, "--burst must be at most 100000");
        anyhow::ensure!(
            self.sessions_per_s > 0.0 && self.sessions_per_s <= 100_000.0,
            "--sessions-per-s must be in (0, 100000]"
        );
        anyhow::ensure!(
            self.commands_per_s > 0.0 && self.commands_per_s <= 10_000.0,
            "--commands-per-s must be in (0, 10000]"
        );
        anyhow::ensure!(self.ramp > 0.0, "--ramp must be positive");
        anyhow::ensure!(self.max_inflight > 0, "--max-inflight must be positive");
        anyhow::ensure!(self.threads <= 256, "--threads must be at most 256");
        anyhow::ensure!(
            self.devices_per_user > 0,
            "--devices-per-user must be positive"
        );
        anyhow::ensure!(
            (0.0..=600.0).contains(&self.settle),
            "--settle must be in [0, 600]"
        );
        anyhow::ensure!(
            (120..=60_000).contains(&self.payload_bytes),
            "--payload-bytes must be in [120, 60000]"
        );
        if let Some(at) = self.storm_at {
            anyhow::ensure!(
                at >= 0.0 && at < self.duration,
                "--storm-at must be inside --duration"
            );
        }
        anyhow::ensure!(
            self.apps_per_robot > 0
                || matches!(
                    self.scenario,
                    Scenario::Idle | Scenario::Steady | Scenario::Burst
                ),
            "this scenario needs --apps-per-robot of at least 1"
        );
        self.shard()?;
        self.sources()?;
        Ok(())
    }

    /// `(index, count)` of `--shard`.
    pub fn shard(&self) -> anyhow::Result<(usize, usize)> {
        let (i, m) = self
            .shard
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("--shard must look like I/M, e.g. 0/2"))?;
        let (i, m): (usize, usize) = (i.trim().parse()?, m.trim().parse()?);
        anyhow::ensure!(m > 0 && i < m, "--shard I/M needs 0 <= I < M");
        Ok((i, m))
    }

    /// The parsed `--source-ips` (empty: let the kernel choose).
    pub fn sources(&self) -> anyhow::Result<Vec<Ipv4Addr>> {
        match &self.source_ips {
            None => Ok(Vec::new()),
            Some(s) => parse_sources(s),
        }
    }
}

/// `a.b.c.d-a.b.c.e` or `a,b,c` (each item may itself be a range).
pub fn parse_sources(s: &str) -> anyhow::Result<Vec<Ipv4Addr>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('-') {
            Some((a, b)) => {
                let a: Ipv4Addr = a.trim().parse()?;
                let b: Ipv4Addr = b.trim().parse()?;
                let (a, b) = (u32::from(a), u32::from(b));
                anyhow::ensure!(a <= b, "source range {item} is backwards");
                anyhow::ensure!(b - a < 65_536, "source range {item} is too large");
                out.extend((a..=b).map(Ipv4Addr::from));
            }
            None => out.push(item.parse()?),
        }
    }
    anyhow::ensure!(!out.is_empty(), "--source-ips names no address");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(extra: &[&str]) -> LoadtestArgs {
        let argv = ["loadtest", "--target", "http://127.0.0.1:1"];
        LoadtestArgs::try_parse_from(argv.iter().chain(extra)).expect("arguments parse")
    }

    #[test]
    fn generator_threads_are_bounded() {
        assert!(parsed(&[]).validate().is_ok());
        assert!(parsed(&["--threads", "1"]).validate().is_ok());
        assert!(parsed(&["--threads", "256"]).validate().is_ok());
        let e = parsed(&["--threads", "257"]).validate().unwrap_err();
        assert!(e.to_string().contains("--threads"), "{e}");
    }

    #[test]
    fn sources_parse_ranges_and_lists() {
        let v = parse_sources("127.0.0.2-127.0.0.4, 127.0.0.9").unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[3], Ipv4Addr::new(127, 0, 0, 9));
        assert!(parse_sources("127.0.0.5-127.0.0.2").is_err());
        assert!(parse_sources("nope").is_err());
    }
}
