//! Commands and REST calls to a robot on another instance: they reach it
//! and its answers come back; a robot that left, or whose instance is gone,
//! is answered `robot_offline` at once, never a timeout.

use super::*;
use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn rest_proxy_reaches_a_robot_on_another_instance() {
    use futures_util::StreamExt;
    let c = cluster(2).await;
    let (u, _, mut robot, _on_b) = robot_on_a_app_on_b(&c, "clproxy", "wimz-cp").await;
    let b = &c.nodes[1];
    let call = b
        .http
        .post(b.url("/api/devices/wimz-cp/robot/missions/start"))
        .bearer_auth(&u.token)
        .json(&json!({"mission": "sit"}));
    let caller = tokio::spawn(async move { call.send().await.unwrap() });
    let req = recv_type(&mut robot, "http_request").await;
    assert_eq!(req["path"], "/missions/start");
    assert_eq!(req["body"]["mission"], "sit");
    send(&mut robot, json!({"type": "http_response", "request_id": req["request_id"], "status": 201, "body": {"started": true}})).await;
    let r = caller.await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["started"], true);

    // The robot leaving fails B's waiting caller at once.
    let call = b
        .http
        .get(b.url("/api/devices/wimz-cp/robot/mode"))
        .bearer_auth(&u.token);
    let caller = tokio::spawn(async move { call.send().await.unwrap().status().as_u16() });
    recv_type(&mut robot, "http_request").await;
    drop(robot.next());
    drop(robot);
    assert_eq!(caller.await.unwrap(), 503);
    b.wait_stats("nothing pending on B", |s| s["proxy_pending"] == 0)
        .await;
}

#[tokio::test]
async fn a_command_on_b_for_a_robot_that_left_a_is_answered_robot_offline() {
    let c = cluster(2).await;
    let (_, secret, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "clgone", "wimz-gone").await;
    let a = &c.nodes[0];

    // 1. The robot closes its socket; once A has let it go the command
    //    follows at once, whether or not B has heard of the disconnect yet.
    robot.close(None).await.unwrap();
    a.wait_stats("the robot gone from A", |s| s["robots_online"] == 0)
        .await;
    command_gets_robot_offline(&mut on_b, "wimz-gone", "c-1").await;

    // 2. B still believes the robot is on A (A's presence key outlived the
    //    robot): the command goes to A, which answers for its robot.
    leave_stale_presence(&c.redis, "wimz-gone", "A").await;
    wait_believed_online(&mut on_b, "wimz-gone").await;
    command_gets_robot_offline(&mut on_b, "wimz-gone", "c-2").await;

    // 3. B believes the robot is on an instance that is gone (killed before
    //    its presence key expired): nobody there can answer, so B does.
    clear_presence(&c.redis, &mut on_b, "wimz-gone").await;
    leave_stale_presence(&c.redis, "wimz-gone", "Z").await;
    wait_believed_online(&mut on_b, "wimz-gone").await;
    command_gets_robot_offline(&mut on_b, "wimz-gone", "c-3").await;

    // 4. The robot is back on A: the next command reaches it, its result
    //    reaches the app on B.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a fresh signature
    let mut robot = a.robot("wimz-gone", &secret).await;
    recv_event(&mut on_b, "robot_connected").await;
    send(
        &mut on_b,
        json!({"type": "command", "device_id": "wimz-gone", "id": "c-4", "command": "sit"}),
    )
    .await;
    let cmd = recv_type(&mut robot, "command").await;
    assert_eq!(cmd["id"], "c-4");
    send(
        &mut robot,
        json!({"type": "command_result", "reply_to": cmd["reply_to"], "id": "c-4", "ok": true}),
    )
    .await;
    assert_eq!(recv_type(&mut on_b, "command_result").await["id"], "c-4");
}

