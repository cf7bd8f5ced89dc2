"""The connector base: every vendor call goes through its guardrails.

A call passes, in order: dry-run (a mutating call is recorded and answered
without being sent), the connection check (paused while it needs
re-authorization), the circuit breaker, the rate limiter, auth, the egress
guard and timeouts; then the answer is read for rate-limit signals and
classified (see :mod:`interlock.connectors.classify`). Mutating calls carry an
idempotency key derived from the delivery and step, and every call carries the
correlation id and a ``traceparent``.

A vendor connector is a small subclass::

    class Acme(Connector):
        idempotency_header = "Acme-Idempotency-Key"           # or None
        def __init__(self, name="acme", **options):
            super().__init__(name, base_url="https://api.acme.test", rate=Rate(5), **options)
        def error_details(self, response): ...                # its error body
        def rate_signal(self, response): ...                  # its rate-limit headers
        def probes(self): return (Probe("me", "/v1/me"),)     # a cheap read-only check
        async def find_deal(self, order_id: str) -> Deal:     # typed domain methods
            response = await self.request("GET", "/v1/deals", params={"order": order_id},
                                          operation="find_deal")
            return Deal.model_validate(response.json())
"""

from __future__ import annotations

import copy
import functools
import os
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

import httpx
import structlog

from interlock.clock import SYSTEM_CLOCK, Clock
from interlock.connectors import calls as calls_
from interlock.connectors import pipeline
from interlock.connectors.auth import Auth, Credential
from interlock.connectors.breaker import STATE_VALUES, Breaker, BreakerPolicy, BreakerState
from interlock.connectors.calls import Call, DryRun
from interlock.connectors.classify import (
    ErrorDetails,
    VendorError,
    generic_details,
    kind_of_status,
)
from interlock.connectors.egress import Egress, GuardedTransport, Resolver
from interlock.connectors.limiter import Limiter, Rate
from interlock.connectors.runtime import LoopLocal, Runtime
from interlock.connectors.signals import RateSignal
from interlock.durations import Duration, seconds
from interlock.errors import ConfigurationError, HandlerError
from interlock.steps import current_context

if TYPE_CHECKING:
    from interlock.steps import Context
    from interlock.stores.base import ConnectorState

log = structlog.get_logger("interlock.connectors")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_operation = functools.lru_cache(maxsize=4096)(calls_.operation_name)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """``connect`` bounds opening a connection; ``total`` bounds the whole call."""

    connect: Duration = "5s"
    total: Duration = "30s"


@dataclass(frozen=True, slots=True)
class Probe:
    """A cheap read-only call that proves an endpoint the connector relies on works."""

    name: str
    path: str
    method: str = "GET"
    params: Mapping[str, str] | None = None


class Guards:
    """What every bound copy of one connector shares: its runtime, HTTP clients, limiters,
    breaker, cached shared state and dry-run records."""

    def __init__(self, new_client: Callable[[], httpx.AsyncClient]) -> None:
        self.runtime: Runtime | None = None
        self.clients: LoopLocal[httpx.AsyncClient] = LoopLocal(new_client)
        self.limiters: LoopLocal[dict[str, Limiter]] = LoopLocal(dict)
        self.breaker: Breaker | None = None
        self.state: ConnectorState | None = None
        self.state_read_at = float("-inf")
        self.dry_runs: deque[DryRun] = deque(maxlen=1000)
        self.credentials_checked_at = float("-inf")
        self.warned: dict[str, float] = {}


