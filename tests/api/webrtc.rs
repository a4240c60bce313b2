//! WebRTC signaling (PROTOCOL.md §3.5) over real sockets: the whole flow
//! routed end to end, bystanders (same user and another user) that receive
//! nothing and cannot inject, ICE restart, hostile stats. Session endings
//! (disconnects, timeouts, limits, deletion) are in `webrtc_lifecycle.rs`.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;
use wimz_relay::ids::DeviceId;
use wimz_relay::store::SessionRecord;

const SECRET: &str = "turn-secret-for-tests";

/// A relay with the `hmac` provider and the given WebRTC timers.
pub(crate) async fn relay(setup_s: f64, idle_s: f64, max: usize) -> TestApp {
    spawn_app_with(|s| {
        s.turn.provider = wimz_relay::config::TurnProvider::Hmac;
        s.turn.secret = wimz_relay::secret::Secret::new(SECRET);
        s.turn.urls = vec!["turn:127.0.0.1:3478?transport=udp".into()];
        s.webrtc.setup_timeout_s = setup_s;
        s.webrtc.idle_timeout_s = idle_s;
        s.webrtc.max_sessions_per_device = max;
    })
    .await
}

/// The owner, their robot (online) and one app socket.
pub(crate) struct Scene {
    pub app: TestApp,
    pub user: User,
    pub robot: Ws,
    pub phone: Ws,
}

pub(crate) async fn scene(app: TestApp, device: &str) -> Scene {
    let user = app.user("alice").await;
    let secret = app.device(&user, device).await;
    let robot = app.robot(device, &secret).await;
    app.wait_stats("robot online", |s| s["robots_online"] == 1)
        .await;
    let phone = app.app(&user).await;
    Scene {
        app,
        user,
        robot,
        phone,
    }
}

/// app → `webrtc_request`; returns (robot's request, app's credentials).
pub(crate) async fn request(phone: &mut Ws, robot: &mut Ws, device: &str) -> (Value, Value) {
    send(
        phone,
        json!({"type": "webrtc_request", "device_id": device, "id": "r1"}),
    )
    .await;
    let creds = recv_type(phone, "webrtc_credentials").await;
    let req = recv_type(robot, "webrtc_request").await;
    (req, creds)
}

/// robot → offer → app, app → answer → robot (setup complete).
pub(crate) async fn offer_answer(phone: &mut Ws, robot: &mut Ws, session: &str) {
    send(
        robot,
        json!({"type":"webrtc_offer","session_id":session,"sdp":"o"}),
    )
    .await;
    recv_type(phone, "webrtc_offer").await;
    send(
        phone,
        json!({"type":"webrtc_answer","session_id":session,"sdp":"a"}),
    )
    .await;
    recv_type(robot, "webrtc_answer").await;
}

pub(crate) fn sid(v: &Value) -> String {
    v["session_id"].as_str().expect("session_id").to_string()
}

