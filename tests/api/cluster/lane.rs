//! The lane (ARCHITECTURE.md "The cluster"): a home room appends its events
//! to Redis on its own worker's connection once the bridge proved the
//! device's term, and Redis's own refusal of a stale term still fences it;
//! a home room appends one event at a time, so its own apps get them in
//! order.

use super::*;
use crate::helpers::*;
use crate::scrape::Scrape;
use serde_json::json;

/// Once every instance's pub/sub is up: until then a robot's events are
/// not even tried on Redis, and coming up makes every ticket stale.
async fn up(c: Cluster) -> Cluster {
    for node in &c.nodes {
        wait_health(node, 200).await;
    }
    c
}

fn appends(s: &Scrape, path: &str) -> u64 {
    s.count("wimz_redis_appends_total", &[("path", path)])
}

/// Scrapes `a` until it has counted `n` appends, either way: an app
/// elsewhere may get an event off Redis before `a` has read Redis's answer
/// to its append (and counted it).
async fn counted(a: &RelayClient, n: u64) -> Scrape {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let s = Scrape::of(a).await;
        let got = appends(&s, "lane") + appends(&s, "bridge");
        assert!(got <= n, "{got} appends counted, {n} made: {}", s.text);
        if got == n {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{got} of {n}: {}",
            s.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A steady stream goes on the lane after its first events (which the
/// bridge appends, proving the term); then another instance claims the device in
/// Redis without A hearing of it (its `Replaced` lost): A's next event,
/// tried on the lane under the old term, is refused by Redis, and the
/// bridge fences the robot instead of appending it, so neither the stream
/// nor any app, on A or on B, gets it.
#[tokio::test]
async fn a_steady_stream_goes_on_the_lane_and_a_stale_term_is_still_fenced() {
    let c = up(cluster(2).await).await;
    let a = &c.nodes[0];
    let device = "wimz-lane-1";
    let (user, _, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "lane-user", device).await;
    let (mut on_a, _) = a.subscribed_app(&user, device).await;
    // `robot_connected`
    let before = counted(a, 1).await;
    for level in 0..10 {
        send(
            &mut robot,
            json!({"type": "event", "event": "battery", "data": {"level": level}}),
        )
        .await;
        for app in [&mut on_b, &mut on_a] {
            assert_eq!(recv_event(app, "battery").await["data"]["level"], level);
        }
    }
    let after = counted(a, 11).await;
    let (lane, bridge) = (
        appends(&after, "lane") - appends(&before, "lane"),
        appends(&after, "bridge") - appends(&before, "bridge"),
    );
    // The room's first event of the device (`robot_connected`) went through
    // the bridge, before the scrape; so did the first after it, which found
    // the worker's Redis connection new (made after the term was proven);
    // every one since on the lane.
    assert_eq!((lane, bridge), (9, 1), "{}", after.text);
    assert!(appends(&before, "bridge") >= 1, "{}", before.text);

    // Instance Z claims the device as the claim script does: presence, a
    // marker above the stream's top under a higher term, announced.
    let mut con = c.redis.connection().await;
    let stream = format!("wimz:{{{device}}}:stream");
    let marker = claim_in_redis(&mut con, device, "Z").await.marker();

    send(
        &mut robot,
        json!({"type": "event", "event": "battery", "data": {"level": 99}}),
    )
    .await;
    assert_eq!(recv_close(&mut robot).await, Some(4001), "replaced");
    let fenced = Scrape::of(a).await;
    assert_eq!(appends(&fenced, "lane"), appends(&after, "lane"));
    assert_eq!(appends(&fenced, "bridge"), appends(&after, "bridge"));
    let last: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(&stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(last[0].0, marker, "the fenced event is not in the stream");
    // Nor does any app, here or there, which would have been told at once
    // (a delivered event takes milliseconds; give it well over a second).
    let quiet = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
    for app in [&mut on_a, &mut on_b] {
        while let Ok(Some(v)) = tokio::time::timeout_at(quiet, next_json(app)).await {
            assert!(
                !(v["type"] == "event" && v["event"] == "battery"),
                "fenced event delivered: {v}"
            );
        }
    }
}

/// A robot leaving: its last event (`robot_disconnected`) goes through the
/// bridge, ahead of the device's release in the bridge's mailbox, and B's
/// app gets it next in the stream.
#[tokio::test]
async fn a_leaving_robots_last_event_goes_through_the_bridge_before_the_release() {
    let c = up(cluster(2).await).await;
    let a = &c.nodes[0];
    let device = "wimz-lane-2";
    let (_, _, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "lane-leaver", device).await;
    let mut last = 0;
    for level in 0..5 {
        send(
            &mut robot,
            json!({"type": "event", "event": "battery", "data": {"level": level}}),
        )
        .await;
        last = recv_event(&mut on_b, "battery").await["seq"]
            .as_u64()
            .unwrap();
    }
    // `robot_connected` and five batteries
    let before = counted(a, 6).await;
    assert!(
        appends(&before, "lane") >= 1,
        "the lane is in use: {}",
        before.text
    );
    drop(robot);
    let gone = recv_event(&mut on_b, "robot_disconnected").await;
    assert_eq!(gone["seq"].as_u64(), Some(last + 1), "{gone}");
    let after = counted(a, 7).await;
    assert_eq!(appends(&after, "lane"), appends(&before, "lane"));
    assert_eq!(appends(&after, "bridge"), appends(&before, "bridge") + 1);
}

/// A robot replaced by a new connection on the same instance (it came back
/// before its old socket timed out): its room publishes
/// `robot_disconnected{replaced}` and `robot_connected` in one go, and an
/// app there gets them in their seq order, one after the other.
#[tokio::test]
async fn a_robot_replaced_on_its_own_instance_is_told_in_order_there() {
    let c = up(cluster(2).await).await;
    let a = &c.nodes[0];
    let u = a.user("lane-replacer").await;
    let secret = a.device(&u, "wimz-lane-4").await;
    let _r1 = a.robot("wimz-lane-4", &secret).await;
    let (mut on_a, _) = a.subscribed_app(&u, "wimz-lane-4").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let _r2 = a.robot("wimz-lane-4", &secret).await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let v = recv(&mut on_a).await;
        if v["type"] == "event" {
            got.push((v["event"].as_str().unwrap().to_string(), v["seq"].as_u64()));
        }
    }
    assert_eq!(got[0].0, "robot_disconnected", "{got:?}");
    assert_eq!(got[1].0, "robot_connected", "{got:?}");
    assert_eq!(got[1].1, got[0].1.map(|s| s + 1), "{got:?}");
}
/// The worker's own connection goes silent (a middlebox dropped it; Redis
/// and the bridge's connection are fine): the event it was carrying is not
/// kept local. After the connection's timeout the bridge appends it with
/// its seq, and B's app gets every event in one epoch, none missing.
#[tokio::test]
async fn an_event_on_a_silent_worker_connection_is_appended_by_the_bridge() {
    lane_connection_lost(Lost::BothWays).await;
}

/// The worker's connection loses only Redis's answers: the event it
/// carried *was* appended and published, but the room never heard so.
/// The bridge, given the same event, finds it already at the stream's end
/// and takes that as done: no second copy, no new epoch.
#[tokio::test]
async fn an_append_whose_answer_was_lost_is_not_made_twice_nor_a_new_epoch() {
    lane_connection_lost(Lost::Answers).await;
}

enum Lost {
    BothWays,
    Answers,
}

/// Robot on A (talking to Redis through a proxy), app on B: four events
/// on the lane, then A's worker connection loses `what`, then four more.
async fn lane_connection_lost(what: Lost) {
    let redis = Redis::start();
    let proxy = FreezingProxy::start(redis.port).await;
    let store = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}/shared.db", store.path().display());
    // A talks to Redis through the proxy.
    let (r, su) = (
        Backend::Single(format!("redis://127.0.0.1:{}", proxy.port)),
        store_url.clone(),
    );
    let a = spawn_app_with(move |s| clustered(s, "A", &r, &su)).await;
    let (r, su) = (Backend::Single(redis.url()), store_url.clone());
    let b = spawn_app_with(move |s| clustered(s, "B", &r, &su)).await;
    wait_health(&a, 200).await;
    wait_health(&b, 200).await;
    // A's connections so far (its bridge's, its pub/sub) stay as they are;
    // the one its robot's worker makes from here on is the one to freeze.
    proxy.mark();
    let u = a.user("lane-silent").await;
    let secret = a.device(&u, "wimz-lane-3").await;
    let mut robot = a.robot("wimz-lane-3", &secret).await;
    let (mut on_b, _) = b.subscribed_app(&u, "wimz-lane-3").await;
    let mut seqs = Vec::new();
    let mut epochs = std::collections::HashSet::new();
    for i in 0..4 {
        bark(&mut robot, i).await;
        let v = recv_event(&mut on_b, "bark_detected").await;
        seqs.push(v["seq"].as_u64().unwrap());
        epochs.insert(v["epoch"].as_i64().unwrap());
    }
    // `robot_connected` and four barks
    let s = counted(&a, 5).await;
    assert!(appends(&s, "lane") >= 1, "the lane is in use: {}", s.text);
    match what {
        Lost::BothWays => proxy.freeze_commands_since_mark(),
        Lost::Answers => proxy.deafen_commands_since_mark(),
    }
    for i in 4..8 {
        bark(&mut robot, i).await;
        let v = loop {
            let v = recv_within(&mut on_b, PATIENCE * 3).await;
            assert_ne!(v["type"], "recovered", "{v}");
            if v["type"] == "event" && v["event"] == "bark_detected" {
                break v;
            }
        };
        assert_eq!(v["data"]["i"], i, "{v}");
        seqs.push(v["seq"].as_u64().unwrap());
        epochs.insert(v["epoch"].as_i64().unwrap());
    }
    assert_eq!(epochs.len(), 1, "one epoch: {epochs:?}");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "nothing missing: {seqs:?}"
    );
    // Every event is in A's count once, whichever way it went.
    counted(&a, 9).await;
}

async fn bark(robot: &mut Ws, i: u64) {
    send(
        robot,
        json!({"type": "event", "event": "bark_detected", "data": {"i": i}}),
    )
    .await;
}
