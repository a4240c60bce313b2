//! Device credentials across instances: a signature used on one instance
//! is refused on another, and a device deleted on one loses its robot on
//! another.

use super::*;
use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn a_replayed_signature_is_refused_on_another_instance() {
    let c = cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let u = a.user("clreplay").await;
    let secret = a.device(&u, "wimz-rp").await;
    let now = wimz_relay::ids::unix_now();
    let body = json!({"device_id": "wimz-rp", "timestamp": now, "signature": sign(&secret, "wimz-rp", now)});
    assert_eq!(
        a.post_json("/api/auth/device", &body, None).await.status(),
        200
    );
    assert_eq!(
        b.post_json("/api/auth/device", &body, None).await.status(),
        401
    );
    // Same for a socket handshake.
    let ts = now - 3;
    let url = |app: &TestApp| {
        format!(
            "{}/ws/device?device_id=wimz-rp&timestamp={ts}&signature={}",
            app.ws_base,
            sign(&secret, "wimz-rp", ts)
        )
    };
    tokio_tungstenite::connect_async(url(a))
        .await
        .expect("first use on A");
    assert!(
        tokio_tungstenite::connect_async(url(b)).await.is_err(),
        "replay on B refused"
    );
}

#[tokio::test]
async fn deleting_a_device_on_b_disconnects_its_robot_on_a() {
    let c = cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let u = a.user("cldelete").await;
    let secret = a.device(&u, "wimz-del").await;
    let mut robot = a.robot("wimz-del", &secret).await;
    let r = b.delete("/api/devices/wimz-del", Some(&u.token)).await;
    assert_eq!(r.status(), 204);
    assert_eq!(recv_close(&mut robot).await, Some(4003));
}

/// The robot's last mission reaches the device list of an instance that
/// has no room for the device (it reads Redis, where A's bridge writes the
/// snapshots its rooms left it, at its next flush) — including that of an
/// event appended on the lane, not by the bridge.
#[tokio::test]
async fn a_robots_snapshot_reaches_an_instance_with_no_room_for_it() {
    let c = cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    wait_health(a, 200).await;
    wait_health(b, 200).await;
    let u = a.user("clsnapshot").await;
    let secret = a.device(&u, "wimz-snap").await;
    let mut robot = a.robot("wimz-snap", &secret).await;
    let (mut on_a, _) = a.subscribed_app(&u, "wimz-snap").await;
    for stage in 1..=5 {
        send(
            &mut robot,
            json!({"type": "event", "event": "mission_progress", "data": {"mission": "sit", "stage": stage}}),
        )
        .await;
        recv_event(&mut on_a, "mission_progress").await;
    }
    let s = crate::scrape::Scrape::of(a).await;
    assert!(
        s.count("wimz_redis_appends_total", &[("path", "lane")]) >= 1,
        "the lane is in use: {}",
        s.text
    );
    let list = listed_at_stage(b, &u, 5, "B's list never had A's last snapshot").await;
    assert_eq!(list[0]["online"], true, "{list}");
}

