-- interlock schema v3 (SQLite): encrypted secrets and cross-process locks.

-- Every `secrets set` adds a version; the highest is the current value. Values are
-- Fernet tokens (AES-128-CBC + HMAC-SHA256) under a key from INTERLOCK_SECRET_KEY,
-- never plaintext.
CREATE TABLE secrets (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    value       BLOB NOT NULL,
    created_at  REAL NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  REAL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;

-- A named lock held by one holder until a time (e.g. one OAuth refresh at a time across
-- every worker process); an expired lock may be taken over.
CREATE TABLE locks (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   REAL NOT NULL
) WITHOUT ROWID;
