//! Panics inside actors are caught (`wimz_relay::supervise`): the
//! long-lived actors restart in the same mailbox with their state, a device
//! room that panics ends cleanly (robot closed with 1011, apps moved to a
//! fresh room with `recovered{complete:false}`), and sockets cope with a
//! room that is gone. Panics are injected with the test-only `InjectPanic`
//! message, sent in-process (no route or frame can send it).

use crate::helpers::*;
use crate::webrtc::{offer_answer, relay, request, scene, sid, Scene};
use serde_json::{json, Value};
use wimz_relay::ids::DeviceId;
use wimz_relay::room::messages::{FindRoom, InjectSilentStop};
use wimz_relay::room::DeviceRoom;
use wimz_relay::supervise::InjectPanic;

fn fast(s: &mut wimz_relay::config::Settings) {
    s.limits.messages_per_s = 100_000.0;
    s.limits.messages_burst = 100_000.0;
}

async fn event(ws: &mut Ws, name: &str, data: Value) {
    send(ws, json!({"type": "event", "event": name, "data": data})).await;
}

/// A robot socket signed with timestamp `ts` (a reconnect needs a fresh
/// signature), attached to its room when this returns.
async fn robot_at(app: &TestApp, device: &str, secret: &str, ts: i64) -> Ws {
    let url = format!(
        "{}/ws/device?device_id={device}&timestamp={ts}&signature={}",
        app.ws_base,
        sign(secret, device, ts)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("robot socket opens");
    send(&mut ws, json!({"type": "ping"})).await;
    recv_type(&mut ws, "pong").await;
    ws
}

/// The live room of `device`, from the directory.
async fn room_of(app: &TestApp, device: &str) -> actix::Addr<DeviceRoom> {
    app.handle
        .state
        .directory
        .send(FindRoom {
            device: DeviceId::parse(device).unwrap(),
        })
        .await
        .expect("directory answers")
        .expect("the device has a room")
}

/// `n` events from `robot`; `app` must get each with seq `first..first+n`.
async fn events_flow(robot: &mut Ws, app: &mut Ws, first: u64, n: u64, epoch: &Value) {
    for i in 0..n {
        event(robot, "mission_progress", json!({"i": i})).await;
    }
    for i in 0..n {
        let v = recv_type(app, "event").await;
        assert_eq!(v["event"], "mission_progress", "{v}");
        assert_eq!(v["data"]["i"], i, "{v}");
        assert_eq!(v["seq"].as_u64(), Some(first + i), "{v}");
        assert_eq!(&v["epoch"], epoch, "{v}");
    }
}

#[tokio::test]
async fn a_panicking_directory_restarts_in_the_same_mailbox_with_its_rooms() {
    let app = spawn_app_with(fast).await;
    let u = app.user("superdir").await;
    let secret1 = app.device(&u, "wimz-sd1").await;
    let secret2 = app.device(&u, "wimz-sd2").await;
    let mut robot1 = app.robot("wimz-sd1", &secret1).await;
    let (mut app1, sub1) = app.subscribed_app(&u, "wimz-sd1").await;
    let epoch1 = sub1["epoch"].clone();
    let seq1 = sub1["seq"].as_u64().unwrap();
    let room1 = room_of(&app, "wimz-sd1").await;
    let s = app.stats().await;
    assert_eq!(
        (s["actor_panics"].as_u64(), s["actor_restarts"].as_u64()),
        (Some(0), Some(0))
    );

    let directory = app.handle.state.directory.clone();
    let answer = directory.send(InjectPanic).await;
    assert!(answer.is_err(), "the message that panicked gets no answer");
    app.wait_stats("the directory restarted", |s| {
        s["actor_panics"] == 1 && s["actor_restarts"] == 1
    })
    .await;

    // The same address still reaches it, and it still knows the live room.
    let again = room_of(&app, "wimz-sd1").await;
    assert_eq!(again, room1, "the live room was kept");
    // Sockets connected before the panic carry on, numbering unbroken.
    events_flow(&mut robot1, &mut app1, seq1 + 1, 50, &epoch1).await;

    // New robots and apps go through the directory: they connect and get
    // every event in order.
    let mut robot2 = app.robot("wimz-sd2", &secret2).await;
    let (mut app2, sub2) = app.subscribed_app(&u, "wimz-sd2").await;
    assert_eq!(sub2["robot_online"], true);
    let epoch2 = sub2["epoch"].clone();
    assert!(epoch2.as_i64() > epoch1.as_i64(), "epochs keep growing");
    events_flow(
        &mut robot2,
        &mut app2,
        sub2["seq"].as_u64().unwrap() + 1,
        50,
        &epoch2,
    )
    .await;
    let (mut app3, sub3) = app.subscribed_app(&u, "wimz-sd1").await;
    assert_eq!(sub3["epoch"], epoch1, "same room as before the panic");
    event(&mut robot1, "bark_detected", json!({})).await;
    let v = recv_event(&mut app3, "bark_detected").await;
    assert_eq!(v["seq"].as_u64(), Some(seq1 + 51));
    assert_eq!(
        recv_event(&mut app1, "bark_detected").await["seq"],
        v["seq"]
    );

    let s = app
        .wait_stats("both robots and rooms", |s| {
            s["robots_online"] == 2 && s["rooms"] == 2 && s["apps_connected"] == 3
        })
        .await;
    assert_eq!(s["actor_panics"], 1);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("wimz_actor_panics_total{"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("wimz_actor_restarts_total{") && l.ends_with(" 1")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_panicking_session_supervisor_keeps_its_sessions_and_starts_new_ones() {
    let Scene {
        app,
        mut robot,
        mut phone,
        ..
    } = scene(relay(30.0, 300.0, 4).await, "wimz-ss").await;
    let (req, _) = request(&mut phone, &mut robot, "wimz-ss").await;
    let first = sid(&req);
    offer_answer(&mut phone, &mut robot, &first).await;
    app.wait_stats("one session", |s| s["webrtc_sessions_active"] == 1)
        .await;

    let answer = app.handle.state.sessions.send(InjectPanic).await;
    assert!(answer.is_err(), "the message that panicked gets no answer");
    app.wait_stats("the supervisor restarted", |s| {
        s["actor_panics"] == 1 && s["actor_restarts"] == 1
    })
    .await;

    // The session set up before the panic still routes both ways.
    send(
        &mut phone,
        json!({"type": "webrtc_ice", "session_id": first, "candidate": {"c": 1}}),
    )
    .await;
    let v = recv_type(&mut robot, "webrtc_ice").await;
    assert_eq!(v["candidate"]["c"], 1);
    send(
        &mut robot,
        json!({"type": "webrtc_ice", "session_id": first, "candidate": {"c": 2}}),
    )
    .await;
    assert_eq!(
        recv_type(&mut phone, "webrtc_ice").await["candidate"]["c"],
        2
    );

    // A new session can be requested and set up.
    let (req, creds) = request(&mut phone, &mut robot, "wimz-ss").await;
    let second = sid(&req);
    assert_eq!(sid(&creds), second);
    assert_ne!(second, first);
    offer_answer(&mut phone, &mut robot, &second).await;
    app.wait_stats("two sessions", |s| s["webrtc_sessions_active"] == 2)
        .await;

    // Closing the first still ends exactly that one.
    send(
        &mut phone,
        json!({"type": "webrtc_close", "session_id": first, "reason": "done"}),
    )
    .await;
    let v = recv_type(&mut robot, "webrtc_close").await;
    assert_eq!(sid(&v), first);
    app.wait_stats("one session left", |s| s["webrtc_sessions_active"] == 1)
        .await;
}

#[tokio::test]
async fn a_restarted_session_supervisor_still_times_sessions_out() {
    // The restart drops the context's timers; `started` arms them again.
    let Scene {
        app,
        mut robot,
        mut phone,
        ..
    } = scene(relay(0.5, 300.0, 4).await, "wimz-st").await;
    assert!(app.handle.state.sessions.send(InjectPanic).await.is_err());
    app.wait_stats("the supervisor restarted", |s| s["actor_restarts"] == 1)
        .await;
    let (req, _) = request(&mut phone, &mut robot, "wimz-st").await;
    // No offer: the setup timeout must end it (within PATIENCE).
    let v = recv_type(&mut phone, "webrtc_close").await;
    assert_eq!(sid(&v), sid(&req));
    assert_eq!(v["reason"], "timeout");
}

#[tokio::test]
async fn a_session_whose_setup_the_restart_dropped_ends_with_an_error() {
    // TURN credentials from an upstream that accepts and never answers: the
    // session's setup is still fetching when the supervisor panics.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    let (accepted_tx, accepted) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        let mut tell = Some(accepted_tx);
        while let Ok((conn, _)) = upstream.accept() {
            held.push(conn);
            if let Some(t) = tell.take() {
                let _ = t.send(());
            }
        }
    });
    let app = spawn_app_with(move |s| {
        s.turn.provider = wimz_relay::config::TurnProvider::Cloudflare;
        s.turn.api_base = format!("http://127.0.0.1:{port}/");
        s.turn.key_id = "key".into();
        s.turn.api_token = wimz_relay::secret::Secret::new("token");
    })
    .await;
    let Scene {
        app,
        mut phone,
        robot: _robot, // kept online: the setup gets as far as TURN
        ..
    } = scene(app, "wimz-su").await;
    send(
        &mut phone,
        json!({"type": "webrtc_request", "device_id": "wimz-su", "id": "r1"}),
    )
    .await;
    tokio::time::timeout(PATIENCE, accepted)
        .await
        .expect("the setup reaches the TURN upstream")
        .unwrap();
    assert!(app.handle.state.sessions.send(InjectPanic).await.is_err());
    let e = recv_type(&mut phone, "error").await;
    assert_eq!(e["code"], "internal");
    assert_eq!(e["message"], "WebRTC session setup failed; retry");
}

#[tokio::test]
async fn a_panicking_room_ends_cleanly_and_its_robot_and_apps_move_to_a_fresh_room() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.rooms.idle_grace_s = 0.2;
    })
    .await;
    let u = app.user("superroom").await;
    let secret = app.device(&u, "wimz-sr").await;
    let ts = wimz_relay::ids::unix_now();
    let mut robot = robot_at(&app, "wimz-sr", &secret, ts).await;
    let (mut phone, sub) = app.subscribed_app(&u, "wimz-sr").await;
    // A second app that only commands (a member, not subscribed).
    let mut commander = app.app(&u).await;
    send(
        &mut commander,
        json!({"type": "command", "device_id": "wimz-sr", "id": "c-1", "command": "sit"}),
    )
    .await;
    recv_type(&mut robot, "command").await;
    let old_epoch = sub["epoch"].as_i64().unwrap();
    events_flow(
        &mut robot,
        &mut phone,
        sub["seq"].as_u64().unwrap() + 1,
        5,
        &sub["epoch"],
    )
    .await;
    app.wait_stats("one room", |s| s["rooms"] == 1 && s["robots_online"] == 1)
        .await;

    let room = room_of(&app, "wimz-sr").await;
    assert!(
        room.send(InjectPanic).await.is_err(),
        "no answer from a panic"
    );

    // The robot is closed with 1011 (device_unavailable) so it reconnects.
    assert_eq!(recv_close(&mut robot).await, Some(1011));
    // The subscribed app is moved to a fresh room by the relay: a new
    // `subscribed` (new epoch, robot offline), then `recovered` incomplete.
    let s = recv(&mut phone).await;
    assert_eq!(s["type"], "subscribed", "{s}");
    assert_eq!(s["device_id"], "wimz-sr");
    assert_eq!(s["robot_online"], false);
    let new_epoch = s["epoch"].as_i64().unwrap();
    assert!(new_epoch > old_epoch, "{s}");
    assert_eq!(s["seq"], 0);
    let r = recv(&mut phone).await;
    assert_eq!(
        r,
        json!({"type": "recovered", "device_id": "wimz-sr", "complete": false, "reason": "epoch_changed"})
    );
    let stats = app
        .wait_stats("old room gone, robot closed", |s| {
            s["rooms"] == 1 && s["robots_online"] == 0 && s["apps_connected"] == 2
        })
        .await;
    assert_eq!(stats["actor_panics"], 1);
    assert_eq!(stats["actor_restarts"], 0, "a room is never restarted");
    assert!(!room.connected(), "the failed room's mailbox is gone");

    // The robot reconnects and attaches to the fresh room; the app hears it
    // and every event after, numbered from 1 in the new epoch.
    let mut robot = robot_at(&app, "wimz-sr", &secret, ts + 1).await;
    let v = recv_event(&mut phone, "robot_connected").await;
    assert_eq!(
        (v["epoch"].as_i64(), v["seq"].as_u64()),
        (Some(new_epoch), Some(1))
    );
    events_flow(&mut robot, &mut phone, 2, 20, &json!(new_epoch)).await;
    // The commanding app joins the fresh room by itself on its next command.
    send(
        &mut commander,
        json!({"type": "command", "device_id": "wimz-sr", "id": "c-2", "command": "down"}),
    )
    .await;
    let c = recv_type(&mut robot, "command").await;
    assert_eq!(c["id"], "c-2");
    send(
        &mut robot,
        json!({"type": "command_result", "reply_to": c["reply_to"], "id": "c-2", "ok": true}),
    )
    .await;
    assert_eq!(
        recv_type(&mut commander, "command_result").await["id"],
        "c-2"
    );

    // Everyone leaves: the room count returns to zero.
    robot.close(None).await.unwrap();
    phone.close(None).await.unwrap();
    commander.close(None).await.unwrap();
    app.wait_stats("everything gone", |s| {
        s["rooms"] == 0 && s["robots_online"] == 0 && s["apps_connected"] == 0
    })
    .await;
}

