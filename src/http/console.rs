//! The web console's static files, embedded in the binary: `console/` at
//! `/console/` and the JS client `clients/js/` at `/console/sdk/` (so the
//! console imports `./sdk/wimz.js`); `/` and `/console` redirect to
//! `/console/`.
//!
//! The files are compiled in by `rust-embed` (feature `debug-embed`: debug
//! builds embed them too, so tests serve exactly what a release serves and
//! nothing is ever read from disk at run time). `build.rs` makes cargo
//! rebuild when a file is added under either folder, so a new file needs no
//! Rust change. Only web assets are embedded (the include/exclude lists
//! below): no tests, no `node_modules`, no dotfiles.
//!
//! A request path is looked up, as sent, in that fixed set; anything that
//! is not a plain relative name (`..`, `.`, empty segments, `%`-escapes,
//! backslashes) is refused before the lookup. Unknown names answer `404`
//! with the protocol's error body; there are no directory listings.
//! Every answer carries a strict Content-Security-Policy, `nosniff`,
//! `Referrer-Policy` and `Cache-Control: no-cache` with an ETag (the file's
//! SHA-256, computed at build time), so a browser revalidates cheaply with
//! `If-None-Match` and never runs a stale console after an upgrade.

use crate::error::ApiError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use rust_embed::{EmbeddedFile, RustEmbed};

/// The console's own files (`console/`).
#[derive(RustEmbed)]
#[folder = "console/"]
#[include = "*.html"]
#[include = "*.js"]
#[include = "*.mjs"]
#[include = "*.css"]
#[include = "*.json"]
#[include = "*.svg"]
#[include = "*.png"]
#[include = "*.ico"]
#[include = "*.webp"]
#[include = "*.woff2"]
#[exclude = "node_modules/*"]
#[exclude = "test/*"]
#[exclude = "tests/*"]
#[exclude = "test-support/*"]
#[exclude = "*.test.js"]
#[exclude = "*.test.mjs"]
#[exclude = "package.json"]
#[exclude = "package-lock.json"]
#[exclude = ".*"]
#[exclude = "*/.*"]
struct Console;

/// The JS client (`clients/js/`), served under `/console/sdk/`.
#[derive(RustEmbed)]
#[folder = "clients/js/"]
#[include = "*.js"]
#[include = "*.mjs"]
#[include = "*.d.ts"]
#[exclude = "node_modules/*"]
#[exclude = "test/*"]
#[exclude = "tests/*"]
#[exclude = "test-support/*"]
#[exclude = "*.test.js"]
#[exclude = "*.test.mjs"]
#[exclude = ".*"]
#[exclude = "*/.*"]
struct Sdk;

/// Where the console lives.
pub const PREFIX: &str = "/console/";
/// Where, under [`PREFIX`], the JS client lives.
const SDK_DIR: &str = "sdk/";

/// What the console may load and talk to: its own files only. `connect-src
/// 'self'` covers same-origin `ws:`/`wss:` in CSP Level 3 browsers
/// (Chromium, Firefox, Safari); `blob:`/`mediastream:` are for the video
/// element; `data:` images for robot photos sent inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; \
    connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// `GET /` and `GET /console`: to the console (relative, so it also works
/// behind a proxy that mounts the relay under a path).
pub async fn redirect() -> HttpResponse {
    let mut r = HttpResponse::Found();
    r.insert_header((header::LOCATION, "console/"));
    secure(&mut r);
    r.finish()
}

/// `GET|HEAD /console/{path}`: one embedded file, or 404.
pub async fn file(req: HttpRequest) -> HttpResponse {
    let name = req.path().strip_prefix(PREFIX).unwrap_or("");
    let Some(found) = lookup(name) else {
        let mut r = ApiError::NotFound("no such file".into()).error_response();
        for (k, v) in SECURITY_HEADERS {
            r.headers_mut()
                .insert(k.clone(), HeaderValue::from_static(v));
        }
        return r;
    };
    let (name, file) = found;
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let fresh = matches_etag(&req, &etag);
    let mut r = match fresh {
        true => HttpResponse::build(StatusCode::NOT_MODIFIED),
        false => HttpResponse::Ok(),
    };
    r.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    secure(&mut r);
    if fresh {
        return r.finish();
    }
    r.insert_header((header::CONTENT_TYPE, content_type(name)));
    match file.data {
        std::borrow::Cow::Borrowed(b) => r.body(b),
        std::borrow::Cow::Owned(v) => r.body(v),
    }
}

/// Headers on every console answer (files, 304s, 404s, redirects).
const SECURITY_HEADERS: [(header::HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

fn secure(r: &mut HttpResponseBuilder) {
    for (k, v) in SECURITY_HEADERS {
        r.insert_header((k, v));
    }
}

/// The embedded file a raw request path (after `/console/`) names: `""` is
/// `index.html`, `sdk/...` the JS client, anything else the console. The
/// name is checked before the lookup (see [`plain_name`]).
fn lookup(raw: &str) -> Option<(&str, EmbeddedFile)> {
    let name = if raw.is_empty() { "index.html" } else { raw };
    if !plain_name(name) {
        return None;
    }
    match name.strip_prefix(SDK_DIR) {
        Some(rest) => Sdk::get(rest),
        None => Console::get(name),
    }
    .map(|f| (name, f))
}

/// Segments of `[A-Za-z0-9._~-]`, none empty, `.` or `..`: what a file name
/// in the embedded folders looks like. Refuses `%`-escapes, backslashes,
/// control characters and every spelling of a parent directory.
fn plain_name(name: &str) -> bool {
    name.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
    })
}

/// `If-None-Match` names this ETag (or `*`).
fn matches_etag(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// The Content-Type of an embedded file, by extension. A table of our own
/// rather than a MIME database: `.ts` (the SDK's `wimz.d.ts`) is not MPEG
/// transport stream here, and an unknown extension is served as bytes,
/// which `nosniff` keeps a browser from executing.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "ts" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Every embedded path, as served under [`PREFIX`] (tests, docs).
pub fn files() -> Vec<String> {
    Console::iter()
        .map(|f| f.into_owned())
        .chain(Sdk::iter().map(|f| format!("{SDK_DIR}{f}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_names_are_looked_up() {
        for ok in ["index.html", "sdk/wimz.js", "a/b-c_d.e~f.css"] {
            assert!(plain_name(ok), "{ok}");
        }
        for bad in [
            "../Cargo.toml",
            "sdk/../../Cargo.toml",
            "./index.html",
            "a//b.js",
            "sdk/",
            "/etc/passwd",
            "%2e%2e/Cargo.toml",
            "..%2fCargo.toml",
            "a\\b.js",
            "a b.js",
            "a\u{0}b.js",
            "..",
        ] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("sdk/wimz.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("sdk/wimz.d.ts"), "text/plain; charset=utf-8");
        assert_eq!(content_type("console.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }
}
