-- Account lifecycle: a pending address change, prefix search for the admin user list, and the
-- persistent audit log (auth_core::audit). No column of the log holds a secret.
ALTER TABLE auth_users ADD COLUMN pending_email TEXT;
-- Byte-order ("C") indexes answer `key >= prefix AND key < prefix || U+10FFFF` range scans
-- whatever the database's default collation.
CREATE INDEX auth_users_username_prefix ON auth_users ((username_key COLLATE "C"));
CREATE INDEX auth_users_email_prefix ON auth_users ((email_key COLLATE "C"));
-- The admin list's role and status filters, and the last-admin guard's lock of every active admin.
CREATE INDEX auth_users_role_status ON auth_users (role, status, id);

CREATE TABLE auth_audit_log (
    id         UUID PRIMARY KEY,                  -- UUID v7: time-ordered, the page keyset
    at         TIMESTAMPTZ NOT NULL,
    type       TEXT NOT NULL,
    user_id    UUID,                              -- the account concerned
    actor_id   UUID,                              -- who acted (the user, an admin)
    ip         TEXT,
    user_agent TEXT,
    outcome    TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    details    JSONB NOT NULL
);
CREATE INDEX auth_audit_log_user_id ON auth_audit_log (user_id, id);
CREATE INDEX auth_audit_log_type ON auth_audit_log (type, id);
CREATE INDEX auth_audit_log_at ON auth_audit_log (at);