#[tokio::test]
async fn a_room_that_vanished_is_noticed_by_its_sockets_on_the_heartbeat() {
    // A room gone without telling anyone (not a panic: a failed room tells
    // its sockets itself): the next heartbeat tick closes the robot with
    // 1011 and moves the subscribed app to a fresh room.
    let app = spawn_app_with(|s| {
        fast(s);
        s.heartbeat.interval_s = 0.2;
    })
    .await;
    let u = app.user("vanish").await;
    let secret = app.device(&u, "wimz-sv").await;
    let ts = wimz_relay::ids::unix_now();
    let mut robot = robot_at(&app, "wimz-sv", &secret, ts).await;
    let (mut phone, sub) = app.subscribed_app(&u, "wimz-sv").await;
    let room = room_of(&app, "wimz-sv").await;
    room.send(InjectSilentStop).await.expect("handled");

    assert_eq!(recv_close(&mut robot).await, Some(1011));
    let s = recv_type(&mut phone, "subscribed").await;
    assert!(s["epoch"].as_i64() > sub["epoch"].as_i64(), "{s}");
    let r = recv(&mut phone).await;
    assert_eq!(
        r,
        json!({"type": "recovered", "device_id": "wimz-sv", "complete": false, "reason": "gap"})
    );
    let mut robot = robot_at(&app, "wimz-sv", &secret, ts + 1).await;
    let v = recv_event(&mut phone, "robot_connected").await;
    assert_eq!(v["epoch"], s["epoch"]);
    events_flow(&mut robot, &mut phone, 2, 5, &s["epoch"]).await;
    assert_eq!(app.stats().await["actor_panics"], 0);
}

