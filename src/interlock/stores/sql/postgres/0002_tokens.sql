-- interlock schema v2 (PostgreSQL): API tokens, and indexes for the REST API's filters.

CREATE TABLE tokens (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL,
    hash         text NOT NULL UNIQUE,
    created_at   double precision NOT NULL,
    created_by   text NOT NULL,
    revoked_at   double precision,
    revoked_by   text
);
CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked_at IS NULL;

CREATE INDEX events_type ON events (type, seq);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX deliveries_status ON deliveries (status, id);
CREATE INDEX audit_action ON audit (action, id);
