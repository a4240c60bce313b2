//! `GET/POST /api/devices`, `DELETE /api/devices/{id}`,
//! `POST /api/devices/{id}/secret` (rotation). Creating a device counts
//! against `caps.devices_per_user`. Deleting a device or rotating its
//! secret revokes every credential of the old registration or secret
//! (`crate::auth::credential`) and closes a robot connected with one,
//! on every instance.

use super::extract::UserAuth;
use crate::error::ApiError;
use crate::ids::DeviceId;
use crate::room::messages::{CredentialsChanged, DeviceDeleted, SnapshotOf};
use crate::secret::Secret;
use crate::state::AppState;
use crate::wire::Snapshot;
use actix_web::{web, HttpResponse};
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    device_id: DeviceId,
    name: String,
}

pub async fn create(
    state: web::Data<AppState>,
    user: UserAuth,
    body: web::Json<NewDevice>,
) -> Result<HttpResponse, ApiError> {
    let NewDevice { device_id, name } = body.into_inner();
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    if !state.store.user_exists(&user.0).await? {
        return Err(ApiError::Unauthorized);
    }
    // Checked before the insert: creations racing each other may pass a
    // full cap together (by at most the number in flight).
    let cap = state.caps.devices_per_user();
    if cap > 0 && state.store.count_devices(&user.0).await? >= cap as u64 {
        return Err(state.caps.refuse(crate::caps::Reason::Devices, None).into());
    }
    let secret = new_device_secret();
    match state
        .store
        .create_device(&device_id, &name, &user.0, &secret)
        .await
    {
        Ok(()) => {
            tracing::info!(device_id = %device_id, user_id = %user.0, "device registered");
            Ok(HttpResponse::Created().json(json!({
                "device_id": device_id,
                "device_secret": secret.expose(),
            })))
        }
        Err(crate::store::StoreError::Conflict) => {
            Err(ApiError::Conflict("device_id is taken".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// 32 random bytes, hex.
pub fn new_device_secret() -> Secret {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret::new(hex::encode(bytes))
}

pub async fn list(state: web::Data<AppState>, user: UserAuth) -> Result<HttpResponse, ApiError> {
    let devices = state.store.list_devices(&user.0).await?;
    let mut out = Vec::with_capacity(devices.len());
    for d in devices {
        let local = state
            .directory
            .send(SnapshotOf {
                device: d.device_id.clone(),
            })
            .await
            .ok()
            .flatten();
        // Clustered: presence and snapshot are the cluster's, read from Redis.
        let remote = match &state.cluster {
            Some(bridge) => bridge
                .send(crate::cluster::messages::DeviceStatus {
                    device: d.device_id.clone(),
                })
                .await
                .ok()
                .flatten(),
            None => None,
        };
        let snap = match (local, remote) {
            (Some(l), Some(r)) => Snapshot {
                online: l.online || r.online,
                mode: l.mode.or(r.mode),
                mission: l.mission.or(r.mission),
                battery: l.battery.or(r.battery),
                last_seen: l.last_seen.max(r.last_seen),
            },
            (l, r) => l.or(r).unwrap_or_default(),
        };
        out.push(device_json(&d, snap));
    }
    Ok(HttpResponse::Ok().json(out))
}

fn device_json(d: &crate::store::DeviceRecord, snap: Snapshot) -> serde_json::Value {
    let last_seen = if snap.online {
        Some(crate::ids::unix_now())
    } else {
        snap.last_seen.or(d.last_seen)
    };
    json!({
        "device_id": d.device_id,
        "name": d.name,
        "online": snap.online,
        "last_seen": last_seen,
        "mode": snap.mode,
        "mission": snap.mission,
    })
}

/// The `{device_id}` of the path; an invalid one is `404` like a stranger's
/// device or a missing one (existence is never revealed).
fn device_in_path(path: web::Path<String>) -> Result<DeviceId, ApiError> {
    DeviceId::parse(&path.into_inner()).map_err(|_| ApiError::NotFound("no such device".into()))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: UserAuth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = device_in_path(path)?;
    if !state.store.delete_device(&device, &user.0).await? {
        return Err(ApiError::NotFound("no such device".into()));
    }
    tracing::info!(device_id = %device, "device deleted");
    // Sessions first: closing the room disconnects the robot, and its
    // `ConnGone` must not reach the supervisor before this (the apps are
    // told `device_deleted`, not `robot_disconnected`).
    state
        .sessions
        .do_send(crate::webrtc::messages::EndDeviceSessions {
            device: device.clone(),
            reason: "device_deleted",
        });
    if let Some(bridge) = &state.cluster {
        bridge.do_send(crate::cluster::messages::BroadcastDeleted {
            device: device.clone(),
        });
    }
    state.directory.do_send(DeviceDeleted { device });
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/devices/{id}/secret` (owner): a new secret, shown once. The
/// old secret, every signature made with it and every token made from it
/// stop working at once (the store's credential id changes), and a robot
/// connected with them is closed with 4003 `credentials_revoked` on
/// whichever instance holds it.
pub async fn rotate_secret(
    state: web::Data<AppState>,
    user: UserAuth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = device_in_path(path)?;
    let secret = new_device_secret();
    if !state
        .store
        .rotate_device_secret(&device, &user.0, &secret)
        .await?
    {
        return Err(ApiError::NotFound("no such device".into()));
    }
    tracing::info!(device_id = %device, "device secret rotated");
    // After the store write: every robot told re-reads the credential id
    // and finds the new one.
    if let Some(bridge) = &state.cluster {
        bridge.do_send(crate::cluster::messages::BroadcastRotated {
            device: device.clone(),
        });
    }
    state.directory.do_send(CredentialsChanged {
        device: device.clone(),
    });
    Ok(HttpResponse::Ok().json(json!({
        "device_id": device,
        "device_secret": secret.expose(),
    })))
}
