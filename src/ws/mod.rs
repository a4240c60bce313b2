//! WebSocket endpoints (PROTOCOL.md §3): `GET /ws/device` and `GET /ws/app`.
//!
//! Authentication happens before the upgrade: a refused socket gets HTTP 401
//! and is never upgraded. An accepted socket becomes a [`robot::RobotConn`]
//! or [`app::AppConn`] actor on the worker that accepted it.

pub mod app;
pub mod conn;
pub mod frames;
pub mod outbox;
pub mod ratelimit;
pub mod robot;

use crate::error::ApiError;
use crate::http::extract::{authenticate, bearer, AnyAuth};
use crate::ids::DeviceId;
use crate::state::AppState;
use actix::{Actor, AsyncContext};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

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

/// Device token, signature headers, or signature query parameters.
async fn authenticate_robot(req: &HttpRequest, state: &AppState) -> Result<DeviceId, ApiError> {
    if let Some(token) = bearer(req) {
        return match authenticate(state, token)? {
            AnyAuth::Device(d) => {
                // A token outlives nothing: a deleted device's token is refused.
                if state.store.device_secret(&d).await?.is_none() {
                    return Err(ApiError::Unauthorized);
                }
                Ok(d)
            }
            AnyAuth::User(_) => Err(ApiError::Unauthorized),
        };
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
    crate::http::auth::verify_device(state, &device, ts, &sig).await?;
    Ok(device)
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
    if *state.apps_shutdown.borrow() != crate::shutdown::Phase::Serving
        || *state.robots_shutdown.borrow() != crate::shutdown::Phase::Serving
    {
        return Err(ApiError::Unavailable(
            "relay restarting; connect again".into(),
        ));
    }
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
    let query = web::Query::<AppQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let token = bearer(&req)
        .map(String::from)
        .or(query.token)
        .ok_or(ApiError::Unauthorized)?;
    let user = match authenticate(&state, &token)? {
        AnyAuth::User(u) => u,
        AnyAuth::Device(_) => return Err(ApiError::Unauthorized),
    };
    let initial = match query.device_id {
        Some(d) => {
            Some(DeviceId::parse(&d).map_err(|e| ApiError::BadRequest(format!("device_id: {e}")))?)
        }
        None => None,
    };
    let (response, session, stream) = upgrade(&req, body, &state)?;
    let core = conn::SocketCore::new(state.conn_id(), session, state.clone());
    app::AppConn::create(|ctx| {
        ctx.add_stream(stream);
        app::AppConn::new(core, user, initial)
    });
    Ok(response)
}
