//! `GET /health`, `GET /stats`, `GET /metrics`.

use super::extract::UserAuth;
use crate::error::ApiError;
use crate::metrics::{get_i, get_u};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use std::time::Duration;

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let store_ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await,
        Ok(Ok(()))
    );
    let (cluster, cluster_ok) = match &state.cluster {
        None => ("disabled", true),
        Some(_) if state.cluster_up.load(std::sync::atomic::Ordering::Relaxed) => ("ok", true),
        Some(_) => ("degraded", false),
    };
    let healthy = store_ok && cluster_ok;
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "instance_id": &*state.instance_id,
        "uptime_s": state.started.elapsed().as_secs(),
        "store": if store_ok { "ok" } else { "unreachable" },
        "cluster": cluster,
    });
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn require_stats_access(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    if state.settings.server.public_stats {
        return Ok(());
    }
    use actix_web::FromRequest;
    UserAuth::extract(req).await.map(|_| ())
}

pub async fn stats(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    require_stats_access(&state, &req).await?;
    let m = &state.metrics;
    // Redis known down: no cluster totals (as when asking fails), without
    // waiting for the connection's own timeouts first.
    let cluster = match &state.cluster {
        Some(bridge) if state.cluster_up.load(std::sync::atomic::Ordering::Relaxed) => bridge
            .send(crate::cluster::messages::ClusterTotals)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    let mut body = json!({
        "robots_online": get_i(&m.robots_online),
        "apps_connected": get_i(&m.apps_connected),
        "rooms": get_i(&m.rooms),
        "webrtc_sessions_active": get_i(&m.webrtc_sessions_active),
        "messages_routed": get_u(&m.messages_routed),
        "proxy_pending": get_i(&m.proxy_pending),
        "actor_panics": get_u(&m.actor_panics),
        "actor_restarts": get_u(&m.actor_restarts),
        "store_busy": get_u(&m.store_busy),
        "instance_id": &*state.instance_id,
    });
    if let Some(c) = cluster {
        body["cluster"] = c;
    }
    Ok(HttpResponse::Ok().json(body))
}

pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_stats_access(&state, &req).await?;
    let redis_up = state
        .cluster
        .as_ref()
        .map(|_| state.cluster_up.load(std::sync::atomic::Ordering::Relaxed));
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(redis_up)))
}
