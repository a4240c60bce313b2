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
pub mod credentials;
pub mod gate;
pub mod ratelimit;
pub mod robot;

use crate::auth::CredentialId;
use crate::error::ApiError;
use crate::http::extract::{authenticate, authenticate_device, AnyAuth};
use crate::ids::DeviceId;
use crate::metrics::SocketRole;
use crate::state::AppState;
use actix::{Actor, AsyncContext};
use actix_web::{web, HttpRequest, HttpResponse};
use credentials::RobotCredentials;
use std::time::Instant;

/// Device token, signature headers, or signature query parameters
/// ([`credentials::robot_credentials`]); the device and the credential id
/// the robot proved (a token outlives nothing: one of a deleted,
/// re-registered or rotated device is refused).
async fn authenticate_robot(
    req: &HttpRequest,
    state: &AppState,
) -> Result<(DeviceId, CredentialId), ApiError> {
    match credentials::robot_credentials(req.headers(), req.query_string())? {
        RobotCredentials::Token(token) => authenticate_device(state, &token).await,
        RobotCredentials::Signature {
            device,
            timestamp,
            signature,
        } => {
            let credential =
                crate::http::auth::verify_device(state, &device, timestamp, &signature).await?;
            Ok((device, credential))
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
    // Stopping: a socket that arrives now (over a connection accepted
    // before, e.g. a proxy's kept-alive one) would only be closed again.
    if *state.apps_shutdown.borrow() != crate::state::Phase::Serving
        || *state.robots_shutdown.borrow() != crate::state::Phase::Serving
    {
        state.metrics.refused(crate::metrics::Refusal::Restarting);
        return Err(ApiError::Unavailable(
            "relay restarting; connect again".into(),
        ));
    }
    // The session's queue is the socket's outbound queue (`wire::outbox`).
    let queue = state.settings.limits.outbound_queue;
    let (response, session, stream) = actix_ws::handle_with_capacity(req, body, &[], queue)
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
    let presented = credentials::app_credentials(req.headers(), req.query_string())?;
    let user = match authenticate(&state, &presented.token).await? {
        AnyAuth::User(u) => u,
        AnyAuth::Device(_) => return Err(ApiError::Unauthorized),
    };
    let initial = presented.initial_device()?;
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
