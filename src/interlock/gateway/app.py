"""The gateway ASGI app over one :class:`~interlock.Interlock`.

gateway = build_gateway(app)      # an ASGI app; serve it with uvicorn

Routes: ``POST /hooks/{source}[/{topic}]`` (verified webhooks), ``POST /events``
(CloudEvents), ``/api/v1/...`` (REST, bearer tokens), ``/healthz``, ``/readyz``,
``/metrics`` and ``/openapi.json``. Every error answer is RFC 9457
``application/problem+json``.

Webhooks take a lean path (:class:`Gateway`): their POSTs go straight to the
ingress through the same HTTP guard and the same handlers for store failures and
crashes, without FastAPI's routing and dependency solving; FastAPI documents
their routes in ``/openapi.json`` and serves everything else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.convertors import Convertor
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from interlock import __version__
from interlock.app import Interlock
from interlock.dashboard import build_dashboard
from interlock.errors import StoreError
from interlock.gateway import problems
from interlock.gateway.api import build_api
from interlock.gateway.auth import Auth, ProblemError
from interlock.gateway.cloudevents import build_events
from interlock.gateway.drift_api import build_drift_api
from interlock.gateway.ingress import Ingress
from interlock.gateway.metrics import metrics_endpoint
from interlock.gateway.middleware import GatewayMiddleware, HttpLimits
from interlock.gateway.problems import Problem, problem_response
from interlock.gateway.slo_api import build_slo_api
from interlock.observability import process_metrics
from interlock.stores.sql import migrations

log = structlog.get_logger("interlock.gateway")

_PROBLEM = {"content": {"application/problem+json": {"schema": {"type": "object"}}}}

HOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Verified, but no mapping wants this payload: nothing stored"},
    202: {
        "description": "Verified and durably stored (or a retry of a stored delivery); "
        "`drift` lists the shape changes a valid payload showed (see docs/contracts.md)"
    },
    400: {"description": "Malformed JSON, invalid UTF-8 or nesting too deep", **_PROBLEM},
    401: {"description": "Missing or wrong signature, or a stale timestamp", **_PROBLEM},
    404: {"description": "Unknown source", **_PROBLEM},
    408: {"description": "The body did not arrive in time", **_PROBLEM},
    413: {"description": "Body over the source's limit", **_PROBLEM},
    415: {"description": "Not a JSON content type", **_PROBLEM},
    422: {"description": "The payload fails its contract", **_PROBLEM},
    431: {"description": "Too many or too large header fields", **_PROBLEM},
    503: {"description": "The store is unavailable or the source misconfigured", **_PROBLEM},
}


def _hook_openapi(with_topic: bool) -> dict[str, Any]:
    names = ["source", "topic"] if with_topic else ["source"]
    return {
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in names
        ],
        **HOOK_BODY,
    }


HOOK_BODY = {
    "requestBody": {
        "required": True,
        "description": "The vendor's payload, exactly as signed.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def allowed_methods(gateway: FastAPI, scope: Scope) -> set[str]:
    """The methods some route serves at the request's path."""
    methods: set[str] = set()
    for route in gateway.router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match is not Match.NONE and isinstance(route, BaseRoute):
            methods.update(getattr(route, "methods", None) or ())
    return methods


HOOK_PATHS = ("/hooks/{source}", "/hooks/{source}/{topic:path}")


