//! `GET/POST /api/turn/credentials` and `GET /webrtc/config` (PROTOCOL.md
//! §1, §4). Credentials come from [`TurnService`](crate::turn::TurnService).
//!
//! Who may ask for device X's credentials: X's owner (user token) or X
//! itself (device token). Anyone else — another user, another device — gets
//! `404 not_found`, the same answer as for a device that does not exist, so
//! the endpoint never reveals which device ids are registered.
//! A provider failure (Cloudflare unreachable) is `503 unavailable`.

use super::extract::AnyAuth;
use crate::error::ApiError;
use crate::ids::DeviceId;
use crate::state::AppState;
use crate::turn::TurnError;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

/// `?device_id=X` or `{"device_id":X}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForDevice {
    device_id: DeviceId,
}

pub async fn get_credentials(
    state: web::Data<AppState>,
    auth: AnyAuth,
    query: web::Query<ForDevice>,
) -> Result<HttpResponse, ApiError> {
    credentials(&state, auth, query.into_inner().device_id).await
}

pub async fn post_credentials(
    state: web::Data<AppState>,
    auth: AnyAuth,
    body: web::Json<ForDevice>,
) -> Result<HttpResponse, ApiError> {
    credentials(&state, auth, body.into_inner().device_id).await
}

async fn credentials(
    state: &AppState,
    auth: AnyAuth,
    device: DeviceId,
) -> Result<HttpResponse, ApiError> {
    let owner = state.store.device_owner(&device).await?;
    let allowed = match (&auth, owner) {
        (AnyAuth::User(u), Some(owner)) => *u == owner,
        (AnyAuth::Device(d), Some(_)) => *d == device,
        (_, None) => false,
    };
    if !allowed {
        return Err(ApiError::NotFound("no such device".into()));
    }
    let creds = state.turn.credentials(&device).await.map_err(unavailable)?;
    tracing::debug!(device_id = %device, "TURN credentials issued");
    Ok(HttpResponse::Ok().json(creds))
}

/// `{"ice_servers":[...]}` for any user or device: STUN always, TURN when
/// a provider is configured. A device's TURN username names the device; a
/// user's names `user:<user id>`.
pub async fn webrtc_config(
    state: web::Data<AppState>,
    auth: AnyAuth,
) -> Result<HttpResponse, ApiError> {
    let subject = match &auth {
        AnyAuth::User(u) => format!("user:{u}"),
        AnyAuth::Device(d) => d.as_str().to_string(),
    };
    let servers = state
        .turn
        .ice_servers(&subject)
        .await
        .map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(servers))
}

fn unavailable(e: TurnError) -> ApiError {
    tracing::warn!(error = %e, "TURN provider failed");
    ApiError::Unavailable("TURN credentials are unavailable right now".into())
}
