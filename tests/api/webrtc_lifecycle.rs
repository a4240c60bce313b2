//! How WebRTC sessions end (PROTOCOL.md §3.5): app or robot disconnect
//! (including a replaced robot connection), setup and idle timeouts, the
//! per-device limit, device deletion, and late messages after the end —
//! each with the `webrtc_close` reason the surviving ends hear and the
//! session-history row.

use crate::helpers::*;
use crate::webrtc::{history, offer_answer, relay, request, scene, sid, Scene};
use serde_json::json;
use std::time::Duration;
use wimz_relay::ids::DeviceId;

#[tokio::test]
async fn app_disconnect_closes_the_session_for_the_robot() {
    let Scene {
        app,
        mut robot,
        mut phone,
        ..
    } = scene(relay(30.0, 300.0, 4).await, "wimz-1").await;
    let (req, _) = request(&mut phone, &mut robot, "wimz-1").await;
    drop(phone);
    let c = recv_type(&mut robot, "webrtc_close").await;
    assert_eq!(c["session_id"], req["session_id"]);
    assert_eq!(c["reason"], "app_disconnected");
    app.wait_stats("no session", |s| s["webrtc_sessions_active"] == 0)
        .await;
    assert_eq!(
        history(&app, "wimz-1").await[0].close_reason,
        "app_disconnected"
    );
}

#[tokio::test]
async fn robot_disconnect_closes_the_session_for_the_app() {
    let Scene {
        app,
        mut robot,
        mut phone,
        ..
    } = scene(relay(30.0, 300.0, 4).await, "wimz-1").await;
    let (req, _) = request(&mut phone, &mut robot, "wimz-1").await;
    drop(robot);
    let c = recv_type(&mut phone, "webrtc_close").await;
    assert_eq!(c["session_id"], req["session_id"]);
    assert_eq!(c["reason"], "robot_disconnected");
    app.wait_stats("no session", |s| s["webrtc_sessions_active"] == 0)
        .await;
    // Late messages after close: unknown_session, nothing else.
    send(
        &mut phone,
        json!({"type":"webrtc_answer","session_id":req["session_id"],"sdp":"late","id":7}),
    )
    .await;
    let e = recv_type(&mut phone, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_i64()),
        (Some("unknown_session"), Some(7))
    );
    // And a new request finds the robot offline.
    send(
        &mut phone,
        json!({"type":"webrtc_request","device_id":"wimz-1","id":"again"}),
    )
    .await;
    let e = recv_type(&mut phone, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("robot_offline"), Some("again"))
    );
}

#[tokio::test]
async fn setup_timeout_closes_both_ends() {
    let Scene {
        app,
        mut robot,
        mut phone,
        ..
    } = scene(relay(0.4, 300.0, 4).await, "wimz-1").await;
    let (req, _) = request(&mut phone, &mut robot, "wimz-1").await;
    let s = sid(&req);
    send(
        &mut robot,
        json!({"type":"webrtc_offer","session_id":s,"sdp":"o"}),
    )
    .await;
    recv_type(&mut phone, "webrtc_offer").await;
    // No answer: both ends are told.
    assert_eq!(
        recv_type(&mut phone, "webrtc_close").await["reason"],
        "timeout"
    );
    assert_eq!(
        recv_type(&mut robot, "webrtc_close").await["reason"],
        "timeout"
    );
    assert_eq!(history(&app, "wimz-1").await[0].close_reason, "timeout");
    // Late messages from either end.
    send(
        &mut robot,
        json!({"type":"webrtc_ice","session_id":s,"candidate":{}}),
    )
    .await;
    assert_eq!(
        recv_type(&mut robot, "error").await["code"],
        "unknown_session"
    );
    send(&mut phone, json!({"type":"webrtc_close","session_id":s})).await;
    assert_eq!(
        recv_type(&mut phone, "error").await["code"],
        "unknown_session"
    );
}

#[tokio::test]
async fn completed_setup_survives_the_setup_timeout_but_not_idleness() {
    let Scene {
        app,
        mut robot,
        mut phone,
        ..
    } = scene(relay(0.3, 1.2, 4).await, "wimz-1").await;
    let (req, _) = request(&mut phone, &mut robot, "wimz-1").await;
    let s = sid(&req);
    offer_answer(&mut phone, &mut robot, &s).await;
    // Past the setup timeout, still open: stats keep it alive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(
        &mut robot,
        json!({"type":"webrtc_stats","session_id":s,"connection_type":"direct"}),
    )
    .await;
    assert_silent(&mut phone, Duration::from_millis(100)).await;
    // A renegotiation offer long after setup gets its own setup window.
    send(
        &mut robot,
        json!({"type":"webrtc_offer","session_id":s,"sdp":"o2"}),
    )
    .await;
    assert_eq!(recv(&mut phone).await["sdp"], "o2");
    send(
        &mut phone,
        json!({"type":"webrtc_answer","session_id":s,"sdp":"a2"}),
    )
    .await;
    assert_eq!(recv(&mut robot).await["sdp"], "a2");
    assert_silent(&mut phone, Duration::from_millis(400)).await;
    // Then silence: idle timeout.
    assert_eq!(
        recv_type(&mut phone, "webrtc_close").await["reason"],
        "idle_timeout"
    );
    assert_eq!(
        recv_type(&mut robot, "webrtc_close").await["reason"],
        "idle_timeout"
    );
    let rows = history(&app, "wimz-1").await;
    assert_eq!(rows[0].close_reason, "idle_timeout");
    assert_eq!(rows[0].connection_type.as_deref(), Some("direct"));
}

