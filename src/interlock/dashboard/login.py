"""Logging in with an API token, and out.

The login form is protected against cross-site posting by a double-submit token
(a random value in a ``SameSite=Strict`` cookie and in the form) and an Origin
check. A wrong token counts against the client's address (:class:`LoginThrottle`);
past the limit the address gets 429 with ``Retry-After`` until the window passes,
without the token even being looked up. Failures are logged (address and reason,
never the token) and counted.
"""

from __future__ import annotations

import math

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.status import HTTP_303_SEE_OTHER

from interlock.dashboard.sessions import LOGIN_COOKIE, SESSION_COOKIE, new_secret, same
from interlock.dashboard.site import Dashboard, log
from interlock.dashboard.web import first, local_path, read_form, render, same_origin, secure
from interlock.errors import StoreError


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def login_routes(dashboard: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def page(request: Request, next_: str, error: str | None, status: int) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or new_secret()
        response = render(
            request,
            "login.html",
            {"user": None, "next": local_path(next_), "error": error, "nonce": nonce},
            status,
        )
        _cookie(response, request, LOGIN_COOKIE, nonce, 3600)
        return response

    @router.get("/ui/login")
    def login_form(request: Request, next: str = "/") -> Response:
        if dashboard.user(request) is not None:
            return secure(RedirectResponse(local_path(next), status_code=HTTP_303_SEE_OTHER))
        return page(request, next, None, 200)

    @router.post("/ui/login")
    async def login(request: Request) -> Response:
        address = request.client.host if request.client else "unknown"
        now = dashboard.now()
        form = await read_form(request) or {}
        target = first(form, "next", "/")
        wait = dashboard.throttle.wait(address, now)
        if wait > 0:
            dashboard.count("login_throttled")
            log.warning("dashboard.login_throttled", address=address, wait=round(wait, 1))
            response = page(
                request,
                target,
                f"Too many failed logins from your address; try again in {math.ceil(wait)} s.",
                429,
            )
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        if not same_origin(request) or not same(
            first(form, "nonce"), request.cookies.get(LOGIN_COOKIE)
        ):
            dashboard.count("csrf")
            log.warning("dashboard.refused", reason="csrf", path="/ui/login", address=address)
            return page(request, target, "The login form expired; please try again.", 403)
        try:
            token = dashboard.app.store.token_for(first(form, "token").strip())
        except StoreError:
            return page(request, target, "The store is unavailable; try again shortly.", 503)
        if token is None:
            dashboard.throttle.failed(address, now)
            dashboard.count("login_failed")
            log.warning("dashboard.login_failed", address=address, reason="invalid_token")
            return page(request, target, "That token is unknown or revoked.", 401)
        dashboard.throttle.succeeded(address)
        session = dashboard.sessions.open(token.id, now)
        log.info("dashboard.login", address=address, token=token.id, role=token.role)
        response = secure(RedirectResponse(local_path(target), status_code=HTTP_303_SEE_OTHER))
        _cookie(response, request, SESSION_COOKIE, session.id, int(dashboard.sessions.lifetime))
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    @router.post("/ui/logout")
    async def logout(request: Request) -> Response:
        user = dashboard.user(request)
        form = await read_form(request)
        refused = dashboard.checked(request, user, form, "viewer")
        if refused is not None:
            return refused
        assert user is not None  # checked() refuses without one
        dashboard.sessions.close(user.session.id)
        log.info("dashboard.logout", token=user.token.id)
        response = secure(RedirectResponse("/ui/login", status_code=HTTP_303_SEE_OTHER))
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router
