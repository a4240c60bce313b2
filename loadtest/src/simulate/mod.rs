//! `wimz-relay simulate`: robots that behave like a WIM-Z, for trying the
//! console and apps without hardware. Each robot connects to the relay as
//! its device (PROTOCOL.md §2/§3), runs training missions through their
//! stages (`mission_progress`, `mode_changed`, `treat_dispensed`), drains
//! and recharges its battery (`battery`, `status_update`, an `alert` when
//! low), hears barks and sees its dog (`bark_detected`, `dog_detected`),
//! answers commands with `command_result` and proxied REST calls with
//! plausible JSON, and reconnects with backoff when the relay goes away.
//! `wimz-relay serve --demo` runs the same robots in-process
//! ([`run_fleet`]).
//!
//! # Layout
//!
//! - [`args`]: the command line and its bounds.
//! - [`credentials`]: login, devices created for the user, the devices file.
//! - [`catalog`]: missions, programs, modes, dogs.
//! - [`wimz`]: one robot's state and behaviour (no I/O; seeded RNG).
//! - [`commands`], [`rest`], [`reports`]: what it answers.
//! - [`link`]: its connection: connect, tick, answer, reconnect.

pub mod args;
pub mod catalog;
pub mod commands;
pub mod credentials;
pub mod link;
pub mod reports;
pub mod rest;
pub mod wimz;

pub use args::SimulateArgs;
pub use link::RobotCreds;

use crate::target::Target;
use std::io::BufRead;
use std::time::Duration;
use tokio::sync::watch;

/// Pause between two robots' first connections, so a large fleet does not
/// knock all at once.
const STAGGER: Duration = Duration::from_millis(10);

/// How the robots of a fleet live.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Time between two steps of a robot's life.
    pub tick: Duration,
    /// Longest pause between reconnection attempts.
    pub max_backoff: Duration,
    /// Seed of the robots' randomness (robot `i` uses `seed + i`).
    pub seed: u64,
    /// Say connections and losses on standard error (warnings always).
    pub verbose: bool,
}

impl FleetOptions {
    pub(crate) fn say(&self, m: &str) {
        if self.verbose {
            eprintln!("simulate: {m}");
        }
    }

    pub(crate) fn warn(&self, m: &str) {
        eprintln!("simulate: {m}");
    }
}

/// Runs `robots` against the relay at `target` (`http://host:port`) until
/// `stop` turns true; each robot then closes its socket (1000).
pub async fn run_fleet(
    target: &str,
    robots: Vec<RobotCreds>,
    opts: FleetOptions,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // Any host: a handful of robots at a step a second is no load test.
    let target = std::sync::Arc::new(Target::resolve(target, true, Vec::new()).await?);
    let opts = std::sync::Arc::new(opts);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, creds) in robots.into_iter().enumerate() {
        let (target, opts, mut stop) = (target.clone(), opts.clone(), stop.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(STAGGER * i as u32) => {}
                _ = stop.changed() => return,
            }
            let seed = opts.seed.wrapping_add(i as u64);
            link::run(&target, creds, &opts, seed, stop).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The CLI entry: credentials, then the fleet until Ctrl-C or SIGTERM.
pub fn run_cli(args: SimulateArgs) -> anyhow::Result<()> {
    args.validate()?;
    let password = match &args.password {
        Some(p) => p.clone(),
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    anyhow::ensure!(
        !password.is_empty(),
        "no password: pass --password or give it on standard input"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let target = args.target.trim_end_matches('/');
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let owner = credentials::Owner {
            target,
            user: &args.user,
            password: &password,
            register: args.register,
        };
        let robots = credentials::ensure(
            &http,
            &owner,
            &args.prefix(),
            args.robots,
            &args.devices_file,
        )
        .await?;
        let ids: Vec<&str> = robots.iter().map(|r| r.device_id.as_str()).collect();
        eprintln!(
            "simulate: {} robots ({}) of {} on {target}; secrets in {}; Ctrl-C stops",
            robots.len(),
            ids.join(", "),
            args.user,
            args.devices_file.display()
        );
        let opts = FleetOptions {
            tick: args.tick(),
            max_backoff: args.max_backoff(),
            seed: args.seed.unwrap_or_else(rand::random),
            verbose: !args.quiet,
        };
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(async move {
            crate::signal::stop_requested().await;
            let _ = stop_tx.send(true);
        });
        run_fleet(target, robots, opts, stop).await?;
        eprintln!("simulate: stopped");
        Ok(())
    })
}
