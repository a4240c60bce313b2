//! The WIM-Z load generator (`wimz-loadtest`, also run as `wimz-relay
//! loadtest`) and robot simulator (`wimz-relay simulate`): clients that
//! speak only PROTOCOL.md, so they can drive this relay or any other that
//! speaks the same contract. They share no code with the relay crate (this
//! crate does not depend on it).
//!
//! It provisions users and devices over HTTP (kept in a provisioning file
//! for reruns), opens N robot sockets and K app sockets per robot, runs a
//! scenario and reports connections, loss, duplicates, reorder, end-to-end
//! latency, throughput and (with `--relay-pid`) the relay's memory and CPU.
//! Loopback only unless `--allow-remote`; bounded in sockets and time.
//!
//! # Layout
//!
//! - [`args`]: the command line, its bounds, [`Scenario`].
//! - [`target`]: loopback rule, source addresses, `nofile`.
//! - [`provision`]: users and devices over HTTP, the provisioning file.
//! - [`client`]: opening robot (signature) and app (bearer) sockets.
//! - [`payload`]: the frames sent and the reader of frames received.
//! - [`shared`]: what all sockets of a run share, the run's [`shared::Phase`].
//! - [`robot`], [`app`]: one simulated robot / app each.
//! - [`tracker`]: per-subscription loss/duplicate/order checks.
//! - [`stats`]: counters and latency histograms.
//! - [`procstat`]: a process's RSS and CPU from `/proc`.
//! - [`run`]: the driver; [`report`]: the result and its verdict;
//!   [`table`]: its readable form.
//! - [`simulate`]: `wimz-relay simulate` (and `serve --demo`'s robots):
//!   robots that behave like a WIM-Z, for the console and apps; it reuses
//!   [`client`], [`target`] and [`provision`]'s retrying requests.
//! - `signal`: Ctrl-C / SIGTERM.

pub mod app;
pub mod args;
pub mod client;
pub mod payload;
pub mod procstat;
pub mod provision;
pub mod report;
pub mod robot;
pub mod run;
pub mod shared;
mod signal;
pub mod simulate;
pub mod stats;
pub mod table;
pub mod target;
pub mod tracker;

pub use args::{LoadtestArgs, Scenario};
pub use report::Report;
pub use run::run;

/// Now, in Unix seconds (0 if the clock is before 1970).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The CLI entry: raises `nofile`, runs, prints the table, writes
/// `--json`; returns whether the run passed.
pub fn run_cli(args: LoadtestArgs) -> anyhow::Result<bool> {
    match target::raise_nofile() {
        Ok(n) if !args.quiet => eprintln!("loadtest: nofile limit {n}"),
        Ok(_) => {}
        Err(e) => eprintln!("loadtest: could not raise the nofile limit: {e}"),
    }
    let mut builder = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if args.threads > 1 {
        builder.worker_threads(args.threads);
    }
    let rt = builder.enable_all().build()?;
    let report = rt.block_on(run(args.clone()))?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(report.passed)
}
