use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn health_reports_ok_with_identity() {
    let app = spawn_app_with(|s| s.server.instance_id = "relay-test-1".into()).await;
    let r = app.get("/health", None).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["store"], "ok");
    assert_eq!(v["cluster"], "disabled");
    assert_eq!(v["instance_id"], "relay-test-1");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["uptime_s"].is_u64());
    assert!(r_has_request_id(&app).await);
}

async fn r_has_request_id(app: &TestApp) -> bool {
    app.get("/health", None)
        .await
        .headers()
        .contains_key("x-request-id")
}

#[tokio::test]
async fn stats_start_at_zero() {
    let app = spawn_app().await;
    let v = app.stats().await;
    for k in [
        "robots_online",
        "apps_connected",
        "rooms",
        "webrtc_sessions_active",
        "messages_routed",
    ] {
        assert_eq!(v[k], 0, "{k} in {v}");
    }
    assert!(v["instance_id"].is_string());
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = spawn_app().await;
    let r = app.get("/metrics", None).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("# TYPE wimz_robots_online gauge"));
    assert!(body.contains("wimz_messages_routed_total{"));
}

#[tokio::test]
async fn private_stats_need_a_user_token() {
    let app = spawn_app_with(|s| s.server.public_stats = false).await;
    assert_eq!(app.get("/stats", None).await.status(), 401);
    assert_eq!(app.get("/metrics", None).await.status(), 401);
    let u = app.user("statsreader").await;
    assert_eq!(app.get("/stats", Some(&u.token)).await.status(), 200);
}

#[tokio::test]
async fn unknown_routes_get_the_error_body() {
    let app = spawn_app().await;
    let r = app.get("/nope", None).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "not_found");
}

#[tokio::test]
async fn health_is_503_degraded_when_the_store_is_unreachable() {
    let Some(app) = spawn_app_pg_with(|_| {}).await else {
        return;
    };
    assert_eq!(app.get("/health", None).await.status(), 200);
    // Pull the database out from under the relay.
    let admin = postgres_admin_url().unwrap();
    let url = app.settings.store.url.expose().to_string();
    let name = url.rsplit('/').next().unwrap().to_string();
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut c)
            .await
            .unwrap();
    }
    let r = app.get("/health", None).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["store"], "unreachable");
    assert_eq!(v["cluster"], "disabled");
    assert!(v["instance_id"].is_string());
}