#[tokio::test]
async fn unsubscribing_from_a_room_that_vanished_is_answered_and_the_socket_carries_on() {
    // The default heartbeat (30 s): nothing notices the room is gone before
    // the app's `unsubscribe` reaches it.
    let app = spawn_app_with(fast).await;
    let u = app.user("unsubvanish").await;
    let secret = app.device(&u, "wimz-uv").await;
    let ts = wimz_relay::ids::unix_now();
    let mut robot = robot_at(&app, "wimz-uv", &secret, ts).await;
    let (mut phone, sub) = app.subscribed_app(&u, "wimz-uv").await;
    let room = room_of(&app, "wimz-uv").await;
    room.send(InjectSilentStop).await.expect("handled");

    send(
        &mut phone,
        json!({"type": "unsubscribe", "device_id": "wimz-uv", "id": "u-1"}),
    )
    .await;
    assert_eq!(
        recv(&mut phone).await,
        json!({"type": "unsubscribed", "device_id": "wimz-uv"})
    );
    send(&mut phone, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut phone).await["type"], "pong");
    // Unsubscribed means no subscription is moved to a fresh room for it.
    send(
        &mut phone,
        json!({"type": "unsubscribe", "device_id": "wimz-uv", "id": "u-2"}),
    )
    .await;
    let e = recv(&mut phone).await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("not_subscribed"), Some("u-2"))
    );

    // The robot's next frame finds its room gone: 1011, and it reconnects.
    event(&mut robot, "bark_detected", json!({})).await;
    assert_eq!(recv_close(&mut robot).await, Some(1011));
    // The same socket subscribes again: a fresh room, and its events.
    send(
        &mut phone,
        json!({"type": "subscribe", "device_id": "wimz-uv"}),
    )
    .await;
    let s = recv(&mut phone).await;
    assert_eq!(s["type"], "subscribed", "{s}");
    assert!(s["epoch"].as_i64() > sub["epoch"].as_i64(), "{s}");
    let mut robot = robot_at(&app, "wimz-uv", &secret, ts + 1).await;
    let v = recv_event(&mut phone, "robot_connected").await;
    assert_eq!(v["epoch"], s["epoch"]);
    let first = v["seq"].as_u64().unwrap() + 1;
    events_flow(&mut robot, &mut phone, first, 5, &s["epoch"]).await;
    // And a live room confirms an unsubscribe itself; nothing follows it.
    send(
        &mut phone,
        json!({"type": "unsubscribe", "device_id": "wimz-uv"}),
    )
    .await;
    assert_eq!(
        recv(&mut phone).await,
        json!({"type": "unsubscribed", "device_id": "wimz-uv"})
    );
    event(&mut robot, "bark_detected", json!({})).await;
    assert_silent(&mut phone, std::time::Duration::from_millis(300)).await;
    assert_eq!(app.stats().await["actor_panics"], 0);
}

