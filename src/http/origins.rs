//! Browser origins (PROTOCOL.md Part 2 K): which web pages may use the
//! relay from a browser. A request with an `Origin` header (every browser
//! WebSocket handshake, every cross-origin fetch) is served only if that
//! origin is the relay's own or listed in `server.allowed_origins`;
//! anything else is refused with 403 before any handler runs (a WebSocket
//! is never upgraded). A request without `Origin` (robots, native apps,
//! curl) is not a browser's and passes. For allowed origins the maintained
//! `actix-cors` middleware answers CORS, preflights included.
//!
//! Which origin is allowed, and what the relay's own is, is
//! [`crate::net::origin`].

use crate::error::ApiError;
use crate::net::origin::AllowedOrigins;
use crate::state::AppState;
use actix_cors::Cors;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web;
use std::sync::Arc;

/// Middleware: refuses a request whose `Origin` is not allowed with 403
/// (`forbidden`), before routing: a WebSocket handshake is never upgraded.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let state = req.app_data::<web::Data<AppState>>();
        let allowed = state.is_some_and(|state| state.origins.allows(origin, req.head()));
        if !allowed {
            if let Some(state) = state {
                state.metrics.refused(crate::metrics::Refusal::Origin);
            }
            tracing::info!(origin = ?origin, path = %req.path(), "origin not allowed");
            let err = ApiError::Forbidden("this origin is not allowed (server.allowed_origins)");
            return Ok(req.error_response(err).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// CORS for the allowed origins: preflights answered, `Authorization` and
/// `Content-Type` allowed, `x-request-id` and `Retry-After` readable by the
/// page. No credentials (cookies): the API takes bearer tokens.
pub fn cors(origins: Arc<AllowedOrigins>) -> Cors {
    Cors::default()
        .allowed_origin_fn(move |origin, head| origins.allows(origin, head))
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
        ])
        .max_age(3600)
}
