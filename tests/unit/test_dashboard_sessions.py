"""Dashboard sessions and the failed-login throttle: pure, on explicit times."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from interlock.dashboard.charts import line_chart, nice_max, sparkline, stacked_bars
from interlock.dashboard.sessions import LoginThrottle, SessionStore, same


def test_sessions_end_when_idle_too_long_or_too_old_and_on_logout() -> None:
    store = SessionStore(idle=10.0, lifetime=30.0)
    session = store.open("tok_1", now=0.0)
    assert store.get(session.id, 9.0) is session
    assert store.get(session.id, 18.0) is session, "use keeps it alive"
    assert store.get(session.id, 27.0) is session
    assert store.get(session.id, 31.0) is None, "but not past its lifetime"
    idle = store.open("tok_1", now=100.0)
    assert store.get(idle.id, 111.0) is None
    closed = store.open("tok_2", now=200.0)
    store.close(closed.id)
    assert store.get(closed.id, 200.0) is None
    assert store.get(None, 0.0) is None and store.get("guess", 0.0) is None


def test_each_session_has_its_own_unguessable_ids() -> None:
    store = SessionStore()
    a, b = store.open("tok_1", 0.0), store.open("tok_1", 0.0)
    assert len({a.id, b.id, a.csrf, b.csrf}) == 4
    assert min(len(a.id), len(a.csrf)) >= 43
    assert same(a.csrf, a.csrf) and not same(a.csrf, b.csrf)
    assert not same(None, None) and not same("", "")


def test_the_throttle_locks_an_address_after_the_limit_until_the_window_passes() -> None:
    throttle = LoginThrottle(limit=3, window=60.0)
    for t in (0.0, 1.0, 2.0):
        assert throttle.wait("10.0.0.1", t) == 0
        throttle.failed("10.0.0.1", t)
    assert throttle.wait("10.0.0.1", 3.0) == 57.0
    assert throttle.wait("10.0.0.2", 3.0) == 0, "per address"
    assert throttle.wait("10.0.0.1", 60.0) == 0, "the oldest failure left the window"
    for t in (100.0, 101.0, 102.0):
        throttle.failed("10.0.0.1", t)
    assert throttle.wait("10.0.0.1", 103.0) == 57.0
    throttle.succeeded("10.0.0.1")
    assert throttle.wait("10.0.0.1", 61.0) == 0


@given(st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), max_size=60))
def test_no_window_ever_admits_more_failed_logins_than_the_limit(times: list[float]) -> None:
    throttle = LoginThrottle(limit=5, window=60.0)
    admitted: list[float] = []
    for t in sorted(times):
        if throttle.wait("a", t) == 0:
            admitted.append(t)
            throttle.failed("a", t)
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + 60.0) <= 5


def test_the_throttle_forgets_addresses_under_a_spray() -> None:
    throttle = LoginThrottle(limit=2, window=60.0, max_addresses=100)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(throttle._failures) <= 100


@given(st.floats(min_value=1e-6, max_value=1e12, allow_nan=False))
def test_the_chart_scale_covers_every_value(value: float) -> None:
    top = nice_max(value)
    assert value <= top <= value * 10


def test_charts_stay_inside_their_box() -> None:
    points = sparkline([0, 5, None, 10], width=100, height=24)
    for pair in points.split():
        x, y = map(float, pair.split(","))
        assert 0 <= x <= 100 and 0 <= y <= 24
    assert sparkline([]) == "" and sparkline([None, None]) == ""
    chart = line_chart({"p50": [0.1, 0.2], "p95": [0.5, None]}, ["10:00", "10:05"], threshold=1.0)
    assert not chart.empty and chart.threshold is not None
    assert [line.last for line in chart.lines] == [0.2, 0.5]
    bars = stacked_bars({"retryable": [1, 0], "permanent": [2, 3]}, ["a", "b"])
    assert len(bars.bars) == 3 and all(b.height > 0 for b in bars.bars)
    assert stacked_bars({"x": [0, 0]}, ["a", "b"]).empty