#[tokio::test]
async fn panicking_cluster_bridges_restart_and_the_instances_stay_one_relay() {
    let c = crate::cluster::cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let u = a.user("superbridge").await;
    let secret = a.device(&u, "wimz-sb").await;
    let secret2 = a.device(&u, "wimz-sb2").await;
    let mut robot = a.robot("wimz-sb", &secret).await;
    let (mut on_b, sub) = b.subscribed_app(&u, "wimz-sb").await;
    assert_eq!(sub["robot_online"], true);

    for node in [a, b] {
        let bridge = node.handle.state.cluster.clone().expect("clustered");
        assert!(bridge.send(InjectPanic).await.is_err());
        node.wait_stats("the bridge restarted", |s| {
            s["actor_panics"] == 1 && s["actor_restarts"] == 1
        })
        .await;
    }

    // Events from the robot on A reach B's app exactly once, in order: the
    // subscriber task and its subscriptions outlive the bridge's restart.
    events_flow(
        &mut robot,
        &mut on_b,
        sub["seq"].as_u64().unwrap() + 1,
        50,
        &sub["epoch"],
    )
    .await;
    // Commands and results still cross instances.
    send(
        &mut on_b,
        json!({"type": "command", "device_id": "wimz-sb", "id": "x-1", "command": "sit"}),
    )
    .await;
    let cmd = recv_type(&mut robot, "command").await;
    send(
        &mut robot,
        json!({"type": "command_result", "reply_to": cmd["reply_to"], "id": "x-1", "ok": true}),
    )
    .await;
    assert_eq!(recv_type(&mut on_b, "command_result").await["id"], "x-1");
    // A device first mirrored after the restart is watched too.
    let mut robot2 = a.robot("wimz-sb2", &secret2).await;
    let (mut on_b2, sub2) = b.subscribed_app(&u, "wimz-sb2").await;
    assert_eq!(sub2["robot_online"], true);
    events_flow(
        &mut robot2,
        &mut on_b2,
        sub2["seq"].as_u64().unwrap() + 1,
        20,
        &sub2["epoch"],
    )
    .await;
    assert_silent(&mut on_b, std::time::Duration::from_millis(300)).await;
    let health: Value = b.get("/health", None).await.json().await.unwrap();
    assert_eq!(health["cluster"], "ok");
}

