-- Portable SQL (SQLite and PostgreSQL). Every registration of a device, and
-- every rotation of its secret, gets a fresh random credential id; device
-- tokens carry it (claim `cid`) and are refused once it changes, so a token
-- never outlives the registration or the secret it was made with.
-- Devices registered before this migration keep '' until their secret is
-- rotated (their tokens, which carry no `cid`, match '').
ALTER TABLE devices ADD COLUMN credential_id TEXT NOT NULL DEFAULT '';
