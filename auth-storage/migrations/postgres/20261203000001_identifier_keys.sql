-- Identifier keys: usernames and emails are compared by `auth_core::validate::identifier_key`
-- (NFKC + Unicode case folding), computed in Rust and stored, instead of `lower()`, which differs
-- from Rust and SQLite on non-ASCII text. Existing rows get PostgreSQL's closest equivalent here;
-- `PostgresStore::connect` then recomputes the keys of rows with non-ASCII identifiers in Rust.
ALTER TABLE auth_users ADD COLUMN username_key TEXT, ADD COLUMN email_key TEXT;
UPDATE auth_users SET username_key = lower(normalize(username, NFKC)), email_key = lower(normalize(email, NFKC));
DROP INDEX auth_users_username_key;
DROP INDEX auth_users_email_key;
CREATE UNIQUE INDEX auth_users_username_key ON auth_users (username_key);
CREATE UNIQUE INDEX auth_users_email_key ON auth_users (email_key);
ALTER TABLE auth_users ADD CHECK ((username IS NULL) = (username_key IS NULL)),
                       ADD CHECK ((email IS NULL) = (email_key IS NULL));
