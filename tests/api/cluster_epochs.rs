//! Epochs across instances (issue 14, item 7; PROTOCOL.md Part 2 D and H):
//! an app subscribed on one instance to a robot that is not online yet is
//! told the epoch the robot's events will carry, wherever the robot
//! connects; and when the epoch does change under a subscriber (Redis lost
//! the device's numbering), the app is told so with
//! `recovered{complete:false, reason:"epoch_changed"}` even if no event of
//! the old epoch ever reached it.

use crate::cluster::cluster;
use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn a_robot_connecting_elsewhere_continues_the_epoch_a_waiting_app_was_told() {
    let c = cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let u = a.user("epochwaiter").await;
    let secret = a.device(&u, "wimz-ep1").await;
    // The robot has never been online: A's room starts the device.
    let (mut on_a, sub) = a.subscribed_app(&u, "wimz-ep1").await;
    assert_eq!(sub["robot_online"], false);
    let (epoch, seq) = (sub["epoch"].clone(), sub["seq"].as_u64().unwrap());

    let mut robot = b.robot("wimz-ep1", &secret).await;
    send(
        &mut robot,
        json!({"type": "event", "event": "mission_progress", "data": {"stage": 1}}),
    )
    .await;
    // Nothing between `subscribed` and the robot's events: no epoch change.
    let connected = recv(&mut on_a).await;
    assert_eq!(connected["event"], "robot_connected", "{connected}");
    assert_eq!(connected["epoch"], epoch, "the epoch A's app was told");
    assert_eq!(connected["seq"], seq + 1);
    let progress = recv(&mut on_a).await;
    assert_eq!(progress["event"], "mission_progress", "{progress}");
    assert_eq!(progress["epoch"], epoch);
    assert_eq!(progress["seq"], seq + 2);
    // B's own apps are in the same epoch.
    let (_on_b, sub_b) = b.subscribed_app(&u, "wimz-ep1").await;
    assert_eq!(sub_b["epoch"], epoch);
}

#[tokio::test]
async fn an_epoch_change_before_any_event_is_announced() {
    let c = cluster(2).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let u = a.user("epochflush").await;
    let secret = a.device(&u, "wimz-ep2").await;
    let (mut on_a, sub) = a.subscribed_app(&u, "wimz-ep2").await;
    let told = sub["epoch"].clone();
    // Redis loses every key (as a restart without persistence would); the
    // pub/sub subscriptions stay, so nothing else tells A.
    let mut redis = c.redis.connection().await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut redis)
        .await
        .unwrap();

    let _robot = b.robot("wimz-ep2", &secret).await;
    let notice = recv(&mut on_a).await;
    assert_eq!(
        notice,
        json!({"type": "recovered", "device_id": "wimz-ep2", "complete": false, "reason": "epoch_changed"})
    );
    let connected = recv(&mut on_a).await;
    assert_eq!(connected["event"], "robot_connected", "{connected}");
    assert_ne!(connected["epoch"], told);
    assert_eq!(connected["seq"], 1);
}
