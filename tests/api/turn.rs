//! TURN credentials (PROTOCOL.md §1, §4): the HTTP endpoints, the
//! `cloudflare` provider against a local server answering like Cloudflare's
//! API, and — against a REAL coturn — proof that the relay's `hmac`
//! credentials are accepted (and refused once expired or signed with the
//! wrong secret), plus two real aiortc peers connected with relay-only ICE
//! through that coturn, signaled through the relay alone.
//!
//! The coturn and Python parts need `turnserver` (Debian package `coturn`)
//! and a venv at `tests/.venv` with `aiortc` and `websockets` (`.ci/test`
//! installs both). Without them these tests print a note and skip, unless
//! `WIMZ_TEST_REQUIRE_PEERS=1` (set by `.ci/test`), which makes it a failure.

use crate::helpers::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use wimz_relay::config::TurnProvider;
use wimz_relay::ids::DeviceId;
use wimz_relay::secret::Secret;

const TURN_SECRET: &str = "coturn-shared-secret-for-tests";

// ---------------------------------------------------------------- helpers --

/// Skips (with a note) or, under `WIMZ_TEST_REQUIRE_PEERS=1`, fails.
fn missing(what: &str) -> bool {
    if std::env::var("WIMZ_TEST_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("WIMZ_TEST_REQUIRE_PEERS=1 but {what} is missing (run .ci/test)");
    }
    eprintln!("note: {what} is missing; skipping (run .ci/test to install it)");
    true
}

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// The venv's python with aiortc importable, if present.
fn venv_python() -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/.venv/bin/python");
    let ok = std::process::Command::new(&py)
        .args(["-c", "import aiortc, aioice, websockets"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(py)
    } else {
        missing("tests/.venv with aiortc");
        None
    }
}

