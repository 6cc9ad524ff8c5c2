-- Account lifecycle: a pending address change and the persistent audit log (auth_core::audit).
-- The unique indexes on username_key / email_key (BINARY collation) already answer the admin
-- list's prefix range scans. No column of the log holds a secret.
ALTER TABLE auth_users ADD COLUMN pending_email TEXT;
-- The admin list's role and status filters, and the last-admin guard's lock of every active admin.
CREATE INDEX auth_users_role_status ON auth_users (role, status, id);

CREATE TABLE auth_audit_log (
    id         TEXT PRIMARY KEY NOT NULL,         -- UUID v7 text: time-ordered, the page keyset
    at         INTEGER NOT NULL,                  -- Unix seconds
    type       TEXT NOT NULL,
    user_id    TEXT,                              -- the account concerned
    actor_id   TEXT,                              -- who acted (the user, an admin)
    ip         TEXT,
    user_agent TEXT,
    outcome    TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    details    TEXT NOT NULL                      -- JSON object
);
CREATE INDEX auth_audit_log_user_id ON auth_audit_log (user_id, id);
CREATE INDEX auth_audit_log_type ON auth_audit_log (type, id);
CREATE INDEX auth_audit_log_at ON auth_audit_log (at);
