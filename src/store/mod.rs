//! The store: users, devices and WebRTC session history.
//!
//! One code path for both backends through sqlx's `Any` driver: SQLite (the
//! embedded default, file created on first start) and PostgreSQL (a cluster's
//! shared store). Queries use `$N` placeholders, which both accept; the
//! migrations in `migrations/` are written in SQL both understand and are
//! applied at start-up.

mod devices;
pub mod last_seen;

use crate::ids::{DeviceId, UserId};
use crate::secret::{redact_url, Secret};
use anyhow::Context;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::error::DatabaseError;
use sqlx::{AnyPool, Row};
use std::time::Duration;

/// Store failures callers act on; everything else is `Other`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    /// No connection could be had in time (the pool is saturated), or the
    /// database refused for contention (SQLite's single writer held past
    /// `busy_timeout`, a PostgreSQL serialization failure or deadlock): the
    /// caller may retry.
    #[error("store busy")]
    Busy,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if matches!(e, sqlx::Error::PoolTimedOut) {
            return StoreError::Busy;
        }
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::Conflict;
            }
            if is_contention(db.as_ref()) {
                return StoreError::Busy;
            }
        }
        StoreError::Other(anyhow::Error::new(e))
    }
}

/// A database error that says "someone else holds what you need; try
/// again": SQLite's BUSY/LOCKED (after `busy_timeout`), PostgreSQL's
/// serialization failure, deadlock and lock-not-available.
fn is_contention(db: &dyn DatabaseError) -> bool {
    if let Some(e) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        // The extended result code; its low byte is the primary code.
        const SQLITE_BUSY: i64 = 5;
        const SQLITE_LOCKED: i64 = 6;
        let primary = e
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .map(|c| c & 0xff);
        return matches!(primary, Some(SQLITE_BUSY | SQLITE_LOCKED));
    }
    if let Some(e) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return matches!(e.code(), "40001" | "40P01" | "55P03");
    }
    false
}

/// The unique form of a username: lowercased (usernames are ASCII).
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// A user row as login needs it.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user_id: UserId,
    pub password_hash: String,
}

/// A device row as `/api/devices` shows it.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub device_id: DeviceId,
    pub name: String,
    pub owner: UserId,
    pub last_seen: Option<i64>,
}

/// One finished WebRTC session, for the history table.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub session_id: String,
    pub device_id: String,
    pub user_id: String,
    pub started_at: i64,
    pub ended_at: i64,
    pub duration_ms: i64,
    pub connection_type: Option<String>,
    pub rtt_ms: Option<f64>,
    pub ice_restarts: i64,
    pub close_reason: String,
}

/// Handle to the database; cheap to clone (a pool).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: &'static str,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.backend)
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a PostgreSQL request waits for a row or table lock before it is
/// answered "store busy" (as SQLite's `busy_timeout`). Every pooled
/// connection gets it; the one running migrations waits without limit first.
const PG_REQUEST_LOCK_TIMEOUT: &str = "SET lock_timeout = '5s'";

/// A SQLite URL (`raw`, its file part `path`) made ready: the file's
/// folder created, `mode=rwc` added (create the file) unless a mode is given.
fn sqlite_url(raw: &str, path: &str) -> anyhow::Result<String> {
    let file = path.split('?').next().unwrap_or("");
    if !file.is_empty() && file != ":memory:" {
        if let Some(parent) = std::path::Path::new(file).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
        }
    }
    Ok(if raw.contains("mode=") {
        raw.to_string()
    } else if raw.contains('?') {
        format!("{raw}&mode=rwc")
    } else {
        format!("{raw}?mode=rwc")
    })
}

