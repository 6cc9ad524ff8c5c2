-- How the user authenticated when the session was created (auth_core::AuthMethod).
ALTER TABLE auth_sessions ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'password';
