//! Device signatures (PROTOCOL.md §2):
//! `hex(HMAC-SHA256(device_secret, "{device_id}:{timestamp}"))`, accepted
//! within ± `auth.signature_window_s`, compared in constant time, never twice.

use super::replay::ReplayGuard;
use crate::ids::DeviceId;
use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused (all answered 401; the kind is for logs).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("timestamp outside the accepted window")]
    OutsideWindow,
    #[error("signature does not verify")]
    Mismatch,
    #[error("signature already used")]
    Replayed,
}

/// The signature a robot computes; the relay uses it only in tests and tools.
pub fn sign(secret: &Secret, device: &str, timestamp: i64) -> String {
    // new_from_slice only fails for key lengths HMAC cannot take; HMAC takes any.
    let mut mac =
        HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{device}:{timestamp}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time check of one signature against one secret.
pub fn verify(secret: &Secret, device: &str, timestamp: i64, signature_hex: &str) -> bool {
    let Ok(given) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(format!("{device}:{timestamp}").as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// Checks window, HMAC and replay, in that order.
pub struct SignatureVerifier {
    window_s: u64,
    replay: Arc<dyn ReplayGuard>,
}

impl SignatureVerifier {
    pub fn new(window_s: u64, replay: Arc<dyn ReplayGuard>) -> Self {
        SignatureVerifier { window_s, replay }
    }

    /// Checks the clock window only (before looking up the secret). Any
    /// `i64` is a timestamp the robot may send: the difference is taken
    /// without overflow.
    pub fn check_window(&self, timestamp: i64, now: i64) -> Result<(), SignatureError> {
        if now.abs_diff(timestamp) > self.window_s {
            return Err(SignatureError::OutsideWindow);
        }
        Ok(())
    }

    /// Full check. Only a verified signature is remembered for replay.
    pub async fn verify(
        &self,
        secret: &Secret,
        device: &DeviceId,
        timestamp: i64,
        signature_hex: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        self.check_window(timestamp, now)?;
        if !verify(secret, device.as_str(), timestamp, signature_hex) {
            return Err(SignatureError::Mismatch);
        }
        let key = format!("{}:{}", device.as_str(), signature_hex.to_ascii_lowercase());
        let expires_at = timestamp.saturating_add_unsigned(self.window_s);
        if !self.replay.first_use(&key, expires_at).await {
            return Err(SignatureError::Replayed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::MemoryReplayGuard;

    /// Found by the `credentials` fuzz target: `now - timestamp` overflowed
    /// for timestamps far from now (a panic in a debug build; in a release
    /// build a wrapped difference let a timestamp near `now + i64::MIN`
    /// through the window, and its replay entry expired at once). Every
    /// `i64` is inside or outside the window, whatever the window.
    #[test]
    fn window_holds_for_any_timestamp() {
        let v = SignatureVerifier::new(300, Arc::new(MemoryReplayGuard::default()));
        let now = 1_800_000_000;
        for ts in [i64::MIN, i64::MIN + 1, now + i64::MIN, i64::MAX, -now] {
            assert_eq!(
                v.check_window(ts, now),
                Err(SignatureError::OutsideWindow),
                "{ts}"
            );
        }
        assert_eq!(v.check_window(now - 300, now), Ok(()));
        assert_eq!(v.check_window(now + 300, now), Ok(()));
        let wide = SignatureVerifier::new(u64::MAX, Arc::new(MemoryReplayGuard::default()));
        assert_eq!(wide.check_window(i64::MIN, i64::MAX), Ok(()));
    }

    #[tokio::test]
    async fn window_hmac_and_replay() {
        let v = SignatureVerifier::new(300, Arc::new(MemoryReplayGuard::default()));
        let secret = Secret::new("s3cret");
        let dev = DeviceId::parse("wimz-1").unwrap();
        let now = 1_800_000_000;
        let sig = sign(&secret, "wimz-1", now);
        assert_eq!(
            v.verify(
                &secret,
                &dev,
                now - 301,
                &sign(&secret, "wimz-1", now - 301),
                now
            )
            .await,
            Err(SignatureError::OutsideWindow)
        );
        let mut bad = sig.clone().into_bytes();
        bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            v.verify(&secret, &dev, now, std::str::from_utf8(&bad).unwrap(), now)
                .await,
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v.verify(&secret, &dev, now, "zz", now).await,
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v.verify(&Secret::new("other"), &dev, now, &sig, now).await,
            Err(SignatureError::Mismatch)
        );
        // verify() uses the real clock for the replay entry's expiry check;
        // use a timestamp near now so the entry is live.
        let real_now = crate::ids::unix_now();
        let sig = sign(&secret, "wimz-1", real_now);
        assert_eq!(
            v.verify(&secret, &dev, real_now, &sig, real_now).await,
            Ok(())
        );
        assert_eq!(
            v.verify(&secret, &dev, real_now, &sig, real_now).await,
            Err(SignatureError::Replayed)
        );
        assert_eq!(
            v.verify(&secret, &dev, real_now, &sig.to_uppercase(), real_now)
                .await,
            Err(SignatureError::Replayed)
        );
    }
}
