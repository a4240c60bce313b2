//! Events robot → apps, commands app → robot, presence, ownership.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

fn fast(s: &mut wimz_relay::config::Settings) {
    s.limits.messages_per_s = 100_000.0;
    s.limits.messages_burst = 100_000.0;
}

async fn event(ws: &mut Ws, name: &str, data: Value) {
    send(ws, json!({"type": "event", "event": name, "data": data})).await;
}

#[tokio::test]
async fn hundreds_of_events_reach_two_apps_in_order_with_exact_seq() {
    let app = spawn_app_with(fast).await;
    let u = app.user("ordered").await;
    let secret = app.device(&u, "wimz-o").await;
    let mut robot = app.robot("wimz-o", &secret).await;
    let (mut a1, s1) = app.subscribed_app(&u, "wimz-o").await;
    let (mut a2, s2) = app.subscribed_app(&u, "wimz-o").await;
    assert_eq!(s1["robot_online"], true);
    assert_eq!(s1["epoch"], s2["epoch"]);
    let base = s1["seq"].as_u64().unwrap();
    assert_eq!(s2["seq"].as_u64().unwrap(), base);
    const N: u64 = 500;
    for i in 0..N {
        event(
            &mut robot,
            "mission_progress",
            json!({"mission": "sit_training", "status": "watching", "stage": i, "total_stages": N}),
        )
        .await;
    }
    for ws in [&mut a1, &mut a2] {
        for i in 0..N {
            let v = recv_type(ws, "event").await;
            assert_eq!(v["event"], "mission_progress");
            assert_eq!(v["device_id"], "wimz-o");
            assert_eq!(v["epoch"], s1["epoch"]);
            assert_eq!(v["seq"].as_u64().unwrap(), base + 1 + i, "exact seq");
            assert_eq!(v["data"]["stage"], i, "robot's order");
            assert!(v["ts_ms"].as_i64().unwrap() > 0);
        }
    }
}

