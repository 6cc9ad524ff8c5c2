-- Finer statistics on the identifier keys, so the planner can tell a username or email prefix
-- that a hundred users match from one that most do: with the default histogram (100 buckets) a
-- narrow prefix at a million users is estimated at ~10 000 rows, and the admin list's
-- `ORDER BY id LIMIT n` then walks the primary key past every user (0.3-0.5 s) instead of
-- reading the prefix range (0.2 ms). Costs a larger sample per ANALYZE.
ALTER TABLE auth_users ALTER COLUMN username_key SET STATISTICS 10000,
                       ALTER COLUMN email_key SET STATISTICS 10000;
