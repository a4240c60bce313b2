//! Device rows: registration (with a fresh credential id), the secret and
//! credential id that authenticate a robot, secret rotation, ownership,
//! listing, deletion and `last_seen`.

use super::{DeviceRecord, Store, StoreError};
use crate::auth::CredentialId;
use crate::ids::{DeviceId, UserId};
use crate::secret::Secret;
use sqlx::any::AnyRow;
use sqlx::Row;

impl Store {
    /// Registers `device` with a fresh credential id (this registration's).
    pub async fn create_device(
        &self,
        device: &DeviceId,
        name: &str,
        owner: &UserId,
        secret: &Secret,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO devices (device_id, name, owner_id, device_secret, credential_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(device.as_str())
        .bind(name)
        .bind(owner.as_str())
        .bind(secret.expose())
        .bind(CredentialId::new_random().as_str().to_string())
        .bind(crate::ids::unix_now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many devices `owner` has registered.
    pub async fn count_devices(&self, owner: &UserId) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM devices WHERE owner_id = $1")
            .bind(owner.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<i64, _>(0).max(0) as u64)
    }

    /// The secret of `device` and the credential id it belongs to, read together.
    pub async fn device_credentials(
        &self,
        device: &DeviceId,
    ) -> Result<Option<(Secret, CredentialId)>, StoreError> {
        let row =
            sqlx::query("SELECT device_secret, credential_id FROM devices WHERE device_id = $1")
                .bind(device.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r: AnyRow| {
            (
                Secret::new(r.get::<String, _>(0)),
                CredentialId::from_stored(r.get::<String, _>(1).as_str()),
            )
        }))
    }

    /// The current credential id of `device`; `None` when it does not exist.
    pub async fn device_credential(
        &self,
        device: &DeviceId,
    ) -> Result<Option<CredentialId>, StoreError> {
        let row = sqlx::query("SELECT credential_id FROM devices WHERE device_id = $1")
            .bind(device.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r: AnyRow| CredentialId::from_stored(r.get::<String, _>(0).as_str())))
    }

    /// Replaces the secret of `device` (if `owner` owns it) and gives it a
    /// new credential id, revoking everything made with the old secret.
    /// False when the device does not exist or is someone else's.
    pub async fn rotate_device_secret(
        &self,
        device: &DeviceId,
        owner: &UserId,
        secret: &Secret,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE devices SET device_secret = $1, credential_id = $2 WHERE device_id = $3 AND owner_id = $4",
        )
        .bind(secret.expose())
        .bind(CredentialId::new_random().as_str().to_string())
        .bind(device.as_str())
        .bind(owner.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn device_secret(&self, device: &DeviceId) -> Result<Option<Secret>, StoreError> {
        let row = sqlx::query("SELECT device_secret FROM devices WHERE device_id = $1")
            .bind(device.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r: AnyRow| Secret::new(r.get::<String, _>(0))))
    }

    pub async fn device_owner(&self, device: &DeviceId) -> Result<Option<UserId>, StoreError> {
        let row = sqlx::query("SELECT owner_id FROM devices WHERE device_id = $1")
            .bind(device.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r: AnyRow| UserId::from_stored(r.get::<String, _>(0).as_str())))
    }

    pub async fn list_devices(&self, owner: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, name, owner_id, last_seen FROM devices WHERE owner_id = $1 ORDER BY device_id",
        )
        .bind(owner.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let id: String = r.get(0);
                Ok(DeviceRecord {
                    device_id: DeviceId::parse(&id)
                        .map_err(|e| anyhow::anyhow!("stored device id {id:?}: {e}"))?,
                    name: r.get(1),
                    owner: UserId::from_stored(r.get::<String, _>(2).as_str()),
                    last_seen: r.get(3),
                })
            })
            .collect()
    }

    /// Deletes `device` if `owner` owns it; false when it does not exist or is someone else's.
    pub async fn delete_device(
        &self,
        device: &DeviceId,
        owner: &UserId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM devices WHERE device_id = $1 AND owner_id = $2")
            .bind(device.as_str())
            .bind(owner.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records when the robot was last connected.
    pub async fn touch_device(&self, device: &DeviceId, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE devices SET last_seen = $1 WHERE device_id = $2")
            .bind(at)
            .bind(device.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
