//! Target `jwt`: `auth::TokenService::verify`, the check behind every
//! bearer token (REST, `/ws/app`, `/ws/device`).
//!
//! The first byte picks what the rest is:
//! - 0: a token's text, checked with key A, which has only ever signed two
//!   tokens (a live device token and an expired user token). Properties: a
//!   token verifies only with exactly the live token's claims; "expired" is
//!   said only of a token whose signature is key A's (the signature is
//!   checked before the claims).
//! - 1: a claims payload, signed here with key B under the relay's header.
//! - 2: a header and a payload (`\n` between), signed here with key B.
//!   Properties for 1 and 2: a token verifies only if its header says
//!   `HS256` and its payload has a string `sub`, a known `role`, integer
//!   `exp`/`iat` and the `cid` (if any) equal to the claims returned, and
//!   `exp` is not past.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::OnceLock;
use wimz_relay::auth::jwt::TokenError;
use wimz_relay::auth::{Claims, Role, TokenService};
use wimz_relay::secret::Secret;

const KEY_A: &str = "fuzz-key-A-0123456789abcdef-0123456789";
const KEY_B: &str = "fuzz-key-B-0123456789abcdef-0123456789";
/// The live token key A signed: device `wimz-001`, valid until 2096.
pub const LIVE: (&str, Role, i64, i64) = ("wimz-001", Role::Device, 1_800_000_000, 4_000_000_000);
/// The expired token key A signed: a user, expired in 2001.
pub const EXPIRED: (&str, Role, i64, i64) = ("alice-id", Role::User, 1_000_000_000, 1_000_000_060);

struct Keys {
    a: TokenService,
    b: TokenService,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let a = TokenService::new(&Secret::new(KEY_A), 60);
        // Key A signs these two and nothing else.
        for (sub, role, iat, exp) in [LIVE, EXPIRED] {
            a.issue_with(sub, role, iat, exp).expect("issue");
        }
        Keys {
            a,
            b: TokenService::new(&Secret::new(KEY_B), 60),
        }
    })
}

/// The two tokens key A signed (seeds for the corpora).
pub fn signed_by_a() -> [String; 2] {
    let a = &keys().a;
    [LIVE, EXPIRED].map(|(sub, role, iat, exp)| a.issue_with(sub, role, iat, exp).expect("issue"))
}

fn hmac(key: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn signature_is(key: &str, token: &str) -> bool {
    let Some((message, signature)) = token.rsplit_once('.') else {
        return false;
    };
    URL_SAFE_NO_PAD
        .decode(signature)
        .is_ok_and(|s| s == hmac(key, message.as_bytes()))
}

fn same_claims(c: &Claims, (sub, role, iat, exp): (&str, Role, i64, i64)) -> bool {
    c.sub == sub && c.role == role && c.iat == iat && c.exp == exp
}

/// Checks any token text against key A (also used by `credentials`).
pub fn check_token(token: &str) {
    match keys().a.verify(token) {
        Ok(c) => assert!(same_claims(&c, LIVE), "forged token accepted: {c:?}"),
        Err(TokenError::Expired) => assert!(
            signature_is(KEY_A, token),
            "\"expired\" said of a token key A never signed"
        ),
        Err(TokenError::Invalid) => {}
    }
}

fn check_signed(header: &[u8], payload: &[u8]) {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let token = format!(
        "{message}.{}",
        URL_SAFE_NO_PAD.encode(hmac(KEY_B, message.as_bytes()))
    );
    let before = wimz_relay::ids::unix_now();
    let Ok(c) = keys().b.verify(&token) else {
        return;
    };
    let h: serde_json::Value = serde_json::from_slice(header).expect("accepted header is JSON");
    assert_eq!(h["alg"], "HS256", "token with another alg accepted");
    let p: serde_json::Value = serde_json::from_slice(payload).expect("accepted payload is JSON");
    assert_eq!(p["sub"].as_str(), Some(c.sub.as_str()));
    let role = match c.role {
        Role::User => "user",
        Role::Device => "device",
    };
    assert_eq!(p["role"].as_str(), Some(role));
    assert_eq!(p["exp"].as_i64(), Some(c.exp), "exp differs");
    assert_eq!(p["iat"].as_i64(), Some(c.iat), "iat differs");
    assert_eq!(p["cid"].as_str(), c.cid.as_deref(), "cid differs");
    assert!(
        c.exp >= before,
        "expired token accepted: exp {} < {before}",
        c.exp
    );
}

/// `jwt`.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(token) = std::str::from_utf8(rest) {
                check_token(token);
            }
        }
        1 => check_signed(br#"{"typ":"JWT","alg":"HS256"}"#, rest),
        _ => {
            let (header, payload) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &b""[..]),
            };
            check_signed(header, payload);
        }
    }
}
