//! Caps per account and address (issue 14, item 3; PROTOCOL.md Part 2 J):
//! the numbers each meet their cap with its own error code and a
//! `Retry-After` where waiting helps, and every refusal is counted in
//! `/metrics` under its reason.

use crate::helpers::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub use crate::scrape::refused;

/// Status, `error.code` and `Retry-After` of an HTTP answer.
async fn answer(r: reqwest::Response) -> (u16, String, Option<u64>) {
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let v: Value = r.json().await.unwrap_or(Value::Null);
    let code = v["error"]["code"].as_str().unwrap_or("").to_string();
    (status, code, retry)
}

/// An app socket for `token` with extra headers: the socket, or the
/// refusal's status, `error.code` and `Retry-After`.
pub async fn try_app(
    c: &RelayClient,
    token: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, (u16, String, Option<u64>)> {
    use tokio_tungstenite::tungstenite::Error;
    let mut req = format!("{}/ws/app", c.ws_base)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    for (k, v) in headers {
        use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
        req.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(Error::Http(r)) => {
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let code = r
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                .and_then(|v| v["error"]["code"].as_str().map(String::from))
                .unwrap_or_default();
            Err((r.status().as_u16(), code, retry))
        }
        Err(e) => panic!("app handshake failed without an HTTP answer: {e}"),
    }
}

#[tokio::test]
async fn fifteen_hundred_app_sockets_for_one_user_meet_the_user_cap() {
    let app = spawn_app().await;
    let u = app.user("sockets").await;
    let before = refused(&app, "user_sockets").await;
    let mut open = Vec::new();
    let mut refusal = None;
    for i in 0..1500 {
        match try_app(&app, &u.token, &[]).await {
            Ok(ws) => open.push(ws),
            Err(e) => {
                refusal = Some((i, e));
                break;
            }
        }
    }
    let (at, (status, code, retry)) = refusal.expect("1,500 app sockets for one user are capped");
    assert_eq!(at, app.settings.caps.app_sockets_per_user);
    assert_eq!((status, code.as_str()), (429, "user_socket_limit"));
    assert!(retry.is_some_and(|s| s >= 1), "Retry-After is set");
    assert_eq!(refused(&app, "user_sockets").await, before + 1);
    // The cap counts live sockets: one closed, one more may open.
    let mut one = open.pop().unwrap();
    one.close(None).await.unwrap();
    drop(one);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match try_app(&app, &u.token, &[]).await {
            Ok(ws) => {
                open.push(ws);
                break;
            }
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => panic!("a freed slot was never given back: {e:?}"),
        }
    }
}

#[tokio::test]
async fn fifty_registrations_in_a_row_meet_the_address_throttle() {
    let app = spawn_app().await;
    let mut refusal = None;
    for i in 0..50 {
        let r = app
            .post_json(
                "/api/auth/register",
                &json!({"username": format!("reg{i:02}"), "password": "password-123"}),
                None,
            )
            .await;
        if r.status() != 201 {
            refusal = Some((i, answer(r).await));
            break;
        }
    }
    let (at, (status, code, retry)) =
        refusal.expect("50 registrations from one address are throttled");
    assert!(at < 50);
    assert_eq!((status, code.as_str()), (429, "registration_throttled"));
    assert!(retry.is_some_and(|s| s >= 1), "Retry-After is set");
    assert_eq!(refused(&app, "register_ip").await, 1);
}

#[tokio::test]
async fn three_hundred_devices_for_one_user_meet_the_device_cap() {
    let app = spawn_app().await;
    let u = app.user("hoarder").await;
    let mut refusal = None;
    for i in 0..300 {
        let r = app
            .post_json(
                "/api/devices",
                &json!({"device_id": format!("hoard-{i:03}"), "name": "x"}),
                Some(&u.token),
            )
            .await;
        if r.status() != 201 {
            refusal = Some((i, answer(r).await));
            break;
        }
    }
    let (at, (status, code, _)) = refusal.expect("300 devices for one user are capped");
    assert_eq!(at, app.settings.caps.devices_per_user);
    assert_eq!((status, code.as_str()), (403, "device_limit"));
    assert_eq!(refused(&app, "devices").await, 1);
    // Deleting one makes room for one.
    assert_eq!(
        app.delete("/api/devices/hoard-000", Some(&u.token))
            .await
            .status(),
        204
    );
    app.device(&u, "hoard-new").await;
}

#[tokio::test]
async fn sixty_wrong_passwords_meet_the_username_throttle() {
    let app = spawn_app().await;
    app.user("victim").await;
    let mut refusal = None;
    for i in 0..60 {
        let r = app
            .post_json(
                "/api/auth/login",
                &json!({"username": "victim", "password": format!("wrong-{i}")}),
                None,
            )
            .await;
        let (status, code, retry) = answer(r).await;
        if status != 401 {
            refusal = Some((i, (status, code, retry)));
            break;
        }
        assert_eq!(code, "unauthorized");
    }
    let (at, (status, code, retry)) = refusal.expect("60 wrong passwords are throttled");
    assert!(at < 60);
    assert_eq!((status, code.as_str()), (429, "login_throttled"));
    assert!(retry.is_some_and(|s| s >= 1), "Retry-After is set");
    assert_eq!(refused(&app, "login_username").await, 1);
    // The right password is throttled too until Retry-After: the attacker
    // learns nothing from the answer.
    let r = app
        .post_json(
            "/api/auth/login",
            &json!({"username": "victim", "password": "password-123"}),
            None,
        )
        .await;
    assert_eq!(answer(r).await.0, 429);
    // Another user logs in from the same address.
    let r = app
        .post_json(
            "/api/auth/login",
            &json!({"username": "bystander", "password": "password-123"}),
            None,
        )
        .await;
    assert_eq!(answer(r).await.0, 401);
}

