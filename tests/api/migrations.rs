//! A store left by an older relay migrates in place (SQLite and
//! PostgreSQL, the same migrations): accounts whose names differ only in
//! case both keep working, and devices registered before credential ids
//! keep their tokens until their secret is rotated.

use crate::helpers::*;
use serde_json::{json, Value};
use wimz_relay::auth::{Role, TokenService};
use wimz_relay::secret::Secret;

/// Applies only the first migration to `url` (the store as the relay of
/// before issue 14 left it) and fills it: `alice` (older) and `ALICE`, and
/// a device of `alice`'s.
async fn old_store(url: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut m = sqlx::migrate::Migrator::new(std::path::Path::new("migrations"))
        .await
        .unwrap();
    m.migrations = std::borrow::Cow::Owned(m.migrations[..1].to_vec());
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    m.run(&mut conn).await.unwrap();
    let hash = |p: &str| wimz_relay::auth::password::hash(p).unwrap();
    for (id, name, password, at) in [
        ("u-old", "alice", "password-123", 1_i64),
        ("u-new", "ALICE", "other-password", 2),
    ] {
        sqlx::query("INSERT INTO users (user_id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(name)
            .bind(hash(password))
            .bind(at)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO devices (device_id, name, owner_id, device_secret, created_at) VALUES ('legacy-1', 'Old', 'u-old', $1, 1)")
        .bind("11".repeat(32))
        .execute(&mut conn)
        .await
        .unwrap();
}

async fn login(app: &TestApp, name: &str, password: &str) -> (u16, Value) {
    let r = app
        .post_json(
            "/api/auth/login",
            &json!({"username": name, "password": password}),
            None,
        )
        .await;
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn old_store_migrates(app: TestApp) {
    let (s, v) = login(&app, "alice", "password-123").await;
    assert_eq!((s, v["user_id"].as_str()), (200, Some("u-old")));
    // The younger account's exact name finds it first...
    let (s, v) = login(&app, "ALICE", "other-password").await;
    assert_eq!((s, v["user_id"].as_str()), (200, Some("u-new")));
    // ...any other spelling finds the older one.
    let (s, v) = login(&app, "Alice", "password-123").await;
    assert_eq!((s, v["user_id"].as_str()), (200, Some("u-old")));
    let r = app
        .post_json(
            "/api/auth/register",
            &json!({"username": "aLiCe", "password": "password-123"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 409);

    // A device token made before credential ids (no `cid`) still works for
    // a device registered before them, until its secret is rotated.
    let legacy = TokenService::new(&app.settings.auth.jwt_secret, 3600)
        .issue("legacy-1", Role::Device)
        .unwrap();
    assert_eq!(app.get("/webrtc/config", Some(&legacy)).await.status(), 200);
    let mut robot = app.robot("legacy-1", &"11".repeat(32)).await;
    let (_, v) = login(&app, "alice", "password-123").await;
    let r = app
        .post_json(
            "/api/devices/legacy-1/secret",
            &json!({}),
            v["access_token"].as_str(),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(recv_close(&mut robot).await, Some(4003));
    assert_eq!(app.get("/webrtc/config", Some(&legacy)).await.status(), 401);
}

#[tokio::test]
async fn an_old_sqlite_store_migrates_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/old.db?mode=rwc", dir.path().display());
    old_store(&url).await;
    let app = spawn_app_with(|s| s.store.url = Secret::new(url)).await;
    old_store_migrates(app).await;
}

#[tokio::test]
async fn an_old_postgres_store_migrates_in_place() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (url, name) = fresh_postgres_db(&admin).await;
    old_store(&url).await;
    let app = spawn_app_with(|s| s.store.url = Secret::new(url)).await;
    old_store_migrates(app).await;
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut c)
        .await;
}
