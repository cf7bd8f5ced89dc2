-- interlock schema v6 (SQLite): burn-rate alerts.
-- (v5 is the contracts/drift migration.)

-- One row per alert: fired when a flow burned its error budget fast over both
-- windows of a policy rule (severity page or ticket), resolved when it recovered.
-- burn_long/burn_short and budget_remaining are the latest evaluation's while it
-- fires, then frozen at the resolve.
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    flow             TEXT NOT NULL,
    severity         TEXT NOT NULL,
    fired_at         REAL NOT NULL,
    resolved_at      REAL,
    updated_at       REAL NOT NULL,
    burn_long        REAL NOT NULL,
    burn_short       REAL NOT NULL,
    long_s           REAL NOT NULL,
    short_s          REAL NOT NULL,
    factor           REAL NOT NULL,
    budget_remaining REAL NOT NULL,
    summary          TEXT NOT NULL
);
-- At most one firing alert per flow and severity, whichever process evaluates.
CREATE UNIQUE INDEX alerts_open ON alerts (flow, severity) WHERE resolved_at IS NULL;
CREATE INDEX alerts_fired ON alerts (fired_at);
