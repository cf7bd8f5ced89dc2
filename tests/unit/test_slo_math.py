"""Error budget and burn-rate math, property-tested: burn rates grow with bad deliveries,
the budget is never above 100 %, alerts need both windows and do not flap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlock.errors import ConfigurationError
from interlock.observability.slo import (
    AlertPolicy,
    BurnWindow,
    budget_remaining,
    burn_rate,
    decide,
    sli,
)
from interlock.stores.analytics import SloCounts

targets = st.floats(min_value=0.5, max_value=0.9999)
counts = st.integers(min_value=0, max_value=100_000)
RULE = BurnWindow("page", long=3600, short=300, factor=14.4)
POLICY = AlertPolicy(windows=(RULE,), min_events=3, clear_ratio=0.8)


def c(good: int, bad: int) -> SloCounts:
    return SloCounts(0.0, 1.0, good, bad)


@given(good=counts, bad=counts, target=targets)
def test_burn_rate_is_monotone_in_bad_deliveries(good: int, bad: int, target: float) -> None:
    rate = burn_rate(c(good, bad), target)
    assert rate >= 0
    assert burn_rate(c(good, bad + 1), target) >= rate  # one more bad delivery
    if good:  # a good delivery turning bad
        assert burn_rate(c(good - 1, bad + 1), target) > rate
    assert burn_rate(c(good + 1, bad), target) <= rate  # one more good one


@given(good=counts, bad=counts, target=targets)
def test_budget_is_never_above_everything(good: int, bad: int, target: float) -> None:
    left = budget_remaining(c(good, bad), target)
    assert left <= 1.0
    assert (left == 1.0) == (bad == 0)
    share = sli(c(good, bad))
    assert share is None if good + bad == 0 else 0.0 <= share <= 1.0
    if good + bad:  # the budget is spent exactly when the bad share reaches the allowance
        assert (left <= 0) == (bad / (good + bad) >= (1 - target) - 1e-12) or abs(left) < 1e-9


def test_the_budget_of_a_known_case() -> None:
    assert budget_remaining(c(995, 5), 0.995) == pytest.approx(0.0)
    assert budget_remaining(c(9975, 25), 0.995) == pytest.approx(0.5)
    assert burn_rate(c(856, 144), 0.99) == pytest.approx(14.4)
    assert budget_remaining(c(0, 0), 0.99) == 1.0 and sli(c(0, 0)) is None


def windows(long: SloCounts, short: SloCounts) -> dict[float, SloCounts]:
    return {RULE.long_s: long, RULE.short_s: short}


pairs = st.tuples(counts, counts)


@given(long=pairs, short=pairs, firing=st.booleans())
def test_an_alert_needs_both_windows(
    long: tuple[int, int], short: tuple[int, int], firing: bool
) -> None:
    lc, sc = c(*long), c(*short)
    (d,) = decide(windows(lc, sc), 0.99, POLICY, frozenset({"page"} if firing else ()))
    bl, bs = burn_rate(lc, 0.99), burn_rate(sc, 0.99)
    assert (d.burn_long, d.burn_short) == (bl, bs)
    if not firing:  # to fire: both windows over the factor, with enough deliveries
        enough = lc.total >= 3 and sc.total >= 3
        assert d.firing == (enough and bl >= 14.4 and bs >= 14.4)
    else:  # to stay: both windows over the clearing threshold
        assert d.firing == (bl >= 14.4 * 0.8 and bs >= 14.4 * 0.8)


# Out of 100,000 deliveries, 11,530 to 14,399 bad burn at 11.53x to 14.399x: between
# the clearing threshold (0.8 x 14.4 = 11.52x) and the firing one (14.4x).
@given(st.lists(st.integers(min_value=11_530, max_value=14_399), min_size=1, max_size=30))
def test_a_burn_hovering_at_the_threshold_does_not_flap(bads: list[int]) -> None:
    """Inside the hysteresis band the state never changes, whichever state it starts in."""
    for start in (frozenset(), frozenset({"page"})):
        state = start
        for bad in bads:
            each = c(100_000 - bad, bad)
            (d,) = decide(windows(each, each), 0.99, POLICY, state)
            state = frozenset({"page"}) if d.firing else frozenset()
            assert state == start


def test_a_blip_does_not_fire_and_a_recovery_clears() -> None:
    blip = windows(c(990, 10), c(0, 3))  # the short window is all bad, the long one fine
    assert not decide(blip, 0.99, POLICY)[0].firing
    outage = windows(c(700, 300), c(0, 50))
    assert decide(outage, 0.99, POLICY)[0].firing
    recovered = windows(c(700, 300), c(50, 0))  # the long window still burns
    assert not decide(recovered, 0.99, POLICY, frozenset({"page"}))[0].firing
    few = windows(c(0, 2), c(0, 2))  # two failures are not an outage
    assert not decide(few, 0.99, POLICY)[0].firing


def test_policies_refuse_nonsense() -> None:
    with pytest.raises(ConfigurationError, match="shorter"):
        BurnWindow("page", long="5m", short="1h", factor=14.4)
    with pytest.raises(ConfigurationError, match="factor"):
        BurnWindow("page", long="1h", short="5m", factor=0)
    with pytest.raises(ConfigurationError, match="differ"):
        AlertPolicy(windows=(RULE, RULE))
    with pytest.raises(ConfigurationError, match="clear_ratio"):
        AlertPolicy(clear_ratio=1.5)
    assert AlertPolicy().spans() == (300.0, 1800.0, 3600.0, 21600.0)
