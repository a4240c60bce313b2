//! The TURN REST API credential scheme (draft-uberti-behave-turn-rest-00),
//! which coturn checks with `use-auth-secret` + `static-auth-secret`:
//! username `<expires_at>:<device_id>`, credential
//! `base64(HMAC-SHA1(secret, username))`. coturn refuses the pair once
//! `expires_at` has passed.

use crate::secret::Secret;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// `(username, credential)` valid until `expires_at` (Unix seconds).
/// `subject` is the device id (or `user:<id>` for a user's `/webrtc/config`).
pub fn credentials(secret: &Secret, subject: &str, expires_at: i64) -> (String, String) {
    let username = format!("{expires_at}:{subject}");
    let credential = sign(secret, &username);
    (username, credential)
}

/// `base64(HMAC-SHA1(secret, username))`.
pub fn sign(secret: &Secret, username: &str) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_python() {
        // python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b"north",b"1700000000:wimz-1",hashlib.sha1).digest()).decode())'
        let (u, c) = credentials(&Secret::new("north"), "wimz-1", 1_700_000_000);
        assert_eq!(u, "1700000000:wimz-1");
        assert_eq!(c, REFERENCE);
    }

    const REFERENCE: &str = "KZfK8Kb+GjwkfQJ/GWmBVJDNHCE=";
}
