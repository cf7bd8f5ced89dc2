"""The base of every vendor simulator: state, faults, a request log, control endpoints.

A simulator is an in-memory vendor. Subclasses declare their collections and
routes and answer in the vendor's own shapes; this base gives each one a lock
(handlers run under it, so state is consistent even when the test thread reads
it while the server thread writes), seeded randomness for ids, the
:class:`~interlock.sandbox.faults.Faults` and
:class:`~interlock.sandbox.requestlog.RequestLog` every simulator has, and the
control endpoints another process uses to steer it:

- ``GET /_sandbox/faults`` and ``POST /_sandbox/faults`` (JSON settings and actions)
- ``GET /_sandbox/state`` (collections, credentials, request count)
- ``GET /_sandbox/requests`` and ``POST /_sandbox/reset``
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from interlock.errors import ConfigurationError
from interlock.sandbox.faults import Decision, Faults
from interlock.sandbox.layer import FaultLayer
from interlock.sandbox.requestlog import RequestLog
from interlock.sandbox.webhooks import SignedWebhook, deliver

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class Reply(Exception):
    """Raised inside a handler to answer at once (an auth failure, a vendor error)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True, slots=True)
class Call:
    """One vendor request as a handler sees it: the Starlette request and its whole body."""

    request: Request
    body: bytes

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def params(self) -> Mapping[str, Any]:
        return self.request.path_params

    @property
    def query(self) -> QueryParams:
        return self.request.query_params

    @property
    def headers(self) -> Headers:
        return self.request.headers

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not JSON."""
        try:
            return orjson.loads(self.body) if self.body.strip() else None
        except orjson.JSONDecodeError as exc:
            raise ValueError(str(exc)) from None


Handler = Callable[[Call], Response]


def json_response(
    data: Any,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    media_type: str = "application/json",
) -> Response:
    """A JSON answer serialised with orjson (``data`` None and 204: an empty body)."""
    body = b"" if data is None else orjson.dumps(data)
    return Response(body, status, dict(headers or {}), media_type=None if not body else media_type)


def iso(ts: float) -> str:
    """``ts`` as an ISO 8601 UTC time with milliseconds and a ``Z``, as HubSpot writes it."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Simulator:
    """A vendor simulator; subclasses set ``name`` and ``collections`` and implement the hooks."""

    name: ClassVar[str] = ""
    collections: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, seed: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.seed = seed
        self.clock = clock
        self.lock = threading.RLock()
        self.faults = Faults(seed=seed, clock=clock)
        self.requests = RequestLog()
        self.url = ""  # set by the runner once the simulator listens
        self.state: dict[str, dict[Any, dict[str, Any]]] = {}
        self.rng = random.Random(seed)
        self._app: ASGIApp | None = None
        self.reset()

    # -- hooks for vendors -----------------------------------------------------------

    def setup(self) -> None:
        """Create per-run helpers (token issuers, limiters, caches); called by :meth:`reset`."""

    def routes(self) -> Sequence[BaseRoute]:
        """The vendor's routes, built with :meth:`route`."""
        raise NotImplementedError

    @property
    def credentials(self) -> dict[str, str]:
        """The test credentials this simulator accepts (and secrets its webhooks are signed with)."""
        raise NotImplementedError

    def handle(self, call: Call, handler: Handler) -> Response:
        """Run ``handler`` (under the lock); vendors wrap it with auth, limits, idempotency."""
        return handler(call)

    def fault_response(self, decision: Decision) -> Response:
        """The vendor's answer for an injected error, 429 or outage."""
        raise NotImplementedError

    def not_found(self, request: Request, status: int) -> Response:
        """The vendor's answer for an unknown path (404) or method (405)."""
        return json_response({"error": "Not Found"}, status)

    def webhook(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        url: str = "",
        **options: Any,
    ) -> SignedWebhook:
        """A webhook body and headers, signed exactly as the vendor signs them.

        ``url`` is where it will be sent (HubSpot signs it); ``options`` are the vendor's.
        """
        raise ConfigurationError(f"the {self.name} simulator sends no webhooks")

    # -- shared machinery ----------------------------------------------------------------

    def reset(self) -> None:
        """Empty state, no faults, an empty request log, randomness back at its seed."""
        with self.lock:
            self.rng = random.Random(self.seed)
            self.state = {name: {} for name in self.collections}
            self.faults.clear()
            self.requests.clear()
            self.setup()

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON-able data (``GET /_sandbox/state``)."""
        with self.lock:
            return {
                name: [dict(obj) for obj in objects.values()]
                for name, objects in self.state.items()
            }

    def random_id(self, prefix: str, length: int = 24) -> str:
        return prefix + "".join(self.rng.choice(_ALNUM) for _ in range(length))

    def route(self, path: str, handler: Handler, methods: Sequence[str] = ("GET",)) -> Route:
        """A Starlette route that runs ``handler`` through :meth:`handle` under the lock."""

        async def endpoint(request: Request) -> Response:
            call = Call(request, await request.body())
            with self.lock:
                try:
                    return self.handle(call, handler)
                except Reply as reply:
                    return reply.response

        return Route(path, endpoint, methods=list(methods))

    @property
    def app(self) -> ASGIApp:
        """The ASGI app: control endpoints, the vendor's routes, behind the fault layer."""
        if self._app is None:

            async def unknown(request: Request, exc: Exception) -> Response:
                status = exc.status_code if isinstance(exc, HTTPException) else 404
                with self.lock:
                    return self.not_found(request, status)

            inner = Starlette(
                routes=[*self._control_routes(), *self.routes()],
                exception_handlers={404: unknown, 405: unknown},
            )
            self._app = FaultLayer(inner, self)
        return self._app

    async def send_webhook(
        self,
        url: str,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        timeout: float = 10.0,
        **options: Any,
    ) -> httpx.Response:
        """POST a signed webhook to ``url`` (e.g. the gateway's ``/hooks/stripe``)."""
        signed = self.webhook(event_type, data, url=url, **options)
        return await deliver(url, signed, timeout=timeout)

    def _control_routes(self) -> list[BaseRoute]:
        async def faults(request: Request) -> Response:
            if request.method == "POST":
                try:
                    data = orjson.loads(await request.body() or b"{}")
                    if not isinstance(data, dict):
                        raise ConfigurationError("the body must be a JSON object of settings")
                    settings = self.faults.update(data)
                except (orjson.JSONDecodeError, ConfigurationError, TypeError, ValueError) as exc:
                    return json_response({"error": str(exc)}, 400)
                return json_response(settings.to_json())
            return json_response(self.faults.settings.to_json())

        async def state(request: Request) -> Response:
            return json_response(
                {
                    "vendor": self.name,
                    "url": self.url,
                    "credentials": self.credentials,
                    "requests": len(self.requests),
                    "state": self.snapshot(),
                }
            )

        async def requests(request: Request) -> Response:
            return json_response(self.requests.summary())

        async def reset(request: Request) -> Response:
            self.reset()
            return json_response({"ok": True})

        return [
            Route("/_sandbox/faults", faults, methods=["GET", "POST"]),
            Route("/_sandbox/state", state, methods=["GET"]),
            Route("/_sandbox/requests", requests, methods=["GET"]),
            Route("/_sandbox/reset", reset, methods=["POST"]),
        ]
