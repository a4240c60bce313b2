use crate::helpers::*;
use base64::Engine;
use serde_json::{json, Value};
use wimz_relay::auth::{Role, TokenService};
use wimz_relay::secret::Secret;

async fn error_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("error body is JSON");
    (
        status,
        v["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

async fn register_and_login_work(app: TestApp) {
    let r = app
        .post_json(
            "/api/auth/register",
            &json!({"username": "alice", "password": "password-123"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let user_id = v["user_id"].as_str().unwrap().to_string();

    let r = app
        .post_json(
            "/api/auth/login",
            &json!({"username": "alice", "password": "password-123"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 86400);
    assert_eq!(v["user_id"], user_id.as_str());
    let token = v["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/devices", Some(token)).await.status(), 200);

    // Duplicate username.
    let r = app
        .post_json(
            "/api/auth/register",
            &json!({"username": "alice", "password": "other-password"}),
            None,
        )
        .await;
    assert_eq!(error_code(r).await, (409, "conflict".into()));

    // Usernames are unique whatever their case, and login ignores case.
    for taken in ["ALICE", "Alice", "aLiCe"] {
        let r = app
            .post_json(
                "/api/auth/register",
                &json!({"username": taken, "password": "other-password"}),
                None,
            )
            .await;
        assert_eq!(error_code(r).await, (409, "conflict".into()), "{taken}");
    }
    let r = app
        .post_json(
            "/api/auth/login",
            &json!({"username": "ALICE", "password": "password-123"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["user_id"], user_id.as_str(), "the same account");
}

#[tokio::test]
async fn register_and_login_sqlite() {
    register_and_login_work(spawn_app().await).await;
}

#[tokio::test]
async fn register_and_login_postgres() {
    if let Some(app) = spawn_app_pg_with(|_| {}).await {
        register_and_login_work(app).await;
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_answer_alike() {
    let app = spawn_app().await;
    app.user("bob").await;
    let wrong = app
        .post_json(
            "/api/auth/login",
            &json!({"username": "bob", "password": "not-the-password"}),
            None,
        )
        .await;
    let (s1, b1) = (wrong.status(), wrong.text().await.unwrap());
    let unknown = app
        .post_json(
            "/api/auth/login",
            &json!({"username": "nobody", "password": "not-the-password"}),
            None,
        )
        .await;
    let (s2, b2) = (unknown.status(), unknown.text().await.unwrap());
    assert_eq!(s1, 401);
    assert_eq!((s1, &b1), (s2, &b2));
    // Its own message: not the one for a bad token.
    let v: Value = serde_json::from_str(&b1).unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    assert_eq!(v["error"]["message"], "invalid username or password");
}

#[tokio::test]
async fn weak_or_invalid_registrations_are_400() {
    let app = spawn_app().await;
    for body in [
        json!({"username": "carol", "password": "short"}),
        json!({"username": "carol", "password": "aaaaaaaaaaaa"}),
        json!({"username": "x", "password": "password-123"}),
        json!({"username": "has space", "password": "password-123"}),
        json!({"username": "carol"}),
        json!({"username": 5, "password": "password-123"}),
    ] {
        let r = app.post_json("/api/auth/register", &body, None).await;
        assert_eq!(error_code(r).await, (400, "bad_request".into()), "{body}");
    }
}

#[tokio::test]
async fn registration_can_be_disabled() {
    let app = spawn_app_with(|s| s.auth.allow_registration = false).await;
    let r = app
        .post_json(
            "/api/auth/register",
            &json!({"username": "dave", "password": "password-123"}),
            None,
        )
        .await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 4096).await;
    for (ct, body) in [
        ("application/json", "{not json"),
        ("application/json", "[]"),
        ("application/json", ""),
        ("text/plain", r#"{"username":"a","password":"b"}"#),
    ] {
        let r = app
            .http
            .post(app.url("/api/auth/login"))
            .header("content-type", ct)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(r).await,
            (400, "bad_request".into()),
            "{ct} {body:?}"
        );
    }
    let big = json!({"username": "a".repeat(10_000), "password": "x"});
    let r = app.post_json("/api/auth/register", &big, None).await;
    assert_eq!(error_code(r).await, (413, "payload_too_large".into()));
}

#[tokio::test]
async fn expired_tampered_and_alg_changed_tokens_are_401() {
    let app = spawn_app().await;
    let u = app.user("erin").await;
    let ours = TokenService::new(&app.settings.auth.jwt_secret, 60);
    let now = wimz_relay::ids::unix_now();
    let expired = ours
        .issue_with(&u.id, Role::User, now - 120, now - 60)
        .unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = u.token.split('.').collect();
    // Tampered: payload changed, signature kept.
    let payload = String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(payload.replace(&u.id, "someone-else")),
        parts[2]
    );
    // alg changed to none (no signature), and to HS512 with the same key.
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let hs512 = {
        let claims = json!({"sub": u.id, "role": "user", "iat": now, "exp": now + 600});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(
                app.settings.auth.jwt_secret.expose().as_bytes(),
            ),
        )
        .unwrap()
    };
    // Signed with another key.
    let foreign = TokenService::new(&Secret::new("another-secret-another-secret-012345"), 60)
        .issue(&u.id, Role::User)
        .unwrap();
    for (what, t) in [
        ("expired", expired),
        ("tampered", tampered),
        ("alg none", none),
        ("alg HS512", hs512),
        ("foreign key", foreign),
        ("garbage", "not.a.token".into()),
    ] {
        let r = app.get("/api/devices", Some(&t)).await;
        assert_eq!(error_code(r).await, (401, "unauthorized".into()), "{what}");
    }
    assert_eq!(app.get("/api/devices", None).await.status(), 401);
    let r = app
        .http
        .get(app.url("/api/devices"))
        .header("authorization", format!("Basic {}", u.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn device_token_flow(app: TestApp) {
    let u = app.user("frank").await;
    let secret = app.device(&u, "wimz-100").await;
    let now = wimz_relay::ids::unix_now();
    let sig = sign(&secret, "wimz-100", now);
    let body = json!({"device_id": "wimz-100", "timestamp": now, "signature": sig});
    let r = app.post_json("/api/auth/device", &body, None).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "bearer");
    assert!(v["expires_in"].as_u64().unwrap() > 0);
    let token = v["access_token"].as_str().unwrap();
    let claims = TokenService::new(&app.settings.auth.jwt_secret, 60)
        .verify(token)
        .unwrap();
    assert_eq!(claims.role, Role::Device);
    assert_eq!(claims.sub, "wimz-100");
    // A device token is not a user token.
    assert_eq!(app.get("/api/devices", Some(token)).await.status(), 401);

    // Replayed: the very same signature again.
    let r = app.post_json("/api/auth/device", &body, None).await;
    assert_eq!(error_code(r).await, (401, "unauthorized".into()), "replay");
}

#[tokio::test]
async fn device_token_sqlite() {
    device_token_flow(spawn_app().await).await;
}

#[tokio::test]
async fn device_token_postgres() {
    if let Some(app) = spawn_app_pg_with(|_| {}).await {
        device_token_flow(app).await;
    }
}

#[tokio::test]
async fn bad_device_signatures_are_401() {
    let app = spawn_app_with(|s| s.auth.signature_window_s = 300).await;
    let u = app.user("gina").await;
    let secret = app.device(&u, "wimz-200").await;
    let now = wimz_relay::ids::unix_now();
    let flip = |s: &str| {
        let mut b = s.as_bytes().to_vec();
        b[10] = if b[10] == b'a' { b'b' } else { b'a' };
        String::from_utf8(b).unwrap()
    };
    let cases = vec![
        (
            "too old",
            json!({"device_id": "wimz-200", "timestamp": now - 301, "signature": sign(&secret, "wimz-200", now - 301)}),
        ),
        (
            "too new",
            json!({"device_id": "wimz-200", "timestamp": now + 301, "signature": sign(&secret, "wimz-200", now + 301)}),
        ),
        (
            "one byte changed",
            json!({"device_id": "wimz-200", "timestamp": now, "signature": flip(&sign(&secret, "wimz-200", now))}),
        ),
        (
            "wrong secret",
            json!({"device_id": "wimz-200", "timestamp": now, "signature": sign("nope", "wimz-200", now)}),
        ),
        (
            "other device's id",
            json!({"device_id": "wimz-201", "timestamp": now, "signature": sign(&secret, "wimz-201", now)}),
        ),
        (
            "not hex",
            json!({"device_id": "wimz-200", "timestamp": now, "signature": "zz"}),
        ),
        (
            "empty",
            json!({"device_id": "wimz-200", "timestamp": now, "signature": ""}),
        ),
    ];
    for (what, body) in cases {
        let r = app.post_json("/api/auth/device", &body, None).await;
        assert_eq!(error_code(r).await, (401, "unauthorized".into()), "{what}");
    }
    // Inside the window at the edge still works.
    let edge = now - 290;
    let r = app
        .post_json("/api/auth/device", &json!({"device_id": "wimz-200", "timestamp": edge, "signature": sign(&secret, "wimz-200", edge)}), None)
        .await;
    assert_eq!(r.status(), 200);
    // Malformed body.
    let r = app
        .post_json("/api/auth/device", &json!({"device_id": "wimz-200"}), None)
        .await;
    assert_eq!(error_code(r).await, (400, "bad_request".into()));
}
