"""Bearer-token authentication and role checks for ``/api/v1`` and ``POST /events``.

``Depends(auth.require("operator"))`` in an endpoint yields the calling
:class:`~interlock.tokens.TokenRow` or answers 401 (no token, a wrong or revoked one)
or 403 (a role too weak). Every refusal is counted by reason and logged with the
token's id when it is known, never with the token itself. Tokens are looked up on
every request, so a revocation takes effect at once.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from interlock.app import Interlock
from interlock.errors import StoreError
from interlock.gateway import problems
from interlock.gateway.problems import Problem
from interlock.tokens import Role, TokenRow, allows

log = structlog.get_logger("interlock.gateway")

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token from `interlock tokens create` (viewer, operator or admin).",
)


class ProblemError(Exception):
    """Raised inside the gateway to answer with ``problem`` (and extra ``headers``)."""

    def __init__(self, problem: Problem, headers: dict[str, str] | None = None) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.headers = headers


class Auth:
    """Token checks of one gateway, with counters of refusals by reason."""

    def __init__(self, app: Interlock) -> None:
        self.app = app
        self.refused: dict[str, int] = {}

    def _refuse(
        self, request: Request, reason: str, problem: Problem, token: TokenRow | None = None
    ) -> ProblemError:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        log.warning(
            "api.refused",
            reason=reason,
            status=problem.status,
            method=request.method,
            path=request.url.path,
            token=None if token is None else token.id,
        )
        headers = (
            {"WWW-Authenticate": 'Bearer realm="interlock"'} if problem.status == 401 else None
        )
        return ProblemError(problem, headers)

    def authenticate(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None
    ) -> TokenRow:
        if credentials is None:
            raise self._refuse(
                request,
                "missing_token",
                problems.token_rejected(
                    "missing_token", "send an API token as 'Authorization: Bearer <token>'"
                ),
            )
        try:
            token = self.app.store.token_for(credentials.credentials)
        except StoreError as exc:
            log.error("api.store_failed", error=str(exc))
            raise ProblemError(
                problems.overloaded(1, "the store is unavailable; try again")
            ) from None
        if token is None:
            raise self._refuse(
                request,
                "invalid_token",
                problems.token_rejected("invalid_token", "the API token is unknown or revoked"),
            )
        return token

    def require(self, role: Role) -> Callable[..., Coroutine[Any, Any, TokenRow]]:
        """A FastAPI dependency: the caller's token, which holds at least ``role``."""

        async def dependency(
            request: Request,
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
        ) -> TokenRow:
            token = self.authenticate(request, credentials)
            if not allows(token.role, role):
                raise self._refuse(
                    request,
                    "forbidden",
                    problems.forbidden(
                        f"this needs the {role} role; token {token.id} has {token.role}"
                    ),
                    token,
                )
            request.state.actor = token.actor
            return token

        return dependency
