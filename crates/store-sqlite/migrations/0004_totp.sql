-- Time-based one-time passwords (RFC 6238). The secret must be readable to check codes, so it
-- is stored as is; the database file is readable by genkan's user only. `totp_last_step` is the
-- last time step accepted, so a code is never accepted twice.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_pending_secret TEXT;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
