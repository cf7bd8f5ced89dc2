-- interlock schema v5 (SQLite): data contracts — drift profiles and findings, payload
-- samples for fixtures, and version markers of out-of-order entities.

-- The merged shape profile of each (source, event type), as JSON (interlock.shapes).
-- Processes add their counts since their last flush; nothing here is on the hot path.
CREATE TABLE drift_profiles (
    source      TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    profile     TEXT NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (source, event_type)
) WITHOUT ROWID;

-- One row per change in shape, however many payloads show it: raised once, counted.
-- `detail` is the new type, the new enum value, or '' (a field that appeared or vanished).
CREATE TABLE drift_findings (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    path        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    example     TEXT NOT NULL,
    count       INTEGER NOT NULL,
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    UNIQUE (source, event_type, kind, path, detail)
);

-- Recent payloads per (source, topic), PII replaced: `interlock contracts record` turns
-- them into fixture candidates. A few per topic; older ones are deleted on each flush.
CREATE TABLE contract_samples (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    topic        TEXT,
    headers      TEXT NOT NULL,
    payload      TEXT NOT NULL,
    received_at  REAL NOT NULL
);
CREATE INDEX contract_samples_by_source ON contract_samples (source, topic, id);

-- The last applied version of each entity, per flow (a contract's marker field, such as
-- updated_at, as a number): older events are skipped or parked instead of overwriting.
CREATE TABLE version_markers (
    flow        TEXT NOT NULL,
    entity      TEXT NOT NULL,
    marker      REAL NOT NULL,
    event_id    TEXT NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (flow, entity)
) WITHOUT ROWID;
