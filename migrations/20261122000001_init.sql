-- Portable SQL: the same migration runs on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS users (
    user_id       TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS devices (
    device_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    owner_id      TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    device_secret TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen     BIGINT
);

CREATE INDEX IF NOT EXISTS devices_owner_idx ON devices(owner_id);

CREATE TABLE IF NOT EXISTS webrtc_sessions (
    session_id      TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    ended_at        BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    connection_type TEXT,
    rtt_ms          DOUBLE PRECISION,
    ice_restarts    BIGINT NOT NULL,
    close_reason    TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS webrtc_sessions_device_idx ON webrtc_sessions(device_id);
