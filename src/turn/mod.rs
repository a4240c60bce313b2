//! TURN credentials (PROTOCOL.md §4) behind one interface, chosen by
//! `turn.provider`. (Providers are being built under issue 4.)

use crate::config::TurnSettings;
use crate::ids::DeviceId;
use serde_json::{json, Value};

pub struct TurnService {
    settings: TurnSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("TURN provider unavailable: {0}")]
    Upstream(String),
}

impl TurnService {
    pub fn new(settings: TurnSettings) -> Self {
        TurnService { settings }
    }

    /// Fresh credentials for `device`.
    pub async fn credentials(&self, _device: &DeviceId) -> Result<Value, TurnError> {
        Ok(json!({
            "urls": [],
            "ice_servers": [{"urls": self.settings.stun_urls}],
        }))
    }

    /// `{"ice_servers":[...]}` for `/webrtc/config`.
    pub async fn ice_servers(&self, device: &DeviceId) -> Result<Value, TurnError> {
        let c = self.credentials(device).await?;
        Ok(c.get("ice_servers")
            .cloned()
            .unwrap_or(Value::Array(vec![])))
    }
}
