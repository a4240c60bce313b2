//! Observability (issue 15, item 4): `/metrics`, written by
//! `metrics-exporter-prometheus`, passes `promtool check metrics` on a relay
//! that has routed events, refused requests and proxied a REST call; the
//! histograms count that traffic; each refusal reason and each close code
//! moves its own counter; the alert rules pass `promtool check rules` and
//! their unit tests; the Grafana dashboard and the alerts use valid PromQL
//! over series the relay really exposes.
//!
//! `promtool` is Debian's `prometheus` package (`.ci/services` installs it
//! and sets WIMZ_TEST_REQUIRE_PROMTOOL=1, so CI never skips these).

use crate::helpers::*;
use crate::raw_ws::{self, RawWriter, FIN, OP_TEXT, RSV1};
use crate::scrape::{refused, Scrape};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use wimz_relay::config::caps::Rate;

/// `promtool`, or `None` (a skip note) where it is not installed and not
/// required.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("WIMZ_TEST_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
            "promtool is required (WIMZ_TEST_REQUIRE_PROMTOOL=1) but not on PATH: apt-get install prometheus"
        );
        eprintln!("skipped: promtool not installed (apt-get install prometheus)");
    }
    found
}

/// Runs `promtool args...` (in `dir`, with `stdin`); its exit status and
/// everything it printed.
fn run_promtool(tool: &Path, dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input
            .write_all(text.as_bytes())
            .expect("promtool reads stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("promtool ends");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// GET `path` with an `Origin` header.
async fn get_from_origin(c: &RelayClient, path: &str, origin: &str) -> u16 {
    c.http
        .get(c.url(path))
        .header("origin", origin)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_live_scrape_passes_promtool_and_its_histograms_count_the_traffic() {
    let Some(tool) = promtool() else { return };
    let app = spawn_app().await;
    let before = Scrape::of(&app).await;
    for name in [
        "wimz_event_routing_seconds_count",
        "wimz_ws_handshake_seconds_count",
        "wimz_proxy_seconds_count",
    ] {
        assert!(before.has(name), "{name} exists from the start");
        assert_eq!(before.count(name, &[]), 0, "{name}");
    }

    let user = app.user("watcher").await;
    let secret = app.device(&user, "wimz-obs-1").await;
    let mut robot = app.robot("wimz-obs-1", &secret).await;
    let (mut first, _) = app.subscribed_app(&user, "wimz-obs-1").await;
    let (mut second, _) = app.subscribed_app(&user, "wimz-obs-1").await;
    for level in 0..5 {
        send(
            &mut robot,
            json!({"type": "event", "event": "battery", "data": {"level": level}}),
        )
        .await;
    }
    for phone in [&mut first, &mut second] {
        for level in 0..5 {
            assert_eq!(recv_event(phone, "battery").await["data"]["level"], level);
        }
    }
    // A REST call the robot answers.
    let _robot = crate::proxy::echo_robot(robot);
    let r = app
        .get(
            "/api/devices/wimz-obs-1/robot/missions/available",
            Some(&user.token),
        )
        .await;
    assert_eq!(r.status(), 200);
    // Two refusals.
    assert_eq!(
        app.get("/api/devices", Some("not-a-token")).await.status(),
        401
    );
    assert_eq!(
        get_from_origin(&app, "/api/devices", "https://elsewhere.example").await,
        403
    );

    let after = Scrape::of(&app).await;
    // One routing sample per delivery: 5 events to 2 apps.
    assert_eq!(after.count("wimz_event_routing_seconds_count", &[]), 10);
    assert_eq!(
        after.count("wimz_ws_handshake_seconds_count", &[("role", "robot")]),
        1
    );
    assert_eq!(
        after.count("wimz_ws_handshake_seconds_count", &[("role", "app")]),
        2
    );
    assert_eq!(
        after.count("wimz_proxy_seconds_count", &[("outcome", "answered")]),
        1
    );
    assert_eq!(
        after.count("wimz_refused_total", &[("reason", "bad_token")]),
        1
    );
    assert_eq!(
        after.count("wimz_refused_total", &[("reason", "origin")]),
        1
    );
    // Every sample is tagged with the instance; the +Inf bucket is the count.
    assert_eq!(
        after.count(
            "wimz_event_routing_seconds_bucket",
            &[("le", "+Inf"), ("instance", &app.handle.state.instance_id)]
        ),
        10
    );

    let dir = tempfile::tempdir().unwrap();
    let (ok, printed) = run_promtool(&tool, dir.path(), &["check", "metrics"], Some(&after.text));
    assert!(
        ok && printed.trim().is_empty(),
        "promtool check metrics: {printed}\n{}",
        after.text
    );
}

/// `alice` logs in with `password`: the status.
async fn login(app: &TestApp, password: &str) -> u16 {
    app.post_json(
        "/api/auth/login",
        &json!({"username": "alice", "password": password}),
        None,
    )
    .await
    .status()
    .as_u16()
}

/// `POST /api/auth/device` for `wimz-obs-2`.
async fn device_auth(app: &TestApp, ts: i64, signature: String) -> reqwest::Response {
    app.post_json(
        "/api/auth/device",
        &json!({"device_id": "wimz-obs-2", "timestamp": ts, "signature": signature}),
        None,
    )
    .await
}

/// The relay's HTTP refusals: each reason counted once, under its own label.
#[tokio::test]
async fn each_http_refusal_moves_its_own_counter() {
    let app = spawn_app_with(|s| {
        s.throttle.login_per_ip = Rate::per(3, 3600);
        s.throttle.login_per_username = Rate::off();
        s.throttle.register_per_ip = Rate::off();
        s.throttle.register_per_username = Rate::per(1, 3600);
    })
    .await;
    let user = app.user("alice").await; // login 1 of 3
    let cases: Vec<(&str, u16)> = vec![
        ("bad_password", login(&app, "wrong-password").await),
        (
            "bad_token",
            app.get("/api/devices", Some("x.y.z"))
                .await
                .status()
                .as_u16(),
        ),
        (
            "origin",
            get_from_origin(&app, "/api/devices", "https://elsewhere.example").await,
        ),
        (
            "register_username",
            app.post_json(
                "/api/auth/register",
                &json!({"username": "ALICE", "password": "password-123"}),
                None,
            )
            .await
            .status()
            .as_u16(),
        ),
    ];
    // Login 3 of 3 passes, the 4th meets the address throttle.
    assert_eq!(login(&app, "password-123").await, 200);
    let throttled = login(&app, "password-123").await;

    // Device credentials: a wrong signature, then a token of a rotated secret.
    let secret = app.device(&user, "wimz-obs-2").await;
    let ts = wimz_relay::ids::unix_now();
    let bad_sig = device_auth(&app, ts, "00".repeat(32))
        .await
        .status()
        .as_u16();
    let r = device_auth(&app, ts, sign(&secret, "wimz-obs-2", ts)).await;
    assert_eq!(r.status(), 200);
    let device_token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post_json(
            "/api/devices/wimz-obs-2/secret",
            &json!({}),
            Some(&user.token),
        )
        .await;
    assert!(r.status().is_success(), "rotate: {}", r.status());
    let revoked = app
        .get("/webrtc/config", Some(&device_token))
        .await
        .status()
        .as_u16();

    let mut all = cases;
    all.extend([
        ("login_ip", throttled),
        ("bad_signature", bad_sig),
        ("revoked_token", revoked),
    ]);
    let scrape = Scrape::of(&app).await;
    for (reason, status) in &all {
        assert!(*status >= 400, "{reason}: answered {status}");
        assert_eq!(
            scrape.count("wimz_refused_total", &[("reason", reason)]),
            1,
            "{reason} (answered {status})"
        );
    }
    // Nothing else was refused.
    assert_eq!(
        scrape.count("wimz_refused_total", &[]),
        all.len() as u64,
        "{}",
        scrape.text
    );
}

/// Proxy calls over `proxy.max_pending_per_device` and messages over the
/// rate limit: refused and counted; the proxy histogram records each
/// outcome.
#[tokio::test]
async fn proxy_and_rate_limit_refusals_move_their_counters() {
    let app = spawn_app_with(|s| {
        s.proxy.max_pending_per_device = 1;
        s.proxy.timeout_s = 0.5;
        s.limits.messages_per_s = 1.0;
        s.limits.messages_burst = 2.0;
    })
    .await;
    let user = app.user("bob").await;
    let secret = app.device(&user, "wimz-obs-3").await;
    // A robot that never answers.
    let _robot = app.robot("wimz-obs-3", &secret).await;
    let call = || app.get("/api/devices/wimz-obs-3/robot/mode", Some(&user.token));
    let (a, b) = tokio::join!(call(), async {
        // The first call is waiting when the second arrives (the order does
        // not matter: one of the two is refused, the other times out).
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        call().await
    });
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [429, 504]);

    let mut phone = app.app(&user).await;
    for _ in 0..5 {
        send(&mut phone, json!({"type": "ping"})).await;
    }
    let mut limited = 0;
    for _ in 0..5 {
        let v = recv(&mut phone).await;
        if v["type"] == "error" && v["code"] == "rate_limited" {
            limited += 1;
        }
    }
    assert!(limited >= 1, "the rate limit refused nothing");

    let scrape = Scrape::of(&app).await;
    assert_eq!(refused(&app, "proxy_pending").await, 1);
    assert_eq!(
        scrape.count("wimz_refused_total", &[("reason", "rate_limited")]),
        limited
    );
    for (outcome, n) in [("refused", 1), ("timeout", 1), ("answered", 0)] {
        assert_eq!(
            scrape.count("wimz_proxy_seconds_count", &[("outcome", outcome)]),
            n,
            "{outcome}"
        );
    }
}

/// WebRTC: the per-device session limit is counted; the setup histogram
/// records request -> answer once.
#[tokio::test]
async fn webrtc_setup_is_timed_and_the_session_limit_counted() {
    use crate::webrtc::{offer_answer, relay, request, scene, sid, Scene};
    let Scene {
        app,
        mut robot,
        mut phone,
        ..
    } = scene(relay(30.0, 300.0, 1).await, "wimz-obs-4").await;
    let before = Scrape::of(&app).await;
    assert_eq!(before.count("wimz_webrtc_setup_seconds_count", &[]), 0);
    let (req, _) = request(&mut phone, &mut robot, "wimz-obs-4").await;
    offer_answer(&mut phone, &mut robot, &sid(&req)).await;
    send(
        &mut phone,
        json!({"type": "webrtc_request", "device_id": "wimz-obs-4", "id": "second"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut phone, "error").await["code"],
        "session_limit"
    );
    let after = Scrape::of(&app).await;
    assert_eq!(after.count("wimz_webrtc_setup_seconds_count", &[]), 1);
    assert_eq!(
        after.count("wimz_refused_total", &[("reason", "webrtc_sessions")]),
        1
    );
}

/// Sockets closed for breaking RFC 6455: each close code and reason
/// counted under `wimz_ws_closed_total{role,code,reason}`.
#[tokio::test]
async fn each_protocol_close_moves_its_own_counter() {
    let app = spawn_app_with(|s| s.limits.max_message_bytes = 1024).await;
    let user = app.user("carol").await;
    let bearer = format!("Bearer {}", user.token);
    let cases: [(&str, u16, Vec<u8>); 3] = [
        (
            "invalid_utf8",
            1007,
            RawWriter::encode(FIN | OP_TEXT, b"{\"type\":\"ping\",\"x\":\"\xff\"}"),
        ),
        (
            "protocol_error",
            1002,
            RawWriter::encode(FIN | RSV1 | OP_TEXT, br#"{"type":"ping"}"#),
        ),
        (
            "message_too_big",
            1009,
            RawWriter::header(FIN | OP_TEXT, 1 << 20),
        ),
    ];
    for (reason, code, bytes) in &cases {
        let (mut rd, mut wr) = raw_ws::connect(app.port, "/ws/app", &[("Authorization", &bearer)])
            .await
            .expect("app socket opens");
        wr.raw(bytes).await;
        assert_eq!(rd.close_frame().await, Some((*code, reason.to_string())));
    }
    app.wait_stats("sockets gone", |s| s["apps_connected"] == 0)
        .await;
    let scrape = Scrape::of(&app).await;
    for (reason, code, _) in &cases {
        let code = code.to_string();
        assert_eq!(
            scrape.count(
                "wimz_ws_closed_total",
                &[("role", "app"), ("code", &code), ("reason", reason)]
            ),
            1,
            "{code} {reason}\n{}",
            scrape.text
        );
    }
}

#[test]
fn alert_rules_and_scrape_config_pass_promtool_and_the_alerts_their_unit_tests() {
    let Some(tool) = promtool() else { return };
    let dir = repo().join("deploy/prometheus");
    for args in [
        &["check", "rules", "wimz-alerts.yml"][..],
        &["check", "config", "prometheus.yml"],
        &["test", "rules", "wimz-alerts.test.yml"],
    ] {
        let (ok, printed) = run_promtool(&tool, &dir, args, None);
        assert!(ok, "promtool {}: {printed}", args.join(" "));
    }
}

/// The `wimz_*` series a PromQL text names, histograms by their base name.
fn series_named(promql: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = promql;
    while let Some(at) = rest.find("wimz_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| b.ends_with("_seconds")))
            .unwrap_or(name);
        names.push(base.to_string());
        rest = &tail[end..];
    }
    names
}

/// The dashboard's queries, with Grafana's variables given values.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().expect("title");
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{title}: uses the dashboard's data source variable"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            let expr = t["expr"]
                .as_str()
                .expect("expr")
                .replace("$__rate_interval", "1m")
                .replace("$__range", "1h")
                .replace("$job", ".*")
                .replace("$instance", ".*");
            out.push((format!("{title} {}", t["refId"]), expr));
        }
    }
    out
}

#[tokio::test]
async fn the_dashboard_and_alerts_query_series_the_relay_exposes_in_valid_promql() {
    let Some(tool) = promtool() else { return };
    let text = std::fs::read_to_string(repo().join("deploy/grafana/wimz-relay.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "wimz-relay");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    let mut ids: Vec<u64> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().expect("panel id"))
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "panel ids are unique");
    let queries = dashboard_queries(&dashboard);

    // Valid PromQL: each query as a recording rule (YAML takes JSON).
    let rules = json!({"groups": [{"name": "dashboard", "rules": queries.iter().enumerate()
        .map(|(i, (_, expr))| json!({"record": format!("wimz:dashboard:q{i}"), "expr": expr}))
        .collect::<Vec<_>>()}]});
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard-rules.yml"), rules.to_string()).unwrap();
    let (ok, printed) = run_promtool(
        &tool,
        dir.path(),
        &["check", "rules", "dashboard-rules.yml"],
        None,
    );
    assert!(ok, "dashboard queries are not valid PromQL: {printed}");

    // Series the relay exposes (a clustered one also has wimz_redis_up;
    // closes are counted from the first one).
    let app = spawn_app().await;
    let user = app.user("grafana").await;
    let mut phone = app.app(&user).await;
    app.wait_stats("app socket counted", |s| s["apps_connected"] == 1)
        .await;
    phone.close(None).await.unwrap();
    app.wait_stats("app socket closed", |s| s["apps_connected"] == 0)
        .await;
    let scrape = Scrape::of(&app).await;
    let exposed: Vec<&str> = wimz_relay::metrics::catalog::all_names();
    let alerts = std::fs::read_to_string(repo().join("deploy/prometheus/wimz-alerts.yml")).unwrap();
    let mut used: Vec<(String, String)> = queries
        .iter()
        .flat_map(|(what, expr)| {
            series_named(expr)
                .into_iter()
                .map(move |n| (what.clone(), n))
        })
        .collect();
    used.extend(
        series_named(&alerts)
            .into_iter()
            .map(|n| ("alerts".to_string(), n)),
    );
    for (what, name) in &used {
        assert!(
            exposed.contains(&name.as_str()),
            "{what}: {name} is not a relay series"
        );
        let live = scrape.names().iter().any(|s| s.starts_with(name.as_str()));
        assert!(
            live || name == "wimz_redis_up",
            "{what}: {name} is not in a live scrape:\n{}",
            scrape.text
        );
    }
    // The panels the operator asked for.
    let all_queries: String = queries
        .iter()
        .map(|(_, e)| e.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "wimz_robots_online",
        "wimz_apps_connected",
        "rate(wimz_events_in_total",
        "rate(wimz_deliveries_out_total",
        "histogram_quantile(0.5, sum by (le) (rate(wimz_event_routing_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(wimz_event_routing_seconds_bucket",
        "sum by (reason) (rate(wimz_refused_total",
        "wimz_redis_up",
        "wimz_redis_publish_seconds_bucket",
        "wimz_webrtc_sessions_active",
        "wimz_webrtc_relay_sessions_total",
        "wimz_webrtc_direct_sessions_total",
    ] {
        assert!(all_queries.contains(needle), "no panel queries {needle}");
    }
}

/// Clustered: each event's Redis append is timed, `wimz_redis_up` follows
/// Redis, and events Redis cannot take are counted as publish failures
/// (and still delivered here).
#[tokio::test]
async fn clustered_publishes_are_timed_and_redis_health_is_exposed() {
    let mut c = crate::cluster::cluster(1).await;
    let a = &c.nodes[0];
    let user = a.user("redis-watcher").await;
    let secret = a.device(&user, "wimz-obs-5").await;
    let mut robot = a.robot("wimz-obs-5", &secret).await;
    let (mut phone, _) = a.subscribed_app(&user, "wimz-obs-5").await;
    let before = Scrape::of(a).await;
    assert_eq!(before.count("wimz_redis_up", &[]), 1, "{}", before.text);
    for level in 0..4 {
        send(
            &mut robot,
            json!({"type": "event", "event": "battery", "data": {"level": level}}),
        )
        .await;
        recv_event(&mut phone, "battery").await;
    }
    // The room records a delivery just after queueing it, so the app may
    // read the frame first: wait (hang guard) for the exact count.
    let after = routed_reaches(a, 4).await;
    let published = |s: &Scrape| s.count("wimz_redis_publish_seconds_count", &[]);
    assert_eq!(published(&after) - published(&before), 4);
    assert_eq!(after.count("wimz_redis_publish_failures_total", &[]), 0);

    c.redis.stop();
    let a = &c.nodes[0];
    let deadline = tokio::time::Instant::now() + 3 * PATIENCE;
    while Scrape::of(a).await.count("wimz_redis_up", &[]) != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "wimz_redis_up stayed 1"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    send(
        &mut robot,
        json!({"type": "event", "event": "battery", "data": {"level": 9}}),
    )
    .await;
    assert_eq!(recv_event(&mut phone, "battery").await["data"]["level"], 9);
    let down = routed_reaches(a, 5).await;
    assert_eq!(down.count("wimz_redis_publish_failures_total", &[]), 1);
}

/// Clustered, robot on A and its app on B: B times each delivery from
/// reading the event off Redis (`wimz_mirror_routing_seconds`), A times the
/// publish; neither counts it as a robot-socket routing, which A has no app
/// for and B never read from a robot.
#[tokio::test]
async fn a_cross_instance_delivery_is_timed_where_the_app_is() {
    let c = crate::cluster::cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let (_, _, mut robot, mut phone) =
        crate::cluster::robot_on_a_app_on_b(&c, "mirror-watcher", "wimz-obs-6").await;
    let mirrored = |s: &Scrape| s.count("wimz_mirror_routing_seconds_count", &[]);
    let published = |s: &Scrape| s.count("wimz_redis_publish_seconds_count", &[]);
    let (a0, b0) = (Scrape::of(a).await, Scrape::of(b).await);
    assert!(b0.has("wimz_mirror_routing_seconds_count"), "{}", b0.text);
    for level in 0..6 {
        send(
            &mut robot,
            json!({"type": "event", "event": "battery", "data": {"level": level}}),
        )
        .await;
        assert_eq!(
            recv_event(&mut phone, "battery").await["data"]["level"],
            level
        );
    }
    let b1 = counted_reaches(b, "wimz_mirror_routing_seconds_count", mirrored(&b0) + 6).await;
    let a1 = Scrape::of(a).await;
    assert_eq!(published(&a1) - published(&a0), 6, "{}", a1.text);
    for s in [&a1, &b1] {
        assert_eq!(
            s.count("wimz_event_routing_seconds_count", &[]),
            0,
            "{}",
            s.text
        );
    }
    assert_eq!(mirrored(&a1), 0, "A mirrors nothing: {}", a1.text);
    assert_eq!(
        b1.count(
            "wimz_mirror_routing_seconds_bucket",
            &[("le", "+Inf"), ("instance", &b.handle.state.instance_id)]
        ),
        mirrored(&b1)
    );
}

/// Scrapes until `wimz_event_routing_seconds_count` is `n` (never more).
async fn routed_reaches(a: &crate::helpers::RelayClient, n: u64) -> Scrape {
    counted_reaches(a, "wimz_event_routing_seconds_count", n).await
}

/// Scrapes until the series `name` is `n` (never more).
async fn counted_reaches(a: &crate::helpers::RelayClient, name: &str, n: u64) -> Scrape {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let s = Scrape::of(a).await;
        let got = s.count(name, &[]);
        assert!(got <= n, "{got} deliveries timed, {n} made: {}", s.text);
        if got == n {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{got} deliveries timed, {n} made: {}",
            s.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
