-- interlock schema v7 (SQLite): SLO counts rolled up per minute.

-- Deliveries decided good or bad against a flow's latency bound (`within`, seconds),
-- per minute of their decision (see interlock.stores.analytics.SloCounts). Written by
-- the alert evaluator once a minute can no longer change; long SLO windows (28 days)
-- are then sums over these rows instead of scans of the deliveries, and outlive the
-- deliveries' retention.
CREATE TABLE slo_minutes (
    flow    TEXT NOT NULL,
    within  REAL NOT NULL,
    minute  INTEGER NOT NULL,   -- epoch seconds, a multiple of 60
    good    INTEGER NOT NULL,
    bad     INTEGER NOT NULL,
    PRIMARY KEY (flow, within, minute)
) WITHOUT ROWID;

-- Which minutes of (flow, within) are rolled up: [since, upto), both multiples of 60.
CREATE TABLE slo_marks (
    flow    TEXT NOT NULL,
    within  REAL NOT NULL,
    since   INTEGER NOT NULL,
    upto    INTEGER NOT NULL,
    PRIMARY KEY (flow, within)
) WITHOUT ROWID;
