//! The load generator (`wimz-loadtest`, the library behind `wimz-relay
//! loadtest`) drives the floor relay in its steady, burst and idle
//! scenarios with the same sockets, events and checks (loss, duplicates,
//! order, `seq` gaps) as against the relay, and reads the floor's CPU per
//! delivery through `--relay-pid`. A few dozen sockets for a few seconds;
//! no timing assertions.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};
use wimz_loadtest::{LoadtestArgs, Report};

/// The floor on a free loopback port; killed when dropped.
struct Floor {
    child: Child,
    base: String,
    /// Kept open: a closed pipe would fail the floor's next write to stderr.
    _stderr: BufReader<ChildStderr>,
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_floor() -> Floor {
    let mut child = Command::new(env!("CARGO_BIN_EXE_floor-relay"))
        .args(["--bind", "127.0.0.1:0", "--threads", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("floor-relay starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut stderr = BufReader::new(stderr);
    let mut line = String::new();
    stderr.read_line(&mut line).expect("floor-relay says where it listens");
    let addr = line
        .trim()
        .strip_prefix("floor-relay listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    Floor { child, base: format!("http://{addr}"), _stderr: stderr }
}

async fn loadtest(floor: &Floor, provision: &std::path::Path, extra: &[&str]) -> Report {
    let mut argv = vec![
        "loadtest".to_string(),
        "--target".into(),
        floor.base.clone(),
        "--provision".into(),
        provision.display().to_string(),
        "--relay-pid".into(),
        floor.child.id().to_string(),
        "--quiet".into(),
        "--settle".into(),
        "5".into(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let args = LoadtestArgs::try_parse_from(argv).expect("arguments parse");
    let report = wimz_loadtest::run(args).await.expect("load test runs");
    eprintln!("{}", report.table());
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generator_drives_the_floor_steady_burst_idle() {
    let floor = start_floor();
    let dir = std::env::temp_dir().join(format!("floor-loadtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let provision = dir.join("provision.json");

    // 20 robots x 2 apps: every event reaches both apps, once, in order.
    let steady = loadtest(
        &floor,
        &provision,
        &["--scenario", "steady", "--robots", "20", "--apps-per-robot", "2", "--rate", "20", "--duration", "2"],
    )
    .await;
    assert_eq!(steady.failures, Vec::<String>::new(), "a clean run");
    assert!(steady.events.received >= 20 * 2 * 20, "{:?}", steady.events);
    let relay = steady.relay.as_ref().expect("--relay-pid reads the floor");
    let per = relay.cpu_us_per_delivery.expect("deliveries in the window give a CPU per delivery");
    assert!(per >= 0.0, "{per}");

    let burst = loadtest(
        &floor,
        &provision,
        &["--scenario", "burst", "--robots", "20", "--apps-per-robot", "1", "--burst", "50", "--duration", "1"],
    )
    .await;
    assert_eq!(burst.failures, Vec::<String>::new(), "a clean run");
    assert_eq!(burst.events.received, 20 * 50);

    let idle = loadtest(
        &floor,
        &provision,
        &["--scenario", "idle", "--robots", "20", "--apps-per-robot", "1", "--duration", "1"],
    )
    .await;
    assert_eq!(idle.failures, Vec::<String>::new(), "a clean run");
    assert_eq!(idle.connections.concurrent, 40);
    let _ = std::fs::remove_dir_all(&dir);
}
