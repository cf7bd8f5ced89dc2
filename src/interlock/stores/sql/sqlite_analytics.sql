-- Analytics queries of the SQLite store: flow stats, series, SLO counts, alerts.
-- Each block starts with `-- name: NAME`.
--
-- Time ranges are found without extra indexes on the hot tables: ids grow with
-- time (a delivery's created_at is its event's received_at, an attempt row is
-- written when the attempt ends), so the store bisects the primary key for the
-- first id at a time (with a margin for commits that land out of clock order)
-- and each query scans that id range only, filtering on the exact times.

-- name: delivery-ids
-- Two subqueries: SQLite answers a lone min() or max() from the primary key's ends,
-- but scans the table for both in one SELECT.
SELECT (SELECT min(id) FROM deliveries), (SELECT max(id) FROM deliveries);

-- name: delivery-at
SELECT id, created_at FROM deliveries WHERE id >= ? ORDER BY id LIMIT 1;

-- name: attempt-ids
SELECT (SELECT min(id) FROM attempts), (SELECT max(id) FROM attempts);

-- name: attempt-at
SELECT id, finished_at FROM attempts WHERE id >= ? ORDER BY id LIMIT 1;

-- name: created-by-flow
-- Deliveries created in [?, ?) by flow, within the id range [?, ?).
SELECT flow, count(*) FROM deliveries
WHERE id >= ?3 AND id < ?4 AND created_at >= ?1 AND created_at < ?2
GROUP BY flow;

-- name: ended-by-flow
-- Attempts that ended in [?, ?) by flow, outcome and error class, within attempt ids [?, ?).
SELECT d.flow, a.outcome, a.error_class, count(*)
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.id >= ?3 AND a.id < ?4 AND a.finished_at >= ?1 AND a.finished_at < ?2
GROUP BY d.flow, a.outcome, a.error_class;

-- name: lags-by-flow
-- End-to-end lag of the successes in [?, ?) (from the event's arrival).
SELECT d.flow, a.finished_at - d.created_at
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.id >= ?3 AND a.id < ?4 AND a.finished_at >= ?1 AND a.finished_at < ?2
  AND a.outcome = 'succeeded';

-- name: created-series
-- Deliveries of flow ?5 created per bucket of ?6 seconds from ?1.
SELECT CAST((created_at - ?1) / ?6 AS INTEGER), count(*) FROM deliveries
WHERE id >= ?3 AND id < ?4 AND created_at >= ?1 AND created_at < ?2 AND flow = ?5
GROUP BY 1;

-- name: ended-series
SELECT CAST((a.finished_at - ?1) / ?6 AS INTEGER), a.outcome, a.error_class, count(*)
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.id >= ?3 AND a.id < ?4 AND a.finished_at >= ?1 AND a.finished_at < ?2 AND d.flow = ?5
GROUP BY 1, 2, 3;

-- name: lags-series
SELECT CAST((a.finished_at - ?1) / ?6 AS INTEGER), a.finished_at - d.created_at
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.id >= ?3 AND a.id < ?4 AND a.finished_at >= ?1 AND a.finished_at < ?2 AND d.flow = ?5
  AND a.outcome = 'succeeded';

-- name: slo-counts
-- Deliveries of flow ?4 decided in [?5, ?6) against the bound ?1 (seconds), within
-- delivery ids [?2, ?3): decided good at a success within the bound; bad at a dead
-- letter before the bound, else at the bound (late, dead, or still unfinished).
-- Duplicates skipped at intake (skipped, never run) do not count.
SELECT coalesce(sum(good), 0), count(*) FROM (
    SELECT min(coalesce(finished_at, 1e300), created_at + ?1) AS decided,
           CASE WHEN status = 'succeeded' AND finished_at <= created_at + ?1
                THEN 1 ELSE 0 END AS good
    FROM deliveries
    WHERE id >= ?2 AND id < ?3 AND flow = ?4 AND NOT (status = 'skipped' AND runs = 0)
) WHERE decided >= ?5 AND decided < ?6;

-- name: flow-samples
-- The newest deliveries of flow ?5 created in [?1, ?2), with their events (payloads when ?7).
SELECT e.id, e.occurred_at, e.received_at,
       CASE WHEN d.status = 'succeeded' THEN d.finished_at END, CASE WHEN ?7 THEN e.data END
FROM deliveries d JOIN events e ON e.seq = d.event_seq
WHERE d.id >= ?3 AND d.id < ?4 AND d.created_at >= ?1 AND d.created_at < ?2 AND d.flow = ?5
  AND NOT (d.status = 'skipped' AND d.runs = 0)
ORDER BY d.id DESC
LIMIT ?6;

-- name: alert-columns
SELECT id, flow, severity, fired_at, resolved_at, updated_at, burn_long, burn_short,
       long_s, short_s, factor, budget_remaining, summary
FROM alerts;

-- name: open-alert
SELECT id FROM alerts WHERE flow = ? AND severity = ? AND resolved_at IS NULL;

-- name: insert-alert
INSERT INTO alerts (flow, severity, fired_at, updated_at, burn_long, burn_short, long_s,
                    short_s, factor, budget_remaining, summary)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: refresh-alert
UPDATE alerts
SET updated_at = ?, burn_long = ?, burn_short = ?, budget_remaining = ?, summary = ?
WHERE id = ?;

-- name: resolve-alert
UPDATE alerts SET resolved_at = ?, updated_at = ? WHERE id = ? AND resolved_at IS NULL;

-- name: slo-minutes-raw
-- Decided deliveries of flow ?4 per minute of decision in [?5, ?6) (see slo-counts).
SELECT CAST(decided / 60 AS INTEGER) * 60, coalesce(sum(good), 0), count(*) FROM (
    SELECT min(coalesce(finished_at, 1e300), created_at + ?1) AS decided,
           CASE WHEN status = 'succeeded' AND finished_at <= created_at + ?1
                THEN 1 ELSE 0 END AS good
    FROM deliveries
    WHERE id >= ?2 AND id < ?3 AND flow = ?4 AND NOT (status = 'skipped' AND runs = 0)
) WHERE decided >= ?5 AND decided < ?6
GROUP BY 1;

-- name: slo-mark
SELECT since, upto FROM slo_marks WHERE flow = ? AND within = ?;

-- name: slo-minutes-sum
SELECT coalesce(sum(good), 0), coalesce(sum(bad), 0) FROM slo_minutes
WHERE flow = ? AND within = ? AND minute >= ? AND minute < ?;

-- name: slo-minute-put
INSERT INTO slo_minutes (flow, within, minute, good, bad) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (flow, within, minute) DO UPDATE SET good = excluded.good, bad = excluded.bad;

-- name: slo-mark-put
INSERT INTO slo_marks (flow, within, since, upto) VALUES (?, ?, ?, ?)
ON CONFLICT (flow, within) DO UPDATE SET since = excluded.since, upto = excluded.upto;

-- name: slo-minutes-trim
DELETE FROM slo_minutes WHERE flow = ? AND within = ? AND minute < ?;
