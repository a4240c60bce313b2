//! Target `credentials`: what `/ws/device` and `/ws/app` read from a
//! request before the upgrade (`ws::credentials`), then the checks the relay
//! runs on it: the device token through `TokenService::verify` (see
//! [`crate::jwt::check_token`]), the signature through the clock window,
//! the HMAC and the replay guard (`auth::SignatureVerifier`).
//!
//! Input: the first line is the query string; each further line is a header
//! `name: value` (lines that are not a valid header are skipped, as an
//! HTTP parser would refuse them).
//!
//! Properties: never a panic; a bearer token wins; a signature comes whole
//! from the three `X-` headers or whole from the query, never mixed, with a
//! valid device id; anything else is 401. The window is |now - timestamp| <=
//! `auth.signature_window_s` for every `i64`; a signature verifies iff it is
//! the device's HMAC in hex (either case); one that verified is refused as a
//! replay the second time, also in the other case.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use futures_util::FutureExt;
use std::sync::Arc;
use wimz_relay::auth::signature::{self, SignatureError};
use wimz_relay::auth::{MemoryReplayGuard, SignatureVerifier};
use wimz_relay::error::ApiError;
use wimz_relay::http::extract::bearer_in;
use wimz_relay::ids::DeviceId;
use wimz_relay::secret::Secret;
use wimz_relay::ws::credentials::{app_credentials, robot_credentials, RobotCredentials};

/// The relay's clock in this target: 2096, so the replay guard (which
/// expires entries by the real clock) still holds what it was given.
const NOW: i64 = 4_000_000_000;
const WINDOW_S: u64 = 300;
const DEVICE_SECRET: &str = "fuzz-device-secret";

fn request(data: &[u8]) -> (HeaderMap, String) {
    let mut lines = data.split(|&b| b == b'\n');
    let query = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }
    (headers, query)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The query's value for `key` when it is there exactly once.
fn query_value(pairs: &[(String, String)], key: &str) -> Option<String> {
    let mut found = pairs.iter().filter(|(k, _)| k == key);
    match (found.next(), found.next()) {
        (Some((_, v)), None) => Some(v.clone()),
        _ => None,
    }
}

fn check_robot(headers: &HeaderMap, query: &str) {
    let bearer = bearer_in(headers);
    let (device, timestamp, sig) = match robot_credentials(headers, query) {
        Err(e) => {
            assert!(
                matches!(e, ApiError::Unauthorized),
                "robot refused with {e:?}"
            );
            assert!(bearer.is_none(), "bearer token ignored");
            return;
        }
        Ok(RobotCredentials::Token(t)) => {
            assert_eq!(Some(t.as_str()), bearer, "token is not the bearer token");
            assert!(!t.is_empty() && t.trim() == t);
            return crate::jwt::check_token(&t);
        }
        Ok(RobotCredentials::Signature {
            device,
            timestamp,
            signature,
        }) => (device, timestamp, signature),
    };
    assert!(bearer.is_none(), "bearer token ignored");
    assert_eq!(DeviceId::parse(device.as_str()).as_ref(), Ok(&device));
    let from_headers = (
        header(headers, "x-device-id"),
        header(headers, "x-timestamp"),
        header(headers, "x-signature"),
    );
    let (id, ts, s) = match from_headers {
        (Some(i), Some(t), Some(s)) => (i.to_string(), t.to_string(), s.to_string()),
        _ => {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(query).unwrap_or_default();
            let v = |k| query_value(&pairs, k).expect("signature not wholly from the query");
            (v("device_id"), v("timestamp"), v("signature"))
        }
    };
    assert_eq!(device.as_str(), id);
    assert_eq!(Ok(timestamp), ts.trim().parse::<i64>());
    assert_eq!(sig, s);
    check_signature(&device, timestamp, &sig);
}

fn check_signature(device: &DeviceId, timestamp: i64, sig: &str) {
    let secret = Secret::new(DEVICE_SECRET);
    let verifier = SignatureVerifier::new(WINDOW_S, Arc::new(MemoryReplayGuard::default()));
    let in_window =
        (i128::from(NOW) - i128::from(timestamp)).unsigned_abs() <= u128::from(WINDOW_S);
    assert_eq!(
        verifier.check_window(timestamp, NOW).is_ok(),
        in_window,
        "window wrong for timestamp {timestamp}"
    );
    let genuine = sig.to_ascii_lowercase() == signature::sign(&secret, device.as_str(), timestamp);
    assert_eq!(
        signature::verify(&secret, device.as_str(), timestamp, sig),
        genuine,
        "HMAC check disagrees"
    );
    let first = verifier
        .verify(&secret, device, timestamp, sig, NOW)
        .now_or_never()
        .expect("memory replay guard answers at once");
    let expected = if !in_window {
        Err(SignatureError::OutsideWindow)
    } else if !genuine {
        Err(SignatureError::Mismatch)
    } else {
        Ok(())
    };
    assert_eq!(first, expected);
    if first.is_ok() {
        for again in [sig.to_string(), sig.to_ascii_uppercase()] {
            let second = verifier
                .verify(&secret, device, timestamp, &again, NOW)
                .now_or_never()
                .expect("memory replay guard answers at once");
            assert_eq!(second, Err(SignatureError::Replayed), "signature replayed");
        }
    }
}

fn check_app(headers: &HeaderMap, query: &str) {
    let bearer = bearer_in(headers);
    let presented = match app_credentials(headers, query) {
        Err(e) => {
            assert!(
                matches!(e, ApiError::Unauthorized),
                "app refused with {e:?}"
            );
            assert!(bearer.is_none(), "bearer token ignored");
            return;
        }
        Ok(p) => p,
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    match bearer {
        Some(b) => assert_eq!(presented.token, b),
        None => assert_eq!(
            Some(&presented.token),
            query_value(&pairs, "token").as_ref()
        ),
    }
    match presented.initial_device() {
        Ok(Some(d)) => {
            assert_eq!(
                Some(d.as_str().to_string()),
                query_value(&pairs, "device_id")
            );
        }
        Ok(None) => {}
        Err(e) => assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}"),
    }
    crate::jwt::check_token(&presented.token);
}

/// `credentials`.
pub fn run(data: &[u8]) {
    let (headers, query) = request(data);
    check_robot(&headers, &query);
    check_app(&headers, &query);
}
