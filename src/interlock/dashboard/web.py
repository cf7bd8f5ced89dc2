"""What every dashboard page shares: templates, security headers, forms, the logged-in user.

Templates are Jinja2 with autoescaping on, so every value from an event renders as
text. Every answer carries a strict Content-Security-Policy (scripts, styles and
connections from this origin only, no inline script or style, no framing) and is
not cached. A request with the ``X-Dashboard-Fragment`` header gets only the page's
``live`` block: the dashboard's script polls it to update the page without reload.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from interlock.dashboard.sessions import Session
from interlock.durations import humanize
from interlock.gateway.problems import Problem, problem_response
from interlock.tokens import TokenRow, allows

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
FRAGMENT_HEADER = "x-dashboard-fragment"
MAX_FORM_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class User:
    """The logged-in user of a request: their session and the token they logged in with."""

    session: Session
    token: TokenRow

    @property
    def can_act(self) -> bool:
        """Whether this user may replay and discard (operator or admin)."""
        return allows(self.token.role, "operator")


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f} %"


def seconds_text(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return humanize(value)


def pretty(value: Any) -> str:
    """A JSON rendering of ``value`` for a <pre> block (escaped by the template)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("interlock.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when, iso=iso, percent=percent, seconds=seconds_text, pretty=pretty, query=urlencode
    )
    return env


ENV = _environment()
# The macros are globals, so a page's live block renders alone (for the poller) too.
_MACROS = ENV.get_template("_macros.html").make_module()
ENV.globals.update({name: getattr(_MACROS, name) for name in ("time", "status", "spark", "chart")})


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def render(
    request: Request, name: str, context: Mapping[str, Any], status: int = 200
) -> HTMLResponse:
    """``templates/name`` as a page, or only its ``live`` block for the page's poller."""
    template = ENV.get_template(name)
    live = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    values = {"request": request, "section": "", "live_url": live, "user": None, **context}
    if request.headers.get(FRAGMENT_HEADER) and "live" in template.blocks:
        body = "".join(template.blocks["live"](template.new_context(values)))
    else:
        body = template.render(values)
    return secure(HTMLResponse(body, status_code=status))  # type: ignore[return-value]


def wants_problem(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


def refuse(
    request: Request,
    problem: Problem,
    user: User | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A refusal: RFC 9457 problem+json to API-like clients, an error page to browsers."""
    if wants_problem(request):
        return secure(problem_response(problem, headers))
    response = render(request, "error.html", {"user": user, "problem": problem}, problem.status)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


async def read_form(request: Request) -> dict[str, list[str]] | None:
    """The fields of an ``application/x-www-form-urlencoded`` body (None if it is not one,
    or too large)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return parse_qs(text, keep_blank_values=True, max_num_fields=2000)


def first(form: Mapping[str, list[str]], name: str, default: str = "") -> str:
    values = form.get(name)
    return values[0] if values else default


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin in (f"{request.url.scheme}://{host}",)


def local_path(target: str) -> str:
    """``target`` when it is a path on this site, else ``/`` (no open redirects)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
