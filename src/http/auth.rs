//! `POST /api/auth/register`, `/login` and `/device`. Login and
//! registration are throttled per client address and per username
//! ([`crate::caps`]) before any password is hashed.

use crate::auth::{password, CredentialId};
use crate::error::ApiError;
use crate::ids::DeviceId;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    username: String,
    password: String,
}

/// Usernames: 3–32 of `[A-Za-z0-9_.-]`.
fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "username must be 3 to 32 letters, digits, '_', '-' or '.'".into(),
        ))
    }
}

/// What login answers for an unknown user and a wrong password alike.
const BAD_LOGIN: &str = "invalid username or password";

pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    if !state.settings.auth.allow_registration {
        return Err(ApiError::Forbidden("registration is disabled"));
    }
    let Credentials { username, password } = body.into_inner();
    check_username(&username)?;
    state.caps.register(state.caps.client(&req), &username)?;
    password::check_strength(&password).map_err(|m| ApiError::BadRequest(m.into()))?;
    let _permit = state
        .hashing
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let hash = web::block(move || password::hash(&password))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("hash task: {e}")))??;
    match state.store.create_user(&username, &hash).await {
        Ok(user_id) => {
            tracing::info!(user_id = %user_id, "user registered");
            Ok(HttpResponse::Created().json(json!({ "user_id": user_id })))
        }
        Err(crate::store::StoreError::Conflict) => {
            Err(ApiError::Conflict("username is taken".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Usernames are matched whatever their case (they are unique that way).
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let Credentials { username, password } = body.into_inner();
    state.caps.login(state.caps.client(&req), &username)?;
    let user = state.store.find_user(&username).await?;
    // Unknown users are checked against a dummy hash so both failures take
    // the same time and give the same answer.
    let (stored, user_id) = match user {
        Some(u) => (u.password_hash, Some(u.user_id)),
        None => (state.dummy_hash.clone(), None),
    };
    let permit = state
        .hashing
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let ok = web::block(move || password::verify(&password, &stored))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("verify task: {e}")))?;
    drop(permit);
    let Some(user_id) = user_id.filter(|_| ok) else {
        crate::metrics::inc(&state.metrics.auth_failures);
        state.metrics.refused(crate::metrics::Refusal::BadPassword);
        return Err(ApiError::BadCredentials(BAD_LOGIN));
    };
    let token = state
        .tokens
        .issue(user_id.as_str(), crate::auth::Role::User)?;
    Ok(HttpResponse::Ok().json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": state.tokens.ttl_s(),
        "user_id": user_id,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSignature {
    device_id: DeviceId,
    timestamp: i64,
    signature: String,
}

pub async fn device(
    state: web::Data<AppState>,
    body: web::Json<DeviceSignature>,
) -> Result<HttpResponse, ApiError> {
    let DeviceSignature {
        device_id,
        timestamp,
        signature,
    } = body.into_inner();
    let credential = verify_device(&state, &device_id, timestamp, &signature).await?;
    let token = state.tokens.issue_device(device_id.as_str(), &credential)?;
    Ok(HttpResponse::Ok().json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": state.tokens.ttl_s(),
    })))
}

/// Window, secret lookup, HMAC, replay. Every failure is the same `401`.
/// On success, the credential id of the secret that verified it (read with
/// the secret, so a token made from it is bound to that very secret).
pub async fn verify_device(
    state: &AppState,
    device: &DeviceId,
    timestamp: i64,
    signature: &str,
) -> Result<CredentialId, ApiError> {
    let now = crate::ids::unix_now();
    let refuse = |reason: &str| {
        crate::metrics::inc(&state.metrics.auth_failures);
        state.metrics.refused(crate::metrics::Refusal::BadSignature);
        tracing::info!(device_id = %device, reason, "device signature refused");
        ApiError::BadCredentials("invalid device signature")
    };
    if state.signatures.check_window(timestamp, now).is_err() {
        return Err(refuse("outside window"));
    }
    let Some((secret, credential)) = state.store.device_credentials(device).await? else {
        return Err(refuse("unknown device"));
    };
    state
        .signatures
        .verify(&secret, device, timestamp, signature, now)
        .await
        .map_err(|e| refuse(&e.to_string()))?;
    Ok(credential)
}
