-- Refresh-token rotation with reuse detection in one call, so that a refresh is one round trip
-- (`SELECT … FROM auth_rotate_refresh_token(…)` in autocommit). The rule is
-- `auth_core::rotation::decide`, mirrored here as the Redis backend mirrors it in Lua; the
-- conformance suite runs the same rotation cases against this and every other backend.
--
-- Arguments: the presented token's SHA-256, its successor's (NULL: rotation off), the time of the
-- request, the reuse grace and the idle timeout in milliseconds.
-- Returns one row: the step (`rotate`, `keep`, `grace`, `revoke`, `unknown`) and the session as
-- read before the step was carried out; no row for an unknown token.
--
-- The presented token is locked first (`FOR UPDATE`), so concurrent rotations of one token decide
-- one after the other; every statement of a volatile function takes a new snapshot, so the one
-- that waited reads what the one before committed.
CREATE FUNCTION auth_rotate_refresh_token(
    p_presented BYTEA,
    p_successor BYTEA,
    p_now TIMESTAMPTZ,
    p_reuse_grace_ms BIGINT,
    p_idle_timeout_ms BIGINT
) RETURNS TABLE (
    step TEXT,
    id UUID,
    user_id UUID,
    created_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    ip TEXT,
    user_agent TEXT,
    auth_method TEXT,
    revoked_at TIMESTAMPTZ
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    t auth_refresh_tokens%ROWTYPE;
    s auth_sessions%ROWTYPE;
    live BOOLEAN;
    decided TEXT;
BEGIN
    SELECT * INTO t FROM auth_refresh_tokens WHERE token_hash = p_presented FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO s FROM auth_sessions WHERE auth_sessions.id = t.session_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    live := s.revoked_at IS NULL AND s.expires_at > p_now;
    IF t.spent_at IS NULL THEN
        -- Unspent: rotate (or keep, rotation off) if the session is refreshable.
        IF live AND s.last_used_at + p_idle_timeout_ms * INTERVAL '1 millisecond' > p_now THEN
            decided := CASE WHEN p_successor IS NULL THEN 'keep' ELSE 'rotate' END;
        ELSE
            decided := 'unknown';
        END IF;
    ELSIF NOT live THEN
        decided := 'unknown';
    ELSIF EXISTS (
        SELECT 1 FROM auth_refresh_tokens n
        WHERE n.token_hash = p_successor AND n.session_id = s.id AND n.spent_at IS NULL
    ) AND p_now - t.spent_at <= p_reuse_grace_ms * INTERVAL '1 millisecond' THEN
        -- A retry within the grace window: the same successor again.
        decided := 'grace';
    ELSE
        -- A spent token came back: reuse, the whole session dies.
        decided := 'revoke';
    END IF;

    IF decided = 'rotate' THEN
        UPDATE auth_refresh_tokens SET spent_at = p_now WHERE token_hash = p_presented;
        INSERT INTO auth_refresh_tokens (token_hash, session_id, created_at) VALUES (p_successor, s.id, p_now);
    END IF;
    IF decided IN ('rotate', 'keep') THEN
        UPDATE auth_sessions SET last_used_at = p_now WHERE auth_sessions.id = s.id;
    ELSIF decided = 'revoke' THEN
        UPDATE auth_sessions SET revoked_at = p_now
        WHERE auth_sessions.id = s.id AND auth_sessions.revoked_at IS NULL;
    END IF;
    RETURN QUERY SELECT decided, s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.ip,
        s.user_agent, s.auth_method, s.revoked_at;
END
$$;
