-- Announces revoked sessions on channel `auth_sessions_revoked` (payload: the session id), for
-- the session caches of every instance (auth_storage::cache). NOTIFY is transactional: the
-- announcement goes out when the revoking transaction commits, and not at all if it rolls back.
CREATE FUNCTION auth_announce_session_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('auth_sessions_revoked', OLD.id::text);
    ELSE
        PERFORM pg_notify('auth_sessions_revoked', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER auth_sessions_revoked
    AFTER UPDATE OF revoked_at ON auth_sessions
    FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION auth_announce_session_revoked();

-- A live session deleted outright (by hand; the purge only deletes revoked or expired ones).
CREATE TRIGGER auth_sessions_deleted
    AFTER DELETE ON auth_sessions
    FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > now())
    EXECUTE FUNCTION auth_announce_session_revoked();

-- Emptied outright: a payload that is no session id empties every cache.
CREATE FUNCTION auth_announce_sessions_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auth_sessions_revoked', 'all');
    RETURN NULL;
END
$$;

CREATE TRIGGER auth_sessions_truncated
    AFTER TRUNCATE ON auth_sessions
    FOR EACH STATEMENT
    EXECUTE FUNCTION auth_announce_sessions_truncated();
