-- auth-storage PostgreSQL schema v1. Secrets are stored as SHA-256 / HMAC digests only.

CREATE TABLE auth_users (
    id             UUID PRIMARY KEY,
    username       TEXT,
    email          TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash  TEXT NOT NULL,                 -- Argon2id PHC string
    role           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    preferences    JSONB NOT NULL,
    metadata       JSONB NOT NULL,                -- owned by the host
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    last_login_at  TIMESTAMPTZ,
    CHECK (username IS NOT NULL OR email IS NOT NULL)
);
-- Case-insensitive uniqueness enforced by the database itself.
CREATE UNIQUE INDEX auth_users_username_key ON auth_users (lower(username));
CREATE UNIQUE INDEX auth_users_email_key ON auth_users (lower(email));
CREATE INDEX auth_users_created_at ON auth_users (created_at, id);

CREATE TABLE auth_sessions (
    id           UUID PRIMARY KEY,                -- the `sid` claim
    user_id      UUID NOT NULL,                   -- no foreign key: users may live in another store
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX auth_sessions_user_id ON auth_sessions (user_id);

CREATE TABLE auth_refresh_tokens (
    token_hash BYTEA PRIMARY KEY,                 -- SHA-256 of the refresh token
    session_id UUID NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    spent_at   TIMESTAMPTZ
);
CREATE INDEX auth_refresh_tokens_session_id ON auth_refresh_tokens (session_id);

CREATE TABLE auth_one_time_secrets (
    purpose      TEXT NOT NULL,
    key          TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    PRIMARY KEY (purpose, key)
);