/// A coturn on a free loopback port, killed on drop.
struct Coturn {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Coturn {
    /// `None` when `turnserver` is not installed (and peers are not required).
    async fn start(secret: &str) -> Option<Coturn> {
        if std::process::Command::new("turnserver")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            missing("turnserver (coturn)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("turn.log");
        let child = std::process::Command::new("turnserver")
            .arg("-n") // no config file: everything is on this command line
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &port.to_string()])
            .arg("--use-auth-secret")
            .arg(format!("--static-auth-secret={secret}"))
            .args(["--realm", "wimz.test"])
            .args([
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--allow-loopback-peers",
            ])
            .args(["--simple-log", "--log-file"])
            .arg(&log)
            .arg("--pidfile")
            .arg(dir.path().join("turn.pid"))
            .arg("--userdb")
            .arg(dir.path().join("turndb"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver starts");
        let coturn = Coturn {
            child,
            port,
            _dir: dir,
        };
        // Ready once its relay threads are up (it logs this after binding).
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Total General servers") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "coturn did not start: {text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some(coturn)
    }

    fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free for both UDP and TCP right now.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A relay whose `hmac` provider points at `turn_url` with `secret`.
async fn hmac_relay(secret: &str, turn_url: String) -> TestApp {
    let secret = secret.to_string();
    spawn_app_with(move |s| {
        s.turn.provider = TurnProvider::Hmac;
        s.turn.secret = Secret::new(secret);
        s.turn.urls = vec![turn_url];
        s.turn.stun_urls = vec![];
    })
    .await
}

/// Runs `tests/peers/turn_allocate.py`: true when coturn granted the allocation.
async fn allocate(py: &Path, port: u16, username: &str, credential: &str) -> (bool, String) {
    let out = tokio::process::Command::new(py)
        .arg(peers_dir().join("turn_allocate.py"))
        .args(["127.0.0.1", &port.to_string(), username, credential])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("turn_allocate.py finishes")
        .expect("turn_allocate.py runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.success(), text)
}

async fn creds_for(app: &TestApp, user: &User, device: &str) -> Value {
    let r = app
        .get(
            &format!("/api/turn/credentials?device_id={device}"),
            Some(&user.token),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn device_token(app: &TestApp, device: &str, secret: &str) -> String {
    let now = wimz_relay::ids::unix_now();
    let body =
        json!({"device_id": device, "timestamp": now, "signature": sign(secret, device, now)});
    let r = app.post_json("/api/auth/device", &body, None).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

// ----------------------------------------------------------------- HTTP --

#[tokio::test]
async fn credentials_for_the_owner_and_the_device_only() {
    let app = hmac_relay("s3cret", "turn:turn.example:3478?transport=udp".into()).await;
    let alice = app.user("alice").await;
    let secret = app.device(&alice, "wimz-1").await;
    app.device(&alice, "wimz-2").await;

    let v = creds_for(&app, &alice, "wimz-1").await;
    let username = v["username"].as_str().unwrap();
    let (exp, dev) = username.split_once(':').unwrap();
    assert_eq!(dev, "wimz-1");
    assert_eq!(
        exp.parse::<i64>().unwrap(),
        v["expires_at"].as_i64().unwrap()
    );
    assert_eq!(v["ttl"], 86_400);
    assert_eq!(
        v["credential"].as_str().unwrap(),
        wimz_relay::turn::hmac::sign(&Secret::new("s3cret"), username)
    );
    assert_eq!(v["urls"], json!(["turn:turn.example:3478?transport=udp"]));
    assert_eq!(v["ice_servers"][0]["username"], v["username"]);

    let r = app
        .post_json(
            "/api/turn/credentials",
            &json!({"device_id": "wimz-1"}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status(), 200);

    // The device itself, with a device token: its own only.
    let dt = device_token(&app, "wimz-1", &secret).await;
    assert_eq!(
        app.get("/api/turn/credentials?device_id=wimz-1", Some(&dt))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get("/api/turn/credentials?device_id=wimz-2", Some(&dt))
            .await
            .status(),
        404
    );
    // A stranger's answer equals a missing device's: 404.
    let bob = app.user("bob").await;
    assert_eq!(
        app.get("/api/turn/credentials?device_id=wimz-1", Some(&bob.token))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get("/api/turn/credentials?device_id=ghost", Some(&bob.token))
            .await
            .status(),
        404
    );
    let r = app
        .post_json(
            "/api/turn/credentials",
            &json!({"device_id": "wimz-1"}),
            Some(&bob.token),
        )
        .await;
    assert_eq!(r.status(), 404);
    // No token; no device_id; a malformed one.
    assert_eq!(
        app.get("/api/turn/credentials?device_id=wimz-1", None)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get("/api/turn/credentials", Some(&alice.token))
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get("/api/turn/credentials?device_id=a%20b", Some(&alice.token))
            .await
            .status(),
        400
    );

    // /webrtc/config for a user and for a device.
    let v: Value = app
        .get("/webrtc/config", Some(&alice.token))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        v["ice_servers"][0]["username"]
            .as_str()
            .unwrap()
            .contains(":user:"),
        "{v}"
    );
    let v: Value = app
        .get("/webrtc/config", Some(&dt))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        v["ice_servers"][0]["username"]
            .as_str()
            .unwrap()
            .ends_with(":wimz-1"),
        "{v}"
    );
    assert_eq!(app.get("/webrtc/config", None).await.status(), 401);
}

#[tokio::test]
async fn provider_none_hands_out_stun_only() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.device(&alice, "wimz-1").await;
    let v = creds_for(&app, &alice, "wimz-1").await;
    assert_eq!(v["urls"], json!([]));
    assert_eq!(
        v["ice_servers"],
        json!([{"urls": ["stun:stun.l.google.com:19302"]}])
    );
    let v: Value = app
        .get("/webrtc/config", Some(&alice.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({"ice_servers": [{"urls": ["stun:stun.l.google.com:19302"]}]})
    );
}

#[tokio::test]
async fn static_provider_hands_out_the_fixed_pair() {
    let app = spawn_app_with(|s| {
        s.turn.provider = TurnProvider::Static;
        s.turn.urls = vec!["turn:relay.metered.ca:80".into()];
        s.turn.username = "fixed-user".into();
        s.turn.credential = Secret::new("fixed-pass");
    })
    .await;
    let alice = app.user("alice").await;
    app.device(&alice, "wimz-1").await;
    let v = creds_for(&app, &alice, "wimz-1").await;
    assert_eq!(
        (v["username"].as_str(), v["credential"].as_str()),
        (Some("fixed-user"), Some("fixed-pass"))
    );
    assert_eq!(
        v["ice_servers"][1]["urls"],
        json!(["turn:relay.metered.ca:80"])
    );
}

// ------------------------------------------------------------ cloudflare --

/// What the fake Cloudflare API saw: (path, authorization, body).
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A local HTTP server answering like Cloudflare's generate-ice-servers API.
fn fake_cloudflare() -> (u16, Seen) {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    let seen: Seen = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = seen.clone();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let s = s.clone();
                App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                    let s = s.clone();
                    async move {
                        let auth = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let n = {
                            let mut seen = s.lock().unwrap();
                            seen.push((req.path().to_string(), auth, body));
                            seen.len()
                        };
                        HttpResponse::Created().json(json!({"iceServers": [
                            {"urls": ["stun:stun.cloudflare.com:3478"]},
                            {"urls": ["turn:turn.cloudflare.com:3478?transport=udp",
                                      "turns:turn.cloudflare.com:5349?transport=tcp"],
                             "username": format!("cf-user-{n}"),
                             "credential": format!("cf-cred-{n}")}
                        ]}))
                    }
                }))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run()
            .await
            .ok();
        });
    });
    (port, seen)
}

