"""``GET /api/v1/alerts``: burn-rate alerts, firing and recent (viewer)."""

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from interlock.app import Interlock
from interlock.gateway.api import _READ_ERRORS
from interlock.gateway.auth import Auth
from interlock.gateway.schemas import Time
from interlock.gateway.slo_schemas import AlertOut, AlertPage, AlertState
from interlock.tokens import TokenRow

MAX_ALERTS = 500


def build_slo_api(app: Interlock, auth: Auth) -> APIRouter:
    """The alerts routes of ``app`` (under ``/api/v1``)."""
    viewer = Depends(auth.require("viewer"))
    api = APIRouter(prefix="/api/v1", responses=_READ_ERRORS)

    @api.get(
        "/alerts",
        tags=["alerts"],
        summary="Burn-rate alerts, newest first: firing ones and recent history",
    )
    def list_alerts(
        _: Annotated[TokenRow, viewer],
        state: Annotated[AlertState | None, Query(description="firing or resolved")] = None,
        flow: str | None = None,
        severity: Annotated[str | None, Query(description="e.g. page or ticket")] = None,
        since: Annotated[
            Time | None, Query(description="Firing at or after this time (RFC 3339)")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_ALERTS)] = 100,
    ) -> AlertPage:
        when = None
        if since is not None:
            when = (since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp()
        rows = app.store.list_alerts(
            firing=None if state is None else state == "firing",
            flow=flow,
            severity=severity,
            since=when,
            limit=limit,
        )
        return AlertPage(items=[AlertOut.of(r) for r in rows])

    return api


__all__ = ["build_slo_api"]
