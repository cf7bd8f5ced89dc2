"""What a connector uses from the app it is registered with — or stand-alone defaults.

Registered (``app.connector(HttpConnector(...))``), a connector shares its rate
limits, breaker, connection health and OAuth refreshes with every worker
process through the app's store, keeps tokens in the app's encrypted secrets,
and follows the app's dry-run switches. Stand-alone, it keeps all of that in
memory for this process only.

Flows get registered connectors with ``ctx.connector("crm")``; the store a
delivery was claimed from tells which app's connectors those are.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import socket
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from interlock.connectors.breaker import SharedBreakers
from interlock.connectors.limiter import PermitSource
from interlock.connectors.memory import MemorySecrets, MemoryShared
from interlock.connectors.metrics import ConnectorMetrics
from interlock.errors import ConfigurationError
from interlock.secrets import Resolved

if TYPE_CHECKING:
    from interlock.app import Interlock
    from interlock.connectors.base import Connector
    from interlock.stores.base import ConnectorState

T = TypeVar("T")
C = TypeVar("C", bound="Connector")


class SecretSource(Protocol):
    """Named secrets: ``app.secrets``, or the environment for a stand-alone connector."""

    def lookup(self, name: str) -> Resolved: ...

    def forget(self, name: str | None = None) -> None: ...

    def encrypt(self, value: str) -> bytes: ...

    async def put(
        self,
        name: str,
        value: str,
        *,
        actor: str,
        now: float,
        expires_at: float | None = None,
        audited: bool = False,
    ) -> int: ...


class Shared(PermitSource, SharedBreakers, Protocol):
    """State shared by every process of an app: the store's connector operations."""

    def connector_states(self) -> list[ConnectorState]: ...

    async def set_connection(
        self, name: str, status: str, *, reason: str | None, seed: str | None, now: float
    ) -> None: ...

    async def take_lock(self, name: str, holder: str, *, until: float, now: float) -> bool: ...

    async def release_lock(self, name: str, holder: str) -> None: ...


def process_holder() -> str:
    """Who holds a lock: this host and process, and a random part for this runtime."""
    return f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"


class Runtime:
    """The app side of a connector (see the module docstring)."""

    def __init__(self, app: Interlock | None = None) -> None:
        self._app = weakref.ref(app) if app is not None else None
        self._memory: MemoryShared | None = None
        self._memory_secrets: MemorySecrets | None = None
        self.metrics = ConnectorMetrics()
        self.holder = process_holder()

    @property
    def app(self) -> Interlock | None:
        return self._app() if self._app is not None else None

    @property
    def shared(self) -> Shared:
        app = self.app
        if app is not None:
            return app.store
        if self._memory is None:
            self._memory = MemoryShared()
        return self._memory

    @property
    def secrets(self) -> SecretSource:
        app = self.app
        if app is not None:
            return app.secrets
        if self._memory_secrets is None:
            self._memory_secrets = MemorySecrets()
        return self._memory_secrets

    def dry_run(self, flow: str | None) -> bool:
        """Whether the app runs dark: entirely, or for ``flow``."""
        app = self.app
        if app is None:
            return False
        return bool(app.dry_run) or (flow is not None and flow in app.dry_run_flows)


_runtimes: weakref.WeakKeyDictionary[Interlock, Runtime] = weakref.WeakKeyDictionary()


def runtime_of(app: Interlock) -> Runtime:
    """The one runtime of ``app`` in this process (its connectors share its metrics)."""
    runtime = _runtimes.get(app)
    if runtime is None:
        runtime = _runtimes[app] = Runtime(app)
    return runtime


def register(app: Interlock, connector: Connector) -> None:
    """Attach ``connector`` to ``app`` (called by ``app.connector(...)``)."""
    connector.attach(runtime_of(app))


def find(registered: Mapping[str, Connector], which: str | type[C]) -> Connector:
    """The registered connector named ``which``, or the only one of that class."""
    if isinstance(which, str):
        found = registered.get(which)
    else:
        matches = [c for c in registered.values() if isinstance(c, which)]
        if len(matches) > 1:
            names = ", ".join(sorted(c.name for c in matches))
            raise ConfigurationError(
                f"several connectors are {which.__name__}s ({names}); ask by name"
            )
        found = matches[0] if matches else None
    if found is None:
        wanted = which if isinstance(which, str) else which.__name__
        known = ", ".join(sorted(registered)) or "none"
        raise ConfigurationError(
            f"no connector {wanted!r} is registered with this app (registered: {known}); "
            "add it with app.connector(...)"
        )
    return found


class Blocking:
    """A connector for a plain (``def``) flow: its coroutine methods run on the worker's
    event loop while the handler's thread waits for them (``SyncContext.connector``)."""

    def __init__(self, connector: Connector, wait: Callable[[Awaitable[Any]], Any]) -> None:
        self._connector = connector
        self._wait = wait

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._connector, name)
        if not callable(attribute):
            return attribute

        def blocking(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            return self._wait(result) if inspect.isawaitable(result) else result

        return blocking


class LoopLocal(Generic[T]):
    """One value per running event loop (httpx clients and asyncio locks are loop-bound)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        value = self._values.get(loop)
        if value is None:
            value = self._values[loop] = self._factory()
        return value

    def pop_all(self) -> list[T]:
        values = list(self._values.values())
        self._values.clear()
        return values
