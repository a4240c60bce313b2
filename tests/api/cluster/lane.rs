//! The lane (ARCHITECTURE.md "The cluster"): a home room appends its events
//! to Redis on its own worker's connection once the bridge proved the
//! device's term, and Redis's own refusal of a stale term still fences it.

use super::*;
use crate::helpers::*;
use crate::scrape::Scrape;
use serde_json::json;

fn appends(s: &Scrape, path: &str) -> u64 {
    s.count("wimz_redis_appends_total", &[("path", path)])
}

/// A steady stream goes on the lane after its first event (which the bridge
/// appends, proving the term); then another instance claims the device in
/// Redis without A hearing of it (its `Replaced` lost): A's next event,
/// tried on the lane under the old term, is refused by Redis, and the
/// bridge fences the robot instead of appending it, so neither the stream
/// nor any app, on A or on B, gets it.
#[tokio::test]
async fn a_steady_stream_goes_on_the_lane_and_a_stale_term_is_still_fenced() {
    let c = cluster(2).await;
    let a = &c.nodes[0];
    let device = "wimz-lane-1";
    let (user, _, mut robot, mut on_b) = robot_on_a_app_on_b(&c, "lane-user", device).await;
    let (mut on_a, _) = a.subscribed_app(&user, device).await;
    let before = Scrape::of(a).await;
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
    let after = Scrape::of(a).await;
    let (lane, bridge) = (
        appends(&after, "lane") - appends(&before, "lane"),
        appends(&after, "bridge") - appends(&before, "bridge"),
    );
    // The room's first event of the device (`robot_connected`) went through
    // the bridge, before the scrape; every one since on the lane.
    assert_eq!((lane, bridge), (10, 0), "{}", after.text);
    assert!(appends(&before, "bridge") >= 1, "{}", before.text);

    // Instance Z claims the device as the claim script does: presence, a
    // marker above the stream's top under a higher term, announced.
    let mut con = c.redis.connection().await;
    let stream = format!("wimz:{{{device}}}:stream");
    let top: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(&stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut con)
        .await
        .unwrap();
    let (top_id, fields) = &top[0];
    let (term, seq) = top_id.split_once('-').unwrap();
    let (term, seq): (u64, u64) = (term.parse().unwrap(), seq.parse().unwrap());
    let epoch = &fields.iter().find(|(k, _)| k == "e").unwrap().1;
    let marker = format!("{}-{seq}", term + 1);
    let _: () = redis::pipe()
        .cmd("SET")
        .arg(format!("wimz:{{{device}}}:presence"))
        .arg("Z")
        .arg("EX")
        .arg(60)
        .ignore()
        .cmd("XADD")
        .arg(&stream)
        .arg(&marker)
        .arg("e")
        .arg(epoch)
        .arg("m")
        .arg("claim")
        .ignore()
        .cmd("PUBLISH")
        .arg(format!("wimz:{{{device}}}:dev"))
        .arg(format!("{marker} {epoch}"))
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();

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
