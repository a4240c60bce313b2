//! Redis or an instance failing under a running cluster: Redis stopped and
//! restarted empty, a pub/sub connection gone silent, the robot's instance
//! SIGKILLed, a presence key lost: every app is told, none is left with a
//! silent gap or a stale presence.

use super::*;
use crate::helpers::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test]
async fn redis_stopped_and_restarted_mid_stream_reports_every_gap() {
    let mut c = cluster(2).await;
    let u = c.nodes[0].user("clredis").await;
    let secret = c.nodes[0].device(&u, "wimz-rd").await;
    let mut robot = c.nodes[0].robot("wimz-rd", &secret).await;
    let (mut local, _) = c.nodes[0].subscribed_app(&u, "wimz-rd").await;
    let (mut remote, sub) = c.nodes[1].subscribed_app(&u, "wimz-rd").await;
    send(
        &mut robot,
        json!({"type": "event", "event": "battery", "data": {"n": 0}}),
    )
    .await;
    recv_event(&mut local, "battery").await;
    recv_event(&mut remote, "battery").await;

    c.redis.stop();
    // Local delivery goes on; health says degraded.
    for n in 1..=5 {
        send(
            &mut robot,
            json!({"type": "event", "event": "battery", "data": {"n": n}}),
        )
        .await;
        assert_eq!(recv_event(&mut local, "battery").await["data"]["n"], n);
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, h) = health(&c.nodes[0]).await;
        if status == 503 && h["cluster"] == "degraded" {
            break;
        }
        assert!(Instant::now() < deadline, "health never said degraded: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    c.redis.restart(); // empty: continuity cannot be proven
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if health(&c.nodes[1]).await.0 == 200 && health(&c.nodes[0]).await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "cluster never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Cluster delivery resumes; the remote app is told what it missed.
    let mut n = 100;
    let mut told = false;
    let got = loop {
        send(
            &mut robot,
            json!({"type": "event", "event": "battery", "data": {"n": n}}),
        )
        .await;
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut got = None;
        while let Ok(v) = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            recv(&mut remote),
        )
        .await
        {
            if v["type"] == "recovered" {
                assert_eq!(v["complete"], false);
                told = true;
            }
            if v["type"] == "event"
                && v["event"] == "battery"
                && v["data"]["n"].as_u64() >= Some(100)
            {
                got = Some(v);
                break;
            }
            if v["type"] == "event" && v["event"] == "battery" {
                panic!("the remote app got an event from the outage without a gap notice: {v}");
            }
        }
        if let Some(v) = got {
            break v;
        }
        n += 1;
        assert!(n < 160, "cluster delivery never resumed");
    };
    assert!(told, "the gap was reported");
    assert_ne!(
        got["epoch"], sub["epoch"],
        "a new epoch after Redis lost everything"
    );
    // The local app saw every event, in one seq order.
    let v = recv_event(&mut local, "battery").await;
    assert!(v["data"]["n"].as_u64().unwrap() >= 100);
}

#[tokio::test]
async fn a_silently_dead_pubsub_connection_is_found_by_the_probe_and_rebuilt() {
    let redis = Redis::start();
    let proxy = FreezingProxy::start(redis.port).await;
    let store = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}/shared.db", store.path().display());
    let (r, su) = (Backend::Single(redis.url()), store_url.clone());
    let a = spawn_app_with(move |s| clustered(s, "A", &r, &su)).await;
    // B talks to Redis through the proxy.
    let (r, su) = (
        Backend::Single(format!("redis://127.0.0.1:{}", proxy.port)),
        store_url.clone(),
    );
    let b = spawn_app_with(move |s| clustered(s, "B", &r, &su)).await;
    let u = a.user("clsilent").await;
    let secret = a.device(&u, "wimz-sil").await;
    let mut robot = a.robot("wimz-sil", &secret).await;
    let (mut on_b, _) = b.subscribed_app(&u, "wimz-sil").await;
    send(
        &mut robot,
        json!({"type": "event", "event": "bark_detected", "data": {"i": 0}}),
    )
    .await;
    // Counted from the first bark as B saw it: B's subscription may be
    // answered before `robot_connected` reached it (then numbered after
    // the snapshot's seq), which is no loss.
    let first = recv_event(&mut on_b, "bark_detected").await;
    assert_eq!(first["data"]["i"], 0);
    let start = first["seq"].as_u64().unwrap() - 1;

    // B's pub/sub connection goes silent; it is not closed.
    proxy.freeze_existing();
    for i in 1..=5 {
        send(
            &mut robot,
            json!({"type": "event", "event": "bark_detected", "data": {"i": i}}),
        )
        .await;
    }
    // The probe notices, the pub/sub connection is rebuilt (a new, working
    // connection) and what was missed is caught up from the stream, in order.
    // Noticing takes the probe's deadline (4 s) by design, plus the rebuild:
    // a wider hang guard than PATIENCE, so a busy machine does not fail it.
    let mut seqs = Vec::new();
    for i in 1..=5 {
        let v = loop {
            let v = recv_within(&mut on_b, PATIENCE * 3).await;
            if v["type"] == "event" && v["event"] == "bark_detected" {
                break v;
            }
        };
        assert_eq!(v["data"]["i"], i);
        seqs.push(v["seq"].as_u64().unwrap());
    }
    assert_eq!(
        seqs,
        (start + 2..=start + 6).collect::<Vec<_>>(),
        "nothing lost, nothing out of order"
    );
}