#[tokio::test]
async fn session_limit_per_device() {
    let Scene {
        app,
        user,
        mut robot,
        mut phone,
    } = scene(relay(30.0, 300.0, 2).await, "wimz-1").await;
    let (a, _) = request(&mut phone, &mut robot, "wimz-1").await;
    let mut other = app.app(&user).await;
    request(&mut other, &mut robot, "wimz-1").await;
    send(
        &mut phone,
        json!({"type":"webrtc_request","device_id":"wimz-1","id":"third"}),
    )
    .await;
    let e = recv_type(&mut phone, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("session_limit"), Some("third"))
    );
    assert_silent(&mut robot, Duration::from_millis(200)).await;
    // Closing one frees a slot.
    send(
        &mut robot,
        json!({"type":"webrtc_close","session_id":a["session_id"],"reason":"bye"}),
    )
    .await;
    assert_eq!(recv_type(&mut phone, "webrtc_close").await["reason"], "bye");
    request(&mut phone, &mut robot, "wimz-1").await;
    assert_eq!(
        history(&app, "wimz-1").await[0].close_reason,
        "closed_by_robot"
    );
}

#[tokio::test]
async fn deleting_the_device_ends_its_sessions() {
    let Scene {
        app,
        user,
        mut robot,
        mut phone,
    } = scene(relay(30.0, 300.0, 4).await, "wimz-1").await;
    request(&mut phone, &mut robot, "wimz-1").await;
    let r = app
        .http
        .delete(app.url("/api/devices/wimz-1"))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        recv_type(&mut phone, "webrtc_close").await["reason"],
        "device_deleted"
    );
    app.wait_stats("no session", |s| s["webrtc_sessions_active"] == 0)
        .await;
}

#[tokio::test]
async fn session_limit_holds_under_a_burst() {
    let Scene {
        app: _relay, // kept alive for the whole test
        mut robot,
        mut phone,
        ..
    } = scene(relay(30.0, 300.0, 2).await, "wimz-1").await;
    for i in 0..3 {
        send(
            &mut phone,
            json!({"type":"webrtc_request","device_id":"wimz-1","id":i}),
        )
        .await;
    }
    let (mut creds, mut limited) = (0, 0);
    for _ in 0..3 {
        let v = recv(&mut phone).await;
        match (v["type"].as_str(), v["code"].as_str()) {
            (Some("webrtc_credentials"), _) => creds += 1,
            (Some("error"), Some("session_limit")) => limited += 1,
            _ => panic!("unexpected {v}"),
        }
    }
    assert_eq!((creds, limited), (2, 1));
    recv_type(&mut robot, "webrtc_request").await;
    recv_type(&mut robot, "webrtc_request").await;
    assert_silent(&mut robot, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_replaced_robot_connection_ends_its_sessions() {
    let Scene {
        app,
        mut robot,
        mut phone,
        ..
    } = scene(relay(30.0, 300.0, 4).await, "wimz-1").await;
    let (req, _) = request(&mut phone, &mut robot, "wimz-1").await;
    let secret = app
        .handle
        .state
        .store
        .device_secret(&DeviceId::parse("wimz-1").unwrap())
        .await;
    let secret = secret.unwrap().expect("device exists");
    // A second robot connection replaces the first (4001): its sessions end.
    // Distinct timestamps: the same signature is never accepted twice.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut robot2 = app.robot("wimz-1", secret.expose()).await;
    let c = recv_type(&mut phone, "webrtc_close").await;
    assert_eq!(
        (&c["session_id"], c["reason"].as_str()),
        (&req["session_id"], Some("robot_disconnected"))
    );
    // The new connection is no end of the old session...
    send(
        &mut robot2,
        json!({"type":"webrtc_offer","session_id":req["session_id"],"sdp":"o"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut robot2, "error").await["code"],
        "unknown_session"
    );
    // ...but serves new ones.
    let (req2, _) = request(&mut phone, &mut robot2, "wimz-1").await;
    assert_ne!(req2["session_id"], req["session_id"]);
}
