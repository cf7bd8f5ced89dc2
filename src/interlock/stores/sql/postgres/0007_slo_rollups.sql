-- interlock schema v7 (PostgreSQL): SLO counts rolled up per minute (see sqlite/0007).

CREATE TABLE slo_minutes (
    flow    text NOT NULL,
    within  double precision NOT NULL,
    minute  bigint NOT NULL,
    good    bigint NOT NULL,
    bad     bigint NOT NULL,
    PRIMARY KEY (flow, within, minute)
);

CREATE TABLE slo_marks (
    flow    text NOT NULL,
    within  double precision NOT NULL,
    since   bigint NOT NULL,
    upto    bigint NOT NULL,
    PRIMARY KEY (flow, within)
);
