//! `subscribe{since_seq}` recovery.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn reconnecting_app_recovers_exactly_the_missed_events() {
    let app = spawn_app().await;
    let u = app.user("recover").await;
    let secret = app.device(&u, "wimz-rc").await;
    let mut robot = app.robot("wimz-rc", &secret).await;
    let (mut a, sub) = app.subscribed_app(&u, "wimz-rc").await;
    let epoch = sub["epoch"].clone();
    for i in 0..20 {
        send(
            &mut robot,
            json!({"type": "event", "event": "mission_progress", "data": {"i": i}}),
        )
        .await;
    }
    let mut last = 0;
    for _ in 0..20 {
        last = recv_type(&mut a, "event").await["seq"].as_u64().unwrap();
    }
    drop(a);
    for i in 20..50 {
        send(
            &mut robot,
            json!({"type": "event", "event": "mission_progress", "data": {"i": i}}),
        )
        .await;
    }
    // Make sure the robot's events were handled before resubscribing.
    let (mut probe, _) = app.subscribed_app(&u, "wimz-rc").await;
    drop(robot);
    recv_event(&mut probe, "robot_disconnected").await;

    let mut b = app.app(&u).await;
    send(
        &mut b,
        json!({"type": "subscribe", "device_id": "wimz-rc", "since_seq": last, "epoch": epoch}),
    )
    .await;
    let s = recv_type(&mut b, "subscribed").await;
    assert_eq!(s["epoch"], epoch);
    for i in 20..50 {
        let v = recv(&mut b).await;
        assert_eq!(v["type"], "event");
        assert_eq!(v["seq"].as_u64().unwrap(), last + 1 + (i - 20));
        assert_eq!(v["data"]["i"], i);
    }
    let v = recv(&mut b).await;
    assert_eq!(v["event"], "robot_disconnected");
    let v = recv(&mut b).await;
    assert_eq!(v["type"], "recovered");
    assert_eq!(v["complete"], true);
    assert_eq!(v["device_id"], "wimz-rc");
}

#[tokio::test]
async fn recovery_past_the_buffer_says_incomplete() {
    let app = spawn_app_with(|s| s.history.size = 10).await;
    let u = app.user("recover2").await;
    let secret = app.device(&u, "wimz-rb").await;
    let mut robot = app.robot("wimz-rb", &secret).await;
    let (mut a, sub) = app.subscribed_app(&u, "wimz-rb").await;
    let start = sub["seq"].as_u64().unwrap();
    for i in 0..40 {
        send(
            &mut robot,
            json!({"type": "event", "event": "dog_detected", "data": {"i": i}}),
        )
        .await;
    }
    for _ in 0..40 {
        recv_type(&mut a, "event").await;
    }
    let mut b = app.app(&u).await;
    send(
        &mut b,
        json!({"type": "subscribe", "device_id": "wimz-rb", "since_seq": start}),
    )
    .await;
    recv_type(&mut b, "subscribed").await;
    let mut got = Vec::new();
    loop {
        let v = recv(&mut b).await;
        if v["type"] == "recovered" {
            assert_eq!(v["complete"], false, "events were lost beyond the buffer");
            break;
        }
        got.push(v["seq"].as_u64().unwrap());
    }
    assert_eq!(got.len(), 10, "the whole buffer is replayed");
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(*got.last().unwrap(), start + 40);

    // Another epoch: incomplete, whatever the seq.
    send(
        &mut b,
        json!({"type": "subscribe", "device_id": "wimz-rb", "since_seq": start + 40, "epoch": 1}),
    )
    .await;
    recv_type(&mut b, "subscribed").await;
    let v = recv_type(&mut b, "recovered").await;
    assert_eq!(v["complete"], false);
    // Caught up in the same epoch: complete, nothing replayed.
    send(
        &mut b,
        json!({"type": "subscribe", "device_id": "wimz-rb", "since_seq": start + 40}),
    )
    .await;
    recv_type(&mut b, "subscribed").await;
    let v = recv(&mut b).await;
    assert_eq!(v["type"], "recovered");
    assert_eq!(v["complete"], true);
}
