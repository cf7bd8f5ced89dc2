-- interlock schema v4 (PostgreSQL): state connectors share across every worker process.

CREATE TABLE connector_permits (
    key     text PRIMARY KEY,
    tokens  double precision NOT NULL,
    at      double precision NOT NULL
);

CREATE TABLE connector_state (
    name           text PRIMARY KEY,
    breaker        text NOT NULL DEFAULT 'closed',
    breaker_until  double precision,
    opened         integer NOT NULL DEFAULT 0,
    connection     text NOT NULL DEFAULT 'ok',
    reason         text,
    seed           text,
    updated_at     double precision NOT NULL
);
