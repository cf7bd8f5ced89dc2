-- interlock schema v8 (PostgreSQL): the connector calls each attempt made (see sqlite/0008).

ALTER TABLE attempts ADD COLUMN calls text;

-- interlock_settle takes the run's calls and stores them with its attempt.
DROP FUNCTION interlock_settle(
    bigint, integer, text, text, text, text, boolean, double precision, double precision,
    double precision, double precision, text, text, double precision, double precision,
    integer, boolean, text, text, text, text, double precision, text, integer, integer
);

-- Record how one run ended (fenced by p_fence), with the checkpoints that came with it.
CREATE FUNCTION interlock_settle(
    p_id bigint, p_fence integer, p_flow text, p_lane text, p_kind text, p_worker text,
    p_chain boolean, p_now double precision, p_lease double precision,
    p_started_at double precision, p_finished_at double precision,
    p_error_class text, p_reason text, p_delay double precision, p_due_at double precision,
    p_counts integer, p_skip_lane boolean, p_context text,
    p_wait_step text, p_wait_type text, p_wait_match text, p_wait_deadline double precision,
    p_steps text,  -- JSON [[name, result JSON, recorded at], ...] or null
    p_number integer, p_attempt_chain integer,
    p_calls text  -- JSON list of the run's connector calls, or null
) RETURNS SETOF interlock_claimed LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    r interlock_claimed;
BEGIN
    IF p_kind IN ('succeeded', 'dead', 'skipped') THEN  -- skipped: by a contract's policy
        UPDATE deliveries d
        SET status = p_kind, due_at = NULL, worker = NULL, finished_at = p_finished_at,
            runs = d.runs + 1, attempts = d.attempts + p_counts, error_class = p_error_class,
            reason = p_reason, context = p_context,
            blocking = CASE WHEN p_kind = 'dead' AND NOT p_skip_lane THEN 1 ELSE 0 END
        WHERE d.id = p_id AND d.fence = p_fence AND d.status = 'running';
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSIF p_kind = 'wait' THEN
        -- Time parked on purpose is not time spent retrying: Retry.max_elapsed restarts.
        UPDATE deliveries d
        SET status = 'waiting', due_at = p_wait_deadline, worker = NULL, runs = d.runs + 1,
            error_class = NULL, reason = p_reason, first_attempt_at = NULL
        WHERE d.id = p_id AND d.fence = p_fence AND d.status = 'running';
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            INSERT INTO waits (delivery_id, step, event_type, match, registered_at, deadline)
            VALUES (p_id, p_wait_step, p_wait_type, p_wait_match, p_now, p_wait_deadline)
            ON CONFLICT (delivery_id) DO UPDATE
            SET step = excluded.step, event_type = excluded.event_type, match = excluded.match,
                registered_at = excluded.registered_at, deadline = excluded.deadline;
        END IF;
    ELSIF p_kind = 'released' THEN
        UPDATE deliveries d
        SET status = 'pending', due_at = p_due_at, worker = NULL, error_class = NULL, reason = NULL
        WHERE d.id = p_id AND d.fence = p_fence AND d.status = 'running';
        GET DIAGNOSTICS n = ROW_COUNT;
        r.ok := n > 0;
        IF r.ok THEN
            PERFORM pg_notify('interlock', '');
        END IF;
        RETURN NEXT r;
        RETURN;
    ELSE  -- retry, sleep
        UPDATE deliveries d
        SET status = 'pending', due_at = p_due_at, worker = NULL, runs = d.runs + 1,
            attempts = d.attempts + p_counts, error_class = p_error_class, reason = p_reason,
            first_attempt_at = CASE WHEN p_kind = 'sleep' THEN NULL ELSE d.first_attempt_at END
        WHERE d.id = p_id AND d.fence = p_fence AND d.status = 'running';
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            PERFORM pg_notify('interlock', '');  -- a timer: idle workers learn when it is due
        END IF;
    END IF;
    IF n = 0 THEN
        r.ok := false;
        RETURN NEXT r;
        RETURN;
    END IF;
    -- The fenced update succeeded, so these checkpoints belong to the lease holder.
    IF p_steps IS NOT NULL THEN
        INSERT INTO steps (delivery_id, name, result, recorded_at)
        SELECT p_id, s.value->>0, s.value->>1, (s.value->>2)::double precision
        FROM json_array_elements(p_steps::json) AS s
        ON CONFLICT DO NOTHING;
    END IF;
    IF p_number > 0 THEN
        INSERT INTO attempts (delivery_id, number, chain, worker, started_at, finished_at,
                              outcome, error_class, reason, delay, calls)
        VALUES (p_id, p_number, p_attempt_chain, p_worker, p_started_at, p_finished_at, p_kind,
                p_error_class, p_reason, p_delay, p_calls);
    ELSE
        INSERT INTO attempts (delivery_id, number, chain, worker, started_at, finished_at,
                              outcome, error_class, reason, delay, calls)
        SELECT d.id, d.runs, d.chain, p_worker, p_started_at, p_finished_at, p_kind,
               p_error_class, p_reason, p_delay, p_calls
        FROM deliveries d WHERE d.id = p_id;
    END IF;
    IF p_kind IN ('succeeded', 'skipped') OR (p_kind = 'dead' AND p_skip_lane) THEN
        RETURN QUERY SELECT * FROM interlock_advance(p_flow, p_lane, p_worker, p_chain, p_now, p_lease);
        RETURN;
    END IF;
    r.ok := true;
    RETURN NEXT r;
END
$$;
