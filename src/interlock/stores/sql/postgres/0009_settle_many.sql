-- interlock schema v9 (PostgreSQL): succeeded runs settled, and events emitted, many at a
-- time.

-- The common outcome, a run that succeeded, for a whole group-commit batch in one call:
-- one UPDATE, one INSERT of checkpoints and one of attempts for all of them, then their
-- lanes advanced together. Same effect, item by item, as interlock_settle with
-- p_kind = 'succeeded' (see 0008): fenced by each item's fence, the checkpoints and attempt
-- stored only for the outcomes that landed, each lane's next delivery leased to p_worker
-- (p_chain) or made claimable, or the lane closed. The lanes must be distinct (the writer
-- merges only such calls). One row per input, in input order: ok = the outcome landed,
-- and the chained delivery, if any.
CREATE TYPE interlock_settle_item AS (
    id       bigint,
    fence    integer,
    flow     text,
    lane     text,
    started  double precision,
    finished double precision,
    number   integer,
    chain    integer,
    steps    text,  -- JSON [[name, result JSON, recorded at], ...] or null
    calls    text   -- JSON list of the run's connector calls, or null
);

-- p_items: a JSON array of interlock_settle_item objects (one text: much cheaper for the
-- client to send than ten arrays).
CREATE FUNCTION interlock_settle_succeeded(
    p_items text, p_worker text, p_chain boolean, p_now double precision,
    p_lease double precision
) RETURNS SETOF interlock_claimed LANGUAGE plpgsql AS $$
DECLARE
    v_items interlock_settle_item[];
    v_done bigint[];
    v_next bigint[];
BEGIN
    SELECT array_agg(
               ROW(x.id, x.fence, x.flow, x.lane, x.started, x.finished, x.number, x.chain,
                   x.steps, x.calls)::interlock_settle_item
               ORDER BY x.n)
    INTO v_items
    FROM json_populate_recordset(null::interlock_settle_item, p_items::json)
         WITH ORDINALITY AS x(id, fence, flow, lane, started, finished, number, chain, steps,
                              calls, n);
    WITH done AS (
        UPDATE deliveries d
        SET status = 'succeeded', due_at = NULL, worker = NULL, finished_at = u.finished,
            runs = d.runs + 1, error_class = NULL, reason = NULL, context = NULL, blocking = 0
        FROM unnest(v_items) AS u
        WHERE d.id = u.id AND d.fence = u.fence AND d.status = 'running'
        RETURNING d.id
    )
    SELECT coalesce(array_agg(done.id), '{}') INTO v_done FROM done;
    IF cardinality(v_done) > 0 THEN
        -- The fenced update succeeded, so these checkpoints belong to the lease holders.
        INSERT INTO steps (delivery_id, name, result, recorded_at)
        SELECT u.id, s.value->>0, s.value->>1, (s.value->>2)::double precision
        FROM unnest(v_items) AS u
        JOIN unnest(v_done) AS k(id) ON k.id = u.id
        CROSS JOIN LATERAL json_array_elements(u.steps::json) AS s
        WHERE u.steps IS NOT NULL
        ON CONFLICT DO NOTHING;
        INSERT INTO attempts (delivery_id, number, chain, worker, started_at, finished_at,
                              outcome, calls)
        SELECT u.id, u.number, u.chain, p_worker, u.started, u.finished, 'succeeded', u.calls
        FROM unnest(v_items) AS u
        JOIN unnest(v_done) AS k(id) ON k.id = u.id;
        -- Wait for emits holding these lanes (FOR KEY SHARE), so the next delivery they
        -- queued is seen; in (flow, lane) order, as every writer takes lane locks.
        PERFORM 1 FROM lanes l
        WHERE (l.flow, l.lane) IN (
            SELECT u.flow, u.lane FROM unnest(v_items) AS u
            JOIN unnest(v_done) AS k(id) ON k.id = u.id
        )
        ORDER BY l.flow, l.lane
        FOR UPDATE;
        WITH landed AS (
            SELECT u.flow, u.lane FROM unnest(v_items) AS u
            JOIN unnest(v_done) AS k(id) ON k.id = u.id
        ), nxt AS MATERIALIZED (
            SELECT x.flow, x.lane, (
                SELECT d.id FROM deliveries d
                WHERE d.flow = x.flow AND d.lane = x.lane AND d.status = 'queued'
                ORDER BY d.id LIMIT 1
            ) AS id
            FROM landed x
        ), closed AS (
            DELETE FROM lanes l USING nxt
            WHERE nxt.id IS NULL AND l.flow = nxt.flow AND l.lane = nxt.lane
        )
        SELECT array_agg(nxt.id) FILTER (WHERE nxt.id IS NOT NULL) INTO v_next FROM nxt;
        IF v_next IS NOT NULL THEN
            IF p_chain THEN
                UPDATE deliveries d
                SET status = 'running', fence = d.fence + 1, worker = p_worker,
                    due_at = p_now + p_lease, first_attempt_at = coalesce(d.first_attempt_at, p_now)
                WHERE d.id = ANY(v_next);
            ELSE
                UPDATE deliveries d SET status = 'pending', due_at = p_now WHERE d.id = ANY(v_next);
                PERFORM pg_notify('interlock', '');
                v_next := NULL;
            END IF;
        END IF;
    END IF;
    RETURN QUERY
    SELECT k.id IS NOT NULL, c.id, c.flow, c.lane, c.fence, c.attempts, c.runs, c.chain,
           c.first_attempt_at, c.steps, c.seq, c.event_id, c.type, c.version, c.source,
           c.subject, c.idempotency_key, c.correlation_id, c.causation_id, c.occurred_at,
           c.received_at, c.data
    FROM unnest(v_items) WITH ORDINALITY AS u(id, fence, flow, lane, started, finished, number,
                                              chain, steps, calls, n)
    LEFT JOIN unnest(v_done) AS k(id) ON k.id = u.id
    LEFT JOIN interlock_claimed_of(coalesce(v_next, '{}')) AS c
           ON k.id IS NOT NULL AND c.flow = u.flow AND c.lane = u.lane
    ORDER BY u.n;
END
$$;

-- A group-commit batch of emits in one call (one statement instead of one per event):
-- interlock_emit for each item, in order, one row per item. p_items is a JSON array of
-- interlock_emit's 15 arguments per item (one text: cheaper to send than 15 arrays).
CREATE FUNCTION interlock_emit_many(p_items text) RETURNS TABLE (
    event_id text, created boolean, seq bigint, leased bigint[], leased_flows text[],
    leased_lanes text[], waits boolean
) LANGUAGE plpgsql AS $$
DECLARE
    v json;
BEGIN
    FOR v IN SELECT x.value FROM json_array_elements(p_items::json) AS x LOOP
        RETURN QUERY
        SELECT e.event_id, e.created, e.seq, e.leased, e.leased_flows, e.leased_lanes, e.waits
        FROM interlock_emit(
            v->>0, v->>1, (v->>2)::integer, v->>3, v->>4, v->>5, v->>6, v->>7,
            (v->>8)::double precision, (v->>9)::double precision, v->>10, v->>11, v->>12,
            (v->>13)::double precision, (v->>14)::integer
        ) AS e;
    END LOOP;
END
$$;
