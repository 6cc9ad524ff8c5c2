-- The second factor (auth_core::mfa): TOTP factors, recovery codes and login challenges. No
-- column holds a secret in clear: the TOTP secret is sealed (XChaCha20-Poly1305, key outside the
-- database), recovery codes are HMAC-SHA-256 keyed hashes, challenge tokens SHA-256 hashes.
CREATE TABLE auth_mfa_totp (
    user_id        UUID PRIMARY KEY REFERENCES auth_users (id) ON DELETE CASCADE,
    sealed_secret  BYTEA NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    confirmed_at   TIMESTAMPTZ,                   -- NULL while the enrollment is pending
    last_used_step BIGINT                         -- the last accepted TOTP time step (replay guard)
);
CREATE TABLE auth_mfa_recovery_codes (
    user_id   UUID NOT NULL REFERENCES auth_mfa_totp (user_id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE auth_mfa_challenges (
    token_hash           BYTEA PRIMARY KEY,
    user_id              UUID NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    purpose              TEXT NOT NULL CHECK (purpose IN ('login', 'enroll')),
    password_fingerprint BYTEA NOT NULL,
    verified_at          TIMESTAMPTZ NOT NULL,
    expires_at           TIMESTAMPTZ NOT NULL,
    attempts             INT4 NOT NULL DEFAULT 0
);
CREATE INDEX auth_mfa_challenges_user_id ON auth_mfa_challenges (user_id);
CREATE INDEX auth_mfa_challenges_expires_at ON auth_mfa_challenges (expires_at);
