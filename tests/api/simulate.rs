//! `wimz-relay simulate` and `wimz-relay serve --demo` as operators run
//! them: the real binary, its output, its robots seen from an app (devices
//! online, events, command results, REST answers), a relay that goes away
//! and comes back, and a clean stop on SIGTERM.

use crate::helpers::*;
use crate::process::{sigterm, start_relay_on, wait_exit, BIN};
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `simulate` for the user `name` (password "password-123", given on
/// standard input) with `robots` robots, fast ticks and short backoff.
fn simulate(base: &str, name: &str, file: &Path, robots: usize, log: &Path) -> Child {
    let mut child = Command::new(BIN)
        .args(["simulate", "--target", base, "--user", name])
        .args(["--robots", &robots.to_string(), "--devices-file"])
        .arg(file)
        .args(["--tick", "0.2", "--max-backoff", "1", "--seed", "7"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("simulate starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"password-123\n")
        .unwrap();
    child
}

/// Polls `GET /api/devices` until `done` holds for the list (hang guard).
async fn wait_devices(relay: &RelayClient, user: &User, done: impl Fn(&[Value]) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE * 3;
    loop {
        let v = relay.devices(user).await;
        if done(v.as_array().unwrap()) {
            return v;
        }
        assert!(Instant::now() < deadline, "devices never got there: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn all_online(n: usize) -> impl Fn(&[Value]) -> bool {
    move |d| d.len() == n && d.iter().all(|d| d["online"] == true)
}

/// Sends a command and returns its `command_result` (events in between
/// are skipped).
async fn command(app: &mut Ws, device: &str, id: &str, command: &str, data: Value) -> Value {
    send(
        app,
        json!({"type": "command", "device_id": device, "id": id, "command": command, "data": data}),
    )
    .await;
    loop {
        let v = recv(app).await;
        if v["type"] == "command_result" && v["id"] == id {
            return v;
        }
        assert_ne!(v["type"], "error", "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_robots_live_answer_and_come_back_after_the_relay_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let relay = start_relay_on(dir.path(), port, "warn", &[]).await;
    let owner = relay.user("simowner").await;
    let file = dir.path().join("sim-devices.json");
    let log = dir.path().join("sim.log");
    let mut sim = simulate(&relay.base, "simowner", &file, 2, &log);
    let devices = wait_devices(&relay, &owner, all_online(2)).await;
    let ids: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids.contains(&"simowner-sim-001") && ids.contains(&"simowner-sim-002"),
        "{ids:?}"
    );

    // Commands: a mission on demand, through its stages to completed.
    let (mut app, _) = relay.subscribed_app(&owner, "simowner-sim-001").await;
    command(
        &mut app,
        "simowner-sim-001",
        "c0",
        "stop_mission",
        json!({}),
    )
    .await;
    let r = command(
        &mut app,
        "simowner-sim-001",
        "c1",
        "set_mode",
        json!({"mode": "idle"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let r = command(
        &mut app,
        "simowner-sim-001",
        "c2",
        "start_mission",
        json!({"mission": "quiet_training"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let mut stages = Vec::new();
    loop {
        let e = recv_event(&mut app, "mission_progress").await;
        assert_eq!(e["data"]["mission"], "quiet_training", "{e}");
        stages.push(e["data"]["stage"].as_u64().unwrap());
        if e["data"]["status"] == "completed" {
            break;
        }
    }
    assert!(stages.windows(2).all(|w| w[0] <= w[1]), "{stages:?}");
    assert_eq!(stages.last(), Some(&3));
    let r = command(
        &mut app,
        "simowner-sim-001",
        "c3",
        "self_destruct",
        json!({}),
    )
    .await;
    assert_eq!(
        (&r["ok"], &r["data"]["error"]),
        (&json!(false), &json!("unknown_command"))
    );

    // REST calls through the relay's proxy get plausible JSON.
    for (path, key) in [
        ("missions/available", "missions"),
        ("programs/available", "programs"),
        ("reports/weekly", "days"),
        ("mode", "mode"),
    ] {
        let r = relay
            .get(
                &format!("/api/devices/simowner-sim-001/robot/{path}"),
                Some(&owner.token),
            )
            .await;
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(!v[key].is_null(), "{path}: {v}");
    }
    drop(app);

    // The relay goes away (SIGKILL) and comes back on the same address and
    // store: the robots reconnect by themselves.
    drop(relay);
    let relay = start_relay_on(dir.path(), port, "warn", &[]).await;
    wait_devices(&relay, &owner, all_online(2)).await;

    // SIGTERM: the robots say goodbye and the process exits 0.
    sigterm(&sim);
    let st = wait_exit(&mut sim, "simulate");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(st.success(), "{st}: {text}");
    assert!(!text.contains("panicked"), "{text}");
    wait_devices(&relay, &owner, |d| d.iter().all(|d| d["online"] == false)).await;

    // A rerun reuses the saved secrets and creates only what is missing.
    let mut sim = simulate(&relay.base, "simowner", &file, 3, &log);
    wait_devices(&relay, &owner, all_online(3)).await;
    sigterm(&sim);
    assert!(wait_exit(&mut sim, "simulate").success());
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["devices"].as_array().unwrap().len(), 3);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the secrets file is private: {mode:o}");
    }
}

/// A wrong password is one line and exit 1, before any robot exists.
#[tokio::test]
async fn simulate_with_a_wrong_password_says_so_in_one_line() {
    let app = spawn_app().await;
    app.user("simbad").await;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["simulate", "--target", &app.base, "--user", "simbad"])
        .args(["--password", "not-the-password", "--devices-file"])
        .arg(dir.path().join("d.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("login as simbad refused"), "{err}");
}

/// What `serve --demo` printed.
struct Banner {
    console: String,
    user: String,
    password: String,
    data: String,
}

/// Reads the banner from the demo's standard output (on a thread: the
/// pipe is blocking).
async fn banner(child: &mut Child) -> Banner {
    let stdout = child.stdout.take().unwrap();
    let read = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.starts_with("Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    let lines = tokio::time::timeout(PATIENCE * 3, read)
        .await
        .expect("the demo prints its banner")
        .unwrap();
    let field = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {key} line in {lines:?}"))
    };
    let login = field("login");
    let (user, password) = login.split_once(" / ").expect("user / password");
    Banner {
        console: field("console"),
        user: user.to_string(),
        password: password.to_string(),
        data: field("data").split(' ').next().unwrap().to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_prints_a_console_and_a_login_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(BIN)
        .args(["serve", "--demo"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("WIMZ__SERVER__BIND", "127.0.0.1:0")
        .env("WIMZ__LOG__LEVEL", "warn")
        .env("TMPDIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("demo.log")).unwrap())
        .spawn()
        .expect("demo starts");
    let b = banner(&mut demo).await;
    assert!(Path::new(&b.data).starts_with(dir.path()), "{}", b.data);
    assert!(Path::new(&b.data).join("relay.db").exists());

    // The printed URL is the console.
    let r = reqwest::get(&b.console).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let port: u16 = b
        .console
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/console/")
        .parse()
        .expect("http://127.0.0.1:PORT/console/");
    let relay = RelayClient::new(port);

    // The printed login works, and the robots are the user's, online.
    let r = relay
        .post_json(
            "/api/auth/login",
            &json!({"username": b.user, "password": b.password}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let user = User {
        name: b.user.clone(),
        id: v["user_id"].as_str().unwrap().into(),
        token: v["access_token"].as_str().unwrap().into(),
    };
    wait_devices(&relay, &user, all_online(3)).await;

    // Events flow to an app: the robot's own, and those a command causes.
    let (mut app, sub) = relay.subscribed_app(&user, "demo-wimz-1").await;
    assert_eq!(sub["robot_online"], true, "{sub}");
    let r = command(
        &mut app,
        "demo-wimz-1",
        "t1",
        "dispense_treat",
        json!({"count": 1}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    recv_event(&mut app, "treat_dispensed").await;
    let own = loop {
        let v = recv_within(&mut app, PATIENCE * 3).await;
        if v["type"] == "event" && v["event"] != "treat_dispensed" {
            break v;
        }
    };
    assert_eq!(own["device_id"], "demo-wimz-1", "{own}");
    let r = relay
        .get(
            "/api/devices/demo-wimz-2/robot/missions/status",
            Some(&user.token),
        )
        .await;
    assert_eq!(r.status(), 200);

    // SIGTERM: exits 0 and takes its data with it.
    sigterm(&demo);
    let st = wait_exit(&mut demo, "the demo");
    let log = std::fs::read_to_string(dir.path().join("demo.log")).unwrap();
    assert!(st.success(), "{st}: {log}");
    assert!(!Path::new(&b.data).exists(), "{} removed", b.data);
    assert!(!log.contains(&b.password), "the log holds the password");
}
