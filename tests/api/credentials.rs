//! Device credentials are bound to one registration of a device (issue 14,
//! item 1; docs/SECURITY.md "Credentials"): deleting a device or rotating
//! its secret (`POST /api/devices/{id}/secret`) revokes every device token
//! and every signature made with the old secret, at once, everywhere a
//! device credential is accepted — on one instance and across a cluster.

use crate::cluster::cluster;
use crate::helpers::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A device token from `POST /api/auth/device`, signed at `ts`.
async fn device_token_at(c: &RelayClient, device: &str, secret: &str, ts: i64) -> String {
    let body = json!({"device_id": device, "timestamp": ts, "signature": sign(secret, device, ts)});
    let r = c.post_json("/api/auth/device", &body, None).await;
    assert_eq!(r.status(), 200, "device token for {device}");
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

/// The HTTP status of `POST /api/auth/device` signed with `secret` at `ts`.
async fn device_login_status(c: &RelayClient, device: &str, secret: &str, ts: i64) -> u16 {
    let body = json!({"device_id": device, "timestamp": ts, "signature": sign(secret, device, ts)});
    c.post_json("/api/auth/device", &body, None)
        .await
        .status()
        .as_u16()
}

/// Opens `/ws/device` with a bearer token: the socket, or the refusal's HTTP status.
async fn robot_with_token(c: &RelayClient, token: &str) -> Result<Ws, u16> {
    let mut req = format!("{}/ws/device", c.ws_base)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    handshake(req).await
}

/// Opens `/ws/device` with signature headers made at `ts` (distinct
/// timestamps keep the replay guard out of what a test proves).
async fn robot_signed_at(c: &RelayClient, device: &str, secret: &str, ts: i64) -> Result<Ws, u16> {
    let mut req = format!("{}/ws/device", c.ws_base)
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("x-device-id", device.parse().unwrap());
    h.insert("x-timestamp", ts.to_string().parse().unwrap());
    h.insert("x-signature", sign(secret, device, ts).parse().unwrap());
    handshake(req).await
}

async fn handshake(
    req: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> Result<Ws, u16> {
    use tokio_tungstenite::tungstenite::Error;
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("handshake failed without an HTTP answer: {e}"),
    }
}

/// Status of `GET /webrtc/config` and `GET /api/turn/credentials` with `token`.
async fn device_http_statuses(c: &RelayClient, device: &str, token: &str) -> (u16, u16) {
    let config = c.get("/webrtc/config", Some(token)).await.status().as_u16();
    let turn = c
        .get(
            &format!("/api/turn/credentials?device_id={device}"),
            Some(token),
        )
        .await
        .status()
        .as_u16();
    (config, turn)
}

/// Rotates `device`'s secret as `user`; the new secret.
async fn rotate(c: &RelayClient, user: &User, device: &str) -> String {
    let r = c
        .post_json(
            &format!("/api/devices/{device}/secret"),
            &json!({}),
            Some(&user.token),
        )
        .await;
    assert_eq!(r.status(), 200, "rotate {device}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["device_id"], device);
    v["device_secret"].as_str().unwrap().to_string()
}

/// The scenario, with Bob's token taken on `bob_side` and used on
/// every relay in `use_on`, the deletion and Alice's registration made on
/// `other_side`.
async fn bobs_token_outlives_nothing(
    bob_side: &RelayClient,
    other_side: &RelayClient,
    use_on: &[&RelayClient],
) {
    let bob = bob_side.user("bob").await;
    let alice = bob_side.user("alice").await;
    let now = wimz_relay::ids::unix_now();
    let bob_secret = bob_side.device(&bob, "robot-sn-777").await;
    let bob_token = device_token_at(bob_side, "robot-sn-777", &bob_secret, now).await;
    // The token works while Bob's registration stands.
    let ws = robot_with_token(bob_side, &bob_token)
        .await
        .expect("Bob's token opens /ws/device while his device exists");
    drop(ws);

    let r = other_side
        .delete("/api/devices/robot-sn-777", Some(&bob.token))
        .await;
    assert_eq!(r.status(), 204);
    let alice_secret = other_side.device(&alice, "robot-sn-777").await;

    for (i, c) in use_on.iter().enumerate() {
        assert_eq!(
            robot_with_token(c, &bob_token).await.err(),
            Some(401),
            "Bob's old token must not open /ws/device for Alice's robot-sn-777 (relay {i})"
        );
        assert_eq!(
            device_http_statuses(c, "robot-sn-777", &bob_token).await,
            (401, 401),
            "Bob's old token must not get ICE servers or TURN credentials (relay {i})"
        );
        // A signature with Bob's old secret is refused too.
        assert_eq!(
            device_login_status(c, "robot-sn-777", &bob_secret, now - 10 - i as i64).await,
            401
        );
        // Alice's own credentials work.
        let mut robot = robot_signed_at(c, "robot-sn-777", &alice_secret, now - 20 - i as i64)
            .await
            .expect("Alice's robot connects");
        send(&mut robot, json!({"type": "ping"})).await;
        recv_type(&mut robot, "pong").await;
        let alice_token =
            device_token_at(c, "robot-sn-777", &alice_secret, now - 30 - i as i64).await;
        assert_eq!(
            device_http_statuses(c, "robot-sn-777", &alice_token).await,
            (200, 200)
        );
    }
}

#[tokio::test]
async fn a_deleted_devices_token_does_not_open_its_next_registration() {
    let app = spawn_app().await;
    bobs_token_outlives_nothing(&app, &app, &[&app]).await;
}

#[tokio::test]
async fn a_deleted_devices_token_does_not_open_its_next_registration_postgres() {
    let Some(app) = spawn_app_pg_with(|_| {}).await else {
        return;
    };
    bobs_token_outlives_nothing(&app, &app, &[&app]).await;
}

#[tokio::test]
async fn a_deleted_devices_token_is_refused_on_every_instance() {
    let c = cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    bobs_token_outlives_nothing(a, b, &[a, b]).await;
}

/// Rotation with the robot on `robot_side` and the rotation made on `rotate_side`.
async fn rotation_revokes_the_old_secret(robot_side: &RelayClient, rotate_side: &RelayClient) {
    let owner = robot_side.user("rotor").await;
    let stranger = robot_side.user("stranger").await;
    let now = wimz_relay::ids::unix_now();
    let old = robot_side.device(&owner, "wimz-rot").await;
    let old_token = device_token_at(robot_side, "wimz-rot", &old, now).await;
    let mut robot = robot_signed_at(robot_side, "wimz-rot", &old, now - 1)
        .await
        .expect("the robot connects with its first secret");
    send(&mut robot, json!({"type": "ping"})).await;
    recv_type(&mut robot, "pong").await;
    let (mut app, _) = robot_side.subscribed_app(&owner, "wimz-rot").await;

    // Only the owner rotates; a stranger and a missing device both get 404.
    for (who, device) in [(&stranger, "wimz-rot"), (&owner, "wimz-nope")] {
        let r = rotate_side
            .post_json(
                &format!("/api/devices/{device}/secret"),
                &json!({}),
                Some(&who.token),
            )
            .await;
        assert_eq!(r.status(), 404, "rotate {device} as {}", who.name);
    }
    assert_eq!(
        rotate_side
            .post_json("/api/devices/wimz-rot/secret", &json!({}), None)
            .await
            .status(),
        401
    );

    let new = rotate(rotate_side, &owner, "wimz-rot").await;
    assert_ne!(new, old);
    assert_eq!(new.len(), 64);
    // The robot connected with the old secret is closed at once, with 4003.
    assert_eq!(recv_close(&mut robot).await, Some(4003));
    let gone = recv_event(&mut app, "robot_disconnected").await;
    assert_eq!(gone["reason"], "credentials_revoked");

    for c in [robot_side, rotate_side] {
        assert_eq!(robot_with_token(c, &old_token).await.err(), Some(401));
        assert_eq!(
            device_http_statuses(c, "wimz-rot", &old_token).await,
            (401, 401)
        );
        assert_eq!(
            robot_signed_at(c, "wimz-rot", &old, now - 5).await.err(),
            Some(401)
        );
        assert_eq!(device_login_status(c, "wimz-rot", &old, now - 6).await, 401);
    }
    // The new secret works: a signature, and a token made with it.
    let mut robot = robot_signed_at(robot_side, "wimz-rot", &new, now - 7)
        .await
        .expect("the new secret opens /ws/device");
    send(&mut robot, json!({"type": "ping"})).await;
    recv_type(&mut robot, "pong").await;
    recv_event(&mut app, "robot_connected").await;
    let new_token = device_token_at(rotate_side, "wimz-rot", &new, now - 8).await;
    assert_eq!(
        device_http_statuses(robot_side, "wimz-rot", &new_token).await,
        (200, 200)
    );
    // A robot on the new secret is not closed by the rotation's notice
    // (which may come late on another instance) — it still answers.
    send(&mut robot, json!({"type": "ping"})).await;
    recv_type(&mut robot, "pong").await;
    drop(robot);
    // And its token opens the socket.
    let mut robot = robot_with_token(robot_side, &new_token)
        .await
        .expect("the new secret's token opens /ws/device");
    send(&mut robot, json!({"type": "ping"})).await;
    recv_type(&mut robot, "pong").await;
}

#[tokio::test]
async fn rotating_a_secret_revokes_the_old_one_and_closes_its_robot() {
    let app = spawn_app().await;
    rotation_revokes_the_old_secret(&app, &app).await;
}

#[tokio::test]
async fn rotating_on_b_closes_the_robot_on_a_and_revokes_everywhere() {
    let c = cluster(2).await;
    rotation_revokes_the_old_secret(&c.nodes[0], &c.nodes[1]).await;
}
