//! Bearer-token extractors: [`UserAuth`], [`DeviceAuth`] and [`AnyAuth`].
//! Missing, expired, tampered or wrong-role tokens are `401`.

use crate::auth::Role;
use crate::error::ApiError;
use crate::ids::{DeviceId, UserId};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::{ready, Ready};

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

/// Verifies `token` and turns it into a caller.
pub fn authenticate(state: &AppState, token: &str) -> Result<AnyAuth, ApiError> {
    let claims = state.tokens.verify(token).map_err(|e| {
        crate::metrics::inc(&state.metrics.auth_failures);
        tracing::debug!(reason = %e, "token refused");
        ApiError::Unauthorized
    })?;
    match claims.role {
        Role::User => Ok(AnyAuth::User(UserId::from_stored(&claims.sub))),
        Role::Device => DeviceId::parse(&claims.sub)
            .map(AnyAuth::Device)
            .map_err(|_| ApiError::Unauthorized),
    }
}

fn from_request(req: &HttpRequest) -> Result<AnyAuth, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AppState missing")))?;
    let token = bearer(req).ok_or(ApiError::Unauthorized)?;
    authenticate(state, token)
}

impl FromRequest for AnyAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(from_request(req))
    }
}

impl FromRequest for UserAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match from_request(req) {
            Ok(AnyAuth::User(u)) => Ok(UserAuth(u)),
            Ok(AnyAuth::Device(_)) => Err(ApiError::Unauthorized),
            Err(e) => Err(e),
        })
    }
}

impl FromRequest for DeviceAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match from_request(req) {
            Ok(AnyAuth::Device(d)) => Ok(DeviceAuth(d)),
            Ok(AnyAuth::User(_)) => Err(ApiError::Unauthorized),
            Err(e) => Err(e),
        })
    }
}
