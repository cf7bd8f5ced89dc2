-- interlock schema v5 (PostgreSQL): data contracts — drift profiles and findings, payload
-- samples for fixtures, and version markers of out-of-order entities (see sqlite/0005).

CREATE TABLE drift_profiles (
    source      text NOT NULL,
    event_type  text NOT NULL,
    profile     text NOT NULL,
    updated_at  double precision NOT NULL,
    PRIMARY KEY (source, event_type)
);

CREATE TABLE drift_findings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text NOT NULL,
    event_type  text NOT NULL,
    kind        text NOT NULL,
    path        text NOT NULL,
    detail      text NOT NULL,
    example     text NOT NULL,
    count       integer NOT NULL,
    first_seen  double precision NOT NULL,
    last_seen   double precision NOT NULL,
    UNIQUE (source, event_type, kind, path, detail)
);

CREATE TABLE contract_samples (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text NOT NULL,
    topic        text,
    headers      text NOT NULL,
    payload      text NOT NULL,
    received_at  double precision NOT NULL
);
CREATE INDEX contract_samples_by_source ON contract_samples (source, topic, id);

CREATE TABLE version_markers (
    flow        text NOT NULL,
    entity      text NOT NULL,
    marker      double precision NOT NULL,
    event_id    text NOT NULL,
    updated_at  double precision NOT NULL,
    PRIMARY KEY (flow, entity)
);
