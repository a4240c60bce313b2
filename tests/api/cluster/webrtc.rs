//! WebRTC signaling between a robot and an app on different instances, the
//! cluster-wide session limit, and what signaling does while Redis (the
//! only way between instances) is down.

use super::*;
use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn webrtc_signaling_between_a_robot_on_a_and_an_app_on_b() {
    let c = cluster(2).await;
    let (u, _, mut robot, mut app) = robot_on_a_app_on_b(&c, "clrtc", "wimz-rtc").await;
    let b = &c.nodes[1];

    send(
        &mut app,
        json!({"type": "webrtc_request", "device_id": "wimz-rtc", "id": "w1"}),
    )
    .await;
    let req = recv_type(&mut robot, "webrtc_request").await;
    let creds = recv_type(&mut app, "webrtc_credentials").await;
    let sid = creds["session_id"].clone();
    assert_eq!(req["session_id"], sid);
    assert_eq!(req["from_user"], u.id.as_str());
    send(
        &mut robot,
        json!({"type": "webrtc_offer", "session_id": sid, "sdp": "v=0 offer"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut app, "webrtc_offer").await["sdp"],
        "v=0 offer"
    );
    send(
        &mut app,
        json!({"type": "webrtc_answer", "session_id": sid, "sdp": "v=0 answer"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut robot, "webrtc_answer").await["sdp"],
        "v=0 answer"
    );
    send(
        &mut robot,
        json!({"type": "webrtc_ice", "session_id": sid, "candidate": {"c": "r"}}),
    )
    .await;
    assert_eq!(
        recv_type(&mut app, "webrtc_ice").await["candidate"]["c"],
        "r"
    );
    send(
        &mut app,
        json!({"type": "webrtc_ice", "session_id": sid, "candidate": {"c": "a"}}),
    )
    .await;
    assert_eq!(
        recv_type(&mut robot, "webrtc_ice").await["candidate"]["c"],
        "a"
    );
    // Stats from the robot are recorded by the session's instance, not forwarded.
    send(&mut robot, json!({"type": "webrtc_stats", "session_id": sid, "connection_type": "relay", "rtt_ms": 12.5})).await;
    // The app leaves: the robot on A hears it.
    drop(app);
    let close = recv_type(&mut robot, "webrtc_close").await;
    assert_eq!(close["session_id"], sid);
    assert_eq!(close["reason"], "app_disconnected");

    // A new session; then the robot leaves: the app on B hears it.
    let (mut app, _) = b.subscribed_app(&u, "wimz-rtc").await;
    send(
        &mut app,
        json!({"type": "webrtc_request", "device_id": "wimz-rtc"}),
    )
    .await;
    recv_type(&mut robot, "webrtc_request").await;
    let sid2 = recv_type(&mut app, "webrtc_credentials").await["session_id"].clone();
    drop(robot);
    let close = recv_type(&mut app, "webrtc_close").await;
    assert_eq!(close["session_id"], sid2);
    assert_eq!(close["reason"], "robot_disconnected");
}

#[tokio::test]
async fn the_session_limit_counts_every_instances_sessions() {
    let redis = Redis::start();
    let store = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}/shared.db", store.path().display());
    let mut nodes = Vec::new();
    for name in ["A", "B", "C"] {
        let (r, su) = (Backend::Single(redis.url()), store_url.clone());
        nodes.push(
            spawn_app_with(move |s| {
                clustered(s, name, &r, &su);
                s.webrtc.max_sessions_per_device = 2;
            })
            .await,
        );
    }
    let (a, b, cc) = (&nodes[0], &nodes[1], &nodes[2]);
    let u = a.user("cllimit").await;
    let secret = a.device(&u, "wimz-lim").await;
    let mut robot = a.robot("wimz-lim", &secret).await;
    let (mut on_b, _) = b.subscribed_app(&u, "wimz-lim").await;
    let (mut on_c, _) = cc.subscribed_app(&u, "wimz-lim").await;
    let mut sids = Vec::new();
    for _ in 0..2 {
        send(
            &mut on_b,
            json!({"type": "webrtc_request", "device_id": "wimz-lim"}),
        )
        .await;
        recv_type(&mut robot, "webrtc_request").await;
        sids.push(recv_type(&mut on_b, "webrtc_credentials").await["session_id"].clone());
    }
    send(
        &mut on_c,
        json!({"type": "webrtc_request", "device_id": "wimz-lim", "id": "third"}),
    )
    .await;
    let e = recv_type(&mut on_c, "error").await;
    assert_eq!(e["code"], "session_limit");
    assert_eq!(e["ref"], "third");
    // One ends: C gets the slot.
    send(
        &mut on_b,
        json!({"type": "webrtc_close", "session_id": sids[0], "reason": "done"}),
    )
    .await;
    recv_type(&mut robot, "webrtc_close").await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        send(
            &mut on_c,
            json!({"type": "webrtc_request", "device_id": "wimz-lim"}),
        )
        .await;
        let v = recv(&mut on_c).await;
        if v["type"] == "webrtc_credentials" {
            break;
        }
        assert_eq!(v["code"], "session_limit");
        assert!(Instant::now() < deadline, "the slot was never given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn webrtc_while_redis_is_down_is_local_only_and_works_again_after() {
    let mut c = cluster(2).await;
    let u = c.nodes[0].user("clrtcdown").await;
    let secret = c.nodes[0].device(&u, "wimz-rtd").await;
    let mut robot = c.nodes[0].robot("wimz-rtd", &secret).await;
    let (mut on_a, _) = c.nodes[0].subscribed_app(&u, "wimz-rtd").await;
    let (mut on_b, s) = c.nodes[1].subscribed_app(&u, "wimz-rtd").await;
    assert_eq!(s["robot_online"], true);

    c.redis.stop();
    wait_health(&c.nodes[0], 503).await;
    wait_health(&c.nodes[1], 503).await;

    // The robot is on A: a session from A's app goes ahead without Redis
    // (its cluster slot cannot be taken; the per-instance limit holds).
    let max = c.nodes[0].settings.webrtc.max_sessions_per_device;
    let mut sids = Vec::new();
    for i in 0..max {
        sids.push(webrtc_session(&mut on_a, &mut robot, "wimz-rtd", &format!("a{i}")).await);
    }
    send(
        &mut robot,
        json!({"type": "webrtc_offer", "session_id": sids[0], "sdp": "v=0 offer"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut on_a, "webrtc_offer").await["sdp"],
        "v=0 offer"
    );
    send(
        &mut on_a,
        json!({"type": "webrtc_request", "device_id": "wimz-rtd", "id": "over"}),
    )
    .await;
    let e = recv_type(&mut on_a, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("session_limit"), Some("over"))
    );
    c.nodes[0]
        .wait_stats("A's sessions", |s| s["webrtc_sessions_active"] == max)
        .await;

    // The robot is on A and only Redis reaches it from B: B's app is told
    // at once, and nothing is left behind on B.
    send(
        &mut on_b,
        json!({"type": "webrtc_request", "device_id": "wimz-rtd", "id": "b-down"}),
    )
    .await;
    let e = loop {
        let v = recv(&mut on_b).await;
        assert_ne!(
            v["type"], "webrtc_credentials",
            "no way to reach the robot: {v}"
        );
        if v["type"] == "error" {
            break v;
        }
    };
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("internal"), Some("b-down")),
        "{e}"
    );
    assert_silent(&mut robot, Duration::from_millis(300)).await;
    assert_eq!(c.nodes[1].stats().await["webrtc_sessions_active"], 0);

    // The sessions end as usual; nothing leaks.
    for sid in &sids {
        send(
            &mut on_a,
            json!({"type": "webrtc_close", "session_id": sid, "reason": "done"}),
        )
        .await;
        assert_eq!(
            recv_type(&mut robot, "webrtc_close").await["session_id"],
            *sid
        );
    }
    c.nodes[0]
        .wait_stats("no session on A", |s| s["webrtc_sessions_active"] == 0)
        .await;

    // Redis comes back (empty): sessions work again from both instances.
    c.redis.restart();
    wait_health(&c.nodes[0], 200).await;
    wait_health(&c.nodes[1], 200).await;
    let on_a_sid = webrtc_session(&mut on_a, &mut robot, "wimz-rtd", "a-back").await;
    // B learns again where the robot is (A re-takes its claim on Redis's
    // return; B reads it on its next presence check): until then B may
    // answer `robot_offline`, never anything else.
    let deadline = Instant::now() + PATIENCE;
    let on_b_sid = loop {
        send(
            &mut on_b,
            json!({"type": "webrtc_request", "device_id": "wimz-rtd", "id": "b-back"}),
        )
        .await;
        let v = loop {
            let v = recv(&mut on_b).await;
            if v["type"] == "webrtc_credentials" || v["type"] == "error" {
                break v;
            }
        };
        if v["type"] == "webrtc_credentials" {
            let req = recv_type(&mut robot, "webrtc_request").await;
            assert_eq!(req["session_id"], v["session_id"]);
            break v["session_id"].clone();
        }
        assert_eq!(v["code"], "robot_offline", "{v}");
        assert!(Instant::now() < deadline, "B never reached the robot again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    send(
        &mut robot,
        json!({"type": "webrtc_offer", "session_id": on_b_sid, "sdp": "v=0 b"}),
    )
    .await;
    assert_eq!(recv_type(&mut on_b, "webrtc_offer").await["sdp"], "v=0 b");
    for (app, sid) in [(&mut on_a, &on_a_sid), (&mut on_b, &on_b_sid)] {
        send(
            app,
            json!({"type": "webrtc_close", "session_id": sid, "reason": "done"}),
        )
        .await;
        assert_eq!(
            recv_type(&mut robot, "webrtc_close").await["session_id"],
            *sid
        );
    }
    for node in &c.nodes {
        node.wait_stats("no session", |s| s["webrtc_sessions_active"] == 0)
            .await;
    }
}

/// An ICE restart of a session whose robot is on another instance, while
/// Redis (the only way there) is down: the app gets an error for its request
/// instead of fresh credentials the robot never hears of; the session is
/// kept, and a restart once Redis is back reaches the robot.
#[tokio::test]
async fn an_ice_restart_that_cannot_reach_the_robots_instance_is_an_error_not_credentials() {
    let mut c = cluster(2).await;
    let (_, _, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "clrestart", "wimz-rst").await;
    let sid = webrtc_session(&mut on_b, &mut robot, "wimz-rst", "s1").await;

    c.redis.stop();
    wait_health(&c.nodes[1], 503).await;
    let restart = |id: &str| {
        json!({"type": "webrtc_request", "device_id": "wimz-rst", "session_id": sid,
               "ice_restart": true, "id": id})
    };
    send(&mut on_b, restart("r-down")).await;
    let e = loop {
        let v = recv(&mut on_b).await;
        assert_ne!(
            v["type"], "webrtc_credentials",
            "the robot cannot hear of it: {v}"
        );
        if v["type"] == "error" {
            break v;
        }
    };
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("internal"), Some("r-down")),
        "{e}"
    );
    assert_eq!(c.nodes[1].stats().await["webrtc_sessions_active"], 1);

    c.redis.restart();
    wait_health(&c.nodes[1], 200).await;
    // Until B learns again where the robot is (presence re-taken), a
    // restart may still fail the same way; it must never leave the app with
    // credentials the robot did not get.
    let deadline = Instant::now() + PATIENCE * 2;
    loop {
        send(&mut on_b, restart("r-up")).await;
        let v = loop {
            let v = recv(&mut on_b).await;
            if v["type"] == "error" || v["type"] == "webrtc_credentials" {
                break v;
            }
        };
        if v["type"] == "webrtc_credentials" {
            assert_eq!(v["session_id"], sid, "{v}");
            assert_eq!(v["ice_restart"], true, "{v}");
            let req = recv_type(&mut robot, "webrtc_request").await;
            assert_eq!(req["session_id"], sid, "{req}");
            assert_eq!(req["ice_restart"], true, "{req}");
            break;
        }
        assert_eq!(v["code"], "internal", "{v}");
        assert!(
            Instant::now() < deadline,
            "the restart never reached the robot"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
