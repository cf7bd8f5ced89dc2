"""Interlock: the registry of flows and contracts, and the composition root.

app = Interlock("acme")   # store from INTERLOCK_DATABASE_URL, default sqlite:///interlock.db

@app.flow(OrderShipped, owner="revops@acme.test", key="account_id")
async def note_in_crm(event: OrderShipped, ctx: Context) -> None: ...

await app.emit(OrderShipped(...), idempotency_key="shopify:1042")
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from interlock.clock import SYSTEM_CLOCK, Clock
from interlock.contracts import Contract
from interlock.drift import DriftConfig
from interlock.durations import Duration
from interlock.errors import ConfigurationError, ContractViolation
from interlock.events import Event
from interlock.flows import SLO, BusinessMetric, Flow, KeySpec, Retry, build_flow
from interlock.ids import event_id, new_correlation_id
from interlock.limits import Limits
from interlock.observability.alerts import Alerting
from interlock.secrets import Secrets
from interlock.sources import WebhookSource, build_source
from interlock.steps import current_context, register_connectors
from interlock.stores import DEFAULT_URL, open_store
from interlock.stores.base import (
    Claimed,
    DirectLease,
    EmitResult,
    NewDelivery,
    NewEvent,
    Store,
)
from interlock.worker import Middleware, Worker, WorkerConfig

if TYPE_CHECKING:
    from interlock.connectors.base import Connector
    from interlock.streams.base import StreamSource
    from interlock.streams.stream import Stream

F = TypeVar("F", bound=Callable[..., Any])
K = TypeVar("K", bound="Connector")


class Interlock:
    """One integration app: its flows, its contracts and its store."""

    def __init__(
        self,
        name: str,
        database_url: str | None = None,
        *,
        durability: str | None = None,
        clock: Clock | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.name = name
        self.database_url = database_url or os.environ.get("INTERLOCK_DATABASE_URL") or DEFAULT_URL
        self.durability = durability or os.environ.get("INTERLOCK_DURABILITY") or "durable"
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.limits = limits or Limits()
        self.flows: dict[str, Flow] = {}
        self.contracts: dict[str, type[Contract]] = {}
        self.middleware: list[Middleware] = []
        self._subscriptions: dict[str, list[Flow]] = {}
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        self._wakes: list[asyncio.Event] = []
        self._local_workers: list[Worker] = []
        self.sources: dict[str, WebhookSource] = {}
        self.streams: dict[str, Stream] = {}
        self.secrets = Secrets(lambda: self.store)
        self.connectors: dict[str, Connector] = {}
        # Dry-run ("dark"): reads go through, creates/updates/deletes are recorded, not sent.
        self.dry_run = os.environ.get("INTERLOCK_DRY_RUN", "").lower() in ("1", "true")
        self.dry_run_flows: set[str] = set()
        # How eagerly the gateway reports vendor drift (set before it starts).
        self.drift_config = DriftConfig()
        # SLO burn-rate alerts: policy, sinks, cadence (see interlock.observability.alerts).
        self.alerting = Alerting()

    def __repr__(self) -> str:
        return f"Interlock({self.name!r}, flows={len(self.flows)}, store={self.database_url!r})"

    # -- the store ------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use."""
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    store = open_store(self.database_url, durability=self.durability)
                    store.ensure_schema()
                    register_connectors(store, self.connectors)
                    self._store = store
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- declarations -----------------------------------------------------------------
    def contract(self, cls: type[Contract]) -> type[Contract]:
        """Register a contract so raw emits (CLI, API) of its event type validate against it."""
        name = cls.event_type()
        existing = self.contracts.get(name)
        if existing is not None and existing is not cls and existing.__version__ > cls.__version__:
            return cls
        self.contracts[name] = cls
        return cls

    def flow(
        self,
        contract: type[Contract],
        *,
        owner: str,
        system_of_record: str | None = None,
        key: KeySpec = None,
        idempotency: KeySpec = None,
        slo: SLO | None = None,
        retry: Retry | None = None,
        on_dead: str = "block",
        name: str | None = None,
        on_missing: str | None = None,
        on_invalid: str | None = None,
        on_stale: str = "skip",
        park_timeout: Duration | None = None,
        metric: BusinessMetric | None = None,
    ) -> Callable[[F], F]:
        """Declare a flow reacting to ``contract`` events.

        ``key`` (a field name or a callable) is the ordering key: deliveries with
        the same key run one at a time in event order. ``idempotency`` makes a
        second event with the same value a skipped duplicate. ``on_dead`` says
        whether a dead-lettered delivery blocks its lane until an operator acts
        (``"block"``, the default) or lets it continue (``"skip"``). ``metric`` declares a
        :class:`~interlock.flows.BusinessMetric` shown beside the SLO.

        Async handlers run on the worker's event loop; plain functions run in a
        thread pool and get a :class:`~interlock.steps.SyncContext`.

        Error semantics (see :mod:`interlock.semantics`): ``on_missing`` (a
        :class:`~interlock.errors.MissingRecord`) and ``on_invalid`` (the stored event
        fails the flow's contract, or is newer than the version the flow pins) are each
        ``"retry"``, ``"dead"``, ``"skip"`` or ``"park"``, defaulting to the contract's,
        then to retry and dead. With a contract ``marker``, ``on_stale`` (``"skip"`` or
        ``"park"``) handles an event older than the entity's last applied one. Parks wait
        at most ``park_timeout``.
        """

        def register(handler: F) -> F:
            flow = build_flow(
                handler,
                contract,
                name=name,
                owner=owner,
                system_of_record=system_of_record,
                key=key,
                idempotency=idempotency,
                retry=retry,
                slo=slo,
                on_dead=on_dead,
                on_missing=on_missing,
                on_invalid=on_invalid,
                on_stale=on_stale,
                park_timeout=park_timeout,
                metric=metric,
            )
            if flow.name in self.flows:
                raise ConfigurationError(
                    f"flow {flow.name!r} is declared twice; give one of them name=..."
                )
            self.flows[flow.name] = flow
            self._subscriptions.setdefault(flow.event_type, []).append(flow)
            self.contract(contract)
            return handler

        return register

    def connector(self, connector: K) -> K:
        """Register ``connector`` (flows get it with ``ctx.connector(name)``) and return it.

        Registered, it shares rate limits, breaker state and OAuth tokens with every worker
        process through the store, and follows ``app.dry_run`` and ``app.dry_run_flows``.
        """
        from interlock.connectors.runtime import register

        if connector.name in self.connectors:
            raise ConfigurationError(f"connector {connector.name!r} is registered twice")
        register(self, connector)
        self.connectors[connector.name] = connector
        return connector

    def webhook(
        self,
        name: str,
        *,
        verify: str,
        secret: str | Sequence[str],
        topic_header: str | None = None,
        topic_field: str | None = None,
        max_body_bytes: int = 1024 * 1024,
        **options: Any,
    ) -> WebhookSource:
        """Declare a webhook source at ``POST /hooks/{name}[/{topic}]``.

        ``verify`` names the signature scheme (``standard-webhooks``, ``stripe``,
        ``github``, ``shopify``, ``slack`` or ``hmac`` with ``options``); ``secret``
        names the secret (two names during a rotation), resolved from the
        environment as ``INTERLOCK_SECRET_<NAME>``. Map payloads to contracts with
        ``@source.maps("topic")``.
        """
        if name in self.sources:
            raise ConfigurationError(f"webhook source {name!r} is declared twice")
        source = build_source(
            name,
            verify=verify,
            secret=secret,
            topic_header=topic_header,
            topic_field=topic_field,
            max_body_bytes=max_body_bytes,
            options=options,
        )
        self.sources[name] = source
        return source

    def stream(
        self,
        name: str,
        source: StreamSource,
        *,
        topic_field: str | None = None,
        wait: float = 1.0,
        backoff_cap: float = 30.0,
    ) -> Stream:
        """Declare a stream source: messages of a broker (``interlock.streams.nats.source``)
        become events through the mappings registered with ``@stream.maps("subject")``.

        ``interlock run`` and ``interlock worker`` consume it; each message is acknowledged
        only once its events are durable, and a redelivered message adds nothing. With
        ``topic_field``, a JSON body's field of that name picks the mapping instead of the
        subject. See docs/streams.md.
        """
        if name in self.streams:
            raise ConfigurationError(f"stream {name!r} is declared twice")
        from interlock.streams.intake import StreamRejected
        from interlock.streams.stream import build_stream  # imported when streams are used

        self.contract(StreamRejected)  # the record of a message that could not be stored
        stream = build_stream(
            name, source, topic_field=topic_field, wait=wait, backoff_cap=backoff_cap
        )
        self.streams[name] = stream
        return stream

    # -- emitting ---------------------------------------------------------------------
    def prepare(
        self,
        event: Contract,
        *,
        source: str = "api",
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        subject: str | None = None,
        occurred_at: float | None = None,
    ) -> NewEvent:
        """Build the stored form of an event and its deliveries (validated, limits checked)."""
        if not isinstance(event, Contract):
            raise ConfigurationError(f"emit takes a Contract instance, got {type(event).__name__}")
        now = self.clock.now()
        data = event.model_dump(mode="json")
        data_json = orjson.dumps(data)
        self.limits.check("max_payload_bytes", len(data_json))
        eid = event_id(now)
        envelope = Event(
            id=eid,
            type=event.event_type(),
            version=type(event).__version__,
            source=source,
            data=data,
            subject=subject if subject is not None else event.subject(),
            idempotency_key=idempotency_key,
            correlation_id=correlation_id or new_correlation_id(),
            causation_id=causation_id,
            occurred_at=occurred_at if occurred_at is not None else now,
            received_at=now,
        )
        deliveries = tuple(
            NewDelivery(flow.name, flow.lane_of(event, eid), flow.idempotency_of(event))
            for flow in self._subscriptions.get(envelope.type, ())
        )
        return NewEvent(envelope, data_json, deliveries)

    def _in_flow_defaults(self, kwargs: dict[str, Any]) -> None:
        ctx = current_context.get()
        if ctx is None:
            return
        if kwargs.get("causation_id") is None:
            kwargs["causation_id"] = ctx.event_id
        if kwargs.get("correlation_id") is None:
            kwargs["correlation_id"] = ctx.correlation_id

    async def emit(
        self,
        event: Contract,
        *,
        source: str = "api",
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        subject: str | None = None,
        occurred_at: float | None = None,
    ) -> str:
        """Store ``event`` durably with one delivery per subscribed flow; return its id.

        Emitting the same ``(source, idempotency_key)`` again returns the first
        event's id and creates nothing. Inside a flow, the new event is caused
        by the current one and keeps its correlation id.
        """
        ctx = current_context.get()
        if ctx is None:  # the common case: emitted from outside any flow
            item = self.prepare(
                event,
                source=source,
                idempotency_key=idempotency_key,
                correlation_id=correlation_id,
                causation_id=causation_id,
                subject=subject,
                occurred_at=occurred_at,
            )
            return await self._store_and_dispatch(item)
        if idempotency_key is None and source == "api":
            return await ctx.emit(event, subject=subject)
        kwargs: dict[str, Any] = {
            "source": source,
            "idempotency_key": idempotency_key,
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "subject": subject,
            "occurred_at": occurred_at,
        }
        self._in_flow_defaults(kwargs)
        return await self._store_and_dispatch(self.prepare(event, **kwargs))

    async def _store_and_dispatch(self, item: NewEvent) -> str:
        """Store one event; with a worker of this process on this loop and free slots, the
        deliveries that head their lane are leased to it in the same transaction and start
        at once (no claim round trip)."""
        worker = self._local_worker() if item.deliveries else None
        reserved = worker.reserve(len(item.deliveries)) if worker is not None else 0
        if worker is not None and reserved:
            lease = DirectLease(worker.name, item.event.received_at + worker.config.lease, reserved)
            item = dataclasses.replace(item, lease=lease)
        try:
            (result,) = await self.store.emit([item])
        except BaseException:
            if worker is not None and reserved:
                worker.adopt([], reserved)
            raise
        if worker is not None and reserved:
            event = dataclasses.replace(item.event, seq=result.seq)
            claimed = [
                Claimed(did, flow, lane, 1, 0, 0, 1, event.received_at, event, {})
                for did, flow, lane in result.leased
            ]
            worker.adopt(claimed, reserved)
        self._notify()
        return result.event_id

    def _local_worker(self) -> Worker | None:
        if not self._local_workers:
            return None
        loop = asyncio.get_running_loop()
        for worker in self._local_workers:
            if worker._loop is loop:
                return worker
        return None

    def emit_sync(
        self,
        event: Contract,
        *,
        source: str = "api",
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        subject: str | None = None,
        occurred_at: float | None = None,
    ) -> str:
        """The blocking twin of :meth:`emit`, for scripts and sync code (sync flows included)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise ConfigurationError(
                "emit_sync() was called from async code (a running event loop): "
                "use `await app.emit(...)` there"
            )
        kwargs: dict[str, Any] = {
            "source": source,
            "idempotency_key": idempotency_key,
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "subject": subject,
            "occurred_at": occurred_at,
        }
        ctx = current_context.get()
        if ctx is not None and idempotency_key is None and source == "api":
            kwargs.update(ctx.emit_options(event))
        self._in_flow_defaults(kwargs)
        item = self.prepare(event, **kwargs)
        # No running loop here (refused above): workers notice through the store.
        (result,) = self.store.emit_sync([item])
        return result.event_id

    async def emit_many(
        self,
        events: Iterable[Contract | tuple[Contract, str | None]],
        *,
        source: str = "api",
        correlation_id: str | None = None,
    ) -> list[str]:
        """Emit many events in one transaction (all stored or none); items may be
        ``(event, idempotency_key)``. ``correlation_id`` is shared by all of them."""
        items = []
        for entry in events:
            event, key = entry if isinstance(entry, tuple) else (entry, None)
            items.append(
                self.prepare(
                    event, source=source, idempotency_key=key, correlation_id=correlation_id
                )
            )
        results = await self.store.emit(items)
        self._notify()
        return [r.event_id for r in results]

    async def emit_prepared(self, items: list[NewEvent]) -> list[EmitResult]:
        """Store events built by :meth:`prepare` in one transaction (all or none) and wake
        this process's workers; results are in the order of ``items``."""
        results = await self.store.emit(items)
        self._notify()
        return results

    def parse(self, event_type: str, data: dict[str, Any], version: int | None = None) -> Contract:
        """Validate raw ``data`` of ``event_type`` against its registered contract."""
        cls = self.contracts.get(event_type)
        if cls is None:
            known = ", ".join(sorted(self.contracts)) or "none"
            raise ContractViolation(f"unknown event type {event_type!r} (this app knows: {known})")
        return cls.load(data, version)

    # -- workers ----------------------------------------------------------------------
    def worker(self, config: WorkerConfig | None = None, **settings: Any) -> Worker:
        """A worker for this app; ``settings`` override :class:`WorkerConfig` fields."""
        if config is None:
            config = WorkerConfig(**settings)
        return Worker(self, config)

    def _wake_event(self) -> asyncio.Event:
        event = asyncio.Event()
        self._wakes.append(event)
        return event

    def _forget_wake_event(self, event: asyncio.Event) -> None:
        if event in self._wakes:
            self._wakes.remove(event)

    def _notify(self) -> None:
        for event in self._wakes:
            event.set()