#[tokio::test]
async fn a_rest_call_on_b_for_a_robot_that_left_a_is_503_robot_offline() {
    let c = cluster(2).await;
    let (u, secret, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "clpgone", "wimz-pgone").await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);

    // 1. The robot closes its socket; the call follows once A let it go.
    robot.close(None).await.unwrap();
    a.wait_stats("the robot gone from A", |s| s["robots_online"] == 0)
        .await;
    proxy_call_gets_robot_offline(&c, &u, "wimz-pgone", "step 1").await;

    // 2. B still believes the robot is on A: A answers for its robot.
    leave_stale_presence(&c.redis, "wimz-pgone", "A").await;
    wait_believed_online(&mut on_b, "wimz-pgone").await;
    proxy_call_gets_robot_offline(&c, &u, "wimz-pgone", "step 2").await;

    // 3. B believes the robot is on an instance that is gone: nobody there
    //    can answer, so B does, at once rather than after the proxy timeout.
    clear_presence(&c.redis, &mut on_b, "wimz-pgone").await;
    leave_stale_presence(&c.redis, "wimz-pgone", "Z").await;
    wait_believed_online(&mut on_b, "wimz-pgone").await;
    proxy_call_gets_robot_offline(&c, &u, "wimz-pgone", "step 3").await;

    // 4. The robot is back on A: the next call reaches it.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a fresh signature
    let mut robot = a.robot("wimz-pgone", &secret).await;
    recv_event(&mut on_b, "robot_connected").await;
    let (b2, u2) = (b.http.clone(), u.token.clone());
    let url = b.url("/api/devices/wimz-pgone/robot/mode");
    let caller = tokio::spawn(async move {
        b2.get(url)
            .bearer_auth(u2)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    let req = recv_type(&mut robot, "http_request").await;
    assert_eq!(req["path"], "/mode");
    send(&mut robot, json!({"type": "http_response", "request_id": req["request_id"], "status": 200, "body": {"mode": "idle"}})).await;
    assert_eq!(caller.await.unwrap(), 200);
    for node in &c.nodes {
        node.wait_stats("no REST call left waiting", |s| s["proxy_pending"] == 0)
            .await;
    }
}

/// A command from an app on B, handed to the robot on A, which leaves
/// without answering: A answers `robot_offline` for it on B (the command's
/// id as `ref`); a WebRTC request forwarded the same way is not mistaken
/// for a command.
#[tokio::test]
async fn a_remote_command_the_robot_leaves_unanswered_gets_robot_offline() {
    let c = cluster(2).await;
    let (_, _, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "clleave", "wimz-rlv").await;
    webrtc_session(&mut on_b, &mut robot, "wimz-rlv", "w-1").await;
    send(
        &mut on_b,
        json!({"type": "command", "device_id": "wimz-rlv", "id": "rc-1", "command": "sit"}),
    )
    .await;
    assert_eq!(recv_type(&mut robot, "command").await["id"], "rc-1");
    robot.close(None).await.unwrap();
    let e = recv_type(&mut on_b, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("robot_offline"), Some("rc-1")),
        "{e}"
    );
    // Nothing for the signaling request ("w-1").
    loop {
        let v = tokio::time::timeout(Duration::from_millis(500), recv(&mut on_b)).await;
        let Ok(v) = v else { break };
        assert_ne!(v["type"], "error", "{v}");
    }
}

/// Sends a command with `id` from `app` and expects `robot_offline` for it.
async fn command_gets_robot_offline(app: &mut Ws, device: &str, id: &str) {
    send(
        app,
        json!({"type": "command", "device_id": device, "id": id, "command": "sit"}),
    )
    .await;
    let e = recv_type(app, "error").await;
    assert_eq!(e["code"], "robot_offline", "{e}");
    assert_eq!(e["ref"], id, "the error names the command: {e}");
}

/// A REST proxy call on `app`'s instance; its status and body.
async fn proxy_call(app: &TestApp, u: &User, device: &str) -> (u16, Value) {
    let call = app
        .http
        .get(app.url(&format!("/api/devices/{device}/robot/mode")))
        .bearer_auth(&u.token)
        .send();
    // A hang guard only: a 504 comes after `proxy.timeout_s` and fails below.
    let r = tokio::time::timeout(PATIENCE * 3, call)
        .await
        .expect("the REST call is answered")
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn proxy_call_gets_robot_offline(c: &Cluster, u: &User, device: &str, step: &str) {
    let (status, body) = proxy_call(&c.nodes[1], u, device).await;
    assert_eq!(status, 503, "{step}: robot offline, not a timeout: {body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert_eq!(body["error"]["message"], "robot_offline", "{body}");
    for node in &c.nodes {
        node.wait_stats("no REST call left waiting", |s| s["proxy_pending"] == 0)
            .await;
    }
}
