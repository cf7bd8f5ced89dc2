from __future__ import annotations

import random

import pytest

from interlock import (
    CircuitOpen,
    ConfigurationError,
    ContractViolation,
    LimitExceeded,
    Permanent,
    RateLimited,
    Retry,
    Retryable,
)
from interlock.retries import backoff, classify, decide


def test_backoff_ceiling_doubles_from_base_up_to_the_cap() -> None:
    policy = Retry(base="1s", cap="10s")
    ceilings = [backoff(n, policy, 1.0) for n in range(1, 7)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_full_jitter_stays_within_zero_and_the_ceiling() -> None:
    policy = Retry(base="2s", cap="1m")
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
        delays = [backoff(attempt, policy, rng.random()) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter spreads over the whole range, not just near the ceiling.
        assert min(delays) < ceiling * 0.1
        assert max(delays) > ceiling * 0.9
    assert backoff(3, policy, 0.0) == 0.0


def test_backoff_without_jitter_is_the_ceiling() -> None:
    policy = Retry(base="1s", cap="5s", jitter=False)
    assert [backoff(n, policy, 0.123) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


def test_backoff_survives_huge_attempt_numbers() -> None:
    assert backoff(10_000, Retry(base="1s", cap="10m"), 1.0) == 600.0


def _decide(error: BaseException, policy: Retry, attempt: int, **kw: float):  # type: ignore[no-untyped-def]
    return decide(
        error,
        policy,
        attempt=attempt,
        first_attempt_at=kw.get("first", 0.0),
        now=kw.get("now", 0.0),
        rand=kw.get("rand", 0.5),
    )


def test_retryable_failures_retry_until_attempts_are_exhausted() -> None:
    policy = Retry(attempts=3, base="1s", cap="1m")
    first = _decide(Retryable("boom"), policy, 1, rand=0.5)
    assert (first.kind, first.delay, first.error_class, first.counts) == (
        "retry",
        0.5,
        "retryable",
        True,
    )
    second = _decide(Retryable("boom"), policy, 2, rand=0.5)
    assert (second.kind, second.delay) == ("retry", 1.0)
    third = _decide(Retryable("boom"), policy, 3)
    assert (third.kind, third.error_class) == ("dead", "retryable")


def test_unknown_exceptions_are_retryable() -> None:
    decision = _decide(KeyError("x"), Retry(attempts=5), 1)
    assert decision.kind == "retry"
    assert decision.error_class == "retryable"


def test_attempts_one_means_never_retry() -> None:
    assert _decide(Retryable("x"), Retry(attempts=1), 1).kind == "dead"


@pytest.mark.parametrize(
    ("error", "error_class"),
    [
        (Permanent("no such account"), "permanent"),
        (ContractViolation("bad payload"), "contract_violation"),
        (LimitExceeded("too big", limit="max_payload_bytes", value=2, maximum=1), "limit"),
    ],
)
def test_unretryable_errors_go_dead_at_once(error: Exception, error_class: str) -> None:
    decision = _decide(error, Retry(attempts=10), 1)
    assert decision.kind == "dead"
    assert decision.error_class == error_class
    assert decision.counts is True


def test_rate_limited_waits_retry_after_and_does_not_use_the_budget() -> None:
    policy = Retry(attempts=2)
    # Even far past the attempt budget a rate limit is retried, after the vendor's delay.
    decision = _decide(RateLimited(retry_after=42), policy, 9)
    assert (decision.kind, decision.delay, decision.error_class, decision.counts) == (
        "retry",
        42.0,
        "rate_limited",
        False,
    )
    assert classify(RateLimited(retry_after=1)) == "rate_limited"
    assert RateLimited(retry_after=-5).retry_after == 0.0


def test_max_elapsed_bounds_retries_from_the_first_attempt() -> None:
    policy = Retry(attempts=100, base="10s", cap="10s", max_elapsed="1m", jitter=False)
    inside = _decide(Retryable("x"), policy, 2, first=1000.0, now=1040.0)
    assert (inside.kind, inside.delay) == ("retry", 10.0)
    at_limit = _decide(Retryable("x"), policy, 2, first=1000.0, now=1050.0)
    assert at_limit.kind == "retry"
    past = _decide(Retryable("x"), policy, 2, first=1000.0, now=1051.0)
    assert (past.kind, past.error_class) == ("dead", "retryable")


def test_max_elapsed_also_bounds_rate_limited_retries() -> None:
    policy = Retry(attempts=5, max_elapsed="1m")
    decision = _decide(RateLimited(retry_after=120), policy, 1, first=0.0, now=0.0)
    assert (decision.kind, decision.error_class, decision.counts) == ("dead", "rate_limited", False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": 2.5}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"base": 0}, "base"),
        ({"base": "10s", "cap": "1s"}, "cap"),
        ({"cap": "soon"}, "cannot read duration"),
        ({"max_elapsed": -1}, "negative"),
    ],
)
def test_retry_policy_rejects_nonsense(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Retry(**kwargs)  # type: ignore[arg-type]


def test_an_open_circuit_is_retried_no_sooner_than_its_cool_down() -> None:
    policy = Retry(attempts=5, base="1s", cap="1m", jitter=False)
    error = CircuitOpen("crm: breaker open", connector="crm", retry_after=30.0)
    first = decide(error, policy, attempt=1, first_attempt_at=0.0, now=0.0, rand=0.5)
    assert (first.kind, first.delay, first.counts) == ("retry", 30.0, True)
    late = decide(error, policy, attempt=4, first_attempt_at=0.0, now=0.0, rand=0.5)
    assert late.delay == 30.0  # the cool-down still dominates backoff (8 s)
    exhausted = decide(error, policy, attempt=5, first_attempt_at=0.0, now=0.0, rand=0.5)
    assert exhausted.kind == "dead"