#[tokio::test]
async fn a_panicking_mirror_room_moves_its_apps_to_a_fresh_mirror_of_the_same_epoch() {
    let c = crate::cluster::cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let u = a.user("supermirror").await;
    let secret = a.device(&u, "wimz-sm").await;
    let mut robot = a.robot("wimz-sm", &secret).await;
    let (mut on_b, sub) = b.subscribed_app(&u, "wimz-sm").await;
    let epoch = sub["epoch"].clone();
    let first = sub["seq"].as_u64().unwrap() + 1;
    events_flow(&mut robot, &mut on_b, first, 10, &epoch).await;

    let mirror = room_of(b, "wimz-sm").await;
    assert!(mirror.send(InjectPanic).await.is_err());
    // A fresh mirror continues the device's epoch (from Redis): what B's app
    // may have missed is unknown, so the buffer is replayed and the
    // recovery says `gap`.
    let s = recv(&mut on_b).await;
    assert_eq!(s["type"], "subscribed", "{s}");
    assert_eq!(s["epoch"], epoch);
    assert_eq!(s["robot_online"], true);
    let last = first + 9;
    assert_eq!(s["seq"].as_u64(), Some(last));
    let mut replayed = Vec::new();
    let r = loop {
        let v = recv(&mut on_b).await;
        if v["type"] != "event" {
            break v;
        }
        replayed.push(v["seq"].as_u64().unwrap());
    };
    assert_eq!(
        r,
        json!({"type": "recovered", "device_id": "wimz-sm", "complete": false, "reason": "gap"})
    );
    assert_eq!(replayed.last(), Some(&last), "{replayed:?}");
    assert!(
        replayed.windows(2).all(|w| w[1] == w[0] + 1),
        "{replayed:?}"
    );
    // The robot on A was not touched; its events reach B's app, in order.
    events_flow(&mut robot, &mut on_b, last + 1, 20, &epoch).await;
    b.wait_stats("one room on B", |s| {
        s["rooms"] == 1 && s["actor_panics"] == 1
    })
    .await;
    assert_eq!(a.stats().await["actor_panics"], 0);
}

