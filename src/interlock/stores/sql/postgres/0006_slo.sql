-- interlock schema v6 (PostgreSQL): burn-rate alerts (see sqlite/0006_slo.sql).

CREATE TABLE alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow             text NOT NULL,
    severity         text NOT NULL,
    fired_at         double precision NOT NULL,
    resolved_at      double precision,
    updated_at       double precision NOT NULL,
    burn_long        double precision NOT NULL,
    burn_short       double precision NOT NULL,
    long_s           double precision NOT NULL,
    short_s          double precision NOT NULL,
    factor           double precision NOT NULL,
    budget_remaining double precision NOT NULL,
    summary          text NOT NULL
);
CREATE UNIQUE INDEX alerts_open ON alerts (flow, severity) WHERE resolved_at IS NULL;
CREATE INDEX alerts_fired ON alerts (fired_at);