class Gateway(FastAPI):
    """FastAPI, with a lean path taken before its middleware and routing.

    :meth:`route_posts` hands ``POST`` requests whose path matches some templates
    to another ASGI app; the paths are matched exactly as Starlette's router would
    (same regular expressions and convertors, tried in order), and the app gets the
    path parameters in ``scope["path_params"]``. Everything else, and everything
    under a ``root_path``, goes through FastAPI as usual.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._posts: ASGIApp | None = None
        self._prefix = ""
        self._paths: list[tuple[re.Pattern[str], dict[str, Convertor[Any]]]] = []

    def route_posts(self, paths: Sequence[str], app: ASGIApp) -> None:
        """Serve ``POST`` requests to ``paths`` (route templates, which share a literal
        prefix) with ``app``, ahead of FastAPI."""
        prefixes = {path.split("{", 1)[0] for path in paths}
        if len(prefixes) != 1:
            raise ValueError(f"the paths {list(paths)} do not share one literal prefix")
        self._prefix = prefixes.pop()
        self._paths = [(regex, convertors) for regex, _, convertors in map(compile_path, paths)]
        self._posts = app

    def post_params(self, scope: Scope) -> dict[str, Any] | None:
        """The path parameters when ``scope`` is a ``POST`` that :meth:`route_posts`
        serves, else None."""
        if (
            self._posts is None
            or scope["method"] != "POST"
            or not scope["path"].startswith(self._prefix)
            or scope.get("root_path")
            or self.root_path
        ):
            return None
        path: str = scope["path"]
        for regex, convertors in self._paths:
            match = regex.match(path)
            if match is not None:
                return {
                    key: convertors[key].convert(value) for key, value in match.groupdict().items()
                }
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        posts = self._posts
        if posts is not None and scope["type"] == "http":
            params = self.post_params(scope)
            if params is not None:
                scope["app"] = self
                scope["path_params"] = params
                await posts(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def build_gateway(app: Interlock, *, http: HttpLimits | None = None) -> Gateway:
    """The ASGI app for ``app``; ``http`` sets header limits and the body timeout."""
    ingress = Ingress(app)
    auth = Auth(app)
    gateway = Gateway(
        title="interlock",
        version=__version__,
        description=(
            "Verified webhook ingress, a CloudEvents event API and the REST API of an "
            "interlock app. Errors are RFC 9457 problem documents."
        ),
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )

    @gateway.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return problem_response(exc.problem, exc.headers)

    @gateway.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ())) or "(request)",
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "invalid"),
            }
            for err in exc.errors()
        ]
        return problem_response(problems.invalid_request(errors))

    @gateway.exception_handler(HTTPException)
    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: "Not found", 405: "Method not allowed"}
        problem = Problem(
            exc.status_code if 400 <= exc.status_code <= 599 else 400,
            titles.get(exc.status_code, "HTTP error"),
            "no such endpoint" if exc.status_code == 404 else str(exc.detail),
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only the first route's
            headers["Allow"] = ", ".join(sorted(allowed_methods(gateway, request.scope)))
        return problem_response(problem, headers)

    @gateway.exception_handler(StoreError)
    async def on_store(request: Request, exc: Exception) -> Response:
        log.error("gateway.store_failed", path=request.url.path, error=str(exc))
        return problem_response(problems.overloaded(1, "the store is unavailable"))

    @gateway.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("gateway.crashed", path=request.url.path)
        correlation = getattr(request.state, "correlation_id", None)
        return problem_response(
            Problem(500, "Internal error", "the gateway failed; the error is in its log"),
            {"X-Correlation-ID": correlation} if correlation else None,
        )

    async def hook(request: Request) -> Response:
        return await ingress.handle(request)

    async def lean_hook(scope: Scope, receive: Receive, send: Send) -> None:
        # What FastAPI would do around `hook` for these requests: StoreError's handler.
        request = Request(scope, receive)
        try:
            answer = await ingress.answer(request)
        except StoreError as exc:
            await (await on_store(request, exc))(scope, receive, send)
            return
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": answer.headers()}
        )
        await send({"type": "http.response.body", "body": answer.body})

    # Documented (and served under a root_path) by FastAPI; served by the lean path.
    for path in HOOK_PATHS:
        gateway.add_api_route(
            path,
            hook,
            methods=["POST"],
            tags=["webhooks"],
            summary="Receive a signed webhook"
            + (" (topic in the path)" if "topic" in path else ""),
            responses=HOOK_RESPONSES,
            openapi_extra=_hook_openapi("topic" in path),
            response_class=JSONResponse,
        )

    @gateway.get("/healthz", tags=["health"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @gateway.get(
        "/readyz",
        tags=["health"],
        summary="The store is reachable and its schema current",
        responses={503: {"description": "Not ready", **_PROBLEM}},
    )
    async def readyz() -> Response:
        try:
            version = app.store.schema_version()
        except StoreError:
            return problem_response(Problem(503, "Store unreachable", "the store cannot be read"))
        wanted = migrations(app.store.dialect)[-1].version
        if version != wanted:
            return problem_response(
                Problem(503, "Migrations pending", f"schema v{version}, this code needs v{wanted}")
            )
        return JSONResponse({"status": "ready", "schema": version})

    events = build_events(app, auth)
    gateway.add_route(
        "/metrics",
        metrics_endpoint(app, ingress, auth, events.intake),
        methods=["GET"],
        include_in_schema=False,
    )
    gateway.include_router(build_api(app, auth, ingress))
    gateway.include_router(build_drift_api(app, auth))
    gateway.include_router(build_slo_api(app, auth))
    gateway.include_router(events)
    gateway.include_router(build_dashboard(app, auth))
    gateway.add_middleware(GatewayMiddleware, limits=http, metrics=process_metrics(app))
    # The lean path: the same guard inside the same 500 handler, then the ingress.
    guarded = GatewayMiddleware(lean_hook, limits=http, metrics=process_metrics(app))
    gateway.route_posts(HOOK_PATHS, ServerErrorMiddleware(guarded, handler=on_crash))
    gateway.state.ingress = ingress
    gateway.state.auth = auth
    return gateway
