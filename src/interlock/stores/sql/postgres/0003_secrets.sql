-- interlock schema v3 (PostgreSQL): encrypted secrets and cross-process locks.

CREATE TABLE secrets (
    name        text NOT NULL,
    version     integer NOT NULL,
    value       bytea NOT NULL,
    created_at  double precision NOT NULL,
    created_by  text NOT NULL,
    expires_at  double precision,
    PRIMARY KEY (name, version)
);

CREATE TABLE locks (
    name    text PRIMARY KEY,
    holder  text NOT NULL,
    until   double precision NOT NULL
);
