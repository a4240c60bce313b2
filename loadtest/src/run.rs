//! The driver: provision, ramp the sockets up, run the scenario's phases,
//! wait for deliveries to settle, collect the [`Report`].

use super::app;
use super::args::{LoadtestArgs, Scenario};
use super::payload::EventMaker;
use super::procstat::{self, Sample};
use super::provision::{self, DeviceCreds};
use super::report::{Report, RunFacts};
use super::robot;
use super::shared::{Phase, Shared};
use super::stats::{get, Stats};
use super::target::Target;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};

/// Extra time allowed, beyond the ramp's own length, for all first
/// connection attempts to finish.
const CONNECT_GRACE: Duration = Duration::from_secs(60);
/// Pause after the ramp before the "connected" memory reading.
const SETTLE_AFTER_CONNECT: Duration = Duration::from_secs(2);

/// Runs one load test and returns its report (also on loss: the caller
/// decides the exit status from [`Report::passed`]). In steps: provision,
/// ramp the sockets up, run the scenario, settle, close, report.
pub async fn run(args: LoadtestArgs) -> anyhow::Result<Report> {
    args.validate()?;
    let target = Target::resolve(&args.target, args.allow_remote, args.sources()?).await?;
    let mut app_targets = Vec::with_capacity(args.app_targets.len());
    for t in &args.app_targets {
        app_targets.push(Target::resolve(t, args.allow_remote, args.sources()?).await?);
    }
    let (devices, tokens) = provision_shard(&args, &target).await?;

    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let n = devices.len();
    let sh = Arc::new(Shared {
        maker: EventMaker::new(args.payload_bytes),
        target,
        app_targets,
        stats: Stats::default(),
        phase: phase_rx,
        devices,
        tokens,
        robot_sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
        robot_subs: (0..n).map(|_| AtomicU64::new(0)).collect(),
        run_start: OnceLock::new(),
        storm_start: OnceLock::new(),
        args: args.clone(),
    });
    let relay = |pid: Option<u32>| pid.and_then(|p| procstat::sample(Some(p)));
    let relay_base = relay(args.relay_pid);
    if args.relay_pid.is_some() && relay_base.is_none() {
        anyhow::bail!("--relay-pid: cannot read /proc for that process");
    }
    let gen_base = procstat::sample(None);
    let peak_rss = Arc::new(AtomicU64::new(relay_base.map_or(0, |s| s.rss_kib)));
    let progress = tokio::spawn(progress(sh.clone(), peak_rss.clone()));

    let total = n + n * args.apps_per_robot;
    let (tasks, connect_s) = ramp(&sh, total).await;
    if args.relay_pid.is_some() {
        sleep(SETTLE_AFTER_CONNECT).await;
    }
    let relay_connected = relay(args.relay_pid);
    let connected_sockets = get(&sh.stats.robots_up) + get(&sh.stats.apps_up);
    say(
        &args,
        &format!(
            "{connected_sockets}/{total} sockets up after {connect_s:.1} s; running {:?} for {} s",
            args.scenario, args.duration
        ),
    );

    let relay_run_start = relay(args.relay_pid);
    let received_run_start = get(&sh.stats.events_received);
    let gen_run_start = procstat::sample(None);
    let run_end = run_scenario(&sh, &phase_tx).await;
    let relay_run_end = relay(args.relay_pid);
    let run_deliveries = get(&sh.stats.events_received) - received_run_start;
    let gen_run_end = procstat::sample(None);
    let _ = phase_tx.send(Phase::Settling);
    settle(&sh).await;
    let settle_s = run_end.elapsed().as_secs_f64();
    let _ = phase_tx.send(Phase::Closing);
    close(&sh, tasks).await;
    progress.abort();
    let relay_end = relay(args.relay_pid);
    if let Some(s) = relay_end {
        peak_rss.fetch_max(s.rss_kib, Ordering::Relaxed);
    }
    let facts = RunFacts {
        sockets_wanted: total as u64,
        connect_s,
        duration_s: args.duration,
        settle_s,
        relay_base,
        relay_connected,
        relay_run: pair(relay_run_start, relay_run_end),
        run_deliveries,
        relay_peak_rss_kib: args.relay_pid.map(|_| peak_rss.load(Ordering::Relaxed)),
        connected_sockets,
        gen_run: pair(gen_run_start, gen_run_end),
        gen_base,
    };
    Ok(Report::build(&args, &sh.stats, facts))
}

