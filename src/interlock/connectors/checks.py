"""Synthetic checks: each connector's cheap read-only probes, run on demand or on a schedule.

A check makes each probe call with the connector's auth and rate limit (not its
breaker: a check must see a vendor the breaker has given up on), and reports
latency, the auth state, the rate-limit headroom the vendor reported and the
error, as a ``connector.check`` event and as metrics::

    results = await check_all(app)                    # what `interlock connectors check` runs
    task = asyncio.create_task(run_checks(app, every=300.0, stop=stop))   # in a worker
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from interlock.connectors import pipeline
from interlock.connectors.auth import Credential
from interlock.connectors.base import Connector, Probe
from interlock.connectors.calls import Call
from interlock.errors import (
    ConfigurationError,
    ConnectionPaused,
    InterlockError,
    PermissionDenied,
)

if TYPE_CHECKING:
    from interlock.app import Interlock

log = structlog.get_logger("interlock.connectors")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One probe of one connector."""

    connector: str
    probe: str
    ok: bool | None  # None: the connector declares no probe
    latency: float | None = None
    status: int | None = None
    auth: str = "ok"  # ok | expiring | denied | needs_reauth | error
    remaining: float | None = None  # calls left in the vendor's window, when it said
    limit: float | None = None
    breaker: str = "closed"
    error: str | None = None
    credentials: list[Credential] = field(default_factory=list)


async def check(connector: Connector) -> list[CheckResult]:
    """Run every probe of ``connector``."""
    try:
        credentials = connector.credentials()
    except ConfigurationError as exc:
        return [_report(CheckResult(connector.name, "-", False, auth="error", error=str(exc)))]
    now = connector.clock.now()
    expiring = any(
        c.expires_at is not None and not c.renews and c.expires_at - now <= connector.warn_before
        for c in credentials
    )
    breaker = connector.breaker
    state = breaker.state if breaker is not None else "closed"
    probes: Sequence[Probe] = connector.probes()
    if not probes:
        return [CheckResult(connector.name, "-", None, breaker=state, credentials=credentials)]
    results = []
    for probe in probes:
        result = await _probe(connector, probe, credentials, state)
        if result.ok and expiring:
            result = dataclasses.replace(result, auth="expiring")
        results.append(_report(result))
    record(connector, results)
    return results


async def _probe(
    connector: Connector, probe: Probe, credentials: list[Credential], breaker: str
) -> CheckResult:
    name = connector.name
    call = Call(probe.method.upper(), connector.absolute(probe.path), f"probe:{probe.name}")
    request = connector.client().build_request(call.method, call.url, params=probe.params)
    started = time.perf_counter()
    try:
        await connector.auth.check(connector)
        response = await pipeline.perform(connector, call, request)
    except InterlockError as exc:
        auth = "ok"
        if isinstance(exc, ConnectionPaused):
            auth = "needs_reauth"
        elif isinstance(exc, PermissionDenied):
            auth = "denied"
        return CheckResult(
            name,
            probe.name,
            False,
            latency=time.perf_counter() - started,
            status=getattr(exc, "status", None),
            auth=auth,
            breaker=breaker,
            error=str(exc),
            credentials=credentials,
        )
    signal = connector.rate_signal(response)
    return CheckResult(
        name,
        probe.name,
        True,
        latency=time.perf_counter() - started,
        status=response.status_code,
        remaining=signal.remaining,
        limit=signal.limit,
        breaker=breaker,
        credentials=credentials,
    )


def _report(result: CheckResult) -> CheckResult:
    fields = {
        "connector": result.connector,
        "probe": result.probe,
        "ok": result.ok,
        "latency_ms": None if result.latency is None else round(result.latency * 1000, 1),
        "status": result.status,
        "auth": result.auth,
        "remaining": result.remaining,
        "breaker": result.breaker,
        "error": result.error,
    }
    if result.ok:
        log.info("connector.check", **fields)
    else:
        log.warning("connector.check", **fields)
    return result


def record(connector: Connector, results: Iterable[CheckResult]) -> None:
    """Put check results into the connector's metrics."""
    metrics = connector.runtime.metrics
    for result in results:
        if result.ok is not None:
            metrics.checks[(result.connector, result.probe)] = (
                1.0 if result.ok else 0.0,
                result.latency or 0.0,
            )


async def check_all(app: Interlock, names: Iterable[str] | None = None) -> list[CheckResult]:
    """Check every connector of ``app`` (or those named), one after another."""
    wanted = set(names) if names is not None else None
    results: list[CheckResult] = []
    for name, connector in sorted(app.connectors.items()):
        if wanted is not None and name not in wanted:
            continue
        results.extend(await check(connector))
    return results


async def run_checks(app: Interlock, *, every: float, stop: asyncio.Event) -> None:
    """Check every connector of ``app`` each ``every`` seconds until ``stop`` is set
    (what a worker runs on a schedule)."""
    while not stop.is_set():
        try:
            await check_all(app)
        except Exception as exc:  # a check must never take the worker down
            log.error("connector.check_failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
