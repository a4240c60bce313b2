//! The `simulate` command line: which relay, how many robots, whose they
//! are, and how fast they live.

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Most robots one `simulate` process drives.
pub const MAX_ROBOTS: usize = 1000;

/// `wimz-relay simulate`: simulated WIM-Z robots for a user, connected to
/// a relay until Ctrl-C.
#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// The relay's HTTP base URL (ws:// is derived from it; http only).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub target: String,
    /// Simulated robots (devices PREFIX-001 ...).
    #[arg(long, default_value_t = 3)]
    pub robots: usize,
    /// The user who owns the robots.
    #[arg(long)]
    pub user: String,
    /// That user's password (default: one line read from standard input,
    /// which keeps it out of the process list).
    #[arg(long)]
    pub password: Option<String>,
    /// Create the user first if login is refused (the relay must allow
    /// registration).
    #[arg(long)]
    pub register: bool,
    /// Device id prefix: robots are PREFIX-001, PREFIX-002, ...
    /// (default: USER-sim; device ids are unique across users).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Where the devices' secrets are kept for the next run (created
    /// 0600; secrets are shown by the relay only once).
    #[arg(long, default_value = "simulate-devices.json")]
    pub devices_file: PathBuf,
    /// Seconds between two steps of a robot's life (missions advance one
    /// step, the battery drains, barks happen).
    #[arg(long, default_value_t = 1.0)]
    pub tick: f64,
    /// Longest pause between reconnection attempts, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub max_backoff: f64,
    /// Seed for the robots' randomness (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only warnings on standard error.
    #[arg(long)]
    pub quiet: bool,
}

impl SimulateArgs {
    /// Refuses out-of-bounds values with a readable reason.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=MAX_ROBOTS).contains(&self.robots),
            "--robots must be 1 to {MAX_ROBOTS}"
        );
        anyhow::ensure!(
            (0.05..=60.0).contains(&self.tick),
            "--tick must be in [0.05, 60] seconds"
        );
        anyhow::ensure!(
            (0.5..=600.0).contains(&self.max_backoff),
            "--max-backoff must be in [0.5, 600] seconds"
        );
        let prefix = self.prefix();
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 40
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        anyhow::ensure!(
            prefix_ok,
            "--prefix (default USER-sim): 1 to 40 of [A-Za-z0-9_.-]"
        );
        Ok(())
    }

    /// `--prefix`, or `USER-sim`: device ids are global, so two users'
    /// simulators must not both want `sim-001`.
    pub fn prefix(&self) -> String {
        self.prefix
            .clone()
            .unwrap_or_else(|| format!("{}-sim", self.user))
    }

    pub fn tick(&self) -> Duration {
        Duration::from_secs_f64(self.tick)
    }

    pub fn max_backoff(&self) -> Duration {
        Duration::from_secs_f64(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn parsed(extra: &[&str]) -> SimulateArgs {
        let argv = ["simulate", "--user", "alice"];
        Cli::try_parse_from(argv.iter().chain(extra)).unwrap().args
    }

    #[test]
    fn prefix_defaults_to_the_user_and_bounds_hold() {
        assert_eq!(parsed(&[]).prefix(), "alice-sim");
        assert_eq!(parsed(&["--prefix", "lab"]).prefix(), "lab");
        assert!(parsed(&[]).validate().is_ok());
        for bad in [
            &["--robots", "0"][..],
            &["--robots", "1001"],
            &["--tick", "0"],
            &["--max-backoff", "0.1"],
            &["--prefix", "a/b"],
        ] {
            assert!(parsed(bad).validate().is_err(), "{bad:?}");
        }
    }
}
