//! TURN credentials (PROTOCOL.md §4) behind one interface, chosen by
//! `turn.provider`.
//!
//! [`TurnService::credentials`] is called by the HTTP handlers
//! (`/api/turn/credentials`) and by the
//! [`SessionSupervisor`](crate::webrtc::SessionSupervisor) for every
//! `webrtc_request` and ICE restart. Every provider answers the same shape:
//!
//! ```text
//! {"urls":[turn...],"username":..,"credential":..,"ttl":N,"expires_at":unix_s,
//!  "ice_servers":[{"urls":[stun...]},{"urls":[turn...],"username":..,"credential":..}]}
//! ```
//!
//! - `none`: STUN only (`urls` empty, `username`/`credential` empty strings).
//! - `hmac` ([`hmac`]): the TURN REST API scheme coturn's `use-auth-secret` checks.
//! - `static`: the configured `turn.username` / `turn.credential`.
//! - `cloudflare` ([`cloudflare`]): Cloudflare Realtime TURN's HTTP API, cached per device.
//!
//! Secrets (`turn.secret`, `turn.credential`, `turn.api_token`) are never
//! logged; the credentials handed out are not logged either.

pub mod cloudflare;
pub mod hmac;

use crate::config::{TurnProvider, TurnSettings};
use crate::ids::{unix_now, DeviceId};
use serde_json::{json, Value};

/// Hands out TURN credentials with the configured provider. One per process
/// (in `AppState`), shared by HTTP handlers and the session supervisor.
pub struct TurnService {
    settings: TurnSettings,
    /// The upstream client and its per-device cache (`cloudflare` only).
    cloudflare: Option<cloudflare::CloudflareTurn>,
}

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("TURN provider unavailable: {0}")]
    Upstream(String),
}

impl TurnService {
    pub fn new(settings: TurnSettings) -> Self {
        let cloudflare = (settings.provider == TurnProvider::Cloudflare)
            .then(|| cloudflare::CloudflareTurn::new(&settings));
        TurnService {
            settings,
            cloudflare,
        }
    }

    /// Fresh credentials for `device` in the §4 shape.
    pub async fn credentials(&self, device: &DeviceId) -> Result<Value, TurnError> {
        self.credentials_for(device.as_str()).await
    }

    /// Credentials for `subject`: a device id, or `user:<user id>` when a
    /// user asks `/webrtc/config` without naming a device. The subject is
    /// the `hmac` username's second half and the `cloudflare` cache key.
    pub async fn credentials_for(&self, subject: &str) -> Result<Value, TurnError> {
        let s = &self.settings;
        match s.provider {
            TurnProvider::None => Ok(shape(&s.stun_urls, &[], "", "", s.ttl_s, unix_now())),
            TurnProvider::Hmac => {
                let expires_at = unix_now() + s.ttl_s as i64;
                let (username, credential) = hmac::credentials(&s.secret, subject, expires_at);
                Ok(shape(
                    &s.stun_urls,
                    &s.urls,
                    &username,
                    &credential,
                    s.ttl_s,
                    expires_at,
                ))
            }
            TurnProvider::Static => Ok(shape(
                &s.stun_urls,
                &s.urls,
                &s.username,
                s.credential.expose(),
                s.ttl_s,
                unix_now() + s.ttl_s as i64,
            )),
            TurnProvider::Cloudflare => match &self.cloudflare {
                Some(cf) => cf.credentials(subject, &s.stun_urls).await,
                None => Err(TurnError::Upstream("cloudflare client missing".into())),
            },
        }
    }

    /// `{"ice_servers":[...]}` for `/webrtc/config` (see [`Self::credentials_for`]).
    pub async fn ice_servers(&self, subject: &str) -> Result<Value, TurnError> {
        let c = self.credentials_for(subject).await?;
        Ok(json!({ "ice_servers": c.get("ice_servers").cloned().unwrap_or(json!([])) }))
    }
}

/// The §4 object. `turn_urls` empty → STUN only.
pub(crate) fn shape(
    stun_urls: &[String],
    turn_urls: &[String],
    username: &str,
    credential: &str,
    ttl: u64,
    expires_at: i64,
) -> Value {
    let mut ice_servers = Vec::new();
    if !stun_urls.is_empty() {
        ice_servers.push(json!({ "urls": stun_urls }));
    }
    if !turn_urls.is_empty() {
        ice_servers.push(json!({
            "urls": turn_urls,
            "username": username,
            "credential": credential,
        }));
    }
    json!({
        "urls": turn_urls,
        "username": username,
        "credential": credential,
        "ttl": ttl,
        "expires_at": expires_at,
        "ice_servers": ice_servers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn settings(provider: TurnProvider) -> TurnSettings {
        TurnSettings {
            provider,
            secret: Secret::new("s3cret"),
            urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            username: "fixed".into(),
            credential: Secret::new("pw"),
            ..TurnSettings::default()
        }
    }

    #[actix_rt::test]
    async fn every_local_provider_answers_the_same_shape() {
        let d = DeviceId::parse("wimz-1").expect("valid id");
        for p in [TurnProvider::None, TurnProvider::Hmac, TurnProvider::Static] {
            let c = TurnService::new(settings(p)).credentials(&d).await.unwrap();
            for k in [
                "urls",
                "username",
                "credential",
                "ttl",
                "expires_at",
                "ice_servers",
            ] {
                assert!(c.get(k).is_some(), "{p:?} lacks {k}: {c}");
            }
            assert_eq!(
                c["ice_servers"][0]["urls"][0],
                "stun:stun.l.google.com:19302"
            );
        }
        let none = TurnService::new(settings(TurnProvider::None))
            .credentials(&d)
            .await
            .unwrap();
        assert_eq!(none["ice_servers"].as_array().map(Vec::len), Some(1));
        let st = TurnService::new(settings(TurnProvider::Static))
            .credentials(&d)
            .await
            .unwrap();
        assert_eq!(st["ice_servers"][1]["username"], "fixed");
        assert_eq!(st["credential"], "pw");
    }

    #[actix_rt::test]
    async fn hmac_username_is_expiry_colon_device() {
        let d = DeviceId::parse("wimz-1").expect("valid id");
        let c = TurnService::new(settings(TurnProvider::Hmac))
            .credentials(&d)
            .await
            .unwrap();
        let exp = c["expires_at"].as_i64().unwrap();
        assert_eq!(c["username"], format!("{exp}:wimz-1"));
        assert_eq!(c["ttl"], 86_400);
        assert!(exp > unix_now() + 86_000);
    }
}
