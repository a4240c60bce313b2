//! The web console's static files over real HTTP: `/` and `/console`
//! redirect, every embedded file is served with its type and the security
//! headers, ETags revalidate, and anything else under `/console/` — files
//! on disk that are not embedded, directories, every spelling of a path
//! outside — answers 404 with the protocol's error body (sent as raw bytes
//! too, so no client normalises the path first).

use crate::helpers::*;
use reqwest::header;
use serde_json::Value;
use wimz_relay::http::console::{content_type, files, CONTENT_SECURITY_POLICY};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn assert_secured(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    assert_eq!(
        h.get(header::CONTENT_SECURITY_POLICY)
            .map(|v| v.to_str().unwrap()),
        Some(CONTENT_SECURITY_POLICY),
        "{what}: CSP"
    );
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
}

/// The policy itself: scripts, styles and connections from this origin
/// only, nothing inline, no plugins, not framed.
#[test]
fn the_policy_is_strict() {
    let directives: Vec<&str> = CONTENT_SECURITY_POLICY.split("; ").collect();
    for d in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ] {
        assert!(directives.contains(&d), "{d} in {CONTENT_SECURITY_POLICY}");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
}

#[tokio::test]
async fn root_and_bare_console_redirect_to_the_console() {
    let app = spawn_app().await;
    let http = no_redirects();
    for path in ["/", "/console"] {
        let r = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 302, "{path}");
        assert_eq!(r.headers()[header::LOCATION], "console/", "{path}");
        assert_secured(&r, path);
    }
    // Followed the way a browser does, both land on the page.
    let r = app.get("/", None).await;
    assert_eq!(r.url().path(), "/console/");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn every_embedded_file_is_served_with_its_type_and_headers() {
    let app = spawn_app().await;
    let all = files();
    for must in [
        "index.html",
        "app.js",
        "console.css",
        "sdk/wimz.js",
        "sdk/wimz.d.ts",
    ] {
        assert!(all.iter().any(|f| f == must), "{must} embedded: {all:?}");
    }
    for name in &all {
        let r = app.get(&format!("/console/{name}"), None).await;
        assert_eq!(r.status(), 200, "{name}");
        assert_secured(&r, name);
        let h = r.headers().clone();
        assert_eq!(h[header::CONTENT_TYPE], content_type(name), "{name}");
        assert_ne!(
            h[header::CONTENT_TYPE],
            "application/octet-stream",
            "{name}"
        );
        assert_eq!(h[header::CACHE_CONTROL], "no-cache", "{name}");
        assert!(h.contains_key(header::ETAG), "{name}");
        let disk = if let Some(sdk) = name.strip_prefix("sdk/") {
            std::fs::read(format!("clients/js/{sdk}")).unwrap()
        } else {
            std::fs::read(format!("console/{name}")).unwrap()
        };
        assert_eq!(
            r.bytes().await.unwrap(),
            disk,
            "{name}: the file as committed"
        );
    }
    let index = app.get("/console/", None).await.text().await.unwrap();
    assert!(index.contains("src=\"app.js\""), "{index}");
}

#[tokio::test]
async fn an_unchanged_file_revalidates_with_304() {
    let app = spawn_app().await;
    let r = app.get("/console/sdk/wimz.js", None).await;
    let etag = r.headers()[header::ETAG].clone();
    let r = app
        .http
        .get(app.url("/console/sdk/wimz.js"))
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()[header::ETAG], etag);
    assert_secured(&r, "304");
    assert!(r.bytes().await.unwrap().is_empty());
    // Another file's tag is not this one's.
    let other = app.get("/console/index.html", None).await.headers()[header::ETAG].clone();
    assert_ne!(other, etag);
    let r = app
        .http
        .get(app.url("/console/sdk/wimz.js"))
        .header(header::IF_NONE_MATCH, other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // HEAD: the headers, no body.
    let r = app.http.head(app.url("/console/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert!(r.bytes().await.unwrap().is_empty());
}

async fn assert_not_found(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 404, "{what}");
    assert_secured(&r, what);
    let body: Value = r.json().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(body["error"]["code"], "not_found", "{what}: {body}");
}

#[tokio::test]
async fn unknown_names_directories_and_files_not_embedded_are_404() {
    let app = spawn_app().await;
    for path in [
        "/console/nope.html",
        "/console/sdk/",
        "/console/sdk",
        "/console/sdk/nope.js",
        // On disk beside the served files, but not web assets of the console:
        "/console/README.md",
        "/console/sdk/README.md",
        "/console/sdk/package.json",
        "/console/sdk/test/backoff.test.js",
        "/console/sdk/test-support/fakes.js",
        "/console/INDEX.HTML",
        "/console/index.html/",
    ] {
        assert!(
            std::path::Path::new("console").exists(),
            "run from the repository root"
        );
        assert_not_found(app.get(path, None).await, path).await;
    }
    // Other methods are not served either (the relay's plain 404).
    let r = app.http.post(app.url("/console/")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn paths_outside_the_embedded_set_never_answer_a_file() {
    let app = spawn_app().await;
    // Files that exist relative to the relay's directory, or the system's.
    let secrets = ["[package]", "wimz-relay", "root:", "fn main", "rust-embed"];
    for path in [
        "/console/../Cargo.toml",
        "/console/sdk/../../Cargo.toml",
        "/console/..%2fCargo.toml",
        "/console/%2e%2e/Cargo.toml",
        "/console/%2E%2E%2F%2E%2E%2FCargo.toml",
        "/console/sdk/..%5c..%5cCargo.toml",
        "/console/..\\..\\Cargo.toml",
        "/console//etc/passwd",
        "/console/%2fetc%2fpasswd",
        "/console/sdk/../../src/main.rs",
        "/console/sdk/%2e%2e/%2e%2e/build.rs",
        "/console/./index.html",
        "/console/sdk/./wimz.js",
        "/console/%00",
        "/console/index.html%00.js",
        "/console/....//....//Cargo.toml",
    ] {
        let (status, body) = raw_get(app.port, path, &[]).await;
        assert!(status == 404 || status == 400, "{path}: {status} {body}");
        for s in secrets {
            assert!(!body.contains(s), "{path} leaked {s:?}: {body}");
        }
        if status == 404 {
            assert!(body.contains("\"not_found\""), "{path}: {body}");
        }
    }
    // The same connection type answers a real file (the probe works).
    let (status, body) = raw_get(app.port, "/console/sdk/wimz.js", &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("export"), "{body}");
}
