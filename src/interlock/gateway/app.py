"""The gateway ASGI app: webhook ingress and health, over one :class:`~interlock.Interlock`.

gateway = build_gateway(app)      # a Starlette app; serve it with uvicorn
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from interlock.app import Interlock
from interlock.errors import StoreError
from interlock.gateway.ingress import Ingress
from interlock.gateway.metrics import metrics_endpoint
from interlock.gateway.problems import Problem, problem_response
from interlock.stores.sql import migrations


def build_gateway(app: Interlock) -> Starlette:
    """The ASGI app for ``app``: ``POST /hooks/{source}[/{topic}]``, ``/healthz``, ``/readyz``,
    ``/metrics``."""
    ingress = Ingress(app)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            version = app.store.schema_version()
        except StoreError:
            return problem_response(Problem(503, "Store unreachable", "the store cannot be read"))
        wanted = migrations("sqlite")[-1].version
        if version != wanted:
            return problem_response(
                Problem(503, "Migrations pending", f"schema v{version}, this code needs v{wanted}")
            )
        return JSONResponse({"status": "ready", "schema": version})

    gateway = Starlette(
        routes=[
            Route("/hooks/{source}", ingress.handle, methods=["POST"]),
            Route("/hooks/{source}/{topic:path}", ingress.handle, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint(app, ingress), methods=["GET"]),
        ]
    )
    gateway.state.ingress = ingress
    return gateway
