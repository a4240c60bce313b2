//! Replay refusal for device signatures: a signature is accepted at most
//! once while it could still be valid. Single instance: in memory
//! ([`MemoryReplayGuard`]). Clustered: Redis `SET NX EX` ([`RedisReplayGuard`]),
//! so a captured signature cannot be replayed against another instance.

use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Mutex;

/// Remembers signatures already used.
pub trait ReplayGuard: Send + Sync {
    /// Records `key` until `expires_at` (Unix s); false if it was already there.
    fn first_use<'a>(&'a self, key: &'a str, expires_at: i64) -> BoxFuture<'a, bool>;
}

/// In-process guard: a map pruned of expired entries as it grows.
#[derive(Default)]
pub struct MemoryReplayGuard {
    /// signature key -> Unix second after which it can no longer be valid.
    seen: Mutex<HashMap<String, i64>>,
}

impl MemoryReplayGuard {
    pub fn check(&self, key: &str, expires_at: i64) -> bool {
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

impl ReplayGuard for MemoryReplayGuard {
    fn first_use<'a>(&'a self, key: &'a str, expires_at: i64) -> BoxFuture<'a, bool> {
        let fresh = self.check(key, expires_at);
        Box::pin(async move { fresh })
    }
}

/// Cluster-wide guard in Redis. While Redis is unreachable it falls back to
/// this instance's memory (a replay against another instance is then
/// possible; the window is `auth.signature_window_s`).
pub struct RedisReplayGuard {
    redis: crate::cluster::link::Link,
    fallback: MemoryReplayGuard,
}

impl RedisReplayGuard {
    /// On the instance's link to Redis (shared with the cluster bridge).
    pub fn new(redis: crate::cluster::link::Link) -> RedisReplayGuard {
        RedisReplayGuard {
            redis,
            fallback: MemoryReplayGuard::default(),
        }
    }
}

impl ReplayGuard for RedisReplayGuard {
    fn first_use<'a>(&'a self, key: &'a str, expires_at: i64) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let ttl = (expires_at - crate::ids::unix_now()).max(1);
            let mut redis = self.redis.clone();
            let r: redis::RedisResult<Option<String>> = redis::cmd("SET")
                .arg(crate::cluster::keys::signature(key))
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(ttl)
                .query_async(&mut redis)
                .await;
            match r {
                Ok(set) => set.is_some() && self.fallback.check(key, expires_at),
                Err(e) => {
                    tracing::warn!(error = %e, "replay guard: Redis unreachable, using this instance's memory");
                    self.fallback.check(key, expires_at)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_use_refused_until_expiry() {
        let g = MemoryReplayGuard::default();
        let now = crate::ids::unix_now();
        assert!(g.first_use("a", now + 10).await);
        assert!(!g.first_use("a", now + 10).await);
        assert!(g.first_use("b", now + 10).await);
        assert!(g.first_use("old", now - 1).await);
        assert!(
            g.first_use("old", now - 1).await,
            "expired entries do not block"
        );
    }
}