pub(crate) async fn history(app: &TestApp, device: &str) -> Vec<SessionRecord> {
    let d = DeviceId::parse(device).expect("valid id");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let rows = app
            .handle
            .state
            .store
            .sessions_for_device(&d)
            .await
            .unwrap();
        if !rows.is_empty() || tokio::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn whole_flow_routes_each_step_to_the_other_end_only() {
    let Scene {
        app,
        user,
        mut robot,
        mut phone,
    } = scene(relay(30.0, 300.0, 4).await, "wimz-1").await;
    let (req, creds) = request(&mut phone, &mut robot, "wimz-1").await;
    let s = sid(&req);
    assert_eq!(sid(&creds), s);
    assert_eq!(req["from_user"], user.id.as_str());
    assert_eq!(creds["device_id"], "wimz-1");
    let tc = &req["turn_credentials"];
    assert!(
        tc["username"].as_str().unwrap().ends_with(":wimz-1"),
        "{tc}"
    );
    assert_eq!(tc["urls"][0], "turn:127.0.0.1:3478?transport=udp");
    assert_eq!(
        creds["credentials"]["ice_servers"][1]["username"],
        tc["username"]
    );
    app.wait_stats("one session", |s| s["webrtc_sessions_active"] == 1)
        .await;

    // Offer: robot → app, raw, unknown fields kept.
    let offer = format!(
        r#"{{"type":"webrtc_offer","session_id":"{s}","sdp":"v=0 offer","x_extra":[1,2]}}"#
    );
    send_text(&mut robot, &offer).await;
    let got = recv_type(&mut phone, "webrtc_offer").await;
    assert_eq!(got, serde_json::from_str::<Value>(&offer).unwrap());
    // Answer: app → robot.
    send(
        &mut phone,
        json!({"type":"webrtc_answer","session_id":s,"sdp":"v=0 answer"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut robot, "webrtc_answer").await["sdp"],
        "v=0 answer"
    );
    // ICE both ways.
    send(
        &mut robot,
        json!({"type":"webrtc_ice","session_id":s,"candidate":{"candidate":"r"}}),
    )
    .await;
    assert_eq!(
        recv_type(&mut phone, "webrtc_ice").await["candidate"]["candidate"],
        "r"
    );
    send(
        &mut phone,
        json!({"type":"webrtc_ice","session_id":s,"candidate":{"candidate":"a"}}),
    )
    .await;
    assert_eq!(
        recv_type(&mut robot, "webrtc_ice").await["candidate"]["candidate"],
        "a"
    );
    // Stats: recorded, not forwarded.
    send(
        &mut phone,
        json!({"type":"webrtc_stats","session_id":s,"connection_type":"relay","rtt_ms":42.5}),
    )
    .await;
    assert_silent(&mut robot, Duration::from_millis(200)).await;
    // Close from the app: the robot hears it, the session ends.
    send(
        &mut phone,
        json!({"type":"webrtc_close","session_id":s,"reason":"user_hangup"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut robot, "webrtc_close").await["reason"],
        "user_hangup"
    );
    app.wait_stats("no session", |s| s["webrtc_sessions_active"] == 0)
        .await;

    let rows = history(&app, "wimz-1").await;
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.session_id, s);
    assert_eq!(r.user_id, user.id);
    assert_eq!(r.connection_type.as_deref(), Some("relay"));
    assert_eq!(r.rtt_ms, Some(42.5));
    assert_eq!(r.ice_restarts, 0);
    assert_eq!(r.close_reason, "closed_by_app");
    assert!(r.duration_ms >= 0 && r.ended_at >= r.started_at);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let value = |name: &str| -> Option<u64> {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("wimz_{name}{{")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    assert_eq!(value("webrtc_relay_sessions_total"), Some(1), "{metrics}");
    assert_eq!(value("webrtc_direct_sessions_total"), Some(0), "{metrics}");
    assert_eq!(value("webrtc_sessions_total"), Some(1), "{metrics}");
}

#[tokio::test]
async fn bystanders_receive_nothing_and_cannot_inject() {
    let Scene {
        app,
        user,
        mut robot,
        mut phone,
    } = scene(relay(30.0, 300.0, 4).await, "wimz-1").await;
    let mut twin = app.app(&user).await; // same user, other socket
    let bob = app.user("bob").await;
    let mut stranger = app.app(&bob).await;
    let (req, _) = request(&mut phone, &mut robot, "wimz-1").await;
    let s = sid(&req);

    send(
        &mut robot,
        json!({"type":"webrtc_offer","session_id":s,"sdp":"o"}),
    )
    .await;
    recv_type(&mut phone, "webrtc_offer").await;
    for ws in [&mut twin, &mut stranger] {
        for ty in [
            "webrtc_answer",
            "webrtc_ice",
            "webrtc_stats",
            "webrtc_close",
        ] {
            send(
                ws,
                json!({"type":ty,"session_id":s,"sdp":"evil","candidate":{},"id":ty}),
            )
            .await;
            let e = recv_type(ws, "error").await;
            assert_eq!(e["code"], "unknown_session", "{ty}: {e}");
            assert_eq!(e["ref"], ty);
        }
        // A restart of someone else's session is refused too.
        send(
            ws,
            json!({"type":"webrtc_request","device_id":"wimz-1","session_id":s,"ice_restart":true}),
        )
        .await;
        let e = recv_type(ws, "error").await;
        assert!(
            e["code"] == "unknown_session" || e["code"] == "not_owner",
            "{e}"
        );
    }
    assert_silent(&mut robot, Duration::from_millis(300)).await;
    assert_silent(&mut twin, Duration::from_millis(50)).await;
    assert_silent(&mut stranger, Duration::from_millis(50)).await;
    // The session survived: the real app still talks to the robot.
    send(
        &mut phone,
        json!({"type":"webrtc_answer","session_id":s,"sdp":"real"}),
    )
    .await;
    assert_eq!(recv_type(&mut robot, "webrtc_answer").await["sdp"], "real");
    // The stranger cannot even start a session on the device.
    send(
        &mut stranger,
        json!({"type":"webrtc_request","device_id":"wimz-1"}),
    )
    .await;
    assert_eq!(recv_type(&mut stranger, "error").await["code"], "not_owner");
    // A robot cannot inject into another device's session.
    let secret2 = app.device(&user, "wimz-2").await;
    let mut robot2 = app.robot("wimz-2", &secret2).await;
    send(
        &mut robot2,
        json!({"type":"webrtc_offer","session_id":s,"sdp":"evil"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut robot2, "error").await["code"],
        "unknown_session"
    );
    assert_silent(&mut phone, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn ice_restart_keeps_the_session_with_fresh_credentials() {
    let Scene {
        app,
        mut robot,
        mut phone,
        ..
    } = scene(relay(30.0, 300.0, 4).await, "wimz-1").await;
    let (req, _) = request(&mut phone, &mut robot, "wimz-1").await;
    let s = sid(&req);
    offer_answer(&mut phone, &mut robot, &s).await;
    // Credentials are per second; make sure the fresh ones differ.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(
        &mut phone,
        json!({"type":"webrtc_request","device_id":"wimz-1","session_id":s,"ice_restart":true}),
    )
    .await;
    let creds = recv_type(&mut phone, "webrtc_credentials").await;
    let again = recv_type(&mut robot, "webrtc_request").await;
    assert_eq!(sid(&creds), s);
    assert_eq!(sid(&again), s);
    assert_eq!(again["ice_restart"], true);
    assert_ne!(
        again["turn_credentials"]["username"],
        req["turn_credentials"]["username"]
    );
    assert_eq!(
        again["turn_credentials"]["username"],
        creds["credentials"]["username"]
    );
    // The robot's new offer reaches the same app.
    send(
        &mut robot,
        json!({"type":"webrtc_offer","session_id":s,"sdp":"o2"}),
    )
    .await;
    assert_eq!(recv_type(&mut phone, "webrtc_offer").await["sdp"], "o2");
    // A restart naming an unknown session.
    send(&mut phone, json!({"type":"webrtc_request","device_id":"wimz-1","session_id":"s-nope","ice_restart":true,"id":1})).await;
    assert_eq!(
        recv_type(&mut phone, "error").await["code"],
        "unknown_session"
    );
    send(&mut phone, json!({"type":"webrtc_close","session_id":s})).await;
    recv_type(&mut robot, "webrtc_close").await;
    assert_eq!(history(&app, "wimz-1").await[0].ice_restarts, 1);
}

#[tokio::test]
async fn hostile_stats_get_a_clear_error() {
    let Scene {
        app: _relay, // kept alive for the whole test
        mut robot,
        mut phone,
        ..
    } = scene(relay(30.0, 300.0, 4).await, "wimz-1").await;
    let (req, _) = request(&mut phone, &mut robot, "wimz-1").await;
    let s = sid(&req);
    send(
        &mut phone,
        json!({"type":"webrtc_stats","session_id":s,"connection_type":"carrier-pigeon"}),
    )
    .await;
    assert_eq!(recv_type(&mut phone, "error").await["code"], "bad_message");
    send(
        &mut phone,
        json!({"type":"webrtc_stats","session_id":s,"rtt_ms":-1}),
    )
    .await;
    assert_eq!(recv_type(&mut phone, "error").await["code"], "bad_message");
    send(&mut phone, json!({"type":"webrtc_offer","session_id":s})).await;
    assert_eq!(recv_type(&mut phone, "error").await["code"], "unsupported");
    send(&mut phone, json!({"type":"webrtc_answer"})).await;
    assert_eq!(recv_type(&mut phone, "error").await["code"], "bad_message");
    send(
        &mut phone,
        json!({"type":"webrtc_request","device_id":"wimz-1","ice_restart":true}),
    )
    .await;
    assert_eq!(recv_type(&mut phone, "error").await["code"], "bad_message");
}

#[tokio::test]
async fn session_history_on_postgres() {
    let Some(app) = spawn_app_pg_with(|s| {
        s.turn.provider = wimz_relay::config::TurnProvider::Hmac;
        s.turn.secret = wimz_relay::secret::Secret::new(SECRET);
        s.turn.urls = vec!["turn:127.0.0.1:3478?transport=udp".into()];
    })
    .await
    else {
        return;
    };
    let Scene {
        app,
        mut robot,
        mut phone,
        ..
    } = scene(app, "wimz-pg").await;
    let (req, _) = request(&mut phone, &mut robot, "wimz-pg").await;
    let s = sid(&req);
    send(
        &mut robot,
        json!({"type":"webrtc_stats","session_id":s,"connection_type":"direct","rtt_ms":7.25}),
    )
    .await;
    send(
        &mut robot,
        json!({"type":"webrtc_close","session_id":s,"reason":"bye"}),
    )
    .await;
    recv_type(&mut phone, "webrtc_close").await;
    let rows = history(&app, "wimz-pg").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].session_id, s);
    assert_eq!(rows[0].connection_type.as_deref(), Some("direct"));
    assert_eq!(rows[0].rtt_ms, Some(7.25));
    assert_eq!(rows[0].close_reason, "closed_by_robot");
}
