//! Hostile input, silent peers, slow peers, churn.

use crate::helpers::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

async fn still_usable(ws: &mut Ws) {
    send(ws, json!({"type": "ping"})).await;
    recv_type(ws, "pong").await;
}

#[tokio::test]
async fn bad_input_gets_errors_and_the_socket_stays_usable() {
    let app = spawn_app().await;
    let u = app.user("hostile").await;
    let secret = app.device(&u, "wimz-bad").await;
    let mut robot = app.robot("wimz-bad", &secret).await;
    let mut a = app.app(&u).await;
    for ws in [&mut a, &mut robot] {
        for bad in [
            "not json",
            "[1,2]",
            "42",
            "\"str\"",
            "{}",
            r#"{"type":5}"#,
            r#"{"type":null}"#,
            "{\"type\":\"ping\"",
            "",
        ] {
            send_text(ws, bad).await;
            let e = recv_type(ws, "error").await;
            assert_eq!(e["code"], "bad_message", "{bad:?}");
            assert!(e["message"].as_str().unwrap().len() > 3);
        }
        send_text(ws, r#"{"type":"teleport","id":"t-1"}"#).await;
        let e = recv_type(ws, "error").await;
        assert_eq!(e["code"], "unsupported");
        assert_eq!(e["ref"], "t-1");
        ws.send(Message::Binary(vec![1u8, 2, 3].into()))
            .await
            .unwrap();
        let e = recv_type(ws, "error").await;
        assert_eq!(e["code"], "unsupported");
        still_usable(ws).await;
    }
    // Fields of the wrong shape name the problem and carry the ref.
    send(
        &mut a,
        json!({"type": "subscribe", "device_id": 12, "id": "s-9"}),
    )
    .await;
    let e = recv_type(&mut a, "error").await;
    assert_eq!(e["code"], "bad_message");
    assert_eq!(e["ref"], "s-9");
    send(
        &mut a,
        json!({"type": "command", "device_id": "wimz-bad", "id": "c-9"}),
    )
    .await;
    let e = recv_type(&mut a, "error").await;
    assert_eq!(e["code"], "bad_message");
    send(&mut robot, json!({"type": "event", "data": {}})).await;
    assert_eq!(recv_type(&mut robot, "error").await["code"], "bad_message");
    still_usable(&mut a).await;
    assert_eq!(app.stats().await["robots_online"], 1);
}

#[tokio::test]
async fn oversized_frames_close_with_1009() {
    let app = spawn_app_with(|s| s.limits.max_message_bytes = 4096).await;
    let u = app.user("bigsender").await;
    let secret = app.device(&u, "wimz-big").await;
    let mut robot = app.robot("wimz-big", &secret).await;
    let (mut a, _) = app.subscribed_app(&u, "wimz-big").await;
    // Just under the limit passes.
    let ok = json!({"type": "event", "event": "photo", "data": {"b": "x".repeat(3900)}});
    send(&mut robot, ok).await;
    recv_event(&mut a, "photo").await;
    let big = json!({"type": "event", "event": "photo", "data": {"b": "x".repeat(5000)}});
    send(&mut robot, big).await;
    assert_eq!(recv_close(&mut robot).await, Some(1009));
    let v = recv_event(&mut a, "robot_disconnected").await;
    assert_eq!(v["reason"], "message_too_big");
    // Apps too.
    send(&mut a, json!({"type": "ping", "pad": "y".repeat(5000)})).await;
    assert_eq!(recv_close(&mut a).await, Some(1009));
}

#[tokio::test]
async fn rate_limit_refuses_the_excess_and_recovers() {
    let app = spawn_app_with(|s| {
        s.limits.messages_per_s = 5.0;
        s.limits.messages_burst = 10.0;
    })
    .await;
    let u = app.user("flooder").await;
    let mut a = app.app(&u).await;
    for i in 0..30 {
        send(&mut a, json!({"type": "ping", "id": i})).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    for _ in 0..30 {
        let v = recv(&mut a).await;
        match v["type"].as_str().unwrap() {
            "pong" => pongs += 1,
            "error" => {
                assert_eq!(v["code"], "rate_limited");
                assert!(v["ref"].is_number());
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(pongs >= 10, "the burst passes ({pongs})");
    assert!(limited >= 10, "the excess is refused ({limited})");
    tokio::time::sleep(Duration::from_millis(500)).await;
    still_usable(&mut a).await;
}

#[tokio::test]
async fn a_silent_robot_is_dropped_by_the_heartbeat_and_a_live_app_is_not() {
    let app = spawn_app_with(|s| {
        s.heartbeat.interval_s = 0.2;
        s.heartbeat.timeout_s = 0.8;
    })
    .await;
    let u = app.user("heartbeat").await;
    let secret = app.device(&u, "wimz-hb").await;
    // The robot socket is never read again: no pongs, no frames.
    let _robot = app.robot("wimz-hb", &secret).await;
    // The app reads (tungstenite answers pings while reading).
    let (mut a, _) = app.subscribed_app(&u, "wimz-hb").await;
    let v = recv_event(&mut a, "robot_disconnected").await;
    assert_eq!(v["reason"], "heartbeat_timeout");
    app.wait_stats("robot dropped", |s| s["robots_online"] == 0)
        .await;
    // Well past the timeout, the reading app is still there.
    assert_silent(&mut a, Duration::from_millis(1500)).await;
    still_usable(&mut a).await;
    assert_eq!(app.stats().await["apps_connected"], 1);
}

#[tokio::test]
async fn a_non_reading_app_does_not_slow_a_reading_app() {
    let app = spawn_app_with(|s| {
        s.limits.messages_per_s = 1e6;
        s.limits.messages_burst = 1e6;
        s.limits.outbound_queue = 64;
        s.limits.max_message_bytes = 65536;
    })
    .await;
    let u = app.user("slowpoke").await;
    let secret = app.device(&u, "wimz-slow").await;
    let mut robot = app.robot("wimz-slow", &secret).await;
    let (mut reader, sub) = app.subscribed_app(&u, "wimz-slow").await;
    let (stalled, _) = app.subscribed_app(&u, "wimz-slow").await;
    let start = sub["seq"].as_u64().unwrap();
    // ~20 MB in total: far more than the stalled app's socket buffers hold.
    // The robot is paced by the reader (batches of 32, under the queue of 64),
    // so only an app that does not read at all can fall behind.
    const N: u64 = 2560;
    const BATCH: u64 = 32;
    let pad = "p".repeat(8_000);
    let mut expected = start + 1;
    for batch in 0..N / BATCH {
        for k in 0..BATCH {
            let i = batch * BATCH + k;
            send(
                &mut robot,
                json!({"type": "event", "event": "photo", "data": {"i": i, "pad": pad}}),
            )
            .await;
        }
        let mut got = 0;
        while got < BATCH {
            let v = recv(&mut reader).await;
            if v["type"] != "event" || v["event"] != "photo" {
                continue;
            }
            assert_eq!(
                v["seq"].as_u64().unwrap(),
                expected,
                "no gap for the reader"
            );
            expected += 1;
            got += 1;
        }
    }
    // The stalled app was closed, the reader was not.
    app.wait_stats("stalled app closed", |s| s["apps_connected"] == 1)
        .await;
    let scrape = crate::scrape::Scrape::of(&app).await;
    assert_eq!(scrape.count("wimz_slow_consumers_closed_total", &[]), 1);
    let slow = [
        ("role", "app"),
        ("code", "1008"),
        ("reason", "slow_consumer"),
    ];
    assert_eq!(scrape.count("wimz_ws_closed_total", &slow), 1);
    // The stalled app's queue passed 3/4 on its way to full (the reader's
    // never held more than a batch of 32 of its 64).
    assert_eq!(scrape.count("wimz_outbox_saturated_total", &[]), 1);
    still_usable(&mut reader).await;
    // The stalled peer's connection really ends: draining what its socket
    // buffers held reaches the end of the stream.
    let mut stalled = stalled;
    let drained = tokio::time::timeout(PATIENCE, async {
        let mut n = 0u64;
        while let Some(Ok(m)) = stalled.next().await {
            if m.is_close() {
                break;
            }
            n += 1;
        }
        n
    })
    .await
    .expect("stalled connection ends");
    assert!(drained < N, "it did not get everything ({drained})");
}

#[tokio::test]
async fn rooms_and_connections_are_cleaned_up_after_many_cycles() {
    let app = spawn_app_with(|s| s.rooms.idle_grace_s = 0.2).await;
    let u = app.user("churner").await;
    let mut secrets = Vec::new();
    for d in 0..5 {
        secrets.push(app.device(&u, &format!("wimz-ch{d}")).await);
    }
    for cycle in 0..20 {
        let d = cycle % 5;
        let id = format!("wimz-ch{d}");
        // Each robot connect needs a fresh signature: vary the timestamp.
        let ts = wimz_relay::ids::unix_now() - cycle as i64;
        let url = format!(
            "{}/ws/device?device_id={id}&timestamp={ts}&signature={}",
            app.ws_base,
            sign(&secrets[d], &id, ts)
        );
        let (mut robot, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let (mut a, _) = app.subscribed_app(&u, &id).await;
        send(
            &mut robot,
            json!({"type": "event", "event": "bark_detected", "data": {}}),
        )
        .await;
        recv_event(&mut a, "bark_detected").await;
        if cycle % 2 == 0 {
            robot.close(None).await.unwrap();
            a.close(None).await.unwrap();
        } else {
            drop(robot); // abrupt: no close frame
            drop(a);
        }
    }
    let s = app
        .wait_stats("everything gone", |s| {
            s["rooms"] == 0 && s["robots_online"] == 0 && s["apps_connected"] == 0
        })
        .await;
    assert_eq!(s["rooms"], 0);
    // And the device still works afterwards (a new room, a new epoch).
    let (mut a, sub) = app.subscribed_app(&u, "wimz-ch0").await;
    assert_eq!(sub["robot_online"], false);
    assert_eq!(sub["seq"], 0);
    // A timestamp no cycle above used (they counted back from `now`): the
    // same signature twice within the window is refused as a replay, and
    // the loop may well finish inside one second.
    let ts = wimz_relay::ids::unix_now() + 1;
    let url = format!(
        "{}/ws/device?device_id=wimz-ch0&timestamp={ts}&signature={}",
        app.ws_base,
        sign(&secrets[0], "wimz-ch0", ts)
    );
    let (_robot, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    recv_event(&mut a, "robot_connected").await;
}
