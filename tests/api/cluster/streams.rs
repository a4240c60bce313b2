//! A device's numbered stream across instances: apps on other instances
//! get every event in order with the robot's instance's numbering, recover
//! exactly on another instance, and follow a robot that moves. The three
//! scenarios also run on a Redis Cluster (`redis_ha`).

use super::*;
use crate::helpers::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test]
async fn robot_on_a_apps_on_b_and_c_events_commands_and_strangers() {
    events_commands_and_strangers(&cluster(3).await).await;
}

/// Also run on a Redis Cluster (`redis_ha`).
pub async fn events_commands_and_strangers(c: &Cluster) {
    let (a, b, cc) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    assert_eq!(health(b).await.1["cluster"], "ok");
    let u = a.user("clusteruser").await;
    let secret = a.device(&u, "wimz-cl").await;
    let mut robot = a.robot("wimz-cl", &secret).await;
    let (mut on_b, sb) = b.subscribed_app(&u, "wimz-cl").await;
    let (mut on_c, sc) = cc.subscribed_app(&u, "wimz-cl").await;
    assert_eq!(sb["robot_online"], true, "presence is cluster-wide: {sb}");
    assert_eq!(sc["epoch"], sb["epoch"]);
    let base = sb["seq"].as_u64().unwrap();
    assert_eq!(sc["seq"].as_u64().unwrap(), base);
    const N: u64 = 300;
    for i in 0..N {
        send(
            &mut robot,
            json!({"type": "event", "event": "mission_progress", "data": {"stage": i}}),
        )
        .await;
    }
    for ws in [&mut on_b, &mut on_c] {
        for i in 0..N {
            let v = recv_type(ws, "event").await;
            assert_eq!(
                v["seq"].as_u64().unwrap(),
                base + 1 + i,
                "exact seq across instances"
            );
            assert_eq!(v["data"]["stage"], i);
            assert_eq!(v["epoch"], sb["epoch"]);
        }
    }
    // /api/devices on C knows the robot is online on A.
    let list: Value = cc
        .get("/api/devices", Some(&u.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["online"], true);
    assert_eq!(list[0]["mission"]["stage"], N - 1);

    // Command from B to the robot on A, result back to B's app only.
    send(
        &mut on_b,
        json!({"type": "command", "device_id": "wimz-cl", "id": "x-1", "command": "sit"}),
    )
    .await;
    let cmd = recv_type(&mut robot, "command").await;
    assert_eq!(cmd["from_user"], u.id.as_str());
    assert!(cmd["reply_to"].as_str().unwrap().starts_with("B."));
    send(
        &mut robot,
        json!({"type": "command_result", "reply_to": cmd["reply_to"], "id": "x-1", "ok": true}),
    )
    .await;
    assert_eq!(recv_type(&mut on_b, "command_result").await["id"], "x-1");
    assert_silent(&mut on_c, Duration::from_millis(300)).await;

    // A stranger on C is refused and reaches nothing.
    let stranger = cc.user("clusterstranger").await;
    let mut s = cc.app(&stranger).await;
    send(&mut s, json!({"type": "subscribe", "device_id": "wimz-cl"})).await;
    assert_eq!(recv_type(&mut s, "error").await["code"], "not_owner");
    send(
        &mut s,
        json!({"type": "command", "device_id": "wimz-cl", "id": 1, "command": "treat"}),
    )
    .await;
    assert_eq!(recv_type(&mut s, "error").await["code"], "not_owner");
    assert_silent(&mut robot, Duration::from_millis(300)).await;

    // Cluster totals.
    let st = b.stats().await;
    assert_eq!(st["robots_online"], 0, "B's own numbers");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let st = b.stats().await;
        if st["cluster"]["robots_online"] == 1 && st["cluster"]["instances"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "cluster totals: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn app_reconnecting_to_another_instance_recovers_exactly() {
    recovers_exactly_elsewhere(&cluster(3).await).await;
}

/// Also run on a Redis Cluster (`redis_ha`).
pub async fn recovers_exactly_elsewhere(c: &Cluster) {
    let (a, b, cc) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let u = a.user("clrecover").await;
    let secret = a.device(&u, "wimz-cr").await;
    let mut robot = a.robot("wimz-cr", &secret).await;
    let (mut on_b, sub) = b.subscribed_app(&u, "wimz-cr").await;
    for i in 0..10 {
        send(
            &mut robot,
            json!({"type": "event", "event": "treat_dispensed", "data": {"i": i}}),
        )
        .await;
    }
    let mut last = 0;
    for _ in 0..10 {
        last = recv_type(&mut on_b, "event").await["seq"].as_u64().unwrap();
    }
    drop(on_b);
    for i in 10..40 {
        send(
            &mut robot,
            json!({"type": "event", "event": "treat_dispensed", "data": {"i": i}}),
        )
        .await;
    }
    // Make sure A has appended them: a probe subscriber on A sees the last one.
    let (mut probe, _) = a.subscribed_app(&u, "wimz-cr").await;
    send(
        &mut robot,
        json!({"type": "event", "event": "alert", "data": {"marker": true}}),
    )
    .await;
    recv_event(&mut probe, "alert").await;

    let mut on_c = cc.app(&u).await;
    send(&mut on_c, json!({"type": "subscribe", "device_id": "wimz-cr", "since_seq": last, "epoch": sub["epoch"]})).await;
    let s = recv_type(&mut on_c, "subscribed").await;
    assert_eq!(s["epoch"], sub["epoch"]);
    for i in 10..40 {
        let v = recv(&mut on_c).await;
        assert_eq!(v["seq"].as_u64().unwrap(), last + 1 + (i - 10), "{v}");
        assert_eq!(v["data"]["i"], i);
    }
    assert_eq!(recv(&mut on_c).await["event"], "alert");
    let v = recv(&mut on_c).await;
    assert_eq!(v["type"], "recovered");
    assert_eq!(v["complete"], true);
}

#[tokio::test]
async fn robot_moving_from_a_to_b_continues_the_stream() {
    a_moving_robot_continues_the_stream(&cluster(3).await).await;
}

/// Also run on a Redis Cluster (`redis_ha`).
pub async fn a_moving_robot_continues_the_stream(c: &Cluster) {
    let (a, b, cc) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let u = a.user("clmove").await;
    let secret = a.device(&u, "wimz-mv").await;
    let (mut on_c, _) = cc.subscribed_app(&u, "wimz-mv").await;
    let mut robot = a.robot("wimz-mv", &secret).await;
    let mut seqs = Vec::new();
    let mut names = Vec::new();
    let mut epochs = std::collections::HashSet::new();
    for i in 0..5 {
        send(
            &mut robot,
            json!({"type": "event", "event": "dog_detected", "data": {"i": i}}),
        )
        .await;
    }
    while names.iter().filter(|n| *n == "dog_detected").count() < 5 {
        let v = recv_type(&mut on_c, "event").await;
        seqs.push(v["seq"].as_u64().unwrap());
        epochs.insert(v["epoch"].as_i64().unwrap());
        names.push(v["event"].as_str().unwrap().to_string());
    }
    drop(robot);
    tokio::time::sleep(Duration::from_millis(1100)).await; // a fresh signature
    let mut robot = b.robot("wimz-mv", &secret).await;
    for i in 5..10 {
        send(
            &mut robot,
            json!({"type": "event", "event": "dog_detected", "data": {"i": i}}),
        )
        .await;
    }
    while names.iter().filter(|n| *n == "dog_detected").count() < 10 {
        let v = recv_type(&mut on_c, "event").await;
        seqs.push(v["seq"].as_u64().unwrap());
        epochs.insert(v["epoch"].as_i64().unwrap());
        names.push(v["event"].as_str().unwrap().to_string());
    }
    assert_eq!(epochs.len(), 1, "continuity kept: one epoch");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap: {seqs:?}"
    );
    assert_eq!(names[0], "robot_connected");
    let d = names
        .iter()
        .position(|n| n == "robot_disconnected")
        .expect("disconnect seen");
    let cpos = names
        .iter()
        .rposition(|n| n == "robot_connected")
        .expect("connect seen");
    assert!(d < cpos, "{names:?}");
}

/// A room whose robot left while no app was there stays (until
/// `rooms.idle_grace_s`) without mirroring the device; an app that joins it
/// must still follow the robot, now on another instance.
#[tokio::test]
async fn an_app_joining_the_room_its_robot_left_empty_follows_the_robot_elsewhere() {
    let c = cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let u = a.user("clempty").await;
    let secret = a.device(&u, "wimz-em").await;
    // The robot on A, alone: A's room is its home, with no members.
    let robot = a.robot("wimz-em", &secret).await;
    drop(robot);
    a.wait_stats("the robot gone from A", |s| s["robots_online"] == 0)
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // a fresh signature
    let mut robot = b.robot("wimz-em", &secret).await;
    // A's room is still there (idle grace); the app joins it.
    let (mut on_a, sub) = a.subscribed_app(&u, "wimz-em").await;
    assert_eq!(sub["robot_online"], true, "the robot is online on B: {sub}");
    for i in 1..4 {
        send(
            &mut robot,
            json!({"type": "event", "event": "dog_detected", "data": {"i": i}}),
        )
        .await;
    }
    for i in 1..4 {
        let v = recv_event(&mut on_a, "dog_detected").await;
        assert_eq!(v["data"]["i"], i, "in order: {v}");
        assert_eq!(v["epoch"], sub["epoch"], "B's numbering: {v}");
    }
}

/// What the subscriber task does with the device's channel (ARCHITECTURE.md
/// "Delivery across instances"), with a home that is only Redis entries
/// here — another instance `Z` writing the stream and the channel the way
/// a home does, but publishing only some events: a hole in what pub/sub
/// carried is filled from the stream, in order and without a word of loss;
/// a hole the stream no longer holds either is told to the app
/// (`recovered{complete:false}`) before the next event, and never filled
/// with what comes after it.
#[tokio::test]
async fn a_hole_in_pub_sub_is_filled_from_the_stream_and_one_the_stream_lost_is_told() {
    let c = cluster(1).await;
    let a = &c.nodes[0];
    wait_health(a, 200).await;
    let device = "wimz-holes";
    let u = a.user("holes").await;
    a.device(&u, device).await;
    // No robot anywhere: A's room mirrors the device (its watch reserved
    // the stream's epoch).
    let (mut app, sub) = a.subscribed_app(&u, device).await;
    assert_eq!(sub["robot_online"], false, "{sub}");
    let mut con = c.redis.connection().await;
    let z = claim_in_redis(&mut con, device, "Z").await;
    assert_eq!(z.epoch, sub["epoch"].to_string(), "the room's epoch");
    // Events 1..=3 in the stream; only 1 and 3 published.
    for seq in 1..=3u64 {
        z_appends(&mut con, device, &z, seq, seq != 2).await;
    }
    for seq in 1..=3u64 {
        let v = recv(&mut app).await;
        assert_eq!(
            (&v["type"], &v["seq"], &v["data"]["level"]),
            (&json!("event"), &json!(seq), &json!(seq)),
            "event {seq}, filled from the stream if need be, and nothing else: {v}"
        );
    }
    // Events 4 and 5 in the stream, unpublished, 4 gone from it again
    // (trimmed); then 6, published: 5 is not delivered across the hole.
    for seq in 4..=5u64 {
        z_appends(&mut con, device, &z, seq, false).await;
    }
    let _: () = redis::cmd("XDEL")
        .arg(format!("wimz:{{{device}}}:stream"))
        .arg(z.id(4))
        .query_async(&mut con)
        .await
        .unwrap();
    z_appends(&mut con, device, &z, 6, true).await;
    let mut told = false;
    loop {
        let v = recv(&mut app).await;
        if v["type"] == "recovered" {
            assert_eq!(v["complete"], false, "{v}");
            assert_eq!(v["reason"], "gap", "{v}");
            told = true;
            continue;
        }
        assert_eq!(v["type"], "event", "{v}");
        assert!(told, "the hole was told before the next event: {v}");
        assert_eq!(v["seq"], 6, "nothing from across the hole but 6: {v}");
        break;
    }
}

/// Instance Z's event `seq` (a `battery` event, its level the seq) appended
/// to the device's stream under Z's term, and published on its channel if
/// `publish`, in the home's formats.
async fn z_appends(
    con: &mut redis::aio::MultiplexedConnection,
    device: &str,
    z: &ClaimedInRedis,
    seq: u64,
    publish: bool,
) {
    let frame = json!({"type": "event", "event": "battery", "data": {"level": seq},
                       "device_id": device, "epoch": z.epoch.parse::<i64>().unwrap(),
                       "seq": seq, "ts_ms": 1})
    .to_string();
    let id = z.id(seq);
    let mut p = redis::pipe();
    p.cmd("XADD")
        .arg(format!("wimz:{{{device}}}:stream"))
        .arg(&id)
        .arg("e")
        .arg(&z.epoch)
        .arg("f")
        .arg(&frame)
        .ignore();
    if publish {
        p.cmd("PUBLISH")
            .arg(format!("wimz:{{{device}}}:dev"))
            .arg(format!("{id} {} {frame}", z.epoch))
            .ignore();
    }
    let _: () = p.query_async(con).await.unwrap();
}
