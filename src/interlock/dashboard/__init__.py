"""The dashboard: the gateway's pages at ``/`` for operators and everyone else.

    gateway.include_router(build_dashboard(app, auth))

Overview (``/``), flow (``/ui/flows/{name}``), search and trace (``/ui/search``),
dead letters (``/ui/dead-letters``), connectors (``/ui/connectors``) and audit
(``/ui/audit``), behind a login with an API token (``/ui/login``). Pages are
rendered on the server (Jinja2, autoescaped) and kept current by a small script
polling each page's live part; styles and script are files of this package served
at ``/ui/static/``. Nothing is loaded from anywhere else. See docs/dashboard.md.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from interlock.dashboard.deadletters import dead_letter_routes
from interlock.dashboard.login import login_routes
from interlock.dashboard.pages import page_routes
from interlock.dashboard.site import Dashboard
from interlock.dashboard.web import secure

if TYPE_CHECKING:
    from interlock.app import Interlock
    from interlock.gateway.auth import Auth

__all__ = ["Dashboard", "build_dashboard"]

_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _static() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for item in resources.files("interlock.dashboard").joinpath("static").iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in _TYPES:
            files[item.name] = (item.read_bytes(), _TYPES[suffix])
    return files


def build_dashboard(app: Interlock, auth: Auth) -> APIRouter:
    """The dashboard's routes over ``app``; ``auth`` counts its refusals."""
    dashboard = Dashboard(app, auth)
    router = APIRouter(include_in_schema=False)
    files = _static()

    @router.get("/ui/static/{name}")
    def static(request: Request, name: str) -> Response:
        found = files.get(name)
        if found is None:
            return secure(Response("not found", status_code=404, media_type="text/plain"))
        body, media_type = found
        response = secure(Response(body, media_type=media_type))
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    router.include_router(login_routes(dashboard))
    router.include_router(page_routes(dashboard))
    router.include_router(dead_letter_routes(dashboard))
    return router
