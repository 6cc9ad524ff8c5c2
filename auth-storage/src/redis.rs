//! [`RedisStore`]: sessions, refresh tokens, one-time secrets and rate-limit counters in Redis.
//!
//! # Key layout
//!
//! Every key starts with the prefix (default `auth:`) and has a TTL; no key or value holds a
//! plaintext secret.
//!
//! | key | type | fields / members | TTL |
//! |---|---|---|---|
//! | `{prefix}session:{sid}` | hash | `user_id`, `created_at`, `last_used_at`, `expires_at` (Unix s), `ip`, `user_agent`, `auth_method`, `revoked_at` | the session's expiry; one hour once revoked |
//! | `{prefix}user_sessions:{user_id}` | set | session ids | the latest session expiry |
//! | `{prefix}refresh:{sha256 hex}` | hash | `sid`, `spent_at` | the session's expiry |
//! | `{prefix}session_tokens:{sid}` | set | the SHA-256 hex of each refresh token of the session (so deleting an account leaves none behind) | the session's expiry |
//! | `{prefix}secret:{purpose}:{key}` | hash | `hash` (hex digest), `expires_at` (Unix ms), `attempts`, `max` | the secret's expiry |
//! | `{prefix}rl:{rule}:{key}` | sorted set | one member per counted hit, scored by Redis `TIME` in ms | the window |
//!
//! Revocations are also published on the pub/sub channel `{prefix}revoked` (comma-separated
//! session ids) for the session cache below; the Redis user needs `PUBLISH` and `SUBSCRIBE` on it.
//!
//! Compare seed 001's layout (`auth:token2userid:<token>` …), which keeps tokens themselves as
//! keys: here only SHA-256 digests are.
//!
//! Rotation with reuse detection, revocation, one-time-secret checks and the sliding-window
//! limiter are Lua scripts, so each is atomic across every instance sharing the server. Scripts
//! build some key names at run time, so use a single Redis server (with replicas if you like),
//! not Redis Cluster.
//!
//! # Session cache
//!
//! Every request behind `RequireAuth` asks [`SessionStore::session_is_live`], one `HMGET` round
//! trip here. Wrap the store in a [`CachedSessionStore`](crate::CachedSessionStore) following
//! [`RedisStore::revocations`] to answer repeat checks from memory: every revocation script
//! publishes the revoked ids on `{prefix}revoked` in the same atomic step, so every instance's
//! cache drops them as they arrive.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use auth_storage::{CachedSessionStore, RedisStore};
//!
//! let redis = Arc::new(RedisStore::connect("redis://cache:6379/").await?);
//! let sessions = Arc::new(CachedSessionStore::new(redis.clone(), redis.revocations()));
//! # let _ = sessions; Ok(()) }
//! ```
//!
//! # Deployment
//!
//! What this store keeps is security state, so configure Redis with `maxmemory-policy
//! noeviction`. Under any other policy Redis drops keys when it reaches `maxmemory`, and with them:
//! - a user's session index, so a password change or "log out everywhere" misses the sessions
//!   whose ids it lost;
//! - a spent refresh token's record, so replaying it is no longer detected as reuse;
//! - rate-limit windows, so lockouts and limits start over.
//!
//! The `volatile-*` policies are no better: every key here has a TTL. With `noeviction` a full
//! Redis refuses writes instead (requests get `store_unavailable`) and forgets nothing.
//!
//! [`RedisStore::connect_with`] reads the policy with `CONFIG GET maxmemory-policy` and logs a
//! warning naming it when it is not `noeviction`; with [`RedisOptions::require_noeviction`] it
//! returns an error instead. Managed Redis services often rename or disable `CONFIG`, and an ACL
//! user may lack `+config`: the policy cannot be read then, which is a warning too, and with
//! `require_noeviction` an error. In that case confirm the policy some other way (the service's
//! parameter settings) and turn `require_noeviction` off. The check runs once, against the server
//! the store connects to; a policy changed later goes unnoticed.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use auth_core::{
    async_trait, AuthMethod, NewSecret, NewSession, OnMismatch, RateLimitDecision, RateLimiter, RotationOutcome,
    RotationRequest, SecretCheck, SecretStore, Session, SessionStore, StoreError, TokenHash,
};
use chrono::{DateTime, Utc};
use futures_util::{FutureExt as _, StreamExt as _};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use redis::{AsyncCommands as _, Script};
use uuid::Uuid;

