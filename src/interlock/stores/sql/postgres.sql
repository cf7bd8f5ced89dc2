-- Named queries of the PostgreSQL store. Each block starts with `-- name: NAME`.
-- The hot-path transactions are functions (see postgres/0001_initial.sql; interlock_settle
-- as of postgres/0008_attempt_calls.sql).

-- name: emit
SELECT event_id, created, seq, leased, leased_flows, leased_lanes, waits
FROM interlock_emit(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s);

-- name: emit-many
SELECT event_id, created, seq, leased, leased_flows, leased_lanes, waits
FROM interlock_emit_many(%s);

-- name: claim
SELECT * FROM interlock_claim(%s, %s, %s, %s);

-- name: settle
SELECT * FROM interlock_settle(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                               %s, %s, %s, %s, %s, %s, %s, %s, %s, %s);

-- name: settle-succeeded
SELECT * FROM interlock_settle_succeeded(%s, %s, %s, %s, %s);

-- name: record-steps
SELECT interlock_record_steps(%s, %s, %s, %s, %s);

-- name: heartbeat
UPDATE deliveries d SET due_at = %s
FROM unnest(%s::bigint[], %s::integer[]) AS l(id, fence)
WHERE d.id = l.id AND d.fence = l.fence AND d.status = 'running' AND d.worker = %s
RETURNING d.id;

-- name: advance
SELECT * FROM interlock_advance(%s, %s, %s, false, %s, 0);

-- name: wait-lock
-- Taken by a wait registration before it looks for events that already arrived; emits
-- of the type take it shared (see interlock_emit).
SELECT pg_advisory_xact_lock(1769106283, hashtext(%s));

-- name: waits-for-type
SELECT delivery_id, step, match FROM waits WHERE event_type = %s FOR UPDATE;

-- name: insert-step
INSERT INTO steps (delivery_id, name, result, recorded_at) VALUES (%s, %s, %s, %s)
ON CONFLICT (delivery_id, name) DO NOTHING;

-- name: delete-wait
DELETE FROM waits WHERE delivery_id = %s;

-- name: wake-waiter
UPDATE deliveries SET status = 'pending', due_at = %s WHERE id = %s AND status = 'waiting';

-- name: notify
SELECT pg_notify('interlock', '');

-- name: events-of-type-since
SELECT seq, id, type, version, source, subject, idempotency_key, correlation_id, causation_id,
       occurred_at, received_at, data
FROM events WHERE type = %s AND received_at >= %s ORDER BY seq DESC;

-- name: next-due
SELECT min(due_at) FROM deliveries WHERE due_at IS NOT NULL;

-- name: event-columns
SELECT seq, id, type, version, source, subject, idempotency_key, correlation_id, causation_id,
       occurred_at, received_at, data
FROM events

-- name: events-by-subject
SELECT seq, id, type, version, source, subject, idempotency_key, correlation_id, causation_id,
       occurred_at, received_at, data
FROM events WHERE subject = %s OR subject LIKE %s ESCAPE '\' ORDER BY seq LIMIT 500;

-- name: events-by-correlation
SELECT seq, id, type, version, source, subject, idempotency_key, correlation_id, causation_id,
       occurred_at, received_at, data
FROM events WHERE correlation_id = %s ORDER BY seq LIMIT 500;

-- name: delivery-columns
SELECT d.id, e.id, e.type, d.flow, d.lane, d.status, d.attempts, d.runs, d.chain, d.created_at,
       d.due_at, d.finished_at, d.error_class, d.reason, d.context, e.subject
FROM deliveries d JOIN events e ON e.seq = d.event_seq

-- name: attempts-of
SELECT delivery_id, number, chain, worker, started_at, finished_at, outcome, error_class,
       reason, delay, calls
FROM attempts WHERE delivery_id = ANY(%s) ORDER BY delivery_id, id;

-- name: step-rows-of
SELECT delivery_id, name, result, recorded_at FROM steps WHERE delivery_id = ANY(%s)
ORDER BY delivery_id, recorded_at, name;

-- name: audit-for-targets
SELECT id, at, actor, action, target, reason, detail FROM audit WHERE target = ANY(%s)
ORDER BY id;

-- name: audit-columns
SELECT id, at, actor, action, target, reason, detail FROM audit

-- name: count-events
SELECT count(*) FROM events;

-- name: count-by-status
SELECT status, count(*) FROM deliveries GROUP BY status;

-- name: count-attempts
SELECT count(*), count(*) FILTER (WHERE outcome = 'retry') FROM attempts;

-- name: oldest-due
SELECT min(due_at) FROM deliveries WHERE status = 'pending' AND due_at <= %s;

-- name: blocked-flows
SELECT DISTINCT flow FROM deliveries WHERE status = 'dead' AND blocking = 1;

-- name: flow-counts
SELECT flow, status, count(*) FROM deliveries GROUP BY flow, status;

-- name: oldest-transaction
-- What holds back vacuum: the oldest transaction open anywhere on the server.
SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid();

-- name: dead-tuples
SELECT relname, n_dead_tup FROM pg_stat_user_tables
WHERE relname IN ('events', 'deliveries', 'lanes', 'steps', 'attempts', 'waits', 'locks',
                  'connector_permits')
  AND schemaname = current_schema()
ORDER BY relname;

-- == replay and discard ==

-- name: delivery-for-replay
SELECT id, flow, lane, status, blocking FROM deliveries WHERE id = %s FOR UPDATE;

-- name: lane-open
-- As in interlock_emit: true when this opened the lane (the delivery heads it).
INSERT INTO lanes (flow, lane) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING true;

