//! Target `config`: `config::Settings::from_toml_str`, the loader behind
//! `wimz-relay serve [--config FILE]`: TOML text, then `WIMZ__SECTION__KEY`
//! environment overrides, then validation.
//!
//! Input: TOML text; after a line `#env`, one `NAME=VALUE` per line.
//!
//! Properties: never a panic; a refusal is one line, `configuration error:
//! <key>: <message>` with a key, and never quotes the value of a secret key
//! given in the environment; a configuration that loads is one the relay
//! can start with: every timer is a `Duration` that can be added to
//! `Instant::now()`, the heartbeat times out after its interval, every
//! allow-list rule parses; `Debug` of the settings shows no secret value;
//! the store and Redis URLs, redacted for logs, show no password.

use std::time::Instant;
use wimz_relay::config::{secs, Settings};
use wimz_relay::proxy_paths::Rule;
use wimz_relay::secret::{redact_url, Secret};

/// Keys holding a `Secret`.
const SECRET_KEYS: &[(&str, &str)] = &[
    ("AUTH", "JWT_SECRET"),
    ("STORE", "URL"),
    ("CLUSTER", "REDIS_URL"),
    ("TURN", "SECRET"),
    ("TURN", "CREDENTIAL"),
    ("TURN", "API_TOKEN"),
];

fn split(text: &str) -> (&str, Vec<(String, String)>) {
    let (toml, env) = match text.strip_prefix("#env\n") {
        Some(env) => ("", env),
        None => match text.split_once("\n#env\n") {
            Some(parts) => parts,
            None => return (text, Vec::new()),
        },
    };
    let env = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (toml, env)
}

fn is_secret_key(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("WIMZ__") else {
        return false;
    };
    let mut parts = rest.split("__");
    let (Some(s), Some(k), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    SECRET_KEYS
        .iter()
        .any(|(ss, kk)| s.eq_ignore_ascii_case(ss) && k.eq_ignore_ascii_case(kk))
}

/// A secret value no message template could contain by chance: 8 or more
/// letters and digits with a digit, written nowhere else in the input.
fn recognisable(value: &str, input: &str) -> bool {
    value.len() >= 8
        && value.bytes().all(|b| b.is_ascii_alphanumeric())
        && value.bytes().any(|b| b.is_ascii_digit())
        && input.matches(value).count() == 1
}

fn check_refusal(input: &str, env: &[(String, String)], e: &wimz_relay::config::ConfigError) {
    let line = e.to_string();
    assert!(
        !line.contains('\n') && !line.contains('\r'),
        "error is not one line: {line:?}"
    );
    assert!(line.starts_with("configuration error: "), "{line:?}");
    assert!(!e.key.is_empty(), "error names no key: {line:?}");
    for (name, value) in env {
        let value = value.trim();
        if is_secret_key(name) && recognisable(value, input) {
            assert!(!line.contains(value), "error quotes {name}: {line:?}");
        }
    }
}

fn check_timer(key: &str, v: f64) {
    assert!(
        Instant::now().checked_add(secs(v)).is_some(),
        "{key} = {v} loads but cannot be used as a timer"
    );
}

fn check_loaded(s: &Settings) {
    check_timer("heartbeat.interval_s", s.heartbeat.interval_s);
    check_timer("heartbeat.timeout_s", s.heartbeat.timeout_s);
    check_timer("webrtc.setup_timeout_s", s.webrtc.setup_timeout_s);
    check_timer("webrtc.idle_timeout_s", s.webrtc.idle_timeout_s);
    check_timer("proxy.timeout_s", s.proxy.timeout_s);
    check_timer("rooms.idle_grace_s", s.rooms.idle_grace_s);
    check_timer("server.shutdown_timeout_s", s.server.shutdown_timeout_s);
    assert!(s.heartbeat.timeout_s > s.heartbeat.interval_s);
    assert!(s
        .proxy
        .allowed_paths
        .iter()
        .all(|r| Rule::parse(r).is_some()));

    let secrets = [
        &s.auth.jwt_secret,
        &s.store.url,
        &s.cluster.redis_url,
        &s.turn.secret,
        &s.turn.credential,
        &s.turn.api_token,
    ];
    let shown = format!("{s:?}");
    let mut blank = s.clone();
    for secret in [
        &mut blank.auth.jwt_secret,
        &mut blank.store.url,
        &mut blank.cluster.redis_url,
        &mut blank.turn.secret,
        &mut blank.turn.credential,
        &mut blank.turn.api_token,
    ] {
        *secret = Secret::default();
    }
    let shown_blank = format!("{blank:?}");
    for secret in secrets {
        let v = secret.expose();
        if v.len() >= 4 && !shown_blank.contains(v) {
            assert!(!shown.contains(v), "Debug shows a secret");
        }
    }
    for url in [s.store.url.expose(), s.cluster.redis_url.expose()] {
        check_redacted(url);
    }
}

fn check_redacted(url: &str) {
    let has_password = |u: &url::Url| u.password().is_some_and(|p| !p.is_empty());
    if !url::Url::parse(url).is_ok_and(|u| has_password(&u)) {
        return;
    }
    if let Ok(r) = url::Url::parse(&redact_url(url)) {
        assert!(
            matches!(r.password(), None | Some("***" | "%2A%2A%2A")),
            "redacted URL still has a password"
        );
    }
}

/// `config`.
pub fn run(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, env) = split(input);
    match Settings::from_toml_str(toml, "fuzz.toml", env.clone()) {
        Ok(s) => check_loaded(&s),
        Err(e) => check_refusal(input, &env, &e),
    }
}
