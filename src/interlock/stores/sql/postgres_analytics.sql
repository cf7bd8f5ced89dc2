-- Analytics queries of the PostgreSQL store: the meaning, and the id-range approach, of
-- sqlite_analytics.sql. Parameters are named: since, until, lo, hi, flow, bucket, within.

-- name: delivery-ids
SELECT min(id), max(id) FROM deliveries;

-- name: delivery-at
SELECT id, created_at FROM deliveries WHERE id >= %s ORDER BY id LIMIT 1;

-- name: attempt-ids
SELECT min(id), max(id) FROM attempts;

-- name: attempt-at
SELECT id, finished_at FROM attempts WHERE id >= %s ORDER BY id LIMIT 1;

-- name: created-by-flow
SELECT flow, count(*) FROM deliveries
WHERE id >= %(lo)s AND id < %(hi)s AND created_at >= %(since)s AND created_at < %(until)s
GROUP BY flow;

-- name: ended-by-flow
SELECT d.flow, a.outcome, a.error_class, count(*)
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.id >= %(lo)s AND a.id < %(hi)s AND a.finished_at >= %(since)s AND a.finished_at < %(until)s
GROUP BY d.flow, a.outcome, a.error_class;

-- name: lags-by-flow
SELECT d.flow, a.finished_at - d.created_at
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.id >= %(lo)s AND a.id < %(hi)s AND a.finished_at >= %(since)s AND a.finished_at < %(until)s
  AND a.outcome = 'succeeded';

-- name: created-series
SELECT floor((created_at - %(since)s) / %(bucket)s)::bigint, count(*) FROM deliveries
WHERE id >= %(lo)s AND id < %(hi)s AND created_at >= %(since)s AND created_at < %(until)s
  AND flow = %(flow)s
GROUP BY 1;

-- name: ended-series
SELECT floor((a.finished_at - %(since)s) / %(bucket)s)::bigint, a.outcome, a.error_class, count(*)
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.id >= %(lo)s AND a.id < %(hi)s AND a.finished_at >= %(since)s AND a.finished_at < %(until)s
  AND d.flow = %(flow)s
GROUP BY 1, 2, 3;

-- name: lags-series
SELECT floor((a.finished_at - %(since)s) / %(bucket)s)::bigint, a.finished_at - d.created_at
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.id >= %(lo)s AND a.id < %(hi)s AND a.finished_at >= %(since)s AND a.finished_at < %(until)s
  AND d.flow = %(flow)s AND a.outcome = 'succeeded';

-- name: slo-counts
SELECT coalesce(sum(good), 0), count(*) FROM (
    SELECT least(coalesce(finished_at, 1e300), created_at + %(within)s) AS decided,
           CASE WHEN status = 'succeeded' AND finished_at <= created_at + %(within)s
                THEN 1 ELSE 0 END AS good
    FROM deliveries
    WHERE id >= %(lo)s AND id < %(hi)s AND flow = %(flow)s AND NOT (status = 'skipped' AND runs = 0)
) decisions WHERE decided >= %(since)s AND decided < %(until)s;

-- name: flow-samples
SELECT e.id, e.occurred_at, e.received_at,
       CASE WHEN d.status = 'succeeded' THEN d.finished_at END,
       CASE WHEN %(data)s THEN e.data END
FROM deliveries d JOIN events e ON e.seq = d.event_seq
WHERE d.id >= %(lo)s AND d.id < %(hi)s AND d.created_at >= %(since)s AND d.created_at < %(until)s
  AND d.flow = %(flow)s AND NOT (d.status = 'skipped' AND d.runs = 0)
ORDER BY d.id DESC
LIMIT %(limit)s;

-- name: alert-columns
SELECT id, flow, severity, fired_at, resolved_at, updated_at, burn_long, burn_short,
       long_s, short_s, factor, budget_remaining, summary
FROM alerts

-- name: open-alert
SELECT id FROM alerts WHERE flow = %s AND severity = %s AND resolved_at IS NULL FOR UPDATE;

-- name: insert-alert
INSERT INTO alerts (flow, severity, fired_at, updated_at, burn_long, burn_short, long_s,
                    short_s, factor, budget_remaining, summary)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
RETURNING id;

-- name: refresh-alert
UPDATE alerts
SET updated_at = %s, burn_long = %s, burn_short = %s, budget_remaining = %s, summary = %s
WHERE id = %s;

-- name: resolve-alert
UPDATE alerts SET resolved_at = %s, updated_at = %s WHERE id = %s AND resolved_at IS NULL;

-- name: slo-minutes-raw
-- Decided deliveries of a flow per minute of decision (see slo-counts and sqlite's twin).
SELECT (floor(decided / 60) * 60)::bigint, coalesce(sum(good), 0), count(*) FROM (
    SELECT least(coalesce(finished_at, 1e300), created_at + %(within)s) AS decided,
           CASE WHEN status = 'succeeded' AND finished_at <= created_at + %(within)s
                THEN 1 ELSE 0 END AS good
    FROM deliveries
    WHERE id >= %(lo)s AND id < %(hi)s AND flow = %(flow)s AND NOT (status = 'skipped' AND runs = 0)
) decisions WHERE decided >= %(since)s AND decided < %(until)s
GROUP BY 1;

-- name: slo-mark
SELECT since, upto FROM slo_marks WHERE flow = %s AND within = %s;

-- name: slo-mark-for-update
SELECT since, upto FROM slo_marks WHERE flow = %s AND within = %s FOR UPDATE;

-- name: slo-minutes-sum
SELECT coalesce(sum(good), 0), coalesce(sum(bad), 0) FROM slo_minutes
WHERE flow = %s AND within = %s AND minute >= %s AND minute < %s;

-- name: slo-minute-put
INSERT INTO slo_minutes (flow, within, minute, good, bad) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (flow, within, minute) DO UPDATE SET good = excluded.good, bad = excluded.bad;

-- name: slo-mark-put
INSERT INTO slo_marks (flow, within, since, upto) VALUES (%s, %s, %s, %s)
ON CONFLICT (flow, within) DO UPDATE SET since = excluded.since, upto = excluded.upto;

-- name: slo-minutes-trim
DELETE FROM slo_minutes WHERE flow = %s AND within = %s AND minute < %s;