#[tokio::test]
async fn cloudflare_provider_calls_the_api_once_per_device_and_caches() {
    let (port, seen) = fake_cloudflare();
    let app = spawn_app_with(move |s| {
        s.turn.provider = TurnProvider::Cloudflare;
        s.turn.api_base = format!("http://127.0.0.1:{port}/");
        s.turn.key_id = "key-123".into();
        s.turn.api_token = Secret::new("api-token-xyz");
        s.turn.ttl_s = 3600;
    })
    .await;
    let alice = app.user("alice").await;
    app.device(&alice, "wimz-1").await;
    app.device(&alice, "wimz-2").await;

    // Concurrent first requests and later ones: one upstream call.
    let first =
        futures_util::future::join_all((0..5).map(|_| creds_for(&app, &alice, "wimz-1"))).await;
    for _ in 0..5 {
        first
            .iter()
            .for_each(|v| assert_eq!(v["username"], "cf-user-1"));
        assert_eq!(
            creds_for(&app, &alice, "wimz-1").await["username"],
            "cf-user-1"
        );
    }
    let v = &first[0];
    assert_eq!(v["credential"], "cf-cred-1");
    assert_eq!(v["ttl"], 3600);
    assert_eq!(v["urls"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["ice_servers"].as_array().map(Vec::len), Some(3), "{v}");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "one upstream call for one device: {seen:?}");
        let (path, auth, body) = &seen[0];
        assert_eq!(
            path,
            "/v1/turn/keys/key-123/credentials/generate-ice-servers"
        );
        assert_eq!(auth, "Bearer api-token-xyz");
        assert_eq!(body, &json!({"ttl": 3600}));
    }
    // Another device: its own call.
    assert_eq!(
        creds_for(&app, &alice, "wimz-2").await["username"],
        "cf-user-2"
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
    // Signaling uses the same provider.
    let secret = app.device(&alice, "wimz-3").await;
    let mut robot = app.robot("wimz-3", &secret).await;
    app.wait_stats("robot online", |s| s["robots_online"] == 1)
        .await;
    let mut phone = app.app(&alice).await;
    send(
        &mut phone,
        json!({"type": "webrtc_request", "device_id": "wimz-3"}),
    )
    .await;
    let c = recv_type(&mut phone, "webrtc_credentials").await;
    assert_eq!(c["credentials"]["username"], "cf-user-3");
    let r = recv_type(&mut robot, "webrtc_request").await;
    assert_eq!(r["turn_credentials"]["username"], "cf-user-3");
}

#[tokio::test]
async fn cloudflare_unreachable_is_503() {
    let port = free_port(); // nothing listens there
    let app = spawn_app_with(move |s| {
        s.turn.provider = TurnProvider::Cloudflare;
        s.turn.api_base = format!("http://127.0.0.1:{port}");
        s.turn.key_id = "k".into();
        s.turn.api_token = Secret::new("api-token-never-shown");
    })
    .await;
    let alice = app.user("alice").await;
    app.device(&alice, "wimz-1").await;
    let r = app
        .get("/api/turn/credentials?device_id=wimz-1", Some(&alice.token))
        .await;
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(!body.contains("api-token-never-shown"), "{body}");
}

// ------------------------------------------------------------ real coturn --

