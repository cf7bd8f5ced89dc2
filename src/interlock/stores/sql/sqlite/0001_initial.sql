-- interlock schema v1 (SQLite).
-- Timestamps are REAL seconds since the epoch. JSON is stored as TEXT.

CREATE TABLE events (
    seq             INTEGER PRIMARY KEY,          -- arrival order; deliveries point here
    id              TEXT NOT NULL UNIQUE,         -- evt_<ULID>
    type            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    source          TEXT NOT NULL,
    subject         TEXT,
    idempotency_key TEXT,
    correlation_id  TEXT NOT NULL,
    causation_id    TEXT,
    occurred_at     REAL NOT NULL,
    received_at     REAL NOT NULL,
    data            TEXT NOT NULL
);
-- Re-emitting the same (source, idempotency key) must find the first event.
CREATE UNIQUE INDEX events_idempotency ON events (source, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_subject ON events (subject) WHERE subject IS NOT NULL;
CREATE INDEX events_correlation ON events (correlation_id);

-- One row per (event, subscribed flow).
--   queued   waiting behind an earlier delivery of its lane
--   pending  head of its lane, claimable once due_at <= now
--   running  leased to a worker; due_at is the lease expiry
--   waiting  parked in wait_for_event; due_at is the timeout (NULL: none)
--   succeeded | dead | skipped   final (dead may be replayed)
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    event_seq        INTEGER NOT NULL,
    flow             TEXT NOT NULL,
    lane             TEXT NOT NULL,
    idem             TEXT,
    status           TEXT NOT NULL,
    due_at           REAL,
    attempts         INTEGER NOT NULL DEFAULT 0,   -- failures counted against Retry.attempts
    runs             INTEGER NOT NULL DEFAULT 0,   -- attempt rows written, all chains
    chain            INTEGER NOT NULL DEFAULT 1,   -- bumped by every replay
    fence            INTEGER NOT NULL DEFAULT 0,   -- fencing token, bumped by every claim
    blocking         INTEGER NOT NULL DEFAULT 0,   -- 1: dead and still holding its lane
    worker           TEXT,
    created_at       REAL NOT NULL,
    first_attempt_at REAL,
    finished_at      REAL,
    error_class      TEXT,
    reason           TEXT,
    context          TEXT
);
-- The claim index: only lane heads (and leases, waits) have a due_at, so a
-- claim is one range scan however large the queued backlog is.
CREATE INDEX deliveries_due ON deliveries (due_at) WHERE due_at IS NOT NULL;
-- Next delivery of a lane, in event order.
CREATE INDEX deliveries_lane ON deliveries (flow, lane, id) WHERE status = 'queued';
CREATE INDEX deliveries_event ON deliveries (event_seq);
CREATE UNIQUE INDEX deliveries_idempotency ON deliveries (flow, idem) WHERE idem IS NOT NULL;
CREATE INDEX deliveries_dead ON deliveries (flow, finished_at) WHERE status = 'dead';

-- Open lanes: a row exists exactly while the (flow, lane) holds an unfinished
-- delivery (queued, pending, running, waiting, or dead and blocking).
CREATE TABLE lanes (
    flow  TEXT NOT NULL,
    lane  TEXT NOT NULL,
    PRIMARY KEY (flow, lane)
) WITHOUT ROWID;

CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL,
    number      INTEGER NOT NULL,
    chain       INTEGER NOT NULL,
    worker      TEXT,
    started_at  REAL NOT NULL,
    finished_at REAL NOT NULL,
    outcome     TEXT NOT NULL,
    error_class TEXT,
    reason      TEXT,
    delay       REAL
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

CREATE TABLE steps (
    delivery_id INTEGER NOT NULL,
    name        TEXT NOT NULL,
    result      TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (delivery_id, name)
) WITHOUT ROWID;

CREATE TABLE waits (
    delivery_id   INTEGER PRIMARY KEY,
    step          TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    match         TEXT NOT NULL,
    registered_at REAL NOT NULL,
    deadline      REAL
);
CREATE INDEX waits_type ON waits (event_type);

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    at     REAL NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
