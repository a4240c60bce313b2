//! TURN credentials (PROTOCOL.md §1, §4): the HTTP endpoints with their
//! access rules, the `none` / `static` / `hmac` shapes, and the `cloudflare`
//! provider against a local server answering like Cloudflare's API (request
//! shape and per-device caching asserted). The real-coturn and real-peer
//! proofs are in `peers.rs`.

use crate::helpers::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use wimz_relay::config::TurnProvider;
use wimz_relay::secret::Secret;

// ---------------------------------------------------------------- helpers --

/// A loopback port free for both UDP and TCP right now.
pub(crate) fn free_udp_tcp_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A relay whose `hmac` provider points at `turn_url` with `secret`.
pub(crate) async fn hmac_relay(secret: &str, turn_url: String) -> TestApp {
    let secret = secret.to_string();
    spawn_app_with(move |s| {
        s.turn.provider = TurnProvider::Hmac;
        s.turn.secret = Secret::new(secret);
        s.turn.urls = vec![turn_url];
        s.turn.stun_urls = vec![];
    })
    .await
}

pub(crate) async fn creds_for(app: &TestApp, user: &User, device: &str) -> Value {
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
    let port = free_udp_tcp_port(); // nothing listens there
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

#[tokio::test]
async fn cloudflare_credentials_are_refreshed_before_they_expire() {
    let (port, seen) = fake_cloudflare();
    // A TTL this short only in tests (the config loader demands >= 60 s):
    // cached answers are reused while more than half the TTL remains.
    let app = spawn_app_with(move |s| {
        s.turn.provider = TurnProvider::Cloudflare;
        s.turn.api_base = format!("http://127.0.0.1:{port}");
        s.turn.key_id = "k".into();
        s.turn.api_token = Secret::new("t");
        s.turn.ttl_s = 4;
    })
    .await;
    let alice = app.user("alice").await;
    app.device(&alice, "wimz-1").await;
    assert_eq!(
        creds_for(&app, &alice, "wimz-1").await["username"],
        "cf-user-1"
    );
    assert_eq!(
        creds_for(&app, &alice, "wimz-1").await["username"],
        "cf-user-1"
    );
    // Past half the TTL (whole seconds): the next request refreshes.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let v = creds_for(&app, &alice, "wimz-1").await;
    assert_eq!(v["username"], "cf-user-2");
    assert!(v["expires_at"].as_i64().unwrap() > wimz_relay::ids::unix_now());
    assert_eq!(seen.lock().unwrap().len(), 2);
}
