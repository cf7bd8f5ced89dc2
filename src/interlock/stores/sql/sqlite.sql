-- Named queries of the SQLite store. Each block starts with `-- name: NAME`.

-- name: insert-event
-- No RETURNING on the hot path: in SQLite it costs more than the insert itself;
-- rowcount and lastrowid say the same.
INSERT INTO events (id, type, version, source, subject, idempotency_key, correlation_id,
                    causation_id, occurred_at, received_at, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (source, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;

-- name: user-tables
SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name;

-- name: find-event-by-idempotency
SELECT id FROM events WHERE source = ? AND idempotency_key = ?;

-- name: lane-open
-- A lane row exists while the lane holds an unfinished delivery: inserting one
-- (rowcount 1) means the lane was empty and the new delivery is its head.
INSERT INTO lanes (flow, lane) VALUES (?, ?) ON CONFLICT (flow, lane) DO NOTHING;

-- name: lane-close
DELETE FROM lanes WHERE flow = ? AND lane = ?;

-- name: find-delivery-by-idempotency
SELECT id FROM deliveries WHERE flow = ? AND idem = ?;

-- name: insert-delivery
INSERT INTO deliveries (event_seq, flow, lane, idem, status, due_at, created_at, reason)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert-delivery-leased
INSERT INTO deliveries (event_seq, flow, lane, idem, status, due_at, created_at, fence, worker,
                        first_attempt_at)
VALUES (?, ?, ?, ?, 'running', ?, ?, 1, ?, ?);

-- name: wait-types
SELECT DISTINCT event_type FROM waits;

-- name: waits-for-type
SELECT delivery_id, step, match FROM waits WHERE event_type = ?;

-- name: wake-waiter
UPDATE deliveries SET status = 'pending', due_at = ? WHERE id = ? AND status = 'waiting';

-- name: delete-wait
DELETE FROM waits WHERE delivery_id = ?;

-- name: insert-step
INSERT INTO steps (delivery_id, name, result, recorded_at) VALUES (?, ?, ?, ?)
ON CONFLICT (delivery_id, name) DO NOTHING;

-- name: due
SELECT id, status FROM deliveries
WHERE due_at IS NOT NULL AND due_at <= ?
ORDER BY due_at
LIMIT ?;

-- name: lease
UPDATE deliveries
SET status = 'running', fence = fence + 1, worker = ?, due_at = ?,
    first_attempt_at = coalesce(first_attempt_at, ?)
WHERE id = ?;

-- name: leased
SELECT d.id, d.flow, d.lane, d.fence, d.attempts, d.runs, d.chain, d.first_attempt_at,
       e.seq, e.id, e.type, e.version, e.source, e.subject, e.idempotency_key,
       e.correlation_id, e.causation_id, e.occurred_at, e.received_at, e.data
FROM deliveries d JOIN events e ON e.seq = d.event_seq
WHERE d.id = ?;

-- name: lease-many
-- {ids} is filled with as many `?` as ids (a claim leases its batch at once).
UPDATE deliveries
SET status = 'running', fence = fence + 1, worker = ?, due_at = ?,
    first_attempt_at = coalesce(first_attempt_at, ?)
WHERE id IN ({ids});

-- name: leased-many
SELECT d.id, d.flow, d.lane, d.fence, d.attempts, d.runs, d.chain, d.first_attempt_at,
       e.seq, e.id, e.type, e.version, e.source, e.subject, e.idempotency_key,
       e.correlation_id, e.causation_id, e.occurred_at, e.received_at, e.data
FROM deliveries d JOIN events e ON e.seq = d.event_seq
WHERE d.id IN ({ids});

-- name: wait-of
SELECT step FROM waits WHERE delivery_id = ?;

-- name: steps-of
SELECT name, result FROM steps WHERE delivery_id = ?;

-- name: insert-step-fenced
INSERT INTO steps (delivery_id, name, result, recorded_at)
SELECT ?, ?, ?, ? WHERE EXISTS (
    SELECT 1 FROM deliveries WHERE id = ? AND fence = ? AND status = 'running'
)
ON CONFLICT (delivery_id, name) DO NOTHING;

-- name: check-fence
SELECT 1 FROM deliveries WHERE id = ? AND fence = ? AND status = 'running';

-- name: finish
UPDATE deliveries
SET status = ?, due_at = NULL, worker = NULL, finished_at = ?, runs = runs + 1,
    attempts = attempts + ?, error_class = ?, reason = ?, context = ?, blocking = ?
WHERE id = ? AND fence = ? AND status = 'running';

-- name: reschedule
UPDATE deliveries
SET status = ?, due_at = ?, worker = NULL, runs = runs + ?, attempts = attempts + ?,
    error_class = ?, reason = ?
WHERE id = ? AND fence = ? AND status = 'running';

-- name: restart-elapsed
UPDATE deliveries SET first_attempt_at = NULL WHERE id = ?;

-- name: insert-attempt
INSERT INTO attempts (delivery_id, number, chain, worker, started_at, finished_at, outcome,
                      error_class, reason, delay, calls)
SELECT id, runs, chain, ?, ?, ?, ?, ?, ?, ?, ? FROM deliveries WHERE id = ?;

-- name: insert-attempt-values
INSERT INTO attempts (delivery_id, number, chain, worker, started_at, finished_at, outcome,
                      error_class, reason, delay, calls)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert-wait
INSERT OR REPLACE INTO waits (delivery_id, step, event_type, match, registered_at, deadline)
VALUES (?, ?, ?, ?, ?, ?);

-- name: next-in-lane
SELECT id FROM deliveries WHERE flow = ? AND lane = ? AND status = 'queued' ORDER BY id LIMIT 1;

-- name: promote
UPDATE deliveries SET status = 'pending', due_at = ? WHERE id = ?;

-- name: heartbeat
UPDATE deliveries SET due_at = ? WHERE id = ? AND fence = ? AND status = 'running' AND worker = ?;

-- name: next-due
SELECT min(due_at) FROM deliveries WHERE due_at IS NOT NULL;

-- name: event-by-id
SELECT seq, id, type, version, source, subject, idempotency_key, correlation_id, causation_id,
       occurred_at, received_at, data
FROM events WHERE id = ?;

-- name: events-by-subject
SELECT seq, id, type, version, source, subject, idempotency_key, correlation_id, causation_id,
       occurred_at, received_at, data
FROM events WHERE subject = ? OR subject LIKE ? ESCAPE '\' ORDER BY seq LIMIT 500;

-- name: events-of-type-newest-first
SELECT seq, id, type, version, source, subject, idempotency_key, correlation_id, causation_id,
       occurred_at, received_at, data
FROM events WHERE type = ? ORDER BY seq DESC;

-- name: events-by-correlation
SELECT seq, id, type, version, source, subject, idempotency_key, correlation_id, causation_id,
       occurred_at, received_at, data
FROM events WHERE correlation_id = ? ORDER BY seq LIMIT 500;

-- name: delivery-columns
SELECT d.id, e.id, e.type, d.flow, d.lane, d.status, d.attempts, d.runs, d.chain, d.created_at,
       d.due_at, d.finished_at, d.error_class, d.reason, d.context, e.subject
FROM deliveries d JOIN events e ON e.seq = d.event_seq

-- name: attempts-of
SELECT delivery_id, number, chain, worker, started_at, finished_at, outcome, error_class,
       reason, delay, calls
FROM attempts WHERE delivery_id = ? ORDER BY id;

-- name: step-rows-of
SELECT delivery_id, name, result, recorded_at FROM steps WHERE delivery_id = ? ORDER BY recorded_at, name;

-- name: delivery-for-replay
SELECT id, flow, lane, status, blocking FROM deliveries WHERE id = ?;

-- name: replay-delivery
UPDATE deliveries
SET status = ?, due_at = ?, attempts = 0, chain = chain + 1, first_attempt_at = NULL,
    finished_at = NULL, error_class = NULL, reason = NULL, context = NULL, blocking = 0
WHERE id = ? AND status = 'dead';

-- name: discard-delivery
UPDATE deliveries SET status = 'skipped', due_at = NULL, reason = ?, finished_at = ?, blocking = 0
WHERE id = ? AND status = 'dead';

-- name: insert-audit
INSERT INTO audit (at, actor, action, target, reason, detail) VALUES (?, ?, ?, ?, ?, ?);

-- name: list-audit
SELECT id, at, actor, action, target, reason, detail FROM audit ORDER BY id DESC LIMIT ?;

-- name: audit-for-target
SELECT id, at, actor, action, target, reason, detail FROM audit WHERE target = ? ORDER BY id;

-- name: count-events
SELECT count(*) FROM events;

-- name: count-by-status
SELECT status, count(*) FROM deliveries GROUP BY status;

-- name: count-attempts
SELECT count(*), coalesce(sum(outcome = 'retry'), 0) FROM attempts;

-- name: oldest-due
SELECT min(due_at) FROM deliveries WHERE status = 'pending' AND due_at <= ?;

-- name: expire-lease
UPDATE deliveries
SET runs = runs + 1, attempts = attempts + 1, error_class = 'retryable',
    reason = 'lease expired: worker ' || coalesce(worker, '?') || ' stopped heartbeating (crashed, killed or paused)'
WHERE id = ?
RETURNING worker, reason;

-- name: insert-token
INSERT INTO tokens (id, name, role, hash, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?);

-- name: live-token-named
SELECT id FROM tokens WHERE name = ? AND revoked_at IS NULL;

-- name: revoke-token
UPDATE tokens SET revoked_at = ?, revoked_by = ?
WHERE (id = ? OR name = ?) AND revoked_at IS NULL
RETURNING id, name, role;

-- name: token-columns
SELECT id, name, role, created_at, created_by, revoked_at, revoked_by FROM tokens

-- name: token-by-hash
SELECT id, name, role, created_at, created_by, revoked_at, revoked_by
FROM tokens WHERE hash = ? AND revoked_at IS NULL;

-- name: next-secret-version
SELECT coalesce(max(version), 0) + 1 FROM secrets WHERE name = ?;

-- name: insert-secret
INSERT INTO secrets (name, version, value, created_at, created_by, expires_at)
VALUES (?, ?, ?, ?, ?, ?);

-- name: current-secret
SELECT version, value, expires_at FROM secrets WHERE name = ? ORDER BY version DESC LIMIT 1;

-- name: list-secrets
SELECT s.name, s.version, s.created_at, s.created_by, s.expires_at,
       (SELECT count(*) FROM secrets v WHERE v.name = s.name)
FROM secrets s
WHERE s.version = (SELECT max(version) FROM secrets m WHERE m.name = s.name)
ORDER BY s.name;

-- name: all-secret-values
SELECT name, version, value FROM secrets ORDER BY name, version;

-- name: update-secret-value
UPDATE secrets SET value = ? WHERE name = ? AND version = ?;

-- name: take-lock
INSERT INTO locks (name, holder, until) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
WHERE locks.until <= ? OR locks.holder = excluded.holder
RETURNING holder;

-- name: release-lock
DELETE FROM locks WHERE name = ? AND holder = ?;

-- name: permits-of
SELECT tokens, at FROM connector_permits WHERE key = ?;

-- name: save-permits
INSERT INTO connector_permits (key, tokens, at) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, at = excluded.at;

-- name: pause-permits
-- No permits before `until` (a vendor's Retry-After or exhausted quota), and none saved up.
INSERT INTO connector_permits (key, tokens, at) VALUES (?, 0, ?)
ON CONFLICT (key) DO UPDATE SET tokens = 0, at = max(connector_permits.at, excluded.at);

-- name: connector-state-columns
SELECT name, breaker, breaker_until, opened, connection, reason, seed, updated_at
FROM connector_state

-- name: open-breaker
INSERT INTO connector_state (name, breaker, breaker_until, opened, updated_at)
VALUES (?, 'open', ?, 1, ?)
ON CONFLICT (name) DO UPDATE SET breaker = 'open', breaker_until = excluded.breaker_until,
    opened = connector_state.opened + 1, updated_at = excluded.updated_at;

-- name: breaker-trial
-- One trial call at a time across every process: after the cool-down (or when an earlier
-- trial's holder vanished past its deadline), the first to ask gets it.
UPDATE connector_state SET breaker = 'half_open', breaker_until = ?, updated_at = ?
WHERE name = ? AND breaker IN ('open', 'half_open') AND breaker_until <= ?;

-- name: close-breaker
UPDATE connector_state SET breaker = 'closed', breaker_until = NULL, updated_at = ?
WHERE name = ? AND breaker != 'closed';

-- name: set-connection
INSERT INTO connector_state (name, connection, reason, seed, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET connection = excluded.connection, reason = excluded.reason,
    seed = excluded.seed, updated_at = excluded.updated_at;

-- name: prunable-deliveries
-- Retention: finished work older than the cutoff, oldest first (a duplicate skipped at
-- emit has no finished_at: its creation counts). Dead letters and unfinished deliveries
-- are never pruned.
SELECT id FROM deliveries
WHERE status IN ('succeeded', 'skipped') AND coalesce(finished_at, created_at) < ?
ORDER BY id LIMIT ?;

-- name: prune-events
DELETE FROM events WHERE seq IN (
    SELECT e.seq FROM events e
    WHERE e.received_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq)
    ORDER BY e.seq LIMIT ?
);
