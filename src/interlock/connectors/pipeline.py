"""The path of one call through a connector's guardrails (see :mod:`.base`).

``guarded`` runs the connection check, the breaker and :func:`perform` and records
the call's metrics; ``perform`` takes a permit, applies auth, sends (within the
total timeout, following same-origin redirects for reads only), reads the rate
signals and classifies the answer, retrying once after a 401 that fresh OAuth
credentials may cure; ``dry_run`` answers a mutating call without sending it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import httpx
import structlog

from interlock.connectors import calls as calls_
from interlock.connectors.auth import Credential
from interlock.connectors.calls import Call, DryRun
from interlock.connectors.classify import VendorError, to_exception, transport_error
from interlock.connectors.limiter import Limiter
from interlock.connectors.signals import RateSignal
from interlock.errors import (
    CircuitOpen,
    ConfigurationError,
    ConnectionPaused,
    HandlerError,
    PermissionDenied,
    RateLimited,
    ResourceNotFound,
    VendorUnavailable,
)

if TYPE_CHECKING:
    from interlock.connectors.base import Connector
    from interlock.steps import Context

log = structlog.get_logger("interlock.connectors")


async def guarded(connector: Connector, call: Call, request: httpx.Request) -> httpx.Response:
    metrics, started = connector.runtime.metrics, time.perf_counter()
    outcome = "ok"
    try:
        await connector.auth.check(connector)
        breaker = connector.breaker
        trial = await breaker.before() if breaker is not None else False
        failed: bool | None = None  # None: the vendor answered, but not a success
        settled = False
        try:
            response = await perform(connector, call, request)
            failed, settled = False, True
            return response
        except VendorUnavailable:
            failed, settled = True, True
            raise
        except HandlerError:
            settled = True
            raise
        finally:
            if breaker is not None and settled and (trial or failed is not None):
                await breaker.after(trial=trial, failed=failed)
    except HandlerError as exc:
        outcome = outcome_of(exc)
        raise
    finally:
        metrics.call(connector.name, call.operation, outcome, time.perf_counter() - started)


async def perform(connector: Connector, call: Call, request: httpx.Request) -> httpx.Response:
    limiter = limiter_for(connector, call)
    if limiter is not None:
        waited = await limiter.acquire()
        if waited:
            connector.runtime.metrics.waited(connector.name, waited)
    check_credentials(connector)
    for attempt in (1, 2):
        await connector.auth.apply(request, connector)
        try:
            response = await exchange(connector, request)
        except (httpx.TransportError, TimeoutError) as exc:
            raise error_for(connector, transport_error(exc), call) from None
        signal = connector.rate_signal(response)
        error = connector.vendor_error(response)
        await observe(connector, signal, error, limiter)
        if error is None:
            return response
        if (
            attempt == 1
            and connector.credentials_refused(response, error)
            and await connector.auth.rejected(request, connector)
        ):
            if limiter is not None:
                await limiter.acquire()
            continue
        raise error_for(connector, error, call)
    raise AssertionError("unreachable")  # pragma: no cover


async def exchange(connector: Connector, request: httpx.Request) -> httpx.Response:
    """Send within the total timeout; follow a redirect only for GET/HEAD to the same origin."""
    client = connector.client()
    async with asyncio.timeout(connector.total_timeout):
        response = await client.send(request)
        for _ in range(3):
            if not response.is_redirect or request.method not in ("GET", "HEAD"):
                break
            target = request.url.join(response.headers["location"])
            origin = (request.url.scheme, request.url.host, request.url.port)
            if (target.scheme, target.host, target.port) != origin:
                break
            request = client.build_request(request.method, target, headers=request.headers)
            response = await client.send(request)
    return response


async def observe(
    connector: Connector, signal: RateSignal, error: VendorError | None, limiter: Limiter | None
) -> None:
    if signal.remaining is not None:
        connector.runtime.metrics.headroom[connector.name] = signal.remaining
    if limiter is None:
        return
    if error is not None and error.kind == "rate_limited":
        wait = error.retry_after or signal.retry_after or signal.reset_after or 1.0
        await limiter.pause(wait)
    elif signal.exhausted(connector.rate_reserve) and signal.reset_after:
        await limiter.pause(signal.reset_after)


def limiter_for(connector: Connector, call: Call) -> Limiter | None:
    found = connector.rate_for(call)
    if found is None:
        return None
    key, rate = found
    limiters = connector.guards.limiters.get()
    limiter = limiters.get(key)
    if limiter is None or limiter.rate != rate:
        limiter = limiters[key] = Limiter(
            key, rate, connector.runtime.shared, connector.clock, max_wait=connector.max_wait
        )
    return limiter


def error_for(connector: Connector, error: VendorError, call: Call) -> HandlerError:
    exc = to_exception(
        error,
        connector=connector.name,
        operation=call.operation,
        secrets=connector.auth.sensitive(),
        scope=connector.auth.scope,
    )
    if isinstance(exc, PermissionDenied):
        ctx = connector.context()
        connector.runtime.metrics.alert(connector.name, "permission_denied")
        log.error(
            "connector.permission_denied",
            connector=connector.name,
            operation=call.operation,
            status=error.status,
            code=error.code,
            scope=exc.scope,
            required_scope=error.required_scope,
            flow=ctx.flow if ctx else None,
            delivery_id=ctx.delivery_id if ctx else None,
        )
    return exc


def dry_run(
    connector: Connector, call: Call, request: httpx.Request, ctx: Context | None
) -> httpx.Response:
    key = (
        request.headers.get(connector.idempotency_header) if connector.idempotency_header else None
    )
    response = connector.simulate(request, key)
    record = DryRun(
        at=connector.clock.now(),
        connector=connector.name,
        operation=call.operation,
        method=call.method,
        url=str(request.url),
        headers=calls_.visible_headers(request),
        body=calls_.request_body(request),
        idempotency_key=key,
        flow=ctx.flow if ctx else None,
        delivery_id=ctx.delivery_id if ctx else None,
        answer={"status": response.status_code, "body": calls_.request_body(response)},
    )
    connector.guards.dry_runs.append(record)
    connector.runtime.metrics.call(connector.name, call.operation, "dry_run", 0.0)
    logger = ctx.log if ctx is not None else log
    logger.info(
        "connector.dry_run",
        connector=connector.name,
        operation=call.operation,
        method=call.method,
        url=record.url,
        idempotency_key=key,
        body=record.body,
    )
    return response


# -- credentials --------------------------------------------------------------------
def report_credentials(connector: Connector) -> list[Credential]:
    """The credentials in use and their expiry; records the expiry metric and warns
    (``connector.credential_expiring``) within ``warn_before`` of an expiry."""
    found = connector.auth.credentials(connector)
    now = connector.clock.now()
    metrics, warned = connector.runtime.metrics, connector.guards.warned
    for credential in found:
        if credential.expires_at is None:
            continue
        metrics.expiry[(connector.name, credential.name)] = credential.expires_at
        left = credential.expires_at - now
        if credential.renews or left > connector.warn_before:
            continue
        if now - warned.get(credential.name, float("-inf")) >= 3600:
            warned[credential.name] = now
            metrics.alert(connector.name, "credential_expiring")
            log.warning(
                "connector.credential_expiring",
                connector=connector.name,
                credential=credential.name,
                expires_at=credential.expires_at,
                seconds_left=round(left),
            )
    return found


def check_credentials(connector: Connector) -> None:
    now = time.monotonic()
    if now - connector.guards.credentials_checked_at >= 600:
        connector.guards.credentials_checked_at = now
        with contextlib.suppress(ConfigurationError):  # a missing secret: the call says
            report_credentials(connector)


def outcome_of(exc: HandlerError) -> str:
    if isinstance(exc, ConnectionPaused):
        return "paused"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    if isinstance(exc, PermissionDenied):
        return "permission"
    if isinstance(exc, ResourceNotFound):
        return "not_found"
    if isinstance(exc, VendorUnavailable):
        return "retryable"
    return "permanent"