#[tokio::test]
async fn sigkill_of_the_robots_instance_shows_it_offline_elsewhere_within_the_ttl() {
    let c = cluster_named(&["B"]).await; // in-process; A is a process
    let b = &c.nodes[0];
    let dir = tempfile::tempdir().unwrap();
    let (mut a, a_ws) = process_node("A", &c.redis.url(), &c.store_url, dir.path()).await;
    let u = b.user("clkill").await;
    let secret = b.device(&u, "wimz-kill").await;
    let (mut on_b, _) = b.subscribed_app(&u, "wimz-kill").await;
    let ts = wimz_relay::ids::unix_now();
    let url = format!(
        "{a_ws}/ws/device?device_id=wimz-kill&timestamp={ts}&signature={}",
        sign(&secret, "wimz-kill", ts)
    );
    let (mut robot, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    recv_event(&mut on_b, "robot_connected").await;
    send(
        &mut robot,
        json!({"type": "event", "event": "mission_progress", "data": {"stage": 1}}),
    )
    .await;
    recv_event(&mut on_b, "mission_progress").await;
    let list: Value = b
        .get("/api/devices", Some(&u.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["online"], true);
    // A WebRTC session between the app on B and the robot on A.
    send(
        &mut on_b,
        json!({"type": "webrtc_request", "device_id": "wimz-kill"}),
    )
    .await;
    recv_type(&mut robot, "webrtc_request").await;
    let sid = recv_type(&mut on_b, "webrtc_credentials").await["session_id"].clone();

    a.child.kill().unwrap(); // SIGKILL: no goodbye, no release
    a.child.wait().unwrap();
    let killed = Instant::now();
    let (mut lost, mut closed) = (false, false);
    while !(lost && closed) {
        let v = recv(&mut on_b).await;
        if v["type"] == "event" && v["event"] == "robot_disconnected" {
            assert_eq!(v["reason"], "instance_lost");
            lost = true;
        }
        if v["type"] == "webrtc_close" {
            assert_eq!(v["session_id"], sid);
            assert_eq!(v["reason"], "robot_disconnected");
            closed = true;
        }
    }
    let list: Value = b
        .get("/api/devices", Some(&u.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["online"], false);
    assert_eq!(
        list[0]["mission"]["stage"], 1,
        "the last mission survives the instance"
    );
    // Not a timing assertion: a sanity bound far above the 2 s TTL.
    assert!(killed.elapsed() < Duration::from_secs(30));

    // The robot comes back through a live instance.
    let mut robot = b.robot("wimz-kill", &secret).await;
    recv_event(&mut on_b, "robot_connected").await;
    send(
        &mut robot,
        json!({"type": "event", "event": "mission_progress", "data": {"stage": 2}}),
    )
    .await;
    assert_eq!(
        recv_event(&mut on_b, "mission_progress").await["data"]["stage"],
        2
    );
}

/// Redis loses the robot's presence key (restarted empty, or the key
/// evicted) while the robot stays on A: apps on B are told `instance_lost`;
/// when A re-takes its claim they are told `robot_connected` the same way
/// (unnumbered), instead of being left showing the robot offline while its
/// events keep arriving.
#[tokio::test]
async fn presence_lost_then_retaken_tells_remote_apps_the_robot_is_back() {
    let c = cluster(2).await;
    let (u, _, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "clback", "wimz-back").await;
    let b = &c.nodes[1];

    // A re-takes a vanished claim on its next refresh, so keep deleting the
    // key until B has read it missing once.
    let mut con = c.redis.connection().await;
    let keep_deleting = async {
        loop {
            let _: () = redis::cmd("DEL")
                .arg("wimz:{wimz-back}:presence")
                .query_async(&mut con)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let lost = tokio::select! {
        v = recv_event(&mut on_b, "robot_disconnected") => v,
        () = keep_deleting => unreachable!(),
    };
    assert_eq!(lost["reason"], "instance_lost", "{lost}");

    let back = recv_event(&mut on_b, "robot_connected").await;
    assert_eq!(back["instance"], "A", "{back}");
    assert_eq!(back["unnumbered"], true, "{back}");
    assert_eq!(back["seq"], lost["seq"], "{back}");
    let listed = b.devices(&u).await;
    assert_eq!(listed[0]["online"], true, "{listed}");

    // The robot never left: its events still reach B, numbered on.
    send(
        &mut robot,
        json!({"type": "event", "event": "treat_dispensed", "data": {"n": 1}}),
    )
    .await;
    let v = recv_event(&mut on_b, "treat_dispensed").await;
    assert!(v["seq"].as_u64() > lost["seq"].as_u64(), "{v}");
}
