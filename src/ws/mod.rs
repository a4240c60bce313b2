//! WebSocket endpoints (PROTOCOL.md §3): `GET /ws/device` and `GET /ws/app`.
//!
//! Authentication happens before the upgrade: a refused socket gets HTTP 401
//! and is never upgraded; so are the caps (`crate::caps`: sockets per user
//! and per address, robot connections per device), refused with 429 and
//! their own code. An accepted socket becomes a [`robot::RobotConn`] or
//! [`app::AppConn`] actor on the worker that accepted it, holding the
//! permit that counts it.

pub mod app;
pub mod conn;
pub mod ratelimit;
pub mod robot;

use crate::auth::CredentialId;
use crate::error::ApiError;
use crate::http::extract::{authenticate, authenticate_device, bearer, AnyAuth};
use crate::ids::DeviceId;
use crate::metrics::SocketRole;
use crate::state::AppState;
use actix::{Actor, AsyncContext};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::time::Instant;

#[derive(Deserialize, Default)]
struct RobotQuery {
    device_id: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
}

#[derive(Deserialize, Default)]
struct AppQuery {
    token: Option<String>,
    device_id: Option<String>,
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Device token, signature headers, or signature query parameters; the
/// device and the credential id the robot proved (a token outlives nothing:
/// one of a deleted, re-registered or rotated device is refused).
async fn authenticate_robot(
    req: &HttpRequest,
    state: &AppState,
) -> Result<(DeviceId, CredentialId), ApiError> {
    if let Some(token) = bearer(req) {
        return authenticate_device(state, token).await;
    }
    let query = web::Query::<RobotQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let (id, ts, sig) = match (
        header(req, "x-device-id"),
        header(req, "x-timestamp"),
        header(req, "x-signature"),
    ) {
        (Some(i), Some(t), Some(s)) => (i.to_string(), t.to_string(), s.to_string()),
        _ => match (query.device_id, query.timestamp, query.signature) {
            (Some(i), Some(t), Some(s)) => (i, t, s),
            _ => return Err(ApiError::Unauthorized),
        },
    };
    let device = DeviceId::parse(&id).map_err(|_| ApiError::Unauthorized)?;
    let ts: i64 = ts.trim().parse().map_err(|_| ApiError::Unauthorized)?;
    let credential = crate::http::auth::verify_device(state, &device, ts, &sig).await?;
    Ok((device, credential))
}

fn upgrade(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
) -> Result<
    (
        HttpResponse,
        actix_ws::Session,
        actix_ws::AggregatedMessageStream,
    ),
    ApiError,
> {
    let (response, session, stream) = actix_ws::handle(req, body)
        .map_err(|e| ApiError::BadRequest(format!("expected a WebSocket upgrade: {e}")))?;
    let limit = state.settings.limits.max_message_bytes;
    let stream = stream
        .max_frame_size(limit)
        .aggregate_continuations()
        .max_continuation_size(limit);
    Ok((response, session, stream))
}

/// The two socket endpoints.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/device", web::get().to(robot_socket))
        .route("/ws/app", web::get().to(app_socket));
}

/// `GET /ws/device`.
pub async fn robot_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let (device, credential) = authenticate_robot(&req, &state).await?;
    let permit = state.caps.robot_socket(state.caps.client(&req), &device)?;
    let (response, session, stream) = upgrade(&req, body, &state)?;
    let core = conn::SocketCore::new(state.conn_id(), session, state.clone(), permit);
    robot::RobotConn::create(|ctx| {
        ctx.add_stream(stream);
        robot::RobotConn::new(core, device, credential)
    });
    state.metrics.handshake_done(SocketRole::Robot, started);
    Ok(response)
}

/// `GET /ws/app`.
pub async fn app_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let query = web::Query::<AppQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let token = bearer(&req)
        .map(String::from)
        .or(query.token)
        .ok_or(ApiError::Unauthorized)?;
    let user = match authenticate(&state, &token).await? {
        AnyAuth::User(u) => u,
        AnyAuth::Device(_) => return Err(ApiError::Unauthorized),
    };
    let initial = match query.device_id {
        Some(d) => {
            Some(DeviceId::parse(&d).map_err(|e| ApiError::BadRequest(format!("device_id: {e}")))?)
        }
        None => None,
    };
    let permit = state.caps.app_socket(state.caps.client(&req), &user)?;
    let (response, session, stream) = upgrade(&req, body, &state)?;
    let core = conn::SocketCore::new(state.conn_id(), session, state.clone(), permit);
    app::AppConn::create(|ctx| {
        ctx.add_stream(stream);
        app::AppConn::new(core, user, initial)
    });
    state.metrics.handshake_done(SocketRole::App, started);
    Ok(response)
}
