"""The read-only pages: overview, flow, search and trace, connectors, audit."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from interlock.dashboard.connections import connector_views
from interlock.dashboard.health import flow_rows, totals
from interlock.dashboard.site import Dashboard
from interlock.dashboard.timeline import build_timeline
from interlock.dashboard.trends import WINDOWS, trends
from interlock.dashboard.web import User, refuse, render
from interlock.gateway import problems
from interlock.observability import firing_alerts, flow_health
from interlock.redaction import mask_event, scrub_delivery

AUDIT_PAGE = 100
MAX_QUERY = 300


def page_routes(dashboard: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    app = dashboard.app

    def base(user: User, section: str) -> dict[str, object]:
        return {"user": user, "section": section, "app_name": app.name}

    @router.get("/")
    def overview(request: Request) -> Response:
        user = dashboard.user(request)
        if user is None:
            return dashboard.to_login(request)
        now = dashboard.now()
        rows = flow_rows(app, now)
        return render(
            request,
            "overview.html",
            {
                **base(user, "overview"),
                "rows": rows,
                "totals": totals(rows),
                "alerts": firing_alerts(app),
                "now": now,
            },
        )

    @router.get("/ui/flows/{name}")
    def flow(request: Request, name: str, window: str = "1h") -> Response:
        user = dashboard.user(request)
        if user is None:
            return dashboard.to_login(request)
        declared = app.flows.get(name)
        if declared is None:
            return refuse(request, problems.not_found("no flow of that name in this app"), user)
        now = dashboard.now()
        row = next(r for r in flow_rows(app, now) if r.name == name)
        health = flow_health(app, name, now)
        dead = []
        for d in app.store.list_deliveries(status="dead", flow=name, limit=10):
            event = app.store.get_event(d.event_id)
            dead.append(scrub_delivery(d, mask_event(event, app.contracts.get(event.type))[1]))
        return render(
            request,
            "flow.html",
            {
                **base(user, "overview"),
                "flow": declared,
                "declaration": declared.describe(),
                "row": row,
                "dead": dead,
                "health": health,
                "charts": trends(app, declared, window, now),
                "windows": WINDOWS,
            },
        )

    @router.get("/ui/search")
    def search(request: Request, q: str = "") -> Response:
        user = dashboard.user(request)
        if user is None:
            return dashboard.to_login(request)
        query = q.strip()[:MAX_QUERY]
        timeline = build_timeline(app, query) if query else []
        return render(
            request,
            "search.html",
            {**base(user, "search"), "q": query, "timeline": timeline},
        )

    @router.get("/ui/connectors")
    def connectors(request: Request) -> Response:
        user = dashboard.user(request)
        if user is None:
            return dashboard.to_login(request)
        now = dashboard.now()
        return render(
            request,
            "connectors.html",
            {
                **base(user, "connectors"),
                "connectors": connector_views(app, dashboard.history, now),
                "now": now,
            },
        )

    @router.get("/ui/audit")
    def audit(request: Request, action: str = "", actor: str = "", target: str = "") -> Response:
        user = dashboard.user(request)
        if user is None:
            return dashboard.to_login(request)
        rows = app.store.list_audit(
            AUDIT_PAGE,
            action=action.strip() or None,
            actor=actor.strip() or None,
            target=target.strip() or None,
        )
        return render(
            request,
            "audit.html",
            {
                **base(user, "audit"),
                "rows": rows,
                "action": action,
                "actor": actor,
                "target": target,
            },
        )

    return router
