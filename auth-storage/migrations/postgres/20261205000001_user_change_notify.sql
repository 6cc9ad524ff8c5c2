-- Announces changed and deleted users on channel `auth_sessions_revoked` (payload `user:<id>`),
-- for the user caches of every instance (auth_storage::CachedUserStore). Transactional, as the
-- session announcements: sent when the changing transaction commits.
CREATE FUNCTION auth_announce_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('auth_sessions_revoked', 'user:' || OLD.id::text);
    ELSE
        PERFORM pg_notify('auth_sessions_revoked', 'user:' || NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

-- Any column: a role, status, profile, password or last-login change. A row lock taken with
-- `UPDATE … SET role = role` changes nothing and announces nothing.
CREATE TRIGGER auth_users_changed
    AFTER UPDATE ON auth_users
    FOR EACH ROW
    WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION auth_announce_user_changed();

CREATE TRIGGER auth_users_deleted
    AFTER DELETE ON auth_users
    FOR EACH ROW
    EXECUTE FUNCTION auth_announce_user_changed();

CREATE FUNCTION auth_announce_users_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auth_sessions_revoked', 'all');
    RETURN NULL;
END
$$;

CREATE TRIGGER auth_users_truncated
    AFTER TRUNCATE ON auth_users
    FOR EACH STATEMENT
    EXECUTE FUNCTION auth_announce_users_truncated();
