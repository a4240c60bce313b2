-- Portable SQL (SQLite and PostgreSQL). Usernames are unique whatever their
-- case: `username_key` is the lowercased name (usernames are ASCII, where
-- both databases' lower() agree), unique. An account made before this
-- migration whose name differs only in case from an older one keeps its
-- exact name for login; its key is suffixed with its id so the index holds.
ALTER TABLE users ADD COLUMN username_key TEXT;

UPDATE users SET username_key = lower(username);

UPDATE users SET username_key = lower(username) || '#' || user_id
WHERE EXISTS (
    SELECT 1 FROM users older
    WHERE lower(older.username) = lower(users.username)
      AND (older.created_at < users.created_at
           OR (older.created_at = users.created_at AND older.user_id < users.user_id))
);

CREATE UNIQUE INDEX IF NOT EXISTS users_username_key_idx ON users(username_key);
