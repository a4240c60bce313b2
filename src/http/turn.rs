//! `GET/POST /api/turn/credentials`, `GET /webrtc/config` (issue 4).

use super::extract::AnyAuth;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpResponse};

pub async fn get_credentials(
    _state: web::Data<AppState>,
    _auth: AnyAuth,
) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("not available yet".into()))
}

pub async fn post_credentials(
    _state: web::Data<AppState>,
    _auth: AnyAuth,
) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("not available yet".into()))
}

pub async fn webrtc_config(
    _state: web::Data<AppState>,
    _auth: AnyAuth,
) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("not available yet".into()))
}