/// Three app sockets with `X-Forwarded-For: xff(i)` open (the cap being 3);
/// a fourth with `fourth` is refused `ip_socket_limit`.
async fn three_then_refused(
    app: &TestApp,
    u: &User,
    xff: impl Fn(usize) -> String,
    fourth: &str,
) -> Vec<Ws> {
    let mut open = Vec::new();
    for i in 0..3 {
        let header = xff(i);
        let ws = try_app(app, &u.token, &[("x-forwarded-for", &header)]).await;
        open.push(ws.unwrap());
    }
    let e = try_app(app, &u.token, &[("x-forwarded-for", fourth)])
        .await
        .unwrap_err();
    assert_eq!((e.0, e.1.as_str()), (429, "ip_socket_limit"));
    open
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    use wimz_relay::net::client_ip::TrustedProxies;
    // No trusted proxy: X-Forwarded-For is the client's word and ignored;
    // every socket here comes from 127.0.0.1.
    let app = spawn_app_with(|s| s.caps.sockets_per_ip = 3).await;
    let u = app.user("ipcap").await;
    let _open = three_then_refused(&app, &u, |i| format!("203.0.113.{i}"), "203.0.113.99").await;
    // Robots count against the same address.
    let secret = app.device(&u, "ipcap-robot").await;
    assert!(app.try_robot("ipcap-robot", &secret).await.is_err());
    assert_eq!(refused(&app, "ip_sockets").await, 2);

    // Behind a trusted proxy (127.0.0.1): each forwarded client counts apart,
    // and a client's own forged entries (left of the proxy's) are not read.
    let app = spawn_app_with(|s| {
        s.caps.sockets_per_ip = 3;
        s.server.trusted_proxies = TrustedProxies::new(&["127.0.0.1"]).unwrap();
    })
    .await;
    let u = app.user("ipcap").await;
    let mut open = three_then_refused(
        &app,
        &u,
        |i| format!("198.51.100.{i}, 203.0.113.1"),
        "203.0.113.1",
    )
    .await;
    open.push(
        try_app(&app, &u.token, &[("x-forwarded-for", "203.0.113.2")])
            .await
            .expect("another client behind the proxy has its own count"),
    );
}

#[tokio::test]
async fn app_sockets_watching_one_device_meet_the_device_cap() {
    let app = spawn_app_with(|s| s.caps.app_sockets_per_device = 2).await;
    let u = app.user("watcher").await;
    app.device(&u, "wimz-w").await;
    let (first, _) = app.subscribed_app(&u, "wimz-w").await;
    let (_second, _) = app.subscribed_app(&u, "wimz-w").await;
    let mut third = app.app(&u).await;
    send(
        &mut third,
        json!({"type": "subscribe", "device_id": "wimz-w", "id": "s3"}),
    )
    .await;
    let e = recv_type(&mut third, "error").await;
    assert_eq!(e["code"], "watcher_limit");
    assert_eq!(e["ref"], "s3");
    assert_eq!(refused(&app, "device_watchers").await, 1);
    // The socket stays usable, and a slot freed is a slot to take.
    drop(first);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        send(
            &mut third,
            json!({"type": "subscribe", "device_id": "wimz-w", "id": "s4"}),
        )
        .await;
        let v = recv(&mut third).await;
        if v["type"] == "subscribed" {
            break;
        }
        assert_eq!(v["code"], "watcher_limit", "{v}");
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn robot_connections_per_device_are_throttled_after_authentication() {
    use wimz_relay::config::caps::Rate;
    let app = spawn_app_with(|s| s.caps.robot_connects_per_device = Rate::per(2, 3600)).await;
    let u = app.user("flapper").await;
    let secret = app.device(&u, "wimz-flap").await;
    // A stranger's refused handshakes spend nothing of the device's budget.
    for _ in 0..3 {
        assert!(app.try_robot("wimz-flap", "not-the-secret").await.is_err());
    }
    let now = wimz_relay::ids::unix_now();
    let connect = |ts: i64| {
        let c = &app.client;
        let secret = secret.clone();
        async move {
            let mut req = format!("{}/ws/device", c.ws_base)
                .into_client_request()
                .unwrap();
            let h = req.headers_mut();
            h.insert("x-device-id", "wimz-flap".parse().unwrap());
            h.insert("x-timestamp", ts.to_string().parse().unwrap());
            h.insert(
                "x-signature",
                sign(&secret, "wimz-flap", ts).parse().unwrap(),
            );
            tokio_tungstenite::connect_async(req).await
        }
    };
    let _one = connect(now).await.expect("first connection");
    let _two = connect(now - 1).await.expect("second connection");
    match connect(now - 2).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status().as_u16(), 429);
            assert!(r.headers().get("retry-after").is_some());
            let v: Value = serde_json::from_slice(r.body().as_deref().unwrap()).unwrap();
            assert_eq!(v["error"]["code"], "robot_connect_limit");
        }
        other => panic!("third connection within the hour: {:?}", other.map(|_| ())),
    }
    assert_eq!(refused(&app, "robot_connects").await, 1);
}
