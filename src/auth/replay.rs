//! Replay refusal for device signatures: a signature is accepted at most
//! once while it could still be valid. Single instance: in memory. A cluster
//! plugs in a Redis `SET NX EX` guard behind the same trait.

use std::collections::HashMap;
use std::sync::Mutex;

/// Remembers signatures already used.
pub trait ReplayGuard: Send + Sync {
    /// Records `key` until `expires_at` (Unix s); false if it was already there.
    fn first_use(&self, key: &str, expires_at: i64) -> bool;
}

/// In-process guard: a map pruned of expired entries as it grows.
#[derive(Default)]
pub struct MemoryReplayGuard {
    /// signature key -> Unix second after which it can no longer be valid.
    seen: Mutex<HashMap<String, i64>>,
}

impl ReplayGuard for MemoryReplayGuard {
    fn first_use(&self, key: &str, expires_at: i64) -> bool {
        let now = crate::ids::unix_now();
        // A poisoned lock only means another thread panicked mid-insert; the
        // map is still usable.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 4096 {
            seen.retain(|_, exp| *exp >= now);
        }
        match seen.get(key) {
            Some(exp) if *exp >= now => false,
            _ => {
                seen.insert(key.to_string(), expires_at);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_refused_until_expiry() {
        let g = MemoryReplayGuard::default();
        let now = crate::ids::unix_now();
        assert!(g.first_use("a", now + 10));
        assert!(!g.first_use("a", now + 10));
        assert!(g.first_use("b", now + 10));
        assert!(g.first_use("old", now - 1));
        assert!(g.first_use("old", now - 1), "expired entries do not block");
    }
}
