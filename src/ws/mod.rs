//! WebSocket endpoints (PROTOCOL.md §3): `GET /ws/device` and `GET /ws/app`.
//!
//! Authentication happens before the upgrade: a refused socket gets HTTP 401
//! and is never upgraded. An accepted socket becomes a [`robot::RobotConn`]
//! or [`app::AppConn`] actor on the worker that accepted it.

pub mod app;
pub mod conn;
pub mod credentials;
pub mod frames;
pub mod outbox;
pub mod ratelimit;
pub mod robot;

use crate::error::ApiError;
use crate::http::extract::{authenticate, AnyAuth};
use crate::ids::DeviceId;
use crate::state::AppState;
use actix::{Actor, AsyncContext};
use actix_web::{web, HttpRequest, HttpResponse};
use credentials::RobotCredentials;

/// Device token, signature headers, or signature query parameters.
async fn authenticate_robot(req: &HttpRequest, state: &AppState) -> Result<DeviceId, ApiError> {
    match credentials::robot_credentials(req.headers(), req.query_string())? {
        RobotCredentials::Token(token) => match authenticate(state, &token)? {
            AnyAuth::Device(d) => {
                // A token outlives nothing: a deleted device's token is refused.
                if state.store.device_secret(&d).await?.is_none() {
                    return Err(ApiError::Unauthorized);
                }
                Ok(d)
            }
            AnyAuth::User(_) => Err(ApiError::Unauthorized),
        },
        RobotCredentials::Signature {
            device,
            timestamp,
            signature,
        } => {
            crate::http::auth::verify_device(state, &device, timestamp, &signature).await?;
            Ok(device)
        }
    }
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

/// `GET /ws/device`.
pub async fn robot_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let device = authenticate_robot(&req, &state).await?;
    let (response, session, stream) = upgrade(&req, body, &state)?;
    let core = conn::SocketCore::new(state.conn_id(), session, state.clone());
    robot::RobotConn::create(|ctx| {
        ctx.add_stream(stream);
        robot::RobotConn::new(core, device)
    });
    Ok(response)
}

/// `GET /ws/app`.
pub async fn app_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let presented = credentials::app_credentials(req.headers(), req.query_string())?;
    let user = match authenticate(&state, &presented.token)? {
        AnyAuth::User(u) => u,
        AnyAuth::Device(_) => return Err(ApiError::Unauthorized),
    };
    let initial = presented.initial_device()?;
    let (response, session, stream) = upgrade(&req, body, &state)?;
    let core = conn::SocketCore::new(state.conn_id(), session, state.clone());
    app::AppConn::create(|ctx| {
        ctx.add_stream(stream);
        app::AppConn::new(core, user, initial)
    });
    Ok(response)
}
