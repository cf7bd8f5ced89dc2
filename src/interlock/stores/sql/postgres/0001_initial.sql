-- interlock schema v1 (PostgreSQL): the tables of sqlite/0001_initial.sql, same meaning.
-- Timestamps are double precision seconds since the epoch; JSON is stored as text
-- (written and read whole by interlock, never queried by column). The functions at the
-- end hold the hot-path transactions, so that each is one round trip.

CREATE TABLE events (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text NOT NULL UNIQUE,
    type            text NOT NULL,
    version         integer NOT NULL,
    source          text NOT NULL,
    subject         text,
    idempotency_key text,
    correlation_id  text NOT NULL,
    causation_id    text,
    occurred_at     double precision NOT NULL,
    received_at     double precision NOT NULL,
    data            text NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (source, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_subject ON events (subject) WHERE subject IS NOT NULL;
CREATE INDEX events_correlation ON events (correlation_id);

-- Statuses as in SQLite: queued | pending | running | waiting | succeeded | dead | skipped.
CREATE TABLE deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_seq        bigint NOT NULL,
    flow             text NOT NULL,
    lane             text NOT NULL,
    idem             text,
    status           text NOT NULL,
    due_at           double precision,
    attempts         integer NOT NULL DEFAULT 0,
    runs             integer NOT NULL DEFAULT 0,
    chain            integer NOT NULL DEFAULT 1,
    fence            integer NOT NULL DEFAULT 0,
    blocking         integer NOT NULL DEFAULT 0,
    worker           text,
    created_at       double precision NOT NULL,
    first_attempt_at double precision,
    finished_at      double precision,
    error_class      text,
    reason           text,
    context          text
);
-- The claim index: only lane heads, leases and waits have a due_at.
CREATE INDEX deliveries_due ON deliveries (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX deliveries_lane ON deliveries (flow, lane, id) WHERE status = 'queued';
CREATE INDEX deliveries_event ON deliveries (event_seq);
CREATE UNIQUE INDEX deliveries_idempotency ON deliveries (flow, idem) WHERE idem IS NOT NULL;
CREATE INDEX deliveries_dead ON deliveries (flow, finished_at) WHERE status = 'dead';

-- A row exists exactly while the (flow, lane) holds an unfinished delivery. The row is
-- also the lane's lock: emits hold FOR KEY SHARE (or the insert) on it, settles take
-- FOR UPDATE before looking for the next delivery, so the two never miss each other.
CREATE TABLE lanes (
    flow  text NOT NULL,
    lane  text NOT NULL,
    PRIMARY KEY (flow, lane)
);

CREATE TABLE attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id bigint NOT NULL,
    number      integer NOT NULL,
    chain       integer NOT NULL,
    worker      text,
    started_at  double precision NOT NULL,
    finished_at double precision NOT NULL,
    outcome     text NOT NULL,
    error_class text,
    reason      text,
    delay       double precision
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

CREATE TABLE steps (
    delivery_id bigint NOT NULL,
    name        text NOT NULL,
    result      text NOT NULL,
    recorded_at double precision NOT NULL,
    PRIMARY KEY (delivery_id, name)
);

CREATE TABLE waits (
    delivery_id   bigint PRIMARY KEY,
    step          text NOT NULL,
    event_type    text NOT NULL,
    match         text NOT NULL,
    registered_at double precision NOT NULL,
    deadline      double precision
);
CREATE INDEX waits_type ON waits (event_type);

CREATE TABLE audit (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     double precision NOT NULL,
    actor  text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL
);

-- == Hot-path transactions ====================================================================
-- Each runs inside the caller's group-commit transaction; many are pipelined per commit.
-- An expected refusal (a lost lease) is a result (ok = false), never an error, so that it
-- fails only its own caller and not the whole batch.

-- A delivery leased to a worker, with its event and (when it may have any) its steps.
CREATE TYPE interlock_claimed AS (
    ok               boolean,
    id               bigint,
    flow             text,
    lane             text,
    fence            integer,
    attempts         integer,
    runs             integer,
    chain            integer,
    first_attempt_at double precision,
    steps            text,
    seq              bigint,
    event_id         text,
    type             text,
    version          integer,
    source           text,
    subject          text,
    idempotency_key  text,
    correlation_id   text,
    causation_id     text,
    occurred_at      double precision,
    received_at      double precision,
    data             text
);

-- PL/pgSQL, not SQL: its plan is prepared once per session (a SQL function is planned
-- again on every call, which costs more than running it).
CREATE FUNCTION interlock_claimed_of(p_ids bigint[]) RETURNS SETOF interlock_claimed
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    SELECT true, d.id, d.flow, d.lane, d.fence, d.attempts, d.runs, d.chain, d.first_attempt_at,
           -- A delivery never leased before has no steps: skip the lookup on the hot path.
           CASE WHEN d.runs > 0 OR d.chain > 1 OR d.fence > 1 THEN
               (SELECT json_object_agg(s.name, s.result::json)::text
                FROM steps s WHERE s.delivery_id = d.id)
           END,
           e.seq, e.id, e.type, e.version, e.source, e.subject, e.idempotency_key,
           e.correlation_id, e.causation_id, e.occurred_at, e.received_at, e.data
    FROM deliveries d JOIN events e ON e.seq = d.event_seq
    WHERE d.id = ANY(p_ids)
    ORDER BY d.id;
END
$$;

-- Store one event and its deliveries. A lane's first delivery heads it (pending, or
-- leased straight to p_worker while p_lease allows); later ones queue behind it.
CREATE FUNCTION interlock_emit(
    p_id text, p_type text, p_version integer, p_source text, p_subject text,
    p_idempotency_key text, p_correlation_id text, p_causation_id text,
    p_occurred_at double precision, p_received_at double precision, p_data text,
    p_deliveries text,  -- JSON [[flow, lane, idempotency key or null], ...]
    p_worker text, p_until double precision, p_lease integer,
    OUT event_id text, OUT created boolean, OUT seq bigint, OUT leased bigint[],
    OUT leased_flows text[], OUT leased_lanes text[], OUT waits boolean
) LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    opened boolean;
    dup bigint;
    did bigint;
    to_lease integer := coalesce(p_lease, 0);
    made_due boolean := false;
    p_flows text[];
    p_lanes text[];
    p_idems text[];
BEGIN
    SELECT array_agg(x.value->>0 ORDER BY x.n), array_agg(x.value->>1 ORDER BY x.n),
           array_agg(x.value->>2 ORDER BY x.n)
    INTO p_flows, p_lanes, p_idems
    FROM json_array_elements(p_deliveries::json) WITH ORDINALITY AS x(value, n);
    event_id := p_id;
    created := true;
    leased := '{}';
    leased_flows := '{}';
    leased_lanes := '{}';
    waits := false;
    INSERT INTO events (id, type, version, source, subject, idempotency_key, correlation_id,
                        causation_id, occurred_at, received_at, data)
    VALUES (p_id, p_type, p_version, p_source, p_subject, p_idempotency_key, p_correlation_id,
            p_causation_id, p_occurred_at, p_received_at, p_data)
    ON CONFLICT DO NOTHING
    RETURNING events.seq INTO seq;
    IF seq IS NULL THEN
        -- Stored already: by this same emit, retried after a connection was lost while it
        -- committed (same id), or as an earlier event with the same idempotency key.
        SELECT e.seq INTO seq FROM events e WHERE e.id = p_id;
        IF FOUND THEN
            SELECT coalesce(array_agg(d.id ORDER BY d.id), '{}'),
                   coalesce(array_agg(d.flow ORDER BY d.id), '{}'),
                   coalesce(array_agg(d.lane ORDER BY d.id), '{}')
            INTO leased, leased_flows, leased_lanes
            FROM deliveries d
            WHERE d.event_seq = seq AND d.status = 'running' AND d.worker = p_worker
                  AND d.fence = 1;
            RETURN;
        END IF;
        SELECT e.id INTO event_id FROM events e
        WHERE e.source = p_source AND e.idempotency_key = p_idempotency_key;
        created := false;
        seq := 0;
        RETURN;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_flows, 1), 0) LOOP
        IF p_idems[i] IS NOT NULL THEN
            SELECT d.id INTO dup FROM deliveries d WHERE d.flow = p_flows[i] AND d.idem = p_idems[i];
            IF FOUND THEN
                INSERT INTO deliveries (event_seq, flow, lane, status, created_at, reason)
                VALUES (seq, p_flows[i], p_lanes[i], 'skipped', p_received_at,
                        format('duplicate of delivery %s (idempotency key %s)', dup,
                               CASE WHEN strpos(p_idems[i], '''') > 0 AND strpos(p_idems[i], '"') = 0
                                    THEN '"' || p_idems[i] || '"'
                                    ELSE '''' || replace(p_idems[i], '''', '\''') || '''' END));
                CONTINUE;
            END IF;
        END IF;
        LOOP
            INSERT INTO lanes (flow, lane) VALUES (p_flows[i], p_lanes[i]) ON CONFLICT DO NOTHING;
            opened := FOUND;
            EXIT WHEN opened;
            -- Open already: hold it so that a settle cannot close it under this delivery.
            PERFORM 1 FROM lanes l WHERE l.flow = p_flows[i] AND l.lane = p_lanes[i]
            FOR KEY SHARE;
            EXIT WHEN FOUND;
        END LOOP;
        IF NOT opened THEN
            INSERT INTO deliveries (event_seq, flow, lane, idem, status, created_at)
            VALUES (seq, p_flows[i], p_lanes[i], p_idems[i], 'queued', p_received_at);
        ELSIF to_lease > 0 THEN
            to_lease := to_lease - 1;
            INSERT INTO deliveries (event_seq, flow, lane, idem, status, due_at, created_at,
                                    fence, worker, first_attempt_at)
            VALUES (seq, p_flows[i], p_lanes[i], p_idems[i], 'running', p_until, p_received_at,
                    1, p_worker, p_received_at)
            RETURNING id INTO did;
            leased := leased || did;
            leased_flows := leased_flows || p_flows[i];
            leased_lanes := leased_lanes || p_lanes[i];
        ELSE
            INSERT INTO deliveries (event_seq, flow, lane, idem, status, due_at, created_at)
            VALUES (seq, p_flows[i], p_lanes[i], p_idems[i], 'pending', p_received_at,
                    p_received_at);
            made_due := true;
        END IF;
    END LOOP;
    -- Waits for this type are matched by the caller. The shared lock orders this emit with
    -- wait registrations (which take it exclusively): one of the two sees the other.
    PERFORM pg_advisory_xact_lock_shared(1769106283, hashtext(p_type));
    waits := EXISTS (SELECT 1 FROM waits w WHERE w.event_type = p_type);
    IF made_due THEN
        PERFORM pg_notify('interlock', '');
    END IF;
END
$$;

-- Lease up to p_limit due deliveries. The materialized CTE runs its LIMIT exactly once
-- (`id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` may run it again and take more).
CREATE FUNCTION interlock_claim(
    p_worker text, p_limit integer, p_now double precision, p_lease double precision
) RETURNS SETOF interlock_claimed LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
    v_status text[];
    i integer;
BEGIN
    WITH due AS MATERIALIZED (
        SELECT d.id, d.status FROM deliveries d
        WHERE d.due_at <= p_now
        ORDER BY d.due_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    )
    SELECT array_agg(due.id), array_agg(due.status) INTO v_ids, v_status FROM due;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;
    FOR i IN 1 .. array_length(v_ids, 1) LOOP
        IF v_status[i] = 'waiting' THEN
            -- The wait timed out: its step records None so the flow sees the timeout.
            INSERT INTO steps (delivery_id, name, result, recorded_at)
            SELECT w.delivery_id, w.step, 'null', p_now FROM waits w WHERE w.delivery_id = v_ids[i]
            ON CONFLICT DO NOTHING;
            DELETE FROM waits WHERE delivery_id = v_ids[i];
        ELSIF v_status[i] = 'running' THEN
            -- Its worker crashed or was paused past the lease: that run counts as a failed attempt.
            WITH expired AS (
                UPDATE deliveries d
                SET runs = d.runs + 1, attempts = d.attempts + 1, error_class = 'retryable',
                    reason = 'lease expired: worker ' || coalesce(d.worker, '?')
                             || ' stopped heartbeating (crashed, killed or paused)'
                WHERE d.id = v_ids[i]
                RETURNING d.id, d.runs, d.chain, d.worker, d.reason
            )
            INSERT INTO attempts (delivery_id, number, chain, worker, started_at, finished_at,
                                  outcome, error_class, reason, delay)
            SELECT x.id, x.runs, x.chain, x.worker, p_now, p_now, 'lease_expired', 'retryable',
                   x.reason, 0.0
            FROM expired x;
        END IF;
    END LOOP;
    UPDATE deliveries d
    SET status = 'running', fence = d.fence + 1, worker = p_worker, due_at = p_now + p_lease,
        first_attempt_at = coalesce(d.first_attempt_at, p_now)
    WHERE d.id = ANY(v_ids);
    RETURN QUERY SELECT * FROM interlock_claimed_of(v_ids);
END
$$;

-- The lane's head finished: lease its next delivery to p_worker (p_chain), make it
-- claimable, or close the lane.
CREATE FUNCTION interlock_advance(
    p_flow text, p_lane text, p_worker text, p_chain boolean,
    p_now double precision, p_lease double precision
) RETURNS SETOF interlock_claimed LANGUAGE plpgsql AS $$
DECLARE
    nxt bigint;
    r interlock_claimed;
BEGIN
    -- Wait for emits holding the lane, so the next delivery they queued is seen.
    PERFORM 1 FROM lanes l WHERE l.flow = p_flow AND l.lane = p_lane FOR UPDATE;
    SELECT d.id INTO nxt FROM deliveries d
    WHERE d.flow = p_flow AND d.lane = p_lane AND d.status = 'queued'
    ORDER BY d.id LIMIT 1;
    IF nxt IS NULL THEN
        DELETE FROM lanes l WHERE l.flow = p_flow AND l.lane = p_lane;
    ELSIF p_chain THEN
        UPDATE deliveries d
        SET status = 'running', fence = d.fence + 1, worker = p_worker, due_at = p_now + p_lease,
            first_attempt_at = coalesce(d.first_attempt_at, p_now)
        WHERE d.id = nxt;
        RETURN QUERY SELECT * FROM interlock_claimed_of(ARRAY[nxt]);
        RETURN;
    ELSE
        UPDATE deliveries d SET status = 'pending', due_at = p_now WHERE d.id = nxt;
        PERFORM pg_notify('interlock', '');
    END IF;
    r.ok := true;
    RETURN NEXT r;
END
$$;

-- Record how one run ended (fenced by p_fence), with the checkpoints that came with it.
CREATE FUNCTION interlock_settle(
    p_id bigint, p_fence integer, p_flow text, p_lane text, p_kind text, p_worker text,
    p_chain boolean, p_now double precision, p_lease double precision,
    p_started_at double precision, p_finished_at double precision,
    p_error_class text, p_reason text, p_delay double precision, p_due_at double precision,
    p_counts integer, p_skip_lane boolean, p_context text,
    p_wait_step text, p_wait_type text, p_wait_match text, p_wait_deadline double precision,
    p_steps text,  -- JSON [[name, result JSON, recorded at], ...] or null
    p_number integer, p_attempt_chain integer
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
                              outcome, error_class, reason, delay)
        VALUES (p_id, p_number, p_attempt_chain, p_worker, p_started_at, p_finished_at, p_kind,
                p_error_class, p_reason, p_delay);
    ELSE
        INSERT INTO attempts (delivery_id, number, chain, worker, started_at, finished_at,
                              outcome, error_class, reason, delay)
        SELECT d.id, d.runs, d.chain, p_worker, p_started_at, p_finished_at, p_kind,
               p_error_class, p_reason, p_delay
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

-- Checkpoints of a running delivery; false when its lease was lost. FOR SHARE keeps a
-- concurrent claim from taking the delivery over until they are written.
CREATE FUNCTION interlock_record_steps(
    p_id bigint, p_fence integer, p_names text[], p_results text[], p_ats double precision[]
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM deliveries d
    WHERE d.id = p_id AND d.fence = p_fence AND d.status = 'running'
    FOR SHARE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO steps (delivery_id, name, result, recorded_at)
    SELECT p_id, s.name, s.result, s.at
    FROM unnest(p_names, p_results, p_ats) AS s(name, result, at)
    ON CONFLICT DO NOTHING;
    RETURN true;
END
$$;