/// `at`'s device list, polled until its first device's mission is at
/// `stage` (panics with `never` and the last list after [`PATIENCE`]).
async fn listed_at_stage(at: &TestApp, u: &User, stage: u64, never: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let list: serde_json::Value = at
            .get("/api/devices", Some(&u.token))
            .await
            .json()
            .await
            .unwrap();
        if list[0]["mission"]["stage"] == stage {
            return list;
        }
        assert!(tokio::time::Instant::now() < deadline, "{never}: {list}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A snapshot flush whose write Redis refuses (here: the device's snapshot
/// key holds a string, so the `SNAPSHOT` script's `HGET` answers
/// `WRONGTYPE`) keeps the snapshot for the next flush: once the key is
/// fixed, B, with no room for the device, lists the robot's last mission
/// without another event.
#[tokio::test]
async fn a_snapshot_whose_write_failed_is_written_at_a_later_flush() {
    let redis = Redis::start();
    let store = tempfile::tempdir().unwrap();
    let (a, b) = a_and_b(&redis, &store, 1000, 1000).await;
    let key = "wimz:{wimz-snapfail}:snap";
    let mut c = redis.connection().await;
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("not a hash")
        .query_async(&mut c)
        .await
        .unwrap();
    let u = a.user("clsnapfail").await;
    let secret = a.device(&u, "wimz-snapfail").await;
    let mut robot = a.robot("wimz-snapfail", &secret).await;
    let (mut on_a, _) = a.subscribed_app(&u, "wimz-snapfail").await;
    send(
        &mut robot,
        json!({"type": "event", "event": "mission_progress", "data": {"mission": "sit", "stage": 7}}),
    )
    .await;
    recv_event(&mut on_a, "mission_progress").await;
    // More than two flushes (`cluster.snapshot_flush_ms`, 1 s): each
    // refused, the key still a string.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let still: String = redis::cmd("GET")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(still, "not a hash");
    let _: () = redis::cmd("DEL")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap();
    listed_at_stage(
        &b,
        &u,
        7,
        "B's list never had the snapshot whose first writes failed",
    )
    .await;
}

/// The robot moves from A to B: A's last snapshot, still waiting for A's
/// flush (`cluster.snapshot_flush_ms`, 4 s on A), lands after B (100 ms)
/// wrote a newer one — and changes nothing, for A numbered it under an
/// older term. Before, the former home's late write left every instance
/// with no room for the device listing the robot's old mission until its
/// next change.
#[tokio::test]
async fn a_former_homes_late_snapshot_does_not_overwrite_the_new_homes() {
    let redis = Redis::start();
    let store = tempfile::tempdir().unwrap();
    let (a, b) = a_and_b(&redis, &store, 4000, 100).await;
    let mut c = redis.connection().await;
    let stage_in_redis = async |c: &mut redis::aio::MultiplexedConnection| -> Option<u64> {
        let m: Option<String> = redis::cmd("HGET")
            .arg("wimz:{wimz-snapmove}:snap")
            .arg("mission")
            .query_async(c)
            .await
            .unwrap();
        m.and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok())
            .and_then(|m| m["stage"].as_u64())
    };
    let wait_for_stage = async |c: &mut redis::aio::MultiplexedConnection, stage: u64| {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while stage_in_redis(c).await != Some(stage) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Redis never had stage {stage}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let u = a.user("clsnapmove").await;
    let secret = a.device(&u, "wimz-snapmove").await;
    let progress = |stage: u64| json!({"type": "event", "event": "mission_progress", "data": {"mission": "sit", "stage": stage}});
    let mut robot = a.robot("wimz-snapmove", &secret).await;
    let (mut on_a, _) = a.subscribed_app(&u, "wimz-snapmove").await;
    send(&mut robot, progress(1)).await;
    recv_event(&mut on_a, "mission_progress").await;
    // A's flush just wrote stage 1: its next is ~4 s away.
    wait_for_stage(&mut c, 1).await;
    send(&mut robot, progress(3)).await;
    recv_event(&mut on_a, "mission_progress").await;
    robot.close(None).await.unwrap();
    drop(robot);
    let mut robot = b.robot("wimz-snapmove", &secret).await;
    send(&mut robot, progress(9)).await;
    wait_for_stage(&mut c, 9).await;
    // Past A's next flush, which had stage 3 to write.
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    assert_eq!(
        stage_in_redis(&mut c).await,
        Some(9),
        "a former home's late snapshot overwrote the new home's"
    );
}

/// Instances A and B on `redis` and one SQLite store in `store`, healthy,
/// flushing snapshots every `flush_a_ms` and `flush_b_ms`.
async fn a_and_b(
    redis: &Redis,
    store: &tempfile::TempDir,
    flush_a_ms: u64,
    flush_b_ms: u64,
) -> (TestApp, TestApp) {
    let store_url = format!("sqlite://{}/shared.db", store.path().display());
    let mut nodes = Vec::new();
    for (name, flush_ms) in [("A", flush_a_ms), ("B", flush_b_ms)] {
        let (r, su) = (Backend::Single(redis.url()), store_url.clone());
        let node = spawn_app_with(move |s| {
            clustered(s, name, &r, &su);
            s.cluster.snapshot_flush_ms = flush_ms;
        })
        .await;
        wait_health(&node, 200).await;
        nodes.push(node);
    }
    let b = nodes.pop().unwrap();
    (nodes.pop().unwrap(), b)
}
