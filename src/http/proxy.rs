//! `ANY /api/devices/{device_id}/robot/{path}` (PROTOCOL.md §6): a REST call
//! carried to the robot over its socket as `http_request`, answered from its
//! `http_response`.

use super::extract::UserAuth;
use crate::config::secs;
use crate::error::ApiError;
use crate::ids::DeviceId;
use crate::metrics::{inc, ProxyOutcome, Refusal};
use crate::room::messages::{FindRoom, GetRoom, ProxyCancel, ProxyReply, ProxyRequest};
use crate::room::DeviceRoom;
use crate::state::AppState;
use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use std::time::Instant;
use tokio::sync::oneshot;

/// Reads the body up to `limit` bytes (413 beyond).
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The query string as a JSON object of strings (last value wins).
fn query_json(query: &str) -> Result<String, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    Ok(serde_json::Value::Object(map).to_string())
}

pub async fn forward(
    state: web::Data<AppState>,
    user: UserAuth,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("no such device or path".into());
    // Work on the raw request path: nothing decoded, so an encoded slash or
    // dot cannot turn into a separator after the allow-list has looked.
    let raw = req.uri().path();
    let rest = raw.strip_prefix("/api/devices/").ok_or_else(not_found)?;
    let (device_raw, robot_path) = rest.split_once("/robot/").ok_or_else(not_found)?;
    let device = DeviceId::parse(device_raw).map_err(|_| not_found())?;
    let method = req.method().as_str().to_string();
    let path = state
        .allow_list
        .check(&method, robot_path)
        .ok_or_else(|| ApiError::NotFound("path not allowed".into()))?;
    // A stranger's device and a missing one answer alike.
    if state.store.device_owner(&device).await? != Some(user.0.clone()) {
        return Err(not_found());
    }
    let body = read_body(payload, state.settings.server.max_body_bytes).await?;
    let body_json = body_json(&body)?;
    let query = query_json(req.query_string())?;
    let Some(room) = device_room(&state, &device, &user).await else {
        return Err(ApiError::Unavailable("robot_offline".into()));
    };
    inc(&state.metrics.proxy_requests);
    let started = Instant::now();
    let request_id = format!("r-{}", uuid::Uuid::new_v4().simple());
    let frame = crate::wire::encode::http_request(&request_id, &method, &path, &query, &body_json);
    let (tx, rx) = oneshot::channel();
    room.do_send(ProxyRequest {
        request_id: request_id.clone(),
        frame,
        reply: tx,
    });
    tracing::debug!(device_id = %device, request_id = %request_id, method = %method, path = %path, "proxying to robot");
    let (outcome, answer) = await_reply(&state, &room, request_id, rx).await;
    state.metrics.proxy_done(outcome, started);
    answer
}

/// Waits up to `proxy.timeout_s` for the robot's answer: how the call
/// ended (`wimz_proxy_seconds{outcome}`) and the HTTP answer.
async fn await_reply(
    state: &AppState,
    room: &Addr<DeviceRoom>,
    request_id: String,
    rx: oneshot::Receiver<ProxyReply>,
) -> (ProxyOutcome, Result<HttpResponse, ApiError>) {
    match tokio::time::timeout(secs(state.settings.proxy.timeout_s), rx).await {
        Ok(Ok(ProxyReply::Response { status, body })) => {
            (ProxyOutcome::Answered, robot_response(status, body))
        }
        Ok(Ok(ProxyReply::TooMany)) => {
            state.metrics.refused(Refusal::ProxyPending);
            (ProxyOutcome::Refused, Err(ApiError::TooManyRequests))
        }
        Ok(Ok(ProxyReply::RobotOffline)) | Ok(Err(_)) => (
            ProxyOutcome::Offline,
            Err(ApiError::Unavailable("robot_offline".into())),
        ),
        Err(_) => {
            inc(&state.metrics.proxy_timeouts);
            room.do_send(ProxyCancel { request_id });
            let late = ApiError::GatewayTimeout("the robot did not answer in time".into());
            (ProxyOutcome::Timeout, Err(late))
        }
    }
}

/// The request body as JSON text for the `http_request` frame: `null` when
/// empty (or only whitespace), else as sent, checked to be JSON.
fn body_json(body: &[u8]) -> Result<String, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok("null".to_string());
    }
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("body must be JSON".into()))?;
    let raw: Box<serde_json::value::RawValue> = serde_json::from_str(text)
        .map_err(|e| ApiError::BadRequest(format!("body must be JSON: {e}")))?;
    Ok(raw.get().to_string())
}

/// The device's room. Clustered, the robot may be on another instance: a
/// (mirror) room here knows where, so find or start one. Single instance:
/// no room, no robot.
async fn device_room(
    state: &AppState,
    device: &DeviceId,
    user: &UserAuth,
) -> Option<Addr<DeviceRoom>> {
    match state.cluster {
        Some(_) => state
            .directory
            .send(GetRoom::here(device.clone(), user.0.clone()))
            .await
            .ok(),
        None => state
            .directory
            .send(FindRoom {
                device: device.clone(),
            })
            .await
            .ok()
            .flatten(),
    }
}

/// The robot's `http_response` as the HTTP answer (a status it may not send
/// is refused).
fn robot_response(
    status: u16,
    body: Option<Box<serde_json::value::RawValue>>,
) -> Result<HttpResponse, ApiError> {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| ApiError::Unavailable("robot answered an invalid status".into()))?;
    let body = body
        .map(|b| b.get().to_string())
        .unwrap_or_else(|| "null".into());
    Ok(HttpResponse::build(status)
        .content_type("application/json")
        .body(body))
}
