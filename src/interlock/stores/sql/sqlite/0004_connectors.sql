-- interlock schema v4 (SQLite): state connectors share across every worker process.

-- One token bucket per rate-limit key (a connector, or a connector and an account).
-- Processes lease permits in batches (see stores.base.take_permits); a vendor's
-- Retry-After pauses the bucket by setting tokens to 0 and `at` in the future.
-- The rate and burst are not stored: each lease passes the configured ones.
CREATE TABLE connector_permits (
    key     TEXT PRIMARY KEY,
    tokens  REAL NOT NULL,
    at      REAL NOT NULL
) WITHOUT ROWID;

-- A connector's circuit breaker and connection health, as every process sees them.
--   breaker     closed | open (until breaker_until) | half_open (one trial until breaker_until)
--   connection  ok | needs_reauth (a refresh token was refused; deliveries are paused)
CREATE TABLE connector_state (
    name           TEXT PRIMARY KEY,
    breaker        TEXT NOT NULL DEFAULT 'closed',
    breaker_until  REAL,
    opened         INTEGER NOT NULL DEFAULT 0,
    connection     TEXT NOT NULL DEFAULT 'ok',
    reason         TEXT,
    seed           TEXT,
    updated_at     REAL NOT NULL
) WITHOUT ROWID;