#[tokio::test]
async fn coturn_accepts_relay_credentials_and_refuses_expired_or_wrong_secret() {
    let Some(py) = venv_python() else { return };
    let Some(coturn) = Coturn::start(TURN_SECRET).await else {
        return;
    };
    let app = hmac_relay(TURN_SECRET, coturn.url()).await;
    let alice = app.user("alice").await;
    app.device(&alice, "wimz-1").await;
    let v = creds_for(&app, &alice, "wimz-1").await;
    let (u, c) = (
        v["username"].as_str().unwrap(),
        v["credential"].as_str().unwrap(),
    );
    let (ok, out) = allocate(&py, coturn.port, u, c).await;
    assert!(ok, "coturn refused the relay's credentials: {out}");

    // Expired: the relay's own signing, with an expiry in the past.
    let (u, c) = wimz_relay::turn::hmac::credentials(
        &Secret::new(TURN_SECRET),
        "wimz-1",
        wimz_relay::ids::unix_now() - 60,
    );
    let (ok, out) = allocate(&py, coturn.port, &u, &c).await;
    assert!(
        !ok && out.contains("401"),
        "expired credentials accepted: {out}"
    );

    // A relay configured with the wrong secret.
    let wrong = hmac_relay("not-the-coturn-secret", coturn.url()).await;
    let bob = wrong.user("bob").await;
    wrong.device(&bob, "wimz-1").await;
    let v = creds_for(&wrong, &bob, "wimz-1").await;
    let (ok, out) = allocate(
        &py,
        coturn.port,
        v["username"].as_str().unwrap(),
        v["credential"].as_str().unwrap(),
    )
    .await;
    assert!(
        !ok && out.contains("401"),
        "wrong-secret credentials accepted: {out}"
    );
}

/// Runs a peer script; returns its stdout lines as they come.
fn peer(py: &Path, script: &str, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(py)
        .arg(peers_dir().join(script))
        .args(args)
        .current_dir(peers_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("peer script starts")
}

/// The last JSON line a peer printed, once it exits.
async fn outcome(child: tokio::process::Child, name: &str) -> Value {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{name} peer did not finish"))
        .expect("peer output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("null");
    let v: Value = serde_json::from_str(last).unwrap_or(Value::Null);
    assert_eq!(
        v["ok"],
        true,
        "{name} peer failed: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

#[tokio::test]
async fn two_aiortc_peers_connect_through_coturn_with_relay_signaling_only() {
    let Some(py) = venv_python() else { return };
    let Some(coturn) = Coturn::start(TURN_SECRET).await else {
        return;
    };
    let app = hmac_relay(TURN_SECRET, coturn.url()).await;
    let alice = app.user("alice").await;
    let secret = app.device(&alice, "wimz-e2e").await;

    let mut robot = peer(&py, "robot.py", &[&app.ws_base, "wimz-e2e", &secret]);
    // Wait for the robot peer's socket before the app asks for it.
    let mut lines = BufReader::new(robot.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("robot peer connects")
        .expect("robot stdout");
    assert!(
        ready.as_deref().is_some_and(|l| l.contains("ready")),
        "{ready:?}"
    );
    app.wait_stats("robot online", |s| s["robots_online"] == 1)
        .await;
    let app_peer = peer(&py, "app.py", &[&app.ws_base, &alice.token, "wimz-e2e"]);

    let app_out = outcome(app_peer, "app").await;
    // The robot's remaining stdout (its result line) is read from `lines`.
    let status = tokio::time::timeout(Duration::from_secs(60), robot.wait())
        .await
        .expect("robot peer finishes")
        .unwrap();
    let mut rest = Vec::new();
    while let Ok(Some(l)) = lines.next_line().await {
        rest.push(l);
    }
    let robot_out: Value = rest
        .iter()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    assert!(
        status.success() && robot_out["ok"] == true,
        "robot peer failed: {rest:?}"
    );
    assert_eq!(app_out["session_id"], robot_out["session_id"]);
    // Every nominated pair is relay↔relay: the data went through coturn.
    for out in [&app_out, &robot_out] {
        let pairs = out["pairs"].as_array().expect("pairs");
        assert!(!pairs.is_empty(), "{out}");
        assert!(
            pairs.iter().all(|p| p == &json!(["relay", "relay"])),
            "{out}"
        );
    }
    // The relay recorded the session as relayed.
    let d = DeviceId::parse("wimz-e2e").unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let rows = loop {
        let rows = app
            .handle
            .state
            .store
            .sessions_for_device(&d)
            .await
            .unwrap();
        if !rows.is_empty() || tokio::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].connection_type.as_deref(), Some("relay"));
    assert_eq!(rows[0].close_reason, "closed_by_robot");
}