#[tokio::test]
async fn a_panicking_home_room_in_a_cluster_moves_everyone_on_and_remote_apps_keep_the_order() {
    let c = crate::cluster::cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let u = a.user("superhome").await;
    let secret = a.device(&u, "wimz-sh").await;
    let ts = wimz_relay::ids::unix_now();
    let mut robot = robot_at(a, "wimz-sh", &secret, ts).await;
    let (mut on_a, sub_a) = a.subscribed_app(&u, "wimz-sh").await;
    let (mut on_b, sub_b) = b.subscribed_app(&u, "wimz-sh").await;
    assert_eq!(sub_b["robot_online"], true);
    let epoch = sub_a["epoch"].clone();
    let first = sub_a["seq"].as_u64().unwrap() + 1;
    assert_eq!(
        (&sub_b["epoch"], sub_b["seq"].as_u64()),
        (&epoch, Some(first - 1))
    );
    for i in 0..5 {
        event(&mut robot, "mission_progress", json!({"i": i})).await;
    }
    // Every numbered event B's app sees, in arrival order, over the whole test.
    let mut b_seqs: Vec<(i64, u64)> = Vec::new();
    for i in 0..5 {
        let v = recv_type(&mut on_b, "event").await;
        assert_eq!(v["data"]["i"], i, "{v}");
        b_seqs.push((v["epoch"].as_i64().unwrap(), v["seq"].as_u64().unwrap()));
    }
    for _ in 0..5 {
        recv_type(&mut on_a, "event").await;
    }

    let home = room_of(a, "wimz-sh").await;
    assert!(
        home.send(InjectPanic).await.is_err(),
        "no answer from a panic"
    );

    // As on a single instance: the robot is closed with 1011...
    assert_eq!(recv_close(&mut robot).await, Some(1011));
    // ...and A's app is moved to a fresh room, told events may be lost.
    let s = recv(&mut on_a).await;
    assert_eq!(s["type"], "subscribed", "{s}");
    assert_eq!(s["device_id"], "wimz-sh");
    let r = loop {
        let v = recv(&mut on_a).await;
        if v["type"] != "event" {
            break v;
        }
    };
    assert_eq!(r["type"], "recovered", "{r}");
    assert_eq!(r["complete"], false, "{r}");
    assert!(
        r["reason"] == "gap" || r["reason"] == "epoch_changed",
        "{r}"
    );
    a.wait_stats("the failed room is gone", |s| {
        s["actor_panics"] == 1 && s["rooms"] == 1 && s["robots_online"] == 0
    })
    .await;
    assert!(!home.connected(), "the failed room's mailbox is gone");

    // The robot reconnects to A; both apps get its events, B's without a
    // seq handed out twice.
    let mut robot = robot_at(a, "wimz-sh", &secret, ts + 1).await;
    let v = recv_event(&mut on_a, "robot_connected").await;
    let (epoch2, seq2) = (v["epoch"].clone(), v["seq"].as_u64().unwrap());
    for i in 100..120 {
        event(&mut robot, "mission_progress", json!({"i": i})).await;
    }
    for i in 100..120 {
        let v = recv_type(&mut on_a, "event").await;
        assert_eq!(v["data"]["i"], i, "{v}");
        assert_eq!(v["epoch"], epoch2, "{v}");
        assert_eq!(v["seq"].as_u64(), Some(seq2 + 1 + (i - 100)), "{v}");
    }
    let mut next = 100;
    while next < 120 {
        let v = recv(&mut on_b).await;
        if v["type"] == "event" {
            let at = (v["epoch"].as_i64().unwrap(), v["seq"].as_u64().unwrap());
            if v["unnumbered"] != true {
                b_seqs.push(at);
            }
            if v["event"] == "mission_progress" {
                assert_eq!(v["data"]["i"], next, "{v}");
                next += 1;
            }
        } else {
            assert!(
                v["type"] == "recovered" && v["complete"] == false,
                "B's app hears only events and gap notices: {v}"
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    assert!(
        b_seqs.iter().all(|at| seen.insert(*at)),
        "a seq twice: {b_seqs:?}"
    );
    assert!(
        b_seqs.windows(2).all(|w| w[0] < w[1]),
        "out of order: {b_seqs:?}"
    );
    assert_eq!(b_seqs.last().map(|at| at.1), Some(seq2 + 20));
    assert_eq!(b.stats().await["actor_panics"], 0);
}
