//! Browser origins (issue 14, item 5): `server.allowed_origins` plus the
//! relay's own origin may open sockets and call the REST API (CORS,
//! preflight included); any other `Origin` is refused with 403 at the
//! WebSocket handshake (never upgraded) and on HTTP; no `Origin` at all
//! (robots, native apps) passes. A real browser does the same in
//! `browser.rs`.

use crate::helpers::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http;

const CONSOLE: &str = "http://console.test:3000";

async fn relay() -> TestApp {
    spawn_app_with(|s| s.server.allowed_origins = vec![format!("{CONSOLE}/")]).await
}

/// The handshake's HTTP status (101 when upgraded) and, if refused, its body.
async fn handshake(app: &TestApp, path: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let mut req = format!("{}{path}", app.ws_base)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        let name = http::HeaderName::from_bytes(k.as_bytes()).expect("header name");
        req.headers_mut()
            .insert(name, v.parse().expect("header value"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_ws, res)) => (res.status().as_u16(), Value::Null),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let body = res
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (res.status().as_u16(), body)
        }
        Err(e) => panic!("handshake failed without an HTTP answer: {e}"),
    }
}

#[tokio::test]
async fn websocket_handshakes_are_refused_for_other_origins() {
    let app = relay().await;
    let u = app.user("origins").await;
    let secret = app.device(&u, "wimz-or").await;
    let own = format!("http://127.0.0.1:{}", app.port);
    let bearer = ("authorization", format!("Bearer {}", u.token));
    for (origin, want) in [
        (None, 101),
        (Some(CONSOLE.to_string()), 101),
        (Some("http://CONSOLE.test:3000".to_string()), 101),
        (Some(own.clone()), 101),
        (Some("https://evil.test".to_string()), 403),
        (Some("http://console.test:3001".to_string()), 403),
        (Some(format!("https://127.0.0.1:{}", app.port)), 403),
        (Some("null".to_string()), 403),
    ] {
        let mut headers = vec![bearer.clone()];
        headers.extend(origin.clone().map(|o| ("origin", o)));
        let (status, body) = handshake(&app, "/ws/app", &headers).await;
        assert_eq!(status, want, "app socket, Origin {origin:?}: {body}");
        if want == 403 {
            assert_eq!(body["error"]["code"], "forbidden", "{body}");
        }
    }
    // Robots: none sends an Origin; one that does is held to the same list.
    let ts = wimz_relay::ids::unix_now();
    let robot = |origin: Option<&str>| {
        let mut h = vec![
            ("x-device-id", "wimz-or".to_string()),
            ("x-timestamp", ts.to_string()),
            ("x-signature", sign(&secret, "wimz-or", ts)),
        ];
        h.extend(origin.map(|o| ("origin", o.to_string())));
        h
    };
    assert_eq!(
        handshake(&app, "/ws/device", &robot(Some("https://evil.test")))
            .await
            .0,
        403
    );
    assert_eq!(handshake(&app, "/ws/device", &robot(None)).await.0, 101);
    // A refused origin is refused before authentication is even looked at.
    let (status, _) = handshake(&app, "/ws/app", &[("origin", "https://evil.test".into())]).await;
    assert_eq!(status, 403);
    assert_eq!(
        app.stats().await["apps_connected"],
        0,
        "refused sockets were never upgraded"
    );
}

#[tokio::test]
async fn cors_answers_allowed_origins_and_refuses_others() {
    let app = relay().await;
    let u = app.user("corsuser").await;
    app.device(&u, "wimz-cors").await;
    let http = reqwest::Client::new();
    let preflight = |origin: &str| {
        http.request(reqwest::Method::OPTIONS, app.url("/api/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let r = preflight(CONSOLE).await.unwrap();
    assert!(r.status().is_success(), "preflight {}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], CONSOLE);
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("content-type"), "{allowed}");
    assert!(h.get("access-control-allow-credentials").is_none());
    assert_eq!(preflight("https://evil.test").await.unwrap().status(), 403);

    // The calls themselves.
    let r = http
        .post(app.url("/api/auth/login"))
        .header("origin", CONSOLE)
        .json(&json!({"username": "corsuser", "password": "password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], CONSOLE);
    let r = http
        .get(app.url("/api/devices"))
        .header("origin", CONSOLE)
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], CONSOLE);
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    let list: Value = r.json().await.unwrap();
    assert_eq!(list[0]["device_id"], "wimz-cors");

    let r = http
        .get(app.url("/api/devices"))
        .header("origin", "https://evil.test")
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(r.headers().get("x-request-id").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");

    // The relay's own pages (same origin) and clients with no Origin.
    let own = format!("http://127.0.0.1:{}", app.port);
    let r = http
        .get(app.url("/api/devices"))
        .header("origin", &own)
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/api/devices", Some(&u.token)).await.status(), 200);
}

#[tokio::test]
async fn by_default_only_the_relays_own_origin_is_allowed() {
    let app = spawn_app().await;
    let u = app.user("defaultorigin").await;
    let bearer = ("authorization", format!("Bearer {}", u.token));
    let own = format!("http://127.0.0.1:{}", app.port);
    let with = |o: &str| vec![bearer.clone(), ("origin", o.to_string())];
    assert_eq!(handshake(&app, "/ws/app", &with(&own)).await.0, 101);
    assert_eq!(handshake(&app, "/ws/app", &with(CONSOLE)).await.0, 403);
    // Behind a TLS proxy that passes the browser's Host and the scheme: the
    // scheme is believed only from a proxy in server.trusted_proxies.
    let proxied = |origin: &str| {
        let mut h = with(origin);
        h.push(("host", "relay.example.com".into()));
        h.push(("x-forwarded-proto", "https".into()));
        h
    };
    let https = "https://relay.example.com";
    assert_eq!(handshake(&app, "/ws/app", &proxied(https)).await.0, 403);
    let behind_nginx = spawn_app_with(|s| {
        s.server.trusted_proxies =
            wimz_relay::net::client_ip::TrustedProxies::new(&["127.0.0.1"]).unwrap()
    })
    .await;
    let u = behind_nginx.user("proxied").await;
    let mut h = proxied(https);
    h[0] = ("authorization", format!("Bearer {}", u.token));
    assert_eq!(handshake(&behind_nginx, "/ws/app", &h).await.0, 101);
    h[1] = ("origin", "http://relay.example.com".into());
    assert_eq!(handshake(&behind_nginx, "/ws/app", &h).await.0, 403);
}

#[test]
fn allowed_origins_come_from_the_file_or_the_environment_and_a_bad_one_stops_start_up() {
    let load = |value: &str| {
        wimz_relay::config::Settings::load_from(
            Some(std::path::Path::new("config/default.toml")),
            vec![(
                "WIMZ__SERVER__ALLOWED_ORIGINS".to_string(),
                value.to_string(),
            )],
        )
    };
    let list = load(r#"["https://a.example.com", "http://localhost:5173"]"#).unwrap();
    let commas = load("https://a.example.com, http://localhost:5173").unwrap();
    assert_eq!(list.server.allowed_origins, commas.server.allowed_origins);
    assert_eq!(list.server.allowed_origins.len(), 2);
    let err = load(r#"["https://ok.example.com", "console.example.com"]"#).unwrap_err();
    assert!(
        err.to_string().contains("server.allowed_origins[1]"),
        "{err}"
    );
}
