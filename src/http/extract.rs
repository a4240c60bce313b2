//! Bearer-token extractors: [`UserAuth`], [`DeviceAuth`] and [`AnyAuth`].
//! Missing, expired, tampered or wrong-role tokens are `401`, and so is a
//! device token whose credential id (`cid`) is no longer its device's
//! (the device was deleted, registered again, or its secret rotated:
//! [`crate::auth::credential`]).

use crate::auth::{CredentialId, Role};
use crate::error::ApiError;
use crate::ids::{DeviceId, UserId};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

/// A verified caller.
#[derive(Debug, Clone)]
pub enum AnyAuth {
    User(UserId),
    Device(DeviceId),
}

/// A verified user.
#[derive(Debug, Clone)]
pub struct UserAuth(pub UserId);

/// A verified device.
#[derive(Debug, Clone)]
pub struct DeviceAuth(pub DeviceId);

/// The token from `Authorization: Bearer <t>`, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    bearer_in(req.headers())
}

/// As [`bearer`], from the headers alone.
pub fn bearer_in(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A token's caller, before a device token's binding is checked.
enum Verified {
    User(UserId),
    Device(DeviceId, CredentialId),
}

fn verify(state: &AppState, token: &str) -> Result<Verified, ApiError> {
    let claims = state.tokens.verify(token).map_err(|e| {
        crate::metrics::inc(&state.metrics.auth_failures);
        state.metrics.refused(crate::metrics::Refusal::BadToken);
        tracing::debug!(reason = %e, "token refused");
        ApiError::Unauthorized
    })?;
    match claims.role {
        Role::User => Ok(Verified::User(UserId::from_stored(&claims.sub))),
        Role::Device => {
            let device = DeviceId::parse(&claims.sub).map_err(|_| ApiError::Unauthorized)?;
            let cid = CredentialId::from_stored(claims.cid.as_deref().unwrap_or(""));
            Ok(Verified::Device(device, cid))
        }
    }
}

/// Accepts a device token's `cid` only while it is `device`'s current
/// credential id (one store read).
async fn check_binding(
    state: &AppState,
    device: &DeviceId,
    cid: &CredentialId,
) -> Result<(), ApiError> {
    if state.store.device_credential(device).await?.as_ref() != Some(cid) {
        crate::metrics::inc(&state.metrics.auth_failures);
        state.metrics.refused(crate::metrics::Refusal::RevokedToken);
        tracing::info!(device_id = %device, "device token refused: its credential was revoked");
        return Err(ApiError::Unauthorized);
    }
    Ok(())
}

/// A device token's device and credential id, if that credential is still
/// the device's current one.
pub async fn authenticate_device(
    state: &AppState,
    token: &str,
) -> Result<(DeviceId, CredentialId), ApiError> {
    match verify(state, token)? {
        Verified::Device(device, cid) => {
            check_binding(state, &device, &cid).await?;
            Ok((device, cid))
        }
        Verified::User(_) => Err(ApiError::Unauthorized),
    }
}

/// Verifies `token` and turns it into a caller.
pub async fn authenticate(state: &AppState, token: &str) -> Result<AnyAuth, ApiError> {
    match verify(state, token)? {
        Verified::User(u) => Ok(AnyAuth::User(u)),
        Verified::Device(device, cid) => {
            check_binding(state, &device, &cid).await?;
            Ok(AnyAuth::Device(device))
        }
    }
}

fn from_request(req: &HttpRequest) -> LocalBoxFuture<'static, Result<AnyAuth, ApiError>> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let token = bearer(req).map(String::from);
    Box::pin(async move {
        let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AppState missing")))?;
        let token = token.ok_or(ApiError::Unauthorized)?;
        authenticate(&state, &token).await
    })
}

impl FromRequest for AnyAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        from_request(req)
    }
}

impl FromRequest for UserAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = from_request(req);
        Box::pin(async move {
            match auth.await? {
                AnyAuth::User(u) => Ok(UserAuth(u)),
                AnyAuth::Device(_) => Err(ApiError::Unauthorized),
            }
        })
    }
}

impl FromRequest for DeviceAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = from_request(req);
        Box::pin(async move {
            match auth.await? {
                AnyAuth::Device(d) => Ok(DeviceAuth(d)),
                AnyAuth::User(_) => Err(ApiError::Unauthorized),
            }
        })
    }
}
