"""Retention: finished work older than a configured age is deleted, so tables stay fast.

``INTERLOCK_RETENTION_DAYS`` (default 30; 0 keeps everything forever; at least 7, the
webhook de-duplication window, otherwise) is the age.
Every worker runs :func:`prune` every ``INTERLOCK_RETENTION_EVERY`` seconds (default
3600), one process at a time (a store lock), deleting in batches of
``INTERLOCK_RETENTION_BATCH`` (default 1000) so no transaction grows large:

* deliveries that *succeeded* or were *skipped* (discarded, duplicates) and finished
  before the cutoff, with their attempts and steps;
* events received before the cutoff that no delivery refers to any more.

Dead letters, and everything unfinished (queued, pending, running, waiting), are never
touched, nor are their events; nor is the audit trail. Both stores do exactly this.
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass

import structlog

from interlock.errors import ConfigurationError, StoreError
from interlock.stores.base import Store

log = structlog.get_logger("interlock.retention")

LOCK = "interlock.retention"
DAY = 86_400.0
MIN_DAYS = 7.0  # webhook delivery ids are remembered (for de-duplication) at least this long


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long finished work is kept (``days``; 0 = forever) and how it is pruned."""

    days: float = 30.0
    every: float = 3600.0  # seconds between passes
    batch: int = 1000  # deliveries (or events) deleted per transaction

    def __post_init__(self) -> None:
        if 0 < self.days < MIN_DAYS:
            raise ConfigurationError(
                f"a retention of {self.days:g} days is below {MIN_DAYS:g}: stored events are the "
                "memory of webhook delivery ids, which must outlast vendors' retries (Stripe "
                f"retries for 3 days); keep at least {MIN_DAYS:g} days, or 0 to keep everything"
            )

    @classmethod
    def from_env(cls) -> RetentionPolicy:
        return cls(
            days=_number("INTERLOCK_RETENTION_DAYS", 30.0, zero_ok=True),
            every=_number("INTERLOCK_RETENTION_EVERY", 3600.0),
            batch=int(_number("INTERLOCK_RETENTION_BATCH", 1000.0)),
        )


def _number(name: str, default: float, *, zero_ok: bool = False) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if value < 0 or (value == 0 and not zero_ok):
        raise ConfigurationError(f"{name}={raw!r} must be {'>= 0' if zero_ok else '> 0'}")
    return value


async def prune(store: Store, policy: RetentionPolicy, *, now: float, holder: str) -> int | None:
    """One pass: delete what is older than the policy allows; how many rows went, or None
    when another process is pruning (it holds the lock) or retention is off."""
    if policy.days <= 0:
        return None
    if not await store.take_lock(LOCK, holder, until=now + 600.0, now=now):
        return None
    cutoff = now - policy.days * DAY
    total = 0
    try:
        while True:
            deleted = await store.prune(cutoff, limit=policy.batch)
            total += deleted
            if deleted < policy.batch:
                break
            await asyncio.sleep(0)  # let the worker's flows run between batches
    finally:
        await store.release_lock(LOCK, holder)
    return total


async def run_retention(
    store: Store, policy: RetentionPolicy, *, clock_now: object, holder: str
) -> None:
    """Prune every ``policy.every`` seconds (the first pass after a random part of it, so
    workers started together do not all try at once) until cancelled."""
    assert callable(clock_now)
    await asyncio.sleep(random.uniform(0.1, 1.0) * min(policy.every, 60.0))
    while True:
        try:
            deleted = await prune(store, policy, now=float(clock_now()), holder=holder)
        except StoreError as exc:
            log.error("retention.failed", error=str(exc))
        else:
            if deleted:
                log.info("retention.pruned", rows=deleted, days=policy.days)
        await asyncio.sleep(policy.every)