use crate::cache::{Revocation, RevocationFeed, RevocationSubscription};

/// Settings for [`RedisStore::connect_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Prefix of every key (default `auth:`).
    pub prefix: String,
    /// Timeout of connecting and of each command (default 2 s); past it the request fails with
    /// `store_unavailable`. The connection is re-established by itself when Redis is back.
    pub timeout: Duration,
    /// How long a revoked session stays readable before Redis drops it (default 1 hour).
    pub revoked_retention: Duration,
    /// Refuse to connect unless Redis's `maxmemory-policy` is `noeviction` (default false: a
    /// warning only). Also refuses when the policy cannot be read because `CONFIG` is renamed or
    /// not allowed: then confirm the policy some other way and leave this off. See
    /// [Deployment](self#deployment).
    pub require_noeviction: bool,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "auth:".to_owned(),
            timeout: Duration::from_secs(2),
            revoked_retention: Duration::from_secs(3600),
            require_noeviction: false,
        }
    }
}

/// Sessions, refresh tokens, one-time secrets and rate limits in Redis, shared by every server
/// instance. See the [module docs](self) for the key layout.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use auth_core::{Auth, AuthConfig};
/// use auth_storage::{PostgresStore, RedisStore};
///
/// let users = Arc::new(PostgresStore::connect("postgres://auth@db/app").await?);
/// let tokens = Arc::new(RedisStore::connect("redis://cache:6379/").await?);
/// let auth = Auth::builder(AuthConfig::new(vec![7u8; 32])?)
///     .user_store(users)
///     .session_store(tokens.clone())
///     .secret_store(tokens.clone())
///     .rate_limiter(tokens)
///     .build()?;
/// # let _ = auth; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    revoked_retention: i64,
    client: redis::Client,
    timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn redis_err(err: redis::RedisError) -> StoreError {
    StoreError::backend(err)
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(field: Option<&String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    field
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .and_then(|secs| DateTime::from_timestamp(secs, 0))
                .ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {v:?}")))
        })
        .transpose()
}

/// Creates a session, indexes it under its user and stores its first refresh token.
static CREATE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'created_at', ARGV[2], 'last_used_at', ARGV[3], 'expires_at', ARGV[4],
  'auth_method', ARGV[8])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'ip', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'user_agent', ARGV[6]) end
redis.call('EXPIREAT', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[7])
if redis.call('EXPIRETIME', KEYS[2]) < tonumber(ARGV[4]) then redis.call('EXPIREAT', KEYS[2], ARGV[4]) end
redis.call('HSET', KEYS[3], 'sid', ARGV[7])
redis.call('EXPIREAT', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[9])
redis.call('EXPIREAT', KEYS[4], ARGV[4])
return 1
",
    )
});

/// Revokes one session if it exists and is not revoked yet; keeps it `ARGV[2]` seconds more and
/// publishes its id `ARGV[4]` on channel `ARGV[3]`.
static REVOKE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[1]) == 1 then
  if redis.call('TTL', KEYS[1]) > tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return 1
end
return 0
",
    )
});

/// Revokes every live session of a user but `ARGV[3]`; drops ids of sessions that are gone, with
/// the refresh tokens they left. Publishes and returns the ids it revoked.
static REVOKE_USER_SESSIONS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local revoked = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. 'session:' .. sid
  if redis.call('EXISTS', key) == 0 then
    redis.call('SREM', KEYS[1], sid)
    local tokens = ARGV[1] .. 'session_tokens:' .. sid
    for _, hash in ipairs(redis.call('SMEMBERS', tokens)) do redis.call('DEL', ARGV[1] .. 'refresh:' .. hash) end
    redis.call('DEL', tokens)
  elseif sid ~= ARGV[3] and redis.call('HSETNX', key, 'revoked_at', ARGV[2]) == 1 then
    if redis.call('TTL', key) > tonumber(ARGV[4]) then redis.call('EXPIRE', key, ARGV[4]) end
    table.insert(revoked, sid)
  end