/// A progress line on stderr, unless `--quiet`.
fn say(args: &LoadtestArgs, m: &str) {
    if !args.quiet {
        eprintln!("loadtest: {m}");
    }
}

/// This shard's devices (all shards' are provisioned, so that every shard
/// sees the same file), and for each the owner's token (empty when the run
/// has no apps: robots-only runs log nobody in).
async fn provision_shard(
    args: &LoadtestArgs,
    target: &Target,
) -> anyhow::Result<(Vec<DeviceCreds>, Vec<String>)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let (shard, shards) = args.shard()?;
    say(
        args,
        &format!(
            "provisioning {} devices ({}) on {}",
            args.robots * shards,
            args.provision.display(),
            target.http_base
        ),
    );
    let mut prov = provision::ensure(
        &http,
        &target.http_base,
        &args.provision,
        &args.prefix,
        args.robots * shards,
        args.devices_per_user,
    )
    .await?;
    let devices = prov.devices[shard * args.robots..(shard + 1) * args.robots].to_vec();
    if args.apps_per_robot == 0 {
        let tokens = vec![String::new(); devices.len()];
        return Ok((devices, tokens));
    }
    let mut owners: Vec<usize> = devices.iter().map(|d| d.user).collect();
    owners.sort_unstable();
    owners.dedup();
    let owner_tokens = provision::tokens(
        &http,
        &target.http_base,
        &args.provision,
        &mut prov,
        &owners,
    )
    .await?;
    let tokens = devices
        .iter()
        .map(|d| {
            // Every device's owner is in `owners` by construction.
            let i = owners.binary_search(&d.user).unwrap_or(0);
            owner_tokens[i].clone()
        })
        .collect();
    Ok((devices, tokens))
}

/// Opens `total` sockets, robots first, then apps, at `--ramp` per second
/// and at most `--max-inflight` connecting at once; waits (up to
/// [`CONNECT_GRACE`]) until every first attempt is done. Returns the socket
/// tasks and the seconds it took.
async fn ramp(sh: &Arc<Shared>, total: usize) -> (Vec<JoinHandle<()>>, f64) {
    let args = &sh.args;
    let n = sh.devices.len();
    say(
        args,
        &format!(
            "opening {total} sockets ({n} robots, {} apps) at {}/s",
            n * args.apps_per_robot,
            args.ramp
        ),
    );
    let inflight = Arc::new(Semaphore::new(args.max_inflight));
    let ramp_start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for j in 0..total {
        sleep_until(ramp_start + Duration::from_secs_f64(j as f64 / args.ramp)).await;
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = inflight
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        let sh = sh.clone();
        tasks.push(if j < n {
            tokio::spawn(robot::run(sh, j, permit))
        } else {
            tokio::spawn(app::run(sh, j - n, permit))
        });
    }
    let deadline = Instant::now() + CONNECT_GRACE;
    while get(&sh.stats.first_attempts_done) < total as u64 && Instant::now() < deadline {
        sleep(Duration::from_millis(50)).await;
    }
    (tasks, ramp_start.elapsed().as_secs_f64())
}

/// The run itself: `--duration` seconds of the scenario (with the
/// reconnect storm at `--storm-at` for that scenario). Returns its end.
async fn run_scenario(sh: &Shared, phase_tx: &watch::Sender<Phase>) -> Instant {
    let args = &sh.args;
    let run_start = Instant::now();
    let _ = sh.run_start.set(run_start);
    let _ = phase_tx.send(Phase::Running);
    let run_end = run_start + Duration::from_secs_f64(args.duration);
    if args.scenario == Scenario::ReconnectStorm {
        let at = args.storm_at.unwrap_or(args.duration / 2.0);
        sleep_until(run_start + Duration::from_secs_f64(at)).await;
        let _ = sh.storm_start.set(Instant::now());
        say(args, "storm: every socket drops and reconnects now");
        let _ = phase_tx.send(Phase::Storm);
    }
    sleep_until(run_end).await;
    run_end
}

