//! `turn.provider = "cloudflare"`: Cloudflare Realtime TURN.
//!
//! `POST {api_base}/v1/turn/keys/{key_id}/credentials/generate-ice-servers`
//! with `Authorization: Bearer <api_token>` and `{"ttl":N}`, answered `201`
//! `{"iceServers":[{"urls":[...],"username":..,"credential":..}, ...]}`.
//!
//! Answers are cached per subject (device) and reused while more than half
//! their lifetime remains, so a client always gets at least `ttl/2` of
//! validity and the relay calls the API at most about twice per `ttl` per
//! device. Concurrent requests for one device wait for the one call in
//! flight (a per-subject async lock) instead of each calling upstream.

use super::TurnError;
use crate::config::TurnSettings;
use crate::ids::unix_now;
use crate::secret::Secret;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one upstream call may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Cached entries beyond this many trigger a sweep of expired ones.
const CACHE_SWEEP_AT: usize = 4096;

/// A fetched answer in the §4 shape and when it stops being valid.
#[derive(Clone)]
struct Cached {
    creds: Value,
    expires_at: i64,
}

pub struct CloudflareTurn {
    http: reqwest::Client,
    endpoint: String,
    api_token: Secret,
    ttl_s: u64,
    /// Per subject: the last answer, behind an async lock so that one call
    /// is in flight per subject at a time. The outer lock is held only to
    /// find or insert the entry.
    cache: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl CloudflareTurn {
    pub fn new(s: &TurnSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(UPSTREAM_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        CloudflareTurn {
            http,
            endpoint: format!(
                "{}/v1/turn/keys/{}/credentials/generate-ice-servers",
                s.api_base.trim_end_matches('/'),
                s.key_id
            ),
            api_token: s.api_token.clone(),
            ttl_s: s.ttl_s,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn credentials(
        &self,
        subject: &str,
        stun_urls: &[String],
    ) -> Result<Value, TurnError> {
        let slot = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= CACHE_SWEEP_AT {
                let now = unix_now();
                cache.retain(|_, v| {
                    v.try_lock()
                        .map(|c| c.as_ref().is_some_and(|c| c.expires_at > now))
                        .unwrap_or(true)
                });
            }
            cache.entry(subject.to_string()).or_default().clone()
        };
        let mut entry = slot.lock().await;
        let now = unix_now();
        if let Some(c) = entry.as_ref() {
            if c.expires_at - now > (self.ttl_s / 2) as i64 {
                return Ok(c.creds.clone());
            }
        }
        let fresh = self.fetch(stun_urls).await?;
        *entry = Some(fresh.clone());
        Ok(fresh.creds)
    }

    async fn fetch(&self, stun_urls: &[String]) -> Result<Cached, TurnError> {
        let started = unix_now();
        let resp = self
            .http
            .post(&self.endpoint)
            .bearer_auth(self.api_token.expose())
            .json(&json!({ "ttl": self.ttl_s }))
            .send()
            .await
            .map_err(|e| TurnError::Upstream(format!("cloudflare: {}", e.without_url())))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(TurnError::Upstream(format!("cloudflare answered {status}")));
        }
        let body: Value = resp.json().await.map_err(|e| {
            TurnError::Upstream(format!("cloudflare: bad body: {}", e.without_url()))
        })?;
        let expires_at = started + self.ttl_s as i64;
        Ok(Cached {
            creds: to_shape(&body, stun_urls, self.ttl_s, expires_at)?,
            expires_at,
        })
    }
}

/// Cloudflare's `{"iceServers":[...]}` → the §4 object. The TURN entry is
/// the one with a username; its `turn:`/`turns:` URLs become `urls`.
fn to_shape(
    body: &Value,
    stun_urls: &[String],
    ttl: u64,
    expires_at: i64,
) -> Result<Value, TurnError> {
    let servers = body
        .get("iceServers")
        .and_then(Value::as_array)
        .ok_or_else(|| TurnError::Upstream("cloudflare: no iceServers in answer".into()))?;
    let mut ice_servers = Vec::new();
    if !stun_urls.is_empty() {
        ice_servers.push(json!({ "urls": stun_urls }));
    }
    let (mut urls, mut username, mut credential) = (Vec::new(), String::new(), String::new());
    for s in servers {
        let list: Vec<String> = match s.get("urls") {
            Some(Value::String(u)) => vec![u.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|u| u.as_str().map(String::from))
                .collect(),
            _ => continue,
        };
        let user = s.get("username").and_then(Value::as_str);
        let cred = s.get("credential").and_then(Value::as_str);
        match (user, cred) {
            (Some(u), Some(c)) => {
                if urls.is_empty() {
                    urls = list
                        .iter()
                        .filter(|u| u.starts_with("turn"))
                        .cloned()
                        .collect();
                    username = u.to_string();
                    credential = c.to_string();
                }
                ice_servers.push(json!({ "urls": list, "username": u, "credential": c }));
            }
            _ => ice_servers.push(json!({ "urls": list })),
        }
    }
    if urls.is_empty() {
        return Err(TurnError::Upstream(
            "cloudflare: answer has no TURN server".into(),
        ));
    }
    let mut v = super::shape(&[], &urls, &username, &credential, ttl, expires_at);
    v["ice_servers"] = Value::Array(ice_servers);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_documented_answer() {
        let body = json!({"iceServers": [
            {"urls": ["stun:stun.cloudflare.com:3478"]},
            {"urls": ["turn:turn.cloudflare.com:3478?transport=udp", "turns:turn.cloudflare.com:5349?transport=tcp"],
             "username": "u1", "credential": "c1"}
        ]});
        let v = to_shape(&body, &["stun:s:1".into()], 600, 99).unwrap();
        assert_eq!(v["username"], "u1");
        assert_eq!(v["credential"], "c1");
        assert_eq!(v["urls"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["ttl"], 600);
        assert_eq!(v["expires_at"], 99);
        assert_eq!(v["ice_servers"].as_array().map(Vec::len), Some(3));
        assert!(to_shape(&json!({"iceServers": []}), &[], 1, 1).is_err());
        assert!(to_shape(&json!({"nope": 1}), &[], 1, 1).is_err());
    }
}