end
if #revoked > 0 then redis.call('PUBLISH', ARGV[1] .. 'revoked', table.concat(revoked, ',')) end
return revoked
",
    )
});

/// Deletes every session of a user with its refresh tokens and token set, and the user's session
/// set; publishes the ids of the sessions that were live. ARGV: prefix, now (Unix s).
static DELETE_USER_SESSIONS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local live = {}
local deleted = 0
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. 'session:' .. sid
  local s = redis.call('HMGET', key, 'revoked_at', 'expires_at')
  if s[2] then
    deleted = deleted + 1
    if (not s[1]) and tonumber(s[2]) > tonumber(ARGV[2]) then table.insert(live, sid) end
  end
  local tokens = ARGV[1] .. 'session_tokens:' .. sid
  for _, hash in ipairs(redis.call('SMEMBERS', tokens)) do redis.call('DEL', ARGV[1] .. 'refresh:' .. hash) end
  redis.call('DEL', tokens, key)
end
redis.call('DEL', KEYS[1])
if #live > 0 then redis.call('PUBLISH', ARGV[1] .. 'revoked', table.concat(live, ',')) end
return deleted
",
    )
});

/// Refresh-token rotation with reuse detection (see `SessionStore::rotate_refresh_token`): the rule
/// of `auth_core::rotation::decide`, mirrored in Lua so that it runs atomically in Redis (the
/// conformance suite runs the same rotation cases against this and the Rust backends).
/// KEYS: presented token, successor token (the presented one again when rotation is off).
/// ARGV: prefix, now, grace s, idle s, revoked retention, `1` to rotate or `0` to keep, the
/// successor's hex digest.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local sid = redis.call('HGET', KEYS[1], 'sid')
if not sid then return {'unknown'} end
local skey = ARGV[1] .. 'session:' .. sid
-- The outcome, the session id and the session's fields after the change.
local function outcome(kind)
  local out = {kind, sid}
  for _, v in ipairs(redis.call('HGETALL', skey)) do table.insert(out, v) end
  return out
end
local s = redis.call('HMGET', skey, 'revoked_at', 'expires_at', 'last_used_at')
if not s[2] then return {'unknown'} end
local now = tonumber(ARGV[2])
local live = (not s[1]) and tonumber(s[2]) > now
local spent = redis.call('HGET', KEYS[1], 'spent_at')
if not spent then
  if live and tonumber(s[3]) + tonumber(ARGV[4]) > now then
    if ARGV[6] == '0' then
      redis.call('HSET', skey, 'last_used_at', now)
      return outcome('kept')
    end
    redis.call('HSET', KEYS[1], 'spent_at', now)
    redis.call('HSET', KEYS[2], 'sid', sid)
    redis.call('EXPIREAT', KEYS[2], s[2])
    local tokens = ARGV[1] .. 'session_tokens:' .. sid
    redis.call('SADD', tokens, ARGV[7])
    redis.call('EXPIREAT', tokens, s[2])
    redis.call('HSET', skey, 'last_used_at', now)
    return outcome('rotated')
  end
  return {'unknown'}
end
if not live then return {'unknown'} end
local successor_sid = redis.call('HGET', KEYS[2], 'sid')
local successor_spent = redis.call('HGET', KEYS[2], 'spent_at')
if successor_sid == sid and not successor_spent and now - tonumber(spent) <= tonumber(ARGV[3]) then
  return outcome('grace')
end
redis.call('HSET', skey, 'revoked_at', now)
if redis.call('TTL', skey) > tonumber(ARGV[5]) then redis.call('EXPIRE', skey, ARGV[5]) end
redis.call('PUBLISH', ARGV[1] .. 'revoked', sid)
return outcome('reused')
",
    )
});

/// Stores a one-time secret, keeping the failure count of an unexpired one.
static PUT_SECRET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'expires_at', ARGV[2], 'max', ARGV[3])
else
  redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'expires_at', ARGV[2], 'attempts', 0, 'max', ARGV[3])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Checks a candidate against a one-time secret. ARGV: candidate hex, now ms, spend on mismatch.