/// Every new pooled connection: SQLite's pragmas, or Postgres's lock
/// timeout for requests.
async fn set_up_connection(
    conn: &mut sqlx::AnyConnection,
    is_sqlite: bool,
) -> Result<(), sqlx::Error> {
    if is_sqlite {
        // busy_timeout first: the journal-mode switch of a
        // new connection must wait for a busy writer too.
        sqlx::query("PRAGMA busy_timeout = 5000")
            .execute(&mut *conn)
            .await?;
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut *conn)
            .await?;
        // WAL's recommended durability: no fsync per commit
        // (a crash cannot corrupt the database; a power cut
        // may lose the last commits). Without it, commits
        // queued behind fsyncs on a busy disk timed out.
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut *conn)
            .await?;
    } else {
        // A request waiting on a lock is answered "store
        // busy" after a while instead of hanging.
        sqlx::query(PG_REQUEST_LOCK_TIMEOUT)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Applies the migrations. They wait for each other (instances starting
/// together take turns on a lock), so not under the 5 s lock_timeout of
/// requests.
async fn migrate(pool: &AnyPool, is_sqlite: bool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await.context("connecting to store")?;
    if !is_sqlite {
        sqlx::query("SET lock_timeout = 0")
            .execute(&mut *conn)
            .await?;
    }
    MIGRATOR
        .run(&mut *conn)
        .await
        .context("applying store migrations")?;
    if !is_sqlite {
        sqlx::query(PG_REQUEST_LOCK_TIMEOUT)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Connects (creating a SQLite file and its folder when missing) and migrates.
    pub async fn connect(url: &Secret, max_connections: u32) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let raw = url.expose();
        let (url, backend) = if let Some(path) = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
        {
            (sqlite_url(raw, path)?, "sqlite")
        } else {
            (raw.to_string(), "postgres")
        };
        let is_sqlite = backend == "sqlite";
        let pool = AnyPoolOptions::new()
            .max_connections(if is_sqlite {
                max_connections.clamp(1, 4)
            } else {
                max_connections
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| Box::pin(set_up_connection(conn, is_sqlite)))
            .connect(&url)
            .await
            .with_context(|| format!("connecting to store {}", redact_url(&url)))?;
        migrate(&pool, is_sqlite).await?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Round trip to the database, for `/health`.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<UserId, StoreError> {
        let id = UserId::new_random();
        // `username_key` is unique: a name differing only in case is a Conflict.
        sqlx::query("INSERT INTO users (user_id, username, username_key, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id.as_str())
            .bind(username)
            .bind(username_key(username))
            .bind(password_hash)
            .bind(crate::ids::unix_now())
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// The account `username` names, whatever its case. An account made
    /// before names were unique case-insensitively may share its key with
    /// an older one: its exact name finds it first.
    pub async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let exact = sqlx::query("SELECT user_id, password_hash FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        let row = match exact {
            Some(row) => Some(row),
            None => {
                sqlx::query("SELECT user_id, password_hash FROM users WHERE username_key = $1")
                    .bind(username_key(username))
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        Ok(row.map(|r: AnyRow| UserRecord {
            user_id: UserId::from_stored(r.get::<String, _>(0).as_str()),
            password_hash: r.get(1),
        }))
    }

    pub async fn user_exists(&self, user: &UserId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM users WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub async fn record_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webrtc_sessions (session_id, device_id, user_id, started_at, ended_at, duration_ms, connection_type, rtt_ms, ice_restarts, close_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&s.session_id)
        .bind(&s.device_id)
        .bind(&s.user_id)
        .bind(s.started_at)
        .bind(s.ended_at)
        .bind(s.duration_ms)
        .bind(s.connection_type.clone())
        .bind(s.rtt_ms)
        .bind(s.ice_restarts)
        .bind(&s.close_reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn sessions_for_device(
        &self,
        device: &DeviceId,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT session_id, device_id, user_id, started_at, ended_at, duration_ms, connection_type, rtt_ms, ice_restarts, close_reason FROM webrtc_sessions WHERE device_id = $1 ORDER BY started_at",
        )
        .bind(device.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SessionRecord {
                session_id: r.get(0),
                device_id: r.get(1),
                user_id: r.get(2),
                started_at: r.get(3),
                ended_at: r.get(4),
                duration_ms: r.get(5),
                connection_type: r.get(6),
                rtt_ms: r.get(7),
                ice_restarts: r.get(8),
                close_reason: r.get(9),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_too_long_for_a_pooled_connection_is_busy() {
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Busy
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::Other(_)
        ));
    }
}
