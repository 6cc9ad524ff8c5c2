-- auth-storage SQLite schema v1. Times are Unix seconds (UTC). Secrets are stored as SHA-256 / HMAC digests only.

CREATE TABLE auth_users (
    id             TEXT PRIMARY KEY NOT NULL,   -- UUID
    username       TEXT,
    username_key   TEXT UNIQUE,                 -- lower-cased username: case-insensitive uniqueness
    email          TEXT,
    email_key      TEXT UNIQUE,                 -- lower-cased email
    email_verified INTEGER NOT NULL DEFAULT 0,
    password_hash  TEXT NOT NULL,               -- Argon2id PHC string
    role           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    preferences    TEXT NOT NULL,               -- JSON object
    metadata       TEXT NOT NULL,               -- JSON object owned by the host
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_login_at  INTEGER,
    CHECK (username IS NOT NULL OR email IS NOT NULL)
);
CREATE INDEX auth_users_created_at ON auth_users (created_at, id);

CREATE TABLE auth_sessions (
    id           TEXT PRIMARY KEY NOT NULL,     -- UUID, the `sid` claim
    user_id      TEXT NOT NULL,                 -- no foreign key: users may live in another store
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    revoked_at   INTEGER
);
CREATE INDEX auth_sessions_user_id ON auth_sessions (user_id);

CREATE TABLE auth_refresh_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,       -- SHA-256 of the refresh token
    session_id TEXT NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    spent_at   INTEGER                          -- set when rotated away
);
CREATE INDEX auth_refresh_tokens_session_id ON auth_refresh_tokens (session_id);

CREATE TABLE auth_one_time_secrets (
    purpose      TEXT NOT NULL,
    key          TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,
    expires_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    PRIMARY KEY (purpose, key)
);
