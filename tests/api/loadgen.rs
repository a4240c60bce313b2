//! Smoke run of `wimz-relay loadtest` against an in-process relay: a few
//! hundred sockets for a few seconds, three scenarios, asserting zero loss,
//! duplicates and reorder. No timing assertions: this only keeps the tool
//! from rotting.

use crate::helpers::*;
use wimz_loadtest::{self as loadgen, LoadtestArgs, Report};

async fn loadtest(app: &TestApp, provision: &std::path::Path, extra: &[&str]) -> Report {
    let mut argv = vec![
        "loadtest".to_string(),
        "--target".into(),
        app.base.clone(),
        "--provision".into(),
        provision.display().to_string(),
        "--quiet".into(),
        "--settle".into(),
        "5".into(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let args = LoadtestArgs::try_parse_from(argv).expect("arguments parse");
    let report = loadgen::run(args).await.expect("load test runs");
    eprintln!("{}", report.table());
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_smoke_steady_storm_commands() {
    let app = spawn_app_with(|s| {
        s.limits.messages_per_s = 1000.0;
        s.limits.messages_burst = 1000.0;
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let provision = dir.path().join("provision.json");

    // 100 robots x 2 apps = 300 sockets; events from every robot to both apps.
    let r = loadtest(
        &app,
        &provision,
        &[
            "--scenario",
            "steady",
            "--robots",
            "100",
            "--apps-per-robot",
            "2",
            "--rate",
            "10",
            "--duration",
            "2",
            "--source-ips",
            "127.0.0.1-127.0.0.3",
        ],
    )
    .await;
    assert_eq!(r.failures, Vec::<String>::new(), "a clean run");
    assert_eq!(r.connections.established, 300);
    assert!(r.events.sent > 0);
    assert_eq!(r.events.deliveries_expected, 2 * r.events.sent);
    assert_eq!(r.events.received, r.events.deliveries_expected);

    // Same devices again (the provisioning file is reused): everyone drops
    // and reconnects mid-run; apps resume with since_seq and miss nothing.
    let r = loadtest(
        &app,
        &provision,
        &[
            "--scenario",
            "reconnect-storm",
            "--robots",
            "100",
            "--apps-per-robot",
            "1",
            "--rate",
            "10",
            "--duration",
            "3",
            "--storm-at",
            "1",
        ],
    )
    .await;
    assert_eq!(r.failures, Vec::<String>::new(), "a clean run");
    let storm = r.storm.as_ref().expect("storm section");
    assert_eq!(storm.reconnects_ok, 200);
    assert_eq!(storm.recovered_complete, 100);
    assert_eq!(storm.recovered_incomplete, 0);
    assert_eq!(r.events.received, r.events.sent);

    // Commands: every result reaches the app that asked, and only it.
    let r = loadtest(
        &app,
        &provision,
        &[
            "--scenario",
            "commands",
            "--robots",
            "50",
            "--apps-per-robot",
            "2",
            "--commands-per-s",
            "5",
            "--duration",
            "2",
        ],
    )
    .await;
    assert_eq!(r.failures, Vec::<String>::new(), "a clean run");
    let c = r.commands.as_ref().expect("commands section");
    assert!(c.sent > 0);
    assert_eq!(c.results, c.sent);
    assert_eq!(c.misrouted, 0);
}

/// Provisioning rides out a busy store: the relay answers 503 "store busy"
/// (here: another writer holds SQLite's lock past the relay's 5 s wait) and
/// the generator retries instead of failing the run. The lock is released
/// only after the relay has counted a 503, so a retry is always needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_provisioning_retries_while_the_store_is_busy() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let provision = dir.path().join("provision.json");
    let mut locker = app.store_connection().await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    let unlock = async {
        let deadline = tokio::time::Instant::now() + PATIENCE * 3;
        while app.stats().await["store_busy"].as_u64() < Some(1) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the relay never answered store busy"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    };
    let run = loadtest(
        &app,
        &provision,
        &[
            "--scenario",
            "steady",
            "--robots",
            "4",
            "--apps-per-robot",
            "1",
            "--rate",
            "5",
            "--duration",
            "1",
        ],
    );
    let (r, ()) = tokio::join!(run, unlock);
    assert_eq!(r.failures, Vec::<String>::new(), "a clean run");
    assert_eq!(r.connections.established, 8);
    assert!(app.stats().await["store_busy"].as_u64() >= Some(1));
}

/// The command line as operators run it: the real binary, on one thread and
/// on the default pool, exits 0 on a clean run, prints the table and writes
/// the JSON report; against a target where nothing listens it exits non-zero
/// with a one-line reason.
/// The real binary's `wimz-relay loadtest` (not the library, as [`loadtest`]) against `target`, provisioning into `provision`.
fn loadtest_binary(target: &str, provision: &std::path::Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_wimz-relay"));
    c.args(["loadtest", "--target", target, "--provision"])
        .arg(provision);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_command_line_exit_status_table_and_json() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let provision = dir.path().join("provision.json");
    for threads in ["1", "0"] {
        let json = dir.path().join(format!("report-{threads}.json"));
        let out = loadtest_binary(&app.base, &provision)
            .args([
                "--scenario",
                "steady",
                "--robots",
                "20",
                "--apps-per-robot",
                "1",
            ])
            .args(["--rate", "5", "--duration", "1", "--settle", "5", "--quiet"])
            .args(["--threads", threads, "--json"])
            .arg(&json)
            .output()
            .await
            .expect("loadtest runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "threads {threads}: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("verdict"), "{stdout}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(report["passed"], true, "{report}");
        assert_eq!(report["connections"]["established"], 40);
        assert!(report["events"]["sent"].as_u64() > Some(0));
        assert_eq!(report["events"]["received"], report["events"]["sent"]);
        assert_eq!(report["events"]["lost"], 0);
    }
    // A relay that drops events (its rate limit refuses most of them): the
    // run reports the loss and exits non-zero.
    let strict = spawn_app_with(|s| {
        s.limits.messages_per_s = 1.0;
        s.limits.messages_burst = 1.0;
    })
    .await;
    let json = dir.path().join("report-loss.json");
    let out = loadtest_binary(&strict.base, &dir.path().join("strict.json"))
        .args([
            "--scenario",
            "steady",
            "--robots",
            "5",
            "--apps-per-robot",
            "1",
        ])
        .args([
            "--rate",
            "20",
            "--duration",
            "1",
            "--settle",
            "2",
            "--quiet",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .await
        .expect("loadtest runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["passed"], false, "{report}");
    assert!(report["events"]["lost"].as_u64() > Some(0), "{report}");

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let out = loadtest_binary(&nobody, &dir.path().join("other.json"))
        .args(["--robots", "2", "--duration", "1", "--quiet"])
        .output()
        .await
        .expect("loadtest runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `--app-targets`: robots on instance A, their apps on B, so every event
/// the generator times crossed instances (the cluster benchmark's set-up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_apps_on_another_instance_than_their_robots() {
    let c = crate::cluster::cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let dir = tempfile::tempdir().unwrap();
    let provision = dir.path().join("provision.json");
    let r = loadtest(
        a,
        &provision,
        &[
            "--scenario",
            "steady",
            "--robots",
            "20",
            "--apps-per-robot",
            "2",
            "--rate",
            "5",
            "--duration",
            "2",
            "--app-targets",
            &b.base,
        ],
    )
    .await;
    assert_eq!(r.failures, Vec::<String>::new(), "a clean run");
    assert_eq!(r.events.received, r.events.deliveries_expected);
    // The 40 apps talked to B (each subscribed there), the 20 robots to A.
    let frames_in = |s: serde_json::Value| s["messages_routed"].as_u64().unwrap_or(0);
    let (on_a, on_b) = (frames_in(a.stats().await), frames_in(b.stats().await));
    assert!(on_b >= 40, "the apps' frames reached B: {on_b}");
    assert!(
        on_a >= r.events.sent && on_a < r.events.sent + 40,
        "only robots on A: {on_a}"
    );
}