static TAKE_SECRET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local h = redis.call('HMGET', KEYS[1], 'hash', 'expires_at', 'attempts', 'max')
if not h[1] then return {'missing'} end
local attempts = tonumber(h[3]) + 1
local max = tonumber(h[4])
if tonumber(h[2]) <= tonumber(ARGV[2]) or attempts > max then
  redis.call('DEL', KEYS[1])
  return {'missing'}
end
if h[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {'valid'}
end
local left = max - attempts
if ARGV[3] == '1' then left = 0 end
if left == 0 then redis.call('DEL', KEYS[1]) else redis.call('HSET', KEYS[1], 'attempts', attempts) end
return {'invalid', tostring(left)}
",
    )
});

/// Sliding-window log on Redis's own clock. ARGV: limit, window ms, count (1/0), member.
/// Returns {1, remaining} or {0, milliseconds until a hit is allowed}.
static RATE_LIMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  n = n + 1
end
return {1, limit - n}
",
    )
});

/// Reads `maxmemory-policy`: anything but `noeviction`, or a policy that cannot be read, is a
/// warning, or with `require` an error (see [Deployment](self#deployment)).
async fn check_eviction_policy(conn: &mut ConnectionManager, require: bool) -> Result<(), StoreError> {
    const RISK: &str = "under memory pressure Redis may evict session indexes, refresh-token records and \
                        rate-limit counters";
    let reply: Result<HashMap<String, String>, _> =
        redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async(conn).await;
    let policy = match reply {
        Ok(mut reply) => reply.remove("maxmemory-policy").ok_or_else(|| "the server does not report it".to_owned()),
        Err(err) => Err(format!("CONFIG GET refused: {err}")),
    };
    match policy {
        Ok(policy) if policy.eq_ignore_ascii_case("noeviction") => Ok(()),
        Ok(policy) if require => Err(StoreError::backend(format!(
            "Redis maxmemory-policy is {policy:?}, not noeviction, and RedisOptions::require_noeviction is set: \
             {RISK}; set maxmemory-policy noeviction"
        ))),
        Ok(policy) => {
            tracing::warn!(
                maxmemory_policy = %policy,
                "Redis maxmemory-policy is {policy:?}: {RISK}; set maxmemory-policy noeviction"
            );
            Ok(())
        }
        Err(why) if require => Err(StoreError::backend(format!(
            "could not check Redis maxmemory-policy ({why}), and RedisOptions::require_noeviction is set: confirm \
             that the policy is noeviction some other way, then turn require_noeviction off"
        ))),
        Err(why) => {
            tracing::warn!("could not check Redis maxmemory-policy ({why}); make sure it is noeviction: {RISK}");
            Ok(())
        }
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://host:6379/`, `rediss://…` is not enabled) with
    /// [`RedisOptions::default`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] if Redis is unreachable.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, RedisOptions::default()).await
    }

    /// [`connect`](Self::connect) with explicit options. Logs a warning when Redis's
    /// `maxmemory-policy` is not `noeviction` or cannot be read (see [Deployment](self#deployment)).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or Redis is unreachable, and with
    /// [`RedisOptions::require_noeviction`] if the policy is not `noeviction` or cannot be read.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client.clone(), config).await.map_err(redis_err)?;
        check_eviction_policy(&mut conn.clone(), options.require_noeviction).await?;
        Ok(Self {
            conn,
            prefix: options.prefix,
            revoked_retention: i64::try_from(options.revoked_retention.as_secs()).unwrap_or(i64::MAX).max(1),
            client,
            timeout: options.timeout,
        })
    }

    /// The revocations this store's scripts publish on `{prefix}revoked`, for a
    /// [`CachedSessionStore`](crate::CachedSessionStore) over it (see
    /// [Session cache](self#session-cache)). Each subscription is a connection of its own.
    #[must_use]
    pub fn revocations(&self) -> RedisRevocations {
        RedisRevocations {
            client: self.client.clone(),
            channel: self.key(format_args!("revoked")),
            timeout: self.timeout,
        }
    }

    fn key(&self, parts: std::fmt::Arguments<'_>) -> String {
        format!("{}{}", self.prefix, parts)
    }

    fn session_key(&self, id: Uuid) -> String {
        self.key(format_args!("session:{id}"))
    }

    fn refresh_key(&self, hash: &TokenHash) -> String {
        self.key(format_args!("refresh:{}", hash.to_hex()))
    }

    fn secret_key(&self, purpose: &str, key: &str) -> String {
        self.key(format_args!("secret:{purpose}:{key}"))
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[String],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        let mut conn = self.conn.clone();
        invocation.invoke_async(&mut conn).await.map_err(redis_err)
    }

    fn session_from(id: Uuid, map: &HashMap<String, String>) -> Result<Option<Session>, StoreError> {
        let Some(user_id) = map.get("user_id") else {
            return Ok(None);
        };
        let required =
            |name: &str| from_ts(map.get(name))?.ok_or_else(|| StoreError::Corrupt(format!("session without {name}")));
        Ok(Some(Session {
            id,
            user_id: Uuid::parse_str(user_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: required("created_at")?,
            last_used_at: required("last_used_at")?,
            expires_at: required("expires_at")?,
            ip: map.get("ip").cloned(),
            user_agent: map.get("user_agent").cloned(),
            // Sessions stored before the method was recorded were password logins.
            auth_method: map.get("auth_method").map_or(Ok(AuthMethod::Password), |m| crate::auth_method(m))?,
            revoked_at: from_ts(map.get("revoked_at"))?,
        }))
    }

    async fn decide(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        count: bool,
    ) -> Result<RateLimitDecision, StoreError> {
        let key = self.key(format_args!("{key}"));
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let args = [
            limit.to_string(),
            window_ms.to_string(),
            u8::from(count).to_string(),
            Uuid::new_v4().simple().to_string(),
        ];
        let (allowed, value): (i64, i64) = self.run(&RATE_LIMIT, &[&key], &args).await?;
        Ok(if allowed == 1 {
            RateLimitDecision::Allowed { remaining: u32::try_from(value).unwrap_or(0) }
        } else {
            let ms = u64::try_from(value).unwrap_or(0);
            RateLimitDecision::Limited { retry_after_seconds: ms.div_ceil(1000).max(1) }
        })
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create_session(&self, new: NewSession) -> Result<(), StoreError> {
        let s = &new.session;
        let keys = [
            self.session_key(s.id),
            self.key(format_args!("user_sessions:{}", s.user_id)),
            self.refresh_key(&new.refresh_token_hash),
            self.key(format_args!("session_tokens:{}", s.id)),
        ];
        let args = [
            s.user_id.to_string(),
            ts(s.created_at).to_string(),
            ts(s.last_used_at).to_string(),
            ts(s.expires_at).to_string(),
            s.ip.clone().unwrap_or_default(),
            s.user_agent.clone().unwrap_or_default(),
            s.id.to_string(),
            s.auth_method.as_str().to_owned(),
            new.refresh_token_hash.to_hex(),
        ];
        let _: i64 = self.run(&CREATE_SESSION, &[&keys[0], &keys[1], &keys[2], &keys[3]], &args).await?;
        Ok(())
    }

    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let map: HashMap<String, String> = conn.hgetall(self.session_key(id)).await.map_err(redis_err)?;
        Self::session_from(id, &map)
    }

    async fn live_session_expiry(
        &self,
        id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut conn = self.conn.clone();
        let (owner, expires_at, revoked_at): (Option<String>, Option<i64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.session_key(id))
            .arg(&["user_id", "expires_at", "revoked_at"])
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let live = owner.is_some_and(|o| Uuid::parse_str(&o) == Ok(user_id)) && revoked_at.is_none();
        Ok(expires_at.filter(|&e| live && e > ts(now)).and_then(|e| DateTime::from_timestamp(e, 0)))
    }

    async fn rotate_refresh_token(&self, r: RotationRequest) -> Result<RotationOutcome, StoreError> {
        // Rotation off: the presented token stands in for the successor. It is spent only if it
        // was spent before rotation was turned off, so the script finds no current successor and
        // judges reuse as `rotation::decide` does.
        let keys = [self.refresh_key(&r.presented), self.refresh_key(r.successor.as_ref().unwrap_or(&r.presented))];
        let args = [
            self.prefix.clone(),
            ts(r.now).to_string(),
            r.reuse_grace.num_seconds().to_string(),
            r.idle_timeout.num_seconds().to_string(),
            self.revoked_retention.to_string(),
            if r.successor.is_some() { "1" } else { "0" }.to_owned(),
            r.successor.as_ref().map(TokenHash::to_hex).unwrap_or_default(),
        ];
        let out: Vec<String> = self.run(&ROTATE, &[&keys[0], &keys[1]], &args).await?;
        let mut out = out.into_iter();
        let (Some(kind), Some(sid)) = (out.next(), out.next()) else {
            return Ok(RotationOutcome::Unknown);
        };
        let sid = Uuid::parse_str(&sid).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut fields = HashMap::new();
        while let (Some(name), Some(value)) = (out.next(), out.next()) {
            fields.insert(name, value);
        }
        let Some(session) = Self::session_from(sid, &fields)? else {
            return Ok(RotationOutcome::Unknown);
        };
        Ok(match kind.as_str() {
            "rotated" => RotationOutcome::Rotated(session),
            "kept" => RotationOutcome::Kept(session),
            "grace" => RotationOutcome::Grace(session),
            "reused" => RotationOutcome::Reused(session),
            _ => RotationOutcome::Unknown,
        })
    }

    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let args =
            [ts(at).to_string(), self.revoked_retention.to_string(), self.key(format_args!("revoked")), id.to_string()];
        Ok(self.run::<i64>(&REVOKE_SESSION, &[&self.session_key(id)], &args).await? == 1)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let set = self.key(format_args!("user_sessions:{user_id}"));
        let args = [
            self.prefix.clone(),
            ts(at).to_string(),
            except.map(|e| e.to_string()).unwrap_or_default(),
            self.revoked_retention.to_string(),
        ];
        let revoked: Vec<String> = self.run(&REVOKE_USER_SESSIONS, &[&set], &args).await?;
        Ok(revoked.len() as u64)
    }

    async fn delete_user_sessions(&self, user_id: Uuid, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let set = self.key(format_args!("user_sessions:{user_id}"));
        let deleted: i64 = self.run(&DELETE_USER_SESSIONS, &[&set], &[self.prefix.clone(), ts(at).to_string()]).await?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    async fn user_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let set = self.key(format_args!("user_sessions:{user_id}"));
        let ids: Vec<String> = conn.smembers(set).await.map_err(redis_err)?;
        let mut pipe = redis::pipe();
        let ids: Vec<Uuid> = ids.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect();
        if ids.is_empty() {
            // An empty pipeline is an error in the client, not an empty answer.
            return Ok(Vec::new());
        }
        for id in &ids {
            pipe.hgetall(self.session_key(*id));
        }
        let maps: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await.map_err(redis_err)?;
        let mut sessions = Vec::new();
        for (id, map) in ids.into_iter().zip(maps) {
            if let Some(s) = Self::session_from(id, &map)? {
                if s.user_id == user_id && s.is_live(now) {
                    sessions.push(s);
                }
            }
        }
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(sessions)
    }

    /// Redis drops expired sessions and their tokens by their TTLs, and revoked sessions after
    /// [`RedisOptions::revoked_retention`]: nothing to do here.
    async fn purge_expired_sessions(&self, _now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[async_trait]
impl SecretStore for RedisStore {
    async fn put_secret(&self, s: NewSecret, _now: DateTime<Utc>) -> Result<(), StoreError> {
        let key = self.secret_key(&s.purpose, &s.key);
        let args = [s.hash.to_hex(), s.expires_at.timestamp_millis().to_string(), s.max_attempts.to_string()];
        let _: i64 = self.run(&PUT_SECRET, &[&key], &args).await?;
        Ok(())
    }

    async fn take_secret(
        &self,
        purpose: &str,
        key: &str,
        candidate: &TokenHash,
        on_mismatch: OnMismatch,
        now: DateTime<Utc>,
    ) -> Result<SecretCheck, StoreError> {
        let key = self.secret_key(purpose, key);
        let spend = u8::from(on_mismatch == OnMismatch::Spend);
        let args = [candidate.to_hex(), now.timestamp_millis().to_string(), spend.to_string()];
        let out: Vec<String> = self.run(&TAKE_SECRET, &[&key], &args).await?;
        Ok(match out.first().map(String::as_str) {
            Some("valid") => SecretCheck::Valid,
            Some("invalid") => {
                SecretCheck::Invalid { attempts_left: out.get(1).and_then(|n| n.parse().ok()).unwrap_or(0) }
            }
            _ => SecretCheck::Missing,
        })
    }

    /// Redis drops expired secrets by their TTLs: nothing to do here.
    async fn purge_expired_secrets(&self, _now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[async_trait]
impl RateLimiter for RedisStore {
    async fn check(&self, key: &str, limit: u32, window: Duration) -> Result<RateLimitDecision, StoreError> {
        self.decide(key, limit, window, true).await
    }

    async fn peek(&self, key: &str, limit: u32, window: Duration) -> Result<RateLimitDecision, StoreError> {
        self.decide(key, limit, window, false).await
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let key = self.key(format_args!("{key}"));
        let _: i64 = conn.del(key).await.map_err(redis_err)?;
        Ok(())
    }
}

/// The revocations a [`RedisStore`] publishes, for a
/// [`CachedSessionStore`](crate::CachedSessionStore); from [`RedisStore::revocations`].
///
/// Each subscription is a pub/sub connection of its own to `{prefix}revoked`; the ping is a
/// `PING` on it, which Redis answers after every message published before it.
#[derive(Debug, Clone)]
pub struct RedisRevocations {
    client: redis::Client,
    channel: String,
    timeout: Duration,
}

/// A subscription of [`RedisRevocations`].
pub struct RedisRevocationSubscription {
    sink: PubSubSink,
    stream: PubSubStream,
}

impl std::fmt::Debug for RedisRevocationSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocationSubscription").finish_non_exhaustive()
    }
}

#[async_trait]
impl RevocationFeed for RedisRevocations {
    type Subscription = RedisRevocationSubscription;

    async fn subscribe(&self) -> Result<Self::Subscription, StoreError> {
        let pubsub = tokio::time::timeout(self.timeout, self.client.get_async_pubsub())
            .await
            .map_err(|_| StoreError::backend(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
            .map_err(redis_err)?;
        let (mut sink, stream) = pubsub.split();
        sink.subscribe(&self.channel).await.map_err(redis_err)?;
        Ok(RedisRevocationSubscription { sink, stream })
    }
}

/// One message on `{prefix}revoked`: comma-separated session ids.
fn revocation(message: &redis::Msg) -> Revocation {
    let ids: Option<Vec<Uuid>> = message
        .get_payload::<String>()
        .ok()
        .and_then(|payload| payload.split(',').map(|id| Uuid::parse_str(id).ok()).collect());
    ids.map_or(Revocation::Unreadable, Revocation::Sessions)
}

fn connection_closed() -> StoreError {
    StoreError::backend(std::io::Error::from(std::io::ErrorKind::ConnectionAborted))
}

#[async_trait]
impl RevocationSubscription for RedisRevocationSubscription {
    async fn next(&mut self) -> Result<Revocation, StoreError> {
        self.stream.next().await.map(|message| revocation(&message)).ok_or_else(connection_closed)
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        self.sink.ping::<redis::Value>().await.map(drop).map_err(redis_err)
    }

    fn buffered(&mut self) -> Option<Result<Revocation, StoreError>> {
        // Unconstrained: Tokio's cooperative budget would otherwise report "nothing" after a
        // hundred or so messages in one go, and the cache would be confirmed before they apply.
        match tokio::task::unconstrained(self.stream.next()).now_or_never()? {
            Some(message) => Some(Ok(revocation(&message))),
            None => Some(Err(connection_closed())),
        }
    }
}
