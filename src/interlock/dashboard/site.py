"""One dashboard over one app: its sessions, login throttle and who is asking.

Pages call :meth:`Dashboard.user` (the logged-in user or None) and
:meth:`Dashboard.checked` before any state-changing action: a session, a role
strong enough, a request from this origin and the session's CSRF token in the form.
Every refusal is logged and counted in the gateway's ``interlock_api_refused``
counter (reasons ``login_failed``, ``login_throttled``, ``csrf``, ``forbidden``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.status import HTTP_303_SEE_OTHER

from interlock.dashboard.connections import CallHistory
from interlock.dashboard.sessions import SESSION_COOKIE, LoginThrottle, SessionStore, same
from interlock.dashboard.web import FRAGMENT_HEADER, User, first, refuse, same_origin, secure
from interlock.gateway import problems
from interlock.tokens import Role, allows

if TYPE_CHECKING:
    from interlock.app import Interlock
    from interlock.gateway.auth import Auth

log = structlog.get_logger("interlock.dashboard")


class Dashboard:
    """The dashboard's state in one gateway process."""

    def __init__(self, app: Interlock, auth: Auth) -> None:
        self.app = app
        self.auth = auth
        self.sessions = SessionStore()
        self.throttle = LoginThrottle()
        self.history = CallHistory()

    def now(self) -> float:
        return time.time()

    def count(self, reason: str) -> None:
        self.auth.refused[reason] = self.auth.refused.get(reason, 0) + 1

    def user(self, request: Request) -> User | None:
        """The logged-in user, if the session is open and its token still live."""
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE), self.now())
        if session is None:
            return None
        token = next((t for t in self.app.store.list_tokens() if t.id == session.token_id), None)
        if token is None:  # revoked since login: the session ends with it
            self.sessions.close(session.id)
            return None
        return User(session, token)

    def to_login(self, request: Request) -> Response:
        """Where a request without a session goes: the login page (a 401 for the poller)."""
        if request.headers.get(FRAGMENT_HEADER):
            return secure(Response(status_code=401))
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return secure(
            RedirectResponse(
                "/ui/login?" + urlencode({"next": target}), status_code=HTTP_303_SEE_OTHER
            )
        )

    def checked(
        self, request: Request, user: User | None, form: Mapping[str, list[str]] | None, role: Role
    ) -> Response | None:
        """None when ``user`` may do this state-changing request; else the refusal."""
        if user is None:
            return self.to_login(request)
        address = request.client.host if request.client else "unknown"
        if (
            form is None
            or not same_origin(request)
            or not same(first(form, "csrf"), user.session.csrf)
        ):
            self.count("csrf")
            log.warning(
                "dashboard.refused",
                reason="csrf",
                path=request.url.path,
                address=address,
                token=user.token.id,
            )
            return refuse(
                request,
                problems.forbidden(
                    "the form's CSRF token is missing or stale, or it came from another site; "
                    "reload the page and try again"
                ),
                user,
            )
        if not allows(user.token.role, role):
            self.count("forbidden")
            log.warning(
                "dashboard.refused",
                reason="forbidden",
                path=request.url.path,
                address=address,
                token=user.token.id,
            )
            return refuse(
                request,
                problems.forbidden(
                    f"this needs the {role} role; you are logged in as a {user.token.role}"
                ),
                user,
            )
        return None