/// Waits until every expected delivery (or result) is in, or `--settle`.
async fn settle(sh: &Shared) {
    let settle_deadline = Instant::now() + Duration::from_secs_f64(sh.args.settle);
    loop {
        if settled(sh) || Instant::now() >= settle_deadline {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for every socket task to finish closing (30 s in all; one that
/// does not is counted as a `close_timeout` error).
async fn close(sh: &Shared, tasks: Vec<JoinHandle<()>>) {
    let close_deadline = Instant::now() + Duration::from_secs(30);
    for t in tasks {
        let left = close_deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, t).await.is_err() {
            sh.stats.error(
                "close_timeout",
                Some("a socket task did not finish within 30 s of closing"),
            );
        }
    }
}

fn pair(a: Option<Sample>, b: Option<Sample>) -> Option<(Sample, Sample)> {
    Some((a?, b?))
}

/// True when nothing more is expected to arrive.
fn settled(sh: &Shared) -> bool {
    let st = &sh.stats;
    match sh.args.scenario {
        Scenario::Steady | Scenario::Burst | Scenario::ReconnectStorm => {
            let expected: u64 = sh
                .robot_sent
                .iter()
                .zip(&sh.robot_subs)
                .map(|(s, k)| s.load(Ordering::Relaxed) * k.load(Ordering::Relaxed))
                .sum();
            get(&st.unique_received) >= expected
        }
        Scenario::Commands => get(&st.results_received) >= get(&st.commands_sent),
        Scenario::Signaling => {
            let refused = st
                .errors
                .lock()
                .map(|e| e.contains_key("unsupported"))
                .unwrap_or(false);
            refused
                || get(&st.sess_closed_at_robot) + get(&st.sess_timed_out)
                    >= get(&st.sess_completed).max(get(&st.sess_requested))
        }
        Scenario::Idle => true,
    }
}

/// Prints a progress line every second and tracks the relay's peak RSS.
async fn progress(sh: Arc<Shared>, peak_rss: Arc<AtomicU64>) {
    let start = Instant::now();
    let mut last_sent = 0;
    let mut last_recv = 0;
    loop {
        sleep(Duration::from_secs(1)).await;
        if let Some(s) = sh.args.relay_pid.and_then(|p| procstat::sample(Some(p))) {
            peak_rss.fetch_max(s.rss_kib, Ordering::Relaxed);
        }
        if sh.args.quiet {
            continue;
        }
        let st = &sh.stats;
        let (sent, recv) = (get(&st.events_sent), get(&st.events_received));
        let mut line = format!(
            "[{:>5.0}s] {:?} robots {} apps {} failed {} | events sent {} (+{}/s) received {} (+{}/s)",
            start.elapsed().as_secs_f64(),
            sh.phase(),
            get(&st.robots_up),
            get(&st.apps_up),
            get(&st.conn_failed),
            sent,
            sent - last_sent,
            recv,
            recv - last_recv,
        );
        match sh.args.scenario {
            Scenario::Commands => line.push_str(&format!(
                " | commands {} results {}",
                get(&st.commands_sent),
                get(&st.results_received)
            )),
            Scenario::Signaling => line.push_str(&format!(
                " | sessions requested {} completed {}",
                get(&st.sess_requested),
                get(&st.sess_completed)
            )),
            _ => {}
        }
        if peak_rss.load(Ordering::Relaxed) > 0 {
            line.push_str(&format!(
                " | relay peak RSS {} MiB",
                peak_rss.load(Ordering::Relaxed) / 1024
            ));
        }
        eprintln!("{line}");
        last_sent = sent;
        last_recv = recv;
    }
}
