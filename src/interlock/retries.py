"""What happens after a failed attempt: a pure function of (attempt, error, policy, now).

>>> decide(Retryable("boom"), Retry(attempts=3), attempt=1, first_attempt_at=0.0, now=0.0, rand=0.5)
Decision(kind='retry', delay=0.5, error_class='retryable', counts=True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from interlock.errors import CircuitOpen, ContractViolation, LimitExceeded, Permanent, RateLimited
from interlock.flows import Retry

ErrorClass = Literal[
    "retryable", "rate_limited", "permanent", "contract_violation", "limit", "missing_record"
]


@dataclass(frozen=True, slots=True)
class Decision:
    """``retry`` after ``delay`` seconds, or ``dead``."""

    kind: Literal["retry", "dead"]
    delay: float
    error_class: ErrorClass
    counts: bool  # whether the attempt used up retry budget


def backoff(attempt: int, policy: Retry, rand: float) -> float:
    """Full-jitter exponential backoff for the ``attempt``-th failure (1-based).

    ``rand`` is a uniform number in [0, 1); pass 1.0 for the un-jittered ceiling.
    """
    ceiling = min(policy.cap_s, policy.base_s * 2.0 ** min(attempt - 1, 62))
    return ceiling * rand if policy.jitter else ceiling


def classify(error: BaseException) -> ErrorClass:
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, ContractViolation):
        return "contract_violation"
    if isinstance(error, LimitExceeded):
        return "limit"
    if isinstance(error, Permanent):
        return "permanent"
    return "retryable"


def decide(
    error: BaseException,
    policy: Retry,
    *,
    attempt: int,
    first_attempt_at: float,
    now: float,
    rand: float,
) -> Decision:
    """Retry or dead-letter after the ``attempt``-th counted failure."""
    error_class = classify(error)
    if error_class in ("permanent", "contract_violation", "limit"):
        return Decision("dead", 0.0, error_class, True)
    if isinstance(error, RateLimited):
        delay, counts = error.retry_after, False
    else:
        if attempt >= policy.attempts:
            return Decision("dead", 0.0, error_class, True)
        delay, counts = backoff(attempt, policy, rand), True
        if isinstance(error, CircuitOpen):  # no use trying before the breaker lets a call by
            delay = max(delay, error.retry_after)
    limit = policy.max_elapsed_s
    if limit is not None and now + delay - first_attempt_at > limit:
        return Decision("dead", 0.0, error_class, counts)
    return Decision("retry", delay, error_class, counts)