#[tokio::test]
async fn every_event_name_is_forwarded_untouched_with_the_envelope() {
    let app = spawn_app().await;
    let u = app.user("names").await;
    let secret = app.device(&u, "wimz-n").await;
    let mut robot = app.robot("wimz-n", &secret).await;
    let (mut a, _) = app.subscribed_app(&u, "wimz-n").await;
    let names = [
        "mission_progress",
        "mode_changed",
        "bark_detected",
        "dog_detected",
        "treat_dispensed",
        "battery",
        "status_update",
        "alert",
        "photo",
        "audio_message",
        "some_future_event",
    ];
    for n in names {
        // Unknown top-level fields are preserved, and nested data untouched
        // (including number formatting the relay must not normalise).
        send_text(
            &mut robot,
            &format!(r#"{{"type":"event","event":"{n}","data":{{"x":1.50,"nested":{{"k":[1,2]}}}},"robot_field":"kept"}}"#),
        )
        .await;
    }
    for n in names {
        // The robot's attach races the app's subscribe: skip its presence event.
        let raw = loop {
            let raw =
                match tokio::time::timeout(PATIENCE, futures_util::StreamExt::next(&mut a)).await {
                    Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => t.to_string(),
                    other => panic!("no event: {other:?}"),
                };
            if !raw.contains("\"robot_connected\"") {
                break raw;
            }
        };
        assert!(
            raw.contains(r#""data":{"x":1.50,"nested":{"k":[1,2]}}"#),
            "payload untouched: {raw}"
        );
        let v: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(v["event"], n);
        assert_eq!(v["robot_field"], "kept");
        assert_eq!(v["device_id"], "wimz-n");
    }
    // A robot cannot forge the envelope.
    send_text(&mut robot, r#"{"type":"event","event":"alert","seq":999999,"device_id":"someone-else","epoch":1,"data":{}}"#).await;
    let v = recv_event(&mut a, "alert").await;
    assert_ne!(v["seq"], 999999);
    assert_eq!(v["device_id"], "wimz-n");
    assert_ne!(v["epoch"], 1);
}

#[tokio::test]
async fn connect_and_disconnect_events_and_live_presence() {
    let app = spawn_app().await;
    let u = app.user("presence").await;
    let secret = app.device(&u, "wimz-p").await;
    let (mut a, s) = app.subscribed_app(&u, "wimz-p").await;
    assert_eq!(s["robot_online"], false);
    let mut robot = app.robot("wimz-p", &secret).await;
    let v = recv_event(&mut a, "robot_connected").await;
    assert_eq!(v["device_id"], "wimz-p");
    assert!(v["timestamp"].as_i64().unwrap() > 0);
    assert!(v["seq"].as_u64().unwrap() >= 1);
    app.wait_stats("robot online", |s| s["robots_online"] == 1)
        .await;

    event(&mut robot, "mode_changed", json!({"mode": "training"})).await;
    event(
        &mut robot,
        "mission_progress",
        json!({"mission": "sit_training", "stage": 2}),
    )
    .await;
    event(&mut robot, "battery", json!({"level": 81})).await;
    recv_event(&mut a, "battery").await;
    let list: Value = app
        .get("/api/devices", Some(&u.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["online"], true);
    assert_eq!(list[0]["mode"], "training");
    assert_eq!(list[0]["mission"]["stage"], 2);
    assert!(list[0]["last_seen"].as_i64().unwrap() > 0);
    // A new subscriber gets the snapshot.
    let (_b, s) = app.subscribed_app(&u, "wimz-p").await;
    assert_eq!(s["snapshot"]["mode"], "training");
    assert_eq!(s["snapshot"]["mission"]["mission"], "sit_training");
    assert_eq!(s["snapshot"]["battery"]["level"], 81);

    robot.close(None).await.unwrap();
    let v = recv_event(&mut a, "robot_disconnected").await;
    assert_eq!(v["reason"], "closed");
    app.wait_stats("robot offline", |s| s["robots_online"] == 0)
        .await;
    let list: Value = app
        .get("/api/devices", Some(&u.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["online"], false);
    assert_eq!(list[0]["mission"]["stage"], 2, "last mission kept");
}

#[tokio::test]
async fn commands_round_trip_and_results_reach_only_the_asker() {
    let app = spawn_app().await;
    let u = app.user("commander").await;
    let secret = app.device(&u, "wimz-c").await;
    let mut robot = app.robot("wimz-c", &secret).await;
    let (mut asker, _) = app.subscribed_app(&u, "wimz-c").await;
    let (mut other, _) = app.subscribed_app(&u, "wimz-c").await;

    // from_user / reply_to set by the app are replaced by the relay's.
    send(
        &mut asker,
        json!({"type": "command", "device_id": "wimz-c", "id": "c-17", "command": "start_mission",
        "data": {"mission": "sit_training"}, "from_user": "admin", "reply_to": "x", "extra": true}),
    )
    .await;
    let cmd = recv_type(&mut robot, "command").await;
    assert_eq!(cmd["id"], "c-17");
    assert_eq!(cmd["command"], "start_mission");
    assert_eq!(cmd["data"]["mission"], "sit_training");
    assert_eq!(cmd["extra"], true);
    assert_eq!(cmd["from_user"], u.id.as_str());
    let reply_to = cmd["reply_to"].as_str().unwrap().to_string();
    assert_ne!(reply_to, "x");

    send(&mut robot, json!({"type": "command_result", "reply_to": reply_to, "id": "c-17", "ok": true, "data": {"started": true}})).await;
    let res = recv_type(&mut asker, "command_result").await;
    assert_eq!(res["id"], "c-17");
    assert_eq!(res["ok"], true);
    assert_eq!(res["data"]["started"], true);
    assert_silent(&mut other, Duration::from_millis(300)).await;

    // A result addressed to a connection that never talked to this robot goes nowhere.
    send(
        &mut robot,
        json!({"type": "command_result", "reply_to": "relay-x.999", "id": "c-18", "ok": true}),
    )
    .await;
    assert_silent(&mut asker, Duration::from_millis(200)).await;

    // An app that only commands (never subscribed) also gets its result.
    let mut commander_only = app.app(&u).await;
    send(
        &mut commander_only,
        json!({"type": "command", "device_id": "wimz-c", "id": 5, "command": "sit"}),
    )
    .await;
    let cmd = recv_type(&mut robot, "command").await;
    send(
        &mut robot,
        json!({"type": "command_result", "reply_to": cmd["reply_to"], "id": 5, "ok": false}),
    )
    .await;
    let res = recv_type(&mut commander_only, "command_result").await;
    assert_eq!(res["id"], 5);
}

/// Collects what `app` receives until it has seen `want` frames of the
/// types in `types` (others are ignored).
async fn collect(app: &mut Ws, types: &[&str], want: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < want {
        let v = recv(app).await;
        if types.contains(&v["type"].as_str().unwrap_or("")) {
            got.push(v);
        }
    }
    got
}

/// The robot leaves with commands handed to it but unanswered: each gets
/// `robot_offline` with its id as `ref` (what the app would otherwise wait
/// for forever); answered ones do not; the app that only commanded (never
/// subscribed) is answered too.
#[tokio::test]
async fn commands_the_robot_leaves_unanswered_get_robot_offline() {
    let app = spawn_app().await;
    let u = app.user("leaver").await;
    let secret = app.device(&u, "wimz-lv").await;
    let mut robot = app.robot("wimz-lv", &secret).await;
    let (mut sub, _) = app.subscribed_app(&u, "wimz-lv").await;
    let mut commander = app.app(&u).await;
    let command =
        |id: Value| json!({"type": "command", "device_id": "wimz-lv", "id": id, "command": "sit"});
    send(&mut sub, command(json!("c-1"))).await;
    send(&mut sub, command(json!("c-2"))).await;
    send(&mut commander, command(json!(7))).await;
    // A command without an id cannot be answered for; it is just passed on.
    send(
        &mut sub,
        json!({"type": "command", "device_id": "wimz-lv", "command": "down"}),
    )
    .await;
    let mut handed = Vec::new();
    for _ in 0..4 {
        handed.push(recv_type(&mut robot, "command").await);
    }
    let c1 = handed.iter().find(|c| c["id"] == "c-1").unwrap();
    send(
        &mut robot,
        json!({"type": "command_result", "reply_to": c1["reply_to"], "id": "c-1", "ok": true}),
    )
    .await;
    assert_eq!(recv_type(&mut sub, "command_result").await["id"], "c-1");
    robot.close(None).await.unwrap();

    let got = collect(&mut sub, &["error", "event"], 2).await;
    let errors: Vec<&Value> = got.iter().filter(|v| v["type"] == "error").collect();
    assert_eq!(errors.len(), 1, "{got:?}");
    assert_eq!(errors[0]["code"], "robot_offline");
    assert_eq!(errors[0]["ref"], "c-2");
    assert!(
        got.iter().any(|v| v["event"] == "robot_disconnected"),
        "{got:?}"
    );
    let e = recv_type(&mut commander, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_i64()),
        (Some("robot_offline"), Some(7)),
        "{e}"
    );
    assert_silent(&mut sub, Duration::from_millis(300)).await;
    assert_silent(&mut commander, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn robot_offline_is_an_error_with_ref() {
    let app = spawn_app().await;
    let u = app.user("offline").await;
    app.device(&u, "wimz-off").await;
    let mut a = app.app(&u).await;
    send(
        &mut a,
        json!({"type": "command", "device_id": "wimz-off", "id": "c-1", "command": "sit"}),
    )
    .await;
    let e = recv_type(&mut a, "error").await;
    assert_eq!(e["code"], "robot_offline");
    assert_eq!(e["ref"], "c-1");
}

#[tokio::test]
async fn strangers_cannot_subscribe_or_command_and_learn_nothing() {
    let app = spawn_app().await;
    let owner = app.user("owner-s").await;
    let stranger = app.user("stranger-s").await;
    let secret = app.device(&owner, "wimz-s").await;
    let mut robot = app.robot("wimz-s", &secret).await;
    let mut s = app.app(&stranger).await;
    let mut answers = Vec::new();
    for device in ["wimz-s", "wimz-does-not-exist"] {
        send(
            &mut s,
            json!({"type": "subscribe", "device_id": device, "id": "s1"}),
        )
        .await;
        let e = recv_type(&mut s, "error").await;
        send(
            &mut s,
            json!({"type": "command", "device_id": device, "id": "c1", "command": "treat"}),
        )
        .await;
        let c = recv_type(&mut s, "error").await;
        assert_eq!(e["code"], "not_owner");
        assert_eq!(c["code"], "not_owner");
        answers.push((e, c));
    }
    assert_eq!(
        answers[0], answers[1],
        "existing and missing devices answer alike"
    );
    assert_silent(&mut robot, Duration::from_millis(200)).await;
    // The stranger's unsubscribe is not_subscribed.
    send(
        &mut s,
        json!({"type": "unsubscribe", "device_id": "wimz-s"}),
    )
    .await;
    assert_eq!(recv_type(&mut s, "error").await["code"], "not_subscribed");
}

#[tokio::test]
async fn unsubscribe_stops_events() {
    let app = spawn_app().await;
    let u = app.user("unsub").await;
    let secret = app.device(&u, "wimz-u").await;
    let mut robot = app.robot("wimz-u", &secret).await;
    let (mut a, _) = app.subscribed_app(&u, "wimz-u").await;
    send(
        &mut a,
        json!({"type": "unsubscribe", "device_id": "wimz-u"}),
    )
    .await;
    let v = recv_type(&mut a, "unsubscribed").await;
    assert_eq!(v["device_id"], "wimz-u");
    event(&mut robot, "bark_detected", json!({})).await;
    assert_silent(&mut a, Duration::from_millis(300)).await;
    send(
        &mut a,
        json!({"type": "unsubscribe", "device_id": "wimz-u", "id": 3}),
    )
    .await;
    let e = recv_type(&mut a, "error").await;
    assert_eq!(e["code"], "not_subscribed");
    assert_eq!(e["ref"], 3);
}

#[tokio::test]
async fn a_second_robot_connection_replaces_the_first_with_4001() {
    let app = spawn_app().await;
    let u = app.user("replacer").await;
    let secret = app.device(&u, "wimz-r").await;
    let (mut a, _) = app.subscribed_app(&u, "wimz-r").await;
    let mut first = app.robot("wimz-r", &secret).await;
    recv_event(&mut a, "robot_connected").await;
    // Distinct timestamps: the same signature is never accepted twice.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut second = app.robot("wimz-r", &secret).await;
    assert_eq!(recv_close(&mut first).await, Some(4001));
    let v = recv_event(&mut a, "robot_disconnected").await;
    assert_eq!(v["reason"], "replaced");
    recv_event(&mut a, "robot_connected").await;
    event(&mut second, "treat_dispensed", json!({"count": 1})).await;
    assert_eq!(
        recv_event(&mut a, "treat_dispensed").await["data"]["count"],
        1
    );
    app.wait_stats("one robot", |s| s["robots_online"] == 1)
        .await;
}

#[tokio::test]
async fn handshake_auth_variants() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app().await;
    let u = app.user("handshake").await;
    let secret = app.device(&u, "wimz-h").await;

    // Robot by query parameters.
    let ts = wimz_relay::ids::unix_now();
    let url = format!(
        "{}/ws/device?device_id=wimz-h&timestamp={ts}&signature={}",
        app.ws_base,
        sign(&secret, "wimz-h", ts)
    );
    let (mut robot, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("query auth");
    send(&mut robot, json!({"type": "ping"})).await;
    assert!(
        recv_type(&mut robot, "pong").await["ts_ms"]
            .as_i64()
            .unwrap()
            > 0
    );
    drop(robot);

    // Robot by device token.
    let ts = wimz_relay::ids::unix_now() - 1;
    let r = app
        .post_json("/api/auth/device", &json!({"device_id": "wimz-h", "timestamp": ts, "signature": sign(&secret, "wimz-h", ts)}), None)
        .await;
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut req = format!("{}/ws/device", app.ws_base)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .expect("device token auth");

    // App by ?token= with ?device_id= subscribing at once.
    let url = format!("{}/ws/app?token={}&device_id=wimz-h", app.ws_base, u.token);
    let (mut a, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("query token");
    let v = recv_type(&mut a, "subscribed").await;
    assert_eq!(v["device_id"], "wimz-h");

    // Refusals are HTTP 401 at the handshake, never an upgrade.
    let ts = wimz_relay::ids::unix_now();
    let refused = [
        format!(
            "{}/ws/device?device_id=wimz-h&timestamp={ts}&signature={}",
            app.ws_base,
            sign("wrong", "wimz-h", ts)
        ),
        format!("{}/ws/device", app.ws_base),
        format!("{}/ws/app", app.ws_base),
        format!("{}/ws/app?token=garbage", app.ws_base),
        format!("{}/ws/app?token={token}", app.ws_base),
    ];
    for url in refused {
        match tokio_tungstenite::connect_async(url.clone()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401, "{url}")
            }
            other => panic!(
                "{url}: expected HTTP 401, got {:?}",
                other.map(|_| "upgraded")
            ),
        }
    }
    // A replayed robot signature is refused too.
    let ts = wimz_relay::ids::unix_now() - 2;
    let url = format!(
        "{}/ws/device?device_id=wimz-h&timestamp={ts}&signature={}",
        app.ws_base,
        sign(&secret, "wimz-h", ts)
    );
    tokio_tungstenite::connect_async(url.clone())
        .await
        .expect("first use");
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        _ => panic!("replayed signature accepted"),
    }
}

#[tokio::test]
async fn deleting_a_device_disconnects_its_robot() {
    let app = spawn_app().await;
    let u = app.user("deleter").await;
    let secret = app.device(&u, "wimz-d").await;
    let mut robot = app.robot("wimz-d", &secret).await;
    let (mut a, _) = app.subscribed_app(&u, "wimz-d").await;
    let r = app.delete("/api/devices/wimz-d", Some(&u.token)).await;
    assert_eq!(r.status(), 204);
    assert_eq!(recv_close(&mut robot).await, Some(4003));
    let v = recv_event(&mut a, "robot_disconnected").await;
    assert_eq!(v["reason"], "device_deleted");
    let v = recv_type(&mut a, "unsubscribed").await;
    assert_eq!(v["reason"], "device_deleted");
    // It cannot come back, and is no longer the user's.
    assert!(app.try_robot("wimz-d", &secret).await.is_err());
    send(&mut a, json!({"type": "subscribe", "device_id": "wimz-d"})).await;
    assert_eq!(recv_type(&mut a, "error").await["code"], "not_owner");
}

/// A robot that stops reading: commands fill its socket and then its queue
/// until the relay closes it as a slow consumer. Every command with an id
/// is still answered — `robot_offline` for each one the robot never
/// answered, whether it was queued, refused by the full queue, or sent after
/// the robot was gone.
#[tokio::test]
async fn every_command_to_a_robot_that_stops_reading_is_answered() {
    let app = spawn_app_with(|s| {
        s.limits.messages_per_s = 1e6;
        s.limits.messages_burst = 1e6;
        s.limits.outbound_queue = 16;
    })
    .await;
    let u = app.user("stuffer").await;
    let secret = app.device(&u, "wimz-stuck").await;
    let _robot = app.robot("wimz-stuck", &secret).await; // never read again

    // 20 apps × 10 commands × 60 KB: far more than the robot's socket
    // buffers, its queue of 16 and actix-ws's own 32 hold together. Spread
    // over apps so that no app's own queue of 16 overflows with answers.
    const APPS: usize = 20;
    const PER_APP: usize = 10;
    let pad = "q".repeat(60_000);
    let mut apps = Vec::new();
    for k in 0..APPS {
        let mut a = app.app(&u).await;
        let pad = pad.clone();
        apps.push(tokio::spawn(async move {
            for i in 0..PER_APP {
                send(
                    &mut a,
                    json!({"type": "command", "device_id": "wimz-stuck",
                           "id": format!("k-{k}-{i}"), "command": "photo", "data": {"pad": pad}}),
                )
                .await;
            }
            let mut answered = std::collections::HashSet::new();
            while answered.len() < PER_APP {
                let v = recv(&mut a).await;
                if v["type"] == "error" {
                    assert_eq!(v["code"], "robot_offline", "{v}");
                    let id = v["ref"].as_str().unwrap().to_string();
                    assert!(id.starts_with(&format!("k-{k}-")), "{v}");
                    assert!(answered.insert(id), "twice: {v}");
                }
            }
        }));
    }
    for a in apps {
        a.await.unwrap();
    }
    app.wait_stats("the robot closed", |s| s["robots_online"] == 0)
        .await;
}