class Connector:
    """The base of every connector (see the module docstring)."""

    idempotency_header: ClassVar[str | None] = "Idempotency-Key"
    correlation_header: ClassVar[str | None] = "X-Correlation-Id"
    rate_reserve: ClassVar[float] = 0.0  # pause when the vendor reports this many calls left

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        auth: Auth | None = None,
        rate: Rate | None = None,
        breaker: BreakerPolicy | None = BreakerPolicy(),  # noqa: B008 - frozen
        timeouts: Timeouts = Timeouts(),
        egress: Egress = Egress(),  # noqa: B008 - frozen
        dry_run: bool = False,
        max_wait: Duration = "10s",
        probes: Sequence[Probe] = (),
        warn_before: Duration = "7d",
        clock: Clock | None = None,
        resolver: Resolver | None = None,
        max_connections: int = 100,
    ) -> None:
        if not _NAME.match(name):
            raise ConfigurationError(
                f"connector name {name!r}: use lowercase letters, digits, '-' or '_', e.g. 'crm'"
            )
        env = f"INTERLOCK_CONNECTOR_{name.upper().replace('-', '_')}_"
        self.name = name
        self.base_url = os.environ.get(env + "BASE_URL", base_url).rstrip("/")
        self.auth = auth or Auth()
        self.rate = Rate.parse(os.environ[env + "RATE"]) if env + "RATE" in os.environ else rate
        self.breaker_policy = breaker
        self.timeouts = Timeouts(
            os.environ.get(env + "CONNECT_TIMEOUT", timeouts.connect),
            os.environ.get(env + "TIMEOUT", timeouts.total),
        )
        self._connect_s, self.total_timeout = (
            seconds(self.timeouts.connect),
            seconds(self.timeouts.total),
        )
        self.egress = egress
        self.dry_run = dry_run or os.environ.get(env + "DRY_RUN", "").lower() in ("1", "true")
        self.max_wait = seconds(max_wait)
        self._probes = tuple(probes)
        self.warn_before = seconds(warn_before)
        self._clock = clock
        self._resolver = resolver
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._ctx: Context | None = None
        self.guards = Guards(self._new_client)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, base_url={self.base_url!r})"

    # -- wiring -------------------------------------------------------------------------
    def attach(self, runtime: Runtime) -> None:
        """Share state through ``runtime`` (an app's); done by ``app.connector(...)``."""
        self.guards.runtime = runtime
        self.guards.breaker = None
        self.guards.limiters = LoopLocal(dict)  # buckets in the app's store from now on

    def bind(self, ctx: Context) -> Self:
        """A copy for one delivery: same guardrails, this delivery's keys and dry-run state."""
        bound = copy.copy(self)
        bound._ctx = ctx
        return bound

    @property
    def runtime(self) -> Runtime:
        if self.guards.runtime is None:
            self.guards.runtime = Runtime()
        return self.guards.runtime

    @property
    def clock(self) -> Clock:
        return self._clock or SYSTEM_CLOCK

    def absolute(self, url: str) -> str:
        return url if "://" in url else f"{self.base_url}/{url.lstrip('/')}"

    def _new_client(self) -> httpx.AsyncClient:
        transport = GuardedTransport(self.egress, limits=self._limits, resolver=self._resolver)
        return httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self.total_timeout, connect=self._connect_s),
            follow_redirects=False,
            headers={"User-Agent": f"interlock-connector/{self.name}"},
        )

    def client(self) -> httpx.AsyncClient:
        """This event loop's HTTP client (egress-guarded, no redirects followed)."""
        return self.guards.clients.get()

    async def aclose(self) -> None:
        """Close the HTTP clients of this connector (all event loops' that are still open)."""
        for client in self.guards.clients.pop_all():
            await client.aclose()

    @property
    def breaker(self) -> Breaker | None:
        shared = self.guards
        if shared.breaker is None and self.breaker_policy is not None:
            runtime = self.runtime
            shared.breaker = Breaker(
                self.name, self.breaker_policy, runtime.shared, self.clock, self._breaker_changed
            )
            breaker = shared.breaker
            runtime.metrics.breakers[self.name] = lambda: STATE_VALUES[breaker.state]
        return shared.breaker

    def _breaker_changed(self, name: str, before: BreakerState, after: BreakerState) -> None:
        if after == "open":
            self.runtime.metrics.alert(name, "breaker_open")
            log.warning("connector.breaker_opened", connector=name, was=before)
        elif after == "closed":
            log.info("connector.breaker_closed", connector=name, was=before)

    def connection_state(self) -> ConnectorState | None:
        """The shared state of this connector, read at most once a second."""
        shared, now = self.guards, time.monotonic()
        if now - shared.state_read_at >= 1.0:
            shared.state = self.runtime.shared.connector_state(self.name)
            shared.state_read_at = now
        return shared.state

    def forget_state(self) -> None:
        self.guards.state_read_at = float("-inf")

    @property
    def dry_runs(self) -> list[DryRun]:
        """Mutating calls that dry-run recorded instead of sending (the last 1,000)."""
        return list(self.guards.dry_runs)

    # -- hooks for vendor connectors ----------------------------------------------------
    def error_details(self, response: httpx.Response) -> ErrorDetails:
        """The vendor's error code and message from a failed answer."""
        return generic_details(response)

    def vendor_error(self, response: httpx.Response) -> VendorError | None:
        """Classify an answer: None for a success."""
        kind = kind_of_status(response.status_code)
        if kind is None:
            return None
        if response.is_redirect:
            where = response.headers.get("location", "?")
            return VendorError("permanent", response.status_code, "redirect", f"to {where}")
        details = self.error_details(response)
        retry = self.rate_signal(response).retry_after if kind == "rate_limited" else None
        return VendorError(
            kind, response.status_code, details.code, details.message, retry, details.required_scope
        )

    def rate_signal(self, response: httpx.Response) -> RateSignal:
        """What the vendor says about our quota (``Retry-After``, ``X-RateLimit-*``...)."""
        return RateSignal.from_headers(response.headers)

    def rate_for(self, call: Call) -> tuple[str, Rate] | None:
        """The bucket a call draws from: per connector, or per account when one is given."""
        if self.rate is None:
            return None
        return (self.name if call.account is None else f"{self.name}@{call.account}"), self.rate

    def mutates(self, call: Call) -> bool:
        """Whether a call changes the vendor's state: it then carries an idempotency key and
        is not sent in dry-run. Any method but GET, HEAD and OPTIONS; vendors whose reads
        are POSTs (HubSpot's search) say which."""
        return call.mutating

    def credentials_refused(self, response: httpx.Response, error: VendorError) -> bool:
        """Whether an answer refused the credentials, so fresh OAuth tokens may cure it (one
        refresh, one more try): a 401; Slack says it with ``200 {"error": "token_expired"}``."""
        return response.status_code == 401

    def simulate(self, request: httpx.Request, idempotency_key: str | None) -> httpx.Response:
        """The dry-run answer to a mutating call; vendors return their own shapes."""
        return calls_.simulate(request, idempotency_key)

    def probes(self) -> Sequence[Probe]:
        """The cheap read-only calls ``interlock connectors check`` makes."""
        return self._probes

    # -- calling ------------------------------------------------------------------------
    def context(self) -> Context | None:
        """The delivery this connector is bound to, or the one running now (if any)."""
        return self._ctx if self._ctx is not None else current_context.get()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        operation: str | None = None,
        idempotency_key: str | None = None,
        account: str | None = None,
    ) -> httpx.Response:
        """Make one call through the guardrails; returns a successful answer or raises the
        classified error (:class:`~interlock.errors.Retryable`, ``RateLimited``,
        ``PermissionDenied``, ``ResourceNotFound``, ``VendorRejected``...)."""
        method = method.upper()
        target = self.absolute(url)
        call = Call(method, target, operation or _operation(method, url), account)
        request = self.client().build_request(
            method, target, params=params, json=json, data=data, content=content, headers=headers
        )
        ctx = self.context()
        mutating = self.mutates(call)
        if mutating and self.idempotency_header:
            key = idempotency_key or (ctx.call_key() if ctx is not None else None)
            if key:
                request.headers[self.idempotency_header] = key
        if ctx is not None:
            if self.correlation_header:
                request.headers[self.correlation_header] = ctx.correlation_id
            request.headers["traceparent"] = calls_.traceparent(ctx.correlation_id)
        if mutating and (self.dry_run or self.runtime.dry_run(ctx.flow if ctx else None)):
            response = pipeline.dry_run(self, call, request, ctx)
            if ctx is not None:
                record = self._record(call, request, response.status_code, 0.0, "dry_run")
                ctx.record_call(record, ctx.now())
            return response
        if ctx is None:
            return await pipeline.guarded(self, call, request)
        at, started = ctx.now(), time.perf_counter()
        status: int | None = None
        outcome = "ok"
        try:
            response = await pipeline.guarded(self, call, request)
            status = response.status_code
            return response
        except HandlerError as exc:
            status = getattr(exc, "status", None)
            outcome = pipeline.outcome_of(exc)
            raise
        except BaseException:
            outcome = "interrupted"  # cancelled (shutdown, timeout) before an answer
            raise
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            ctx.record_call(self._record(call, request, status, elapsed, outcome), at)

    def _record(
        self, call: Call, request: httpx.Request, status: int | None, ms: float, outcome: str
    ) -> calls_.CallRecord:
        key = request.headers.get(self.idempotency_header) if self.idempotency_header else None
        return calls_.CallRecord(
            connector=self.name,
            operation=call.operation,
            method=call.method,
            path=calls_.trace_path(str(request.url)),
            status=status,
            duration_ms=round(ms, 3),
            outcome=outcome,
            idempotency_key=key,
        )

    # -- credentials --------------------------------------------------------------------
    def credentials(self) -> list[Credential]:
        """The credentials in use and their expiry; records the expiry metric and warns
        (``connector.credential_expiring``) within ``warn_before`` of an expiry."""
        return pipeline.report_credentials(self)