-- name: lane-hold
SELECT 1 FROM lanes WHERE flow = %s AND lane = %s FOR KEY SHARE;

-- name: replay-delivery
UPDATE deliveries
SET status = %s, due_at = %s, attempts = 0, chain = chain + 1, first_attempt_at = NULL,
    finished_at = NULL, error_class = NULL, reason = NULL, context = NULL, blocking = 0
WHERE id = %s AND status = 'dead';

-- name: discard-delivery
UPDATE deliveries SET status = 'skipped', due_at = NULL, reason = %s, finished_at = %s, blocking = 0
WHERE id = %s AND status = 'dead';

-- name: insert-audit
INSERT INTO audit (at, actor, action, target, reason, detail) VALUES (%s, %s, %s, %s, %s, %s);

-- == tokens ==

-- name: insert-token
INSERT INTO tokens (id, name, role, hash, created_at, created_by) VALUES (%s, %s, %s, %s, %s, %s);

-- name: live-token-named
SELECT id FROM tokens WHERE name = %s AND revoked_at IS NULL;

-- name: revoke-token
UPDATE tokens SET revoked_at = %s, revoked_by = %s
WHERE (id = %s OR name = %s) AND revoked_at IS NULL
RETURNING id, name, role;

-- name: token-columns
SELECT id, name, role, created_at, created_by, revoked_at, revoked_by FROM tokens

-- name: token-by-hash
SELECT id, name, role, created_at, created_by, revoked_at, revoked_by
FROM tokens WHERE hash = %s AND revoked_at IS NULL;

-- == secrets and locks ==

-- name: secret-lock
-- Versions of one secret are numbered one at a time across processes.
SELECT pg_advisory_xact_lock(1769106284, hashtext(%s));

-- name: next-secret-version
SELECT coalesce(max(version), 0) + 1 FROM secrets WHERE name = %s;

-- name: insert-secret
INSERT INTO secrets (name, version, value, created_at, created_by, expires_at)
VALUES (%s, %s, %s, %s, %s, %s);

-- name: current-secret
SELECT version, value, expires_at FROM secrets WHERE name = %s ORDER BY version DESC LIMIT 1;

-- name: list-secrets
SELECT s.name, s.version, s.created_at, s.created_by, s.expires_at,
       (SELECT count(*) FROM secrets v WHERE v.name = s.name)
FROM secrets s
WHERE s.version = (SELECT max(version) FROM secrets m WHERE m.name = s.name)
ORDER BY s.name;

-- name: all-secret-values
SELECT name, version, value FROM secrets ORDER BY name, version;

-- name: update-secret-value
UPDATE secrets SET value = %s WHERE name = %s AND version = %s;

-- name: take-lock
INSERT INTO locks (name, holder, until) VALUES (%s, %s, %s)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
WHERE locks.until <= %s OR locks.holder = excluded.holder
RETURNING holder;

-- name: release-lock
DELETE FROM locks WHERE name = %s AND holder = %s;

-- == connectors ==

-- name: permits-of
SELECT tokens, at FROM connector_permits WHERE key = %s FOR UPDATE;

-- name: save-permits
INSERT INTO connector_permits (key, tokens, at) VALUES (%s, %s, %s)
ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, at = excluded.at;

-- name: pause-permits
INSERT INTO connector_permits (key, tokens, at) VALUES (%s, 0, %s)
ON CONFLICT (key) DO UPDATE SET tokens = 0, at = greatest(connector_permits.at, excluded.at);

-- name: connector-state-columns
SELECT name, breaker, breaker_until, opened, connection, reason, seed, updated_at
FROM connector_state

-- name: open-breaker
INSERT INTO connector_state (name, breaker, breaker_until, opened, updated_at)
VALUES (%s, 'open', %s, 1, %s)
ON CONFLICT (name) DO UPDATE SET breaker = 'open', breaker_until = excluded.breaker_until,
    opened = connector_state.opened + 1, updated_at = excluded.updated_at;

-- name: breaker-trial
UPDATE connector_state SET breaker = 'half_open', breaker_until = %s, updated_at = %s
WHERE name = %s AND breaker IN ('open', 'half_open') AND breaker_until <= %s;

-- name: close-breaker
UPDATE connector_state SET breaker = 'closed', breaker_until = NULL, updated_at = %s
WHERE name = %s AND breaker != 'closed';

-- name: set-connection
INSERT INTO connector_state (name, connection, reason, seed, updated_at) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET connection = excluded.connection, reason = excluded.reason,
    seed = excluded.seed, updated_at = excluded.updated_at;

-- == retention ==

-- name: prunable-deliveries
-- Finished work older than the cutoff, oldest first; SKIP LOCKED: never wait for a
-- replay or a trace holding one. Dead letters and unfinished deliveries are never pruned.
SELECT id FROM deliveries
WHERE status IN ('succeeded', 'skipped') AND coalesce(finished_at, created_at) < %s
ORDER BY id LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: prune-attempts
DELETE FROM attempts WHERE delivery_id = ANY(%s);

-- name: prune-steps
DELETE FROM steps WHERE delivery_id = ANY(%s);

-- name: prune-deliveries
DELETE FROM deliveries WHERE id = ANY(%s);

-- name: prune-events
DELETE FROM events WHERE seq = ANY(ARRAY(
    SELECT e.seq FROM events e
    WHERE e.received_at < %s AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq)
    ORDER BY e.seq LIMIT %s
    FOR UPDATE SKIP LOCKED
));
