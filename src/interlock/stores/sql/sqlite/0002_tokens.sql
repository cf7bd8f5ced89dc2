-- interlock schema v2 (SQLite): API tokens, and indexes for the REST API's filters.

-- Only a SHA-256 of each token is kept; the token itself is shown once, at creation.
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,              -- tok_<hex>, safe to show and log
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,                 -- viewer | operator | admin
    hash         TEXT NOT NULL UNIQUE,          -- hex SHA-256 of the whole token
    created_at   REAL NOT NULL,
    created_by   TEXT NOT NULL,
    revoked_at   REAL,
    revoked_by   TEXT
);
CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked_at IS NULL;

CREATE INDEX events_type ON events (type, seq);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX deliveries_status ON deliveries (status, id);
CREATE INDEX audit_action ON audit (action, id);
