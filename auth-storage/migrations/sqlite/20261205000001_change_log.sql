-- The change log the session and user caches of every process using this file follow
-- (auth_storage::SqliteChanges): SQLite has no LISTEN/NOTIFY, so triggers append what changed,
-- in the changing transaction, and followers read what was appended since they last looked.
-- `seq` only grows (AUTOINCREMENT never reuses a number), so a follower that finds the next
-- number gone (purged after 10 minutes) knows it missed something and empties its cache.
CREATE TABLE auth_changes (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('session', 'user', 'all')),
    id   TEXT NOT NULL,                                             -- UUID; '' for 'all'
    at   INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))  -- Unix seconds
);
CREATE INDEX auth_changes_at ON auth_changes (at);

CREATE TRIGGER auth_sessions_revoked
    AFTER UPDATE OF revoked_at ON auth_sessions
    FOR EACH ROW
    WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO auth_changes (kind, id) VALUES ('session', NEW.id);
END;

-- A live session deleted outright (by hand; the purge only deletes revoked or expired ones).
CREATE TRIGGER auth_sessions_deleted
    AFTER DELETE ON auth_sessions
    FOR EACH ROW
    WHEN OLD.revoked_at IS NULL AND OLD.expires_at > CAST(strftime('%s', 'now') AS INTEGER)
BEGIN
    INSERT INTO auth_changes (kind, id) VALUES ('session', OLD.id);
END;

-- Any column: a role, status, profile, password or last-login change. A lock taken with
-- `UPDATE … SET role = role` changes nothing and logs nothing.
CREATE TRIGGER auth_users_changed
    AFTER UPDATE ON auth_users
    FOR EACH ROW
    WHEN (OLD.username, OLD.email, OLD.email_verified, OLD.password_hash, OLD.role, OLD.status,
          OLD.preferences, OLD.metadata, OLD.created_at, OLD.updated_at, OLD.last_login_at,
          OLD.pending_email)
      IS NOT (NEW.username, NEW.email, NEW.email_verified, NEW.password_hash, NEW.role, NEW.status,
              NEW.preferences, NEW.metadata, NEW.created_at, NEW.updated_at, NEW.last_login_at,
              NEW.pending_email)
BEGIN
    INSERT INTO auth_changes (kind, id) VALUES ('user', NEW.id);
END;

CREATE TRIGGER auth_users_deleted
    AFTER DELETE ON auth_users
    FOR EACH ROW
BEGIN
    INSERT INTO auth_changes (kind, id) VALUES ('user', OLD.id);
END;
