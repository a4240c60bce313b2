use crate::helpers::*;
use serde_json::{json, Value};

async fn device_crud(app: TestApp) {
    let owner = app.user("owner1").await;
    let other = app.user("other1").await;
    let r = app
        .post_json(
            "/api/devices",
            &json!({"device_id": "wimz-a", "name": "Kitchen"}),
            Some(&owner.token),
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["device_id"], "wimz-a");
    assert_eq!(v["device_secret"].as_str().unwrap().len(), 64);

    // Taken id, even by someone else.
    let r = app
        .post_json(
            "/api/devices",
            &json!({"device_id": "wimz-a", "name": "Mine"}),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.status(), 409);
    // Invalid ids and names.
    for body in [
        json!({"device_id": "bad id", "name": "x"}),
        json!({"device_id": "../x", "name": "x"}),
        json!({"device_id": "ok-id", "name": ""}),
        json!({"device_id": "ok-id"}),
    ] {
        let r = app
            .post_json("/api/devices", &body, Some(&owner.token))
            .await;
        assert_eq!(r.status(), 400, "{body}");
    }
    assert_eq!(
        app.post_json(
            "/api/devices",
            &json!({"device_id": "x1", "name": "x"}),
            None
        )
        .await
        .status(),
        401
    );

    // Listing shows the caller's devices only.
    let v = app.devices(&owner).await;
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["device_id"], "wimz-a");
    assert_eq!(list[0]["name"], "Kitchen");
    assert_eq!(list[0]["online"], false);
    assert!(list[0]["mission"].is_null());
    assert!(list[0].get("device_secret").is_none());
    let v = app.devices(&other).await;
    assert_eq!(v.as_array().unwrap().len(), 0);

    // A stranger cannot delete it, and learns nothing (same 404 as a missing id).
    let r = app.delete("/api/devices/wimz-a", Some(&other.token)).await;
    assert_eq!(r.status(), 404);
    let r = app
        .delete("/api/devices/wimz-zzz", Some(&other.token))
        .await;
    assert_eq!(r.status(), 404);
    let r = app.delete("/api/devices/wimz-a", Some(&owner.token)).await;
    assert_eq!(r.status(), 204);
    let v = app.devices(&owner).await;
    assert_eq!(v.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn device_crud_sqlite() {
    device_crud(spawn_app().await).await;
}

#[tokio::test]
async fn device_crud_postgres() {
    if let Some(app) = spawn_app_pg_with(|_| {}).await {
        device_crud(app).await;
    }
}

/// Many owners creating devices at once on the embedded store (what the
/// load generator's provisioning does): every one is created, none is a 500
/// (SQLite's writer lock must be waited for, never reported as a failure).
#[tokio::test]
async fn concurrent_device_creation_on_sqlite_never_fails() {
    let app = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(app.user(&format!("bulk-{i}")).await);
    }
    let mut calls = Vec::new();
    for i in 0..200 {
        let user = &users[i % users.len()];
        let req = app
            .http
            .post(app.url("/api/devices"))
            .bearer_auth(&user.token)
            .json(&json!({"device_id": format!("bulk-d{i:04}"), "name": "Robot"}));
        calls.push(tokio::spawn(async move {
            let r = req.send().await.expect("request sent");
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }));
    }
    for c in calls {
        let (status, body) = c.await.unwrap();
        assert_eq!(status, 201, "{body}");
    }
    for user in &users {
        let v = app.devices(user).await;
        assert_eq!(v.as_array().unwrap().len(), 50);
    }
}

/// While another writer holds the store's lock longer than the relay waits
/// (SQLite's busy_timeout, PostgreSQL's lock_timeout, the pool's acquire
/// timeout: 5 s each), a write is answered 503 "store busy; retry shortly"
/// (never a 500, never a hang), and the same request succeeds once the lock
/// is gone. One pooled connection and two requests at once: one waits on the
/// database's lock, the other on the pool.
async fn a_locked_store_answers_store_busy(app: TestApp, lock: &[&str]) {
    let owner = app.user("busy-owner").await;
    let mut locker = app.store_connection().await;
    for q in lock {
        sqlx::query(q).execute(&mut locker).await.unwrap();
    }
    let create = |id: &'static str| {
        let body = json!({"device_id": id, "name": "Robot"});
        let (app, token) = (&app, &owner.token);
        async move { app.post_json("/api/devices", &body, Some(token)).await }
    };
    // Guard only (the relay gives up after 5 s): a relay that waits on the
    // lock forever fails here instead of hanging the suite.
    let (a, b) = tokio::time::timeout(PATIENCE * 2, async {
        tokio::join!(create("busy-a"), create("busy-b"))
    })
    .await
    .expect("the relay answered while the store was locked");
    for r in [a, b] {
        assert_eq!(r.status(), 503);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unavailable", "{v}");
        assert_eq!(v["error"]["message"], "store busy; retry shortly", "{v}");
    }
    assert_eq!(app.stats().await["store_busy"], 2);
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    drop(locker);
    for id in ["busy-a", "busy-b"] {
        assert_eq!(create(id).await.status(), 201, "retry of {id}");
    }
    let v = app.devices(&owner).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_locked_sqlite_store_answers_store_busy() {
    let app = spawn_app_with(|s| s.store.max_connections = 1).await;
    a_locked_store_answers_store_busy(app, &["BEGIN IMMEDIATE"]).await;
}

#[tokio::test]
async fn a_locked_postgres_store_answers_store_busy() {
    if let Some(app) = spawn_app_pg_with(|s| s.store.max_connections = 1).await {
        a_locked_store_answers_store_busy(
            app,
            &["BEGIN", "LOCK TABLE devices IN ACCESS EXCLUSIVE MODE"],
        )
        .await;
    }
}

/// An instance starting while another holds the migrations' lock (instances
/// of a cluster starting together take turns) waits for it, longer than the
/// 5 s lock_timeout that requests get, instead of failing to start.
#[tokio::test]
async fn an_instance_waits_for_another_instances_migrations_on_postgres() {
    let Some(first) = spawn_app_pg_with(|_| {}).await else {
        return;
    };
    let url = first.settings.store.url.expose().to_string();
    let mut locker = first.store_connection().await;
    for q in [
        "BEGIN",
        "LOCK TABLE _sqlx_migrations IN ACCESS EXCLUSIVE MODE",
    ] {
        sqlx::query(q).execute(&mut locker).await.unwrap();
    }
    let release = async {
        // Held past the requests' lock_timeout: only a start that is not
        // under it gets through.
        tokio::time::sleep(std::time::Duration::from_secs(7)).await;
        sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    };
    let (second, ()) = tokio::join!(
        spawn_app_with(move |s| s.store.url = wimz_relay::secret::Secret::new(url)),
        release
    );
    let owner = second.user("after-migrations").await;
    second.device(&owner, "wimz-mig").await;
    assert_eq!(first.devices(&owner).await.as_array().unwrap().len(), 1);
}
