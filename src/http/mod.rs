//! HTTP routes (PROTOCOL.md §1) and the body/path/query error handlers that
//! turn extractor failures into the protocol's error body.

pub mod auth;
pub mod devices;
pub mod extract;
pub mod health;
pub mod origins;
pub mod proxy;
pub mod turn;

use crate::error::ApiError;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest};

/// Every REST route of the relay (the socket endpoints are `crate::ws::routes`).
pub fn routes(cfg: &mut web::ServiceConfig, max_body: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(max_body)
            .error_handler(json_error),
    )
    .app_data(web::PayloadConfig::new(max_body))
    .app_data(web::PathConfig::default().error_handler(path_error))
    .app_data(web::QueryConfig::default().error_handler(query_error))
    .route("/health", web::get().to(health::health))
    .route("/stats", web::get().to(health::stats))
    .route("/metrics", web::get().to(health::metrics))
    .route("/api/auth/register", web::post().to(auth::register))
    .route("/api/auth/login", web::post().to(auth::login))
    .route("/api/auth/device", web::post().to(auth::device))
    .route("/api/devices", web::get().to(devices::list))
    .route("/api/devices", web::post().to(devices::create))
    .route(
        "/api/devices/{device_id}",
        web::delete().to(devices::delete),
    )
    .route(
        "/api/devices/{device_id}/secret",
        web::post().to(devices::rotate_secret),
    )
    .route(
        "/api/devices/{device_id}/robot/{path:.*}",
        web::route().to(proxy::forward),
    )
    .route(
        "/api/turn/credentials",
        web::get().to(turn::get_credentials),
    )
    .route(
        "/api/turn/credentials",
        web::post().to(turn::post_credentials),
    )
    .route("/webrtc/config", web::get().to(turn::webrtc_config))
    .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route".into()))
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge.into()
        }
        JsonPayloadError::ContentType => {
            ApiError::BadRequest("expected Content-Type: application/json".into()).into()
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::BadRequest(format!("invalid JSON body: {e}")).into()
        }
        other => ApiError::BadRequest(format!("invalid body: {other}")).into(),
    }
}

fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid path: {err}")).into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query: {err}")).into()
}
