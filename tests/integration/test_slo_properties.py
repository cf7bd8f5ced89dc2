"""SLO counts from the store agree with a model of what decides a delivery, for random
delivery histories and ranges, scanned and rolled up alike (hypothesis, real SQLite)."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.stores.sqlite import SqliteStore

WITHIN = 60.0
T0 = 1_800_000_000.0

delivery = st.tuples(
    st.floats(min_value=0, max_value=3000, allow_nan=False),  # created, seconds after T0
    st.sampled_from(["succeeded", "dead", "running", "duplicate", "discarded"]),
    st.floats(min_value=0, max_value=200, allow_nan=False),  # how long until it finished
)
span = st.tuples(
    st.floats(min_value=-100, max_value=3400, allow_nan=False),
    st.floats(min_value=1, max_value=3500, allow_nan=False),
)


def model(
    rows: list[tuple[float, str, float]], since: float, until: float, now: float
) -> tuple[int, int]:
    """Good and bad deliveries decided in ``[since, min(until, now))`` (absolute times,
    computed as the store stores them)."""
    good = bad = 0
    end = min(until, now)
    for offset, status, took in rows:
        if status == "duplicate":
            continue
        created = T0 + offset
        done = status in ("succeeded", "dead", "discarded")
        finished = T0 + offset + took if done else math.inf
        deadline = created + WITHIN
        decided = min(finished, deadline)
        if since <= decided < end:
            if status == "succeeded" and finished <= deadline:
                good += 1
            else:
                bad += 1
    return good, bad


def fill(path: Path, rows: list[tuple[float, str, float]]) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO events (seq, id, type, version, source, correlation_id, occurred_at, "
        "received_at, data) VALUES (1, 'evt_1', 't', 1, 'api', 'c', 0, 0, '{}')"
    )
    for created, status, took in sorted(rows):  # ids grow with time, as in the store
        stored, runs, finished = status, 1, T0 + created + took
        if status == "duplicate":
            stored, runs, finished = "skipped", 0, None
        elif status == "discarded":
            stored = "skipped"
        elif status == "running":
            finished = None
        conn.execute(
            "INSERT INTO deliveries (event_seq, flow, lane, status, runs, created_at, "
            "finished_at) VALUES (1, 'f', 'l', ?, ?, ?, ?)",
            (stored, runs, T0 + created, finished),
        )
    conn.commit()
    conn.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(delivery, max_size=60),
    spans=st.lists(span, min_size=1, max_size=4),
    now=st.floats(min_value=0, max_value=3600, allow_nan=False),
)
def test_counts_match_the_model(
    rows: list[tuple[float, str, float]], spans: list[tuple[float, float]], now: float
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "slo.db"
        store = SqliteStore(f"sqlite:///{path}", durability="fast")
        try:
            store.ensure_schema()
            fill(path, rows)
            ranges = [(T0 + a, T0 + a + length) for a, length in spans]
            expected = [model(rows, a, b, T0 + now) for a, b in ranges]
            scanned = store.slo_counts("f", WITHIN, ranges, now=T0 + now)
            assert [(c.good, c.bad) for c in scanned] == expected
            # adjacent ranges add up: each delivery is decided once
            mid = T0 + now / 2
            left, right, whole = store.slo_counts(
                "f",
                WITHIN,
                [(T0 - 100, mid), (mid, T0 + now), (T0 - 100, T0 + now)],
                now=T0 + now,
            )
            assert left.total + right.total == whole.total
            # rolled up, the answers stay the same
            asyncio.run(store.roll_up_slo("f", WITHIN, now=T0 + now, keep=7200))
            rolled = store.slo_counts("f", WITHIN, ranges, now=T0 + now)
            assert [(c.good, c.bad) for c in rolled] == expected
        finally:
            store.close()
