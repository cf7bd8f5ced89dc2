"""The dead letters page: filter, inspect, and replay or discard one or many.

An action takes three steps, none of them skippable: choose (rows, or everything
the filter matches) with a reason and optionally a dry run → a preview naming how
many and which → confirm. The confirmation acts on exactly the previewed ids
(a dead letter that arrived since is not swept in; one already handled is skipped)
through :func:`interlock.replay.act_on_dead`, the REST API's code path, so the
audit trail records the user's token and reason. The result page then follows the
acted-on deliveries live. Viewers see no controls, and the server refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.status import HTTP_303_SEE_OTHER

from interlock.app import Interlock
from interlock.dashboard.site import Dashboard, log
from interlock.dashboard.web import User, first, read_form, refuse, render, secure
from interlock.durations import seconds
from interlock.errors import NotFound
from interlock.gateway import problems
from interlock.redaction import Redactor, mask_event, scrub_delivery
from interlock.replay import DeadAction, act_on_dead
from interlock.stores.base import DeadFilter, DeliveryRow

PAGE = 200
MAX_ACTION = 500
SINCE_CHOICES = ("15m", "1h", "6h", "24h", "7d")


@dataclass(frozen=True, slots=True)
class Filters:
    flow: str
    error_class: str
    since: str

    def selection(self, now: float, limit: int) -> DeadFilter:
        since = now - seconds(self.since) if self.since in SINCE_CHOICES else None
        return DeadFilter(
            flow=self.flow or None,
            error_class=self.error_class or None,
            since=since,
            limit=limit,
        )


def scrubbed(app: Interlock, rows: list[DeliveryRow]) -> list[DeliveryRow]:
    """``rows`` with their events' PII values scrubbed (as the REST API shows them)."""
    redactors: dict[str, Redactor] = {}
    out = []
    for row in rows:
        redactor = redactors.get(row.event_id)
        if redactor is None:
            try:
                event = app.store.get_event(row.event_id)
            except NotFound:
                redactor = Redactor()
            else:
                redactor = mask_event(event, app.contracts.get(event.type))[1]
            redactors[row.event_id] = redactor
        out.append(scrub_delivery(row, redactor))
    return out


def _ids(values: list[str]) -> list[int]:
    return sorted({int(v) for v in values if v.isdigit() and len(v) < 19})


def dead_letter_routes(dashboard: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    app = dashboard.app

    def base(user: User) -> dict[str, object]:
        return {"user": user, "section": "dead", "app_name": app.name}

    @router.get("/ui/dead-letters")
    def dead_letters(
        request: Request, flow: str = "", error_class: str = "", since: str = ""
    ) -> Response:
        user = dashboard.user(request)
        if user is None:
            return dashboard.to_login(request)
        filters = Filters(flow.strip(), error_class.strip(), since.strip())
        rows = scrubbed(app, app.store.list_dead(filters.selection(dashboard.now(), PAGE)))
        classes = sorted(
            {r.error_class for r in app.store.list_dead(DeadFilter(limit=5000)) if r.error_class}
        )
        return render(
            request,
            "dead_letters.html",
            {
                **base(user),
                "rows": rows,
                "filters": filters,
                "flows": sorted(app.flows),
                "classes": classes,
                "since_choices": SINCE_CHOICES,
                "page": PAGE,
            },
        )

    @router.get("/ui/dead-letters/{delivery_id:int}")
    def dead_letter(request: Request, delivery_id: int) -> Response:
        user = dashboard.user(request)
        if user is None:
            return dashboard.to_login(request)
        try:
            row = app.store.get_delivery(delivery_id)
            event = app.store.get_event(row.event_id)
        except NotFound:
            return refuse(request, problems.not_found("no delivery with that id"), user)
        masked, redactor = mask_event(event, app.contracts.get(event.type))
        return render(
            request,
            "dead_letter.html",
            {**base(user), "row": scrub_delivery(row, redactor), "event": masked},
        )

    def choice(form: dict[str, list[str]]) -> tuple[DeadAction, str, bool] | str:
        action = first(form, "action")
        if action not in ("replay", "discard"):
            return "choose replay or discard"
        reason = " ".join(first(form, "reason").split())
        if not reason:
            return "give a reason: it goes into the audit trail"
        if len(reason) > 500:
            return "the reason is longer than 500 characters"
        return ("replay" if action == "replay" else "discard"), reason, bool(first(form, "dry_run"))

    @router.post("/ui/dead-letters/preview")
    async def preview(request: Request) -> Response:
        user = dashboard.user(request)
        form = await read_form(request)
        refused = dashboard.checked(request, user, form, "operator")
        if refused is not None:
            return refused
        assert user is not None and form is not None
        chosen = choice(form)
        ids = _ids(form.get("ids", []))
        if isinstance(chosen, str):
            problem = problems.invalid_request(
                [{"field": "form", "message": chosen, "type": "value_error"}], chosen
            )
            return refuse(request, problem, user)
        action, reason, dry_run = chosen
        if first(form, "all"):
            filters = Filters(first(form, "flow"), first(form, "error_class"), first(form, "since"))
            selection = filters.selection(dashboard.now(), MAX_ACTION)
        elif ids:
            selection = DeadFilter(ids=tuple(ids[:MAX_ACTION]), limit=MAX_ACTION)
        else:
            problem = problems.invalid_request(
                [{"field": "ids", "message": "select dead letters", "type": "selection"}],
                "select at least one dead letter, or everything the filter matches",
            )
            return refuse(request, problem, user)
        rows = scrubbed(app, app.store.list_dead(selection))
        return render(
            request,
            "preview.html",
            {
                **base(user),
                "rows": rows,
                "action": action,
                "reason": reason,
                "dry_run": dry_run,
                "limit": MAX_ACTION,
            },
        )

    @router.post("/ui/dead-letters/act")
    async def act(request: Request) -> Response:
        user = dashboard.user(request)
        form = await read_form(request)
        refused = dashboard.checked(request, user, form, "operator")
        if refused is not None:
            return refused
        assert user is not None and form is not None
        chosen = choice(form)
        ids = _ids(form.get("ids", []))
        if isinstance(chosen, str) or not ids or not first(form, "confirm"):
            detail = chosen if isinstance(chosen, str) else "confirm the previewed selection"
            problem = problems.invalid_request(
                [{"field": "form", "message": detail, "type": "value_error"}], detail
            )
            return refuse(request, problem, user)
        action, reason, dry_run = chosen
        outcome = await act_on_dead(
            app,
            action,
            DeadFilter(ids=tuple(ids[:MAX_ACTION]), limit=MAX_ACTION),
            actor=user.token.actor,
            reason=reason,
            dry_run=dry_run,
        )
        log.info(
            "dashboard.dead_letters",
            action=action,
            dry_run=dry_run,
            matched=len(outcome.matched),
            done=len(outcome.done),
            token=user.token.id,
        )
        query = urlencode(
            {
                "action": action,
                "dry_run": "1" if dry_run else "",
                "matched": ",".join(map(str, outcome.matched)),
                "done": ",".join(map(str, outcome.done)),
            }
        )
        return secure(
            RedirectResponse(f"/ui/dead-letters/result?{query}", status_code=HTTP_303_SEE_OTHER)
        )

    @router.get("/ui/dead-letters/result")
    def result(
        request: Request, action: str = "", dry_run: str = "", matched: str = "", done: str = ""
    ) -> Response:
        user = dashboard.user(request)
        if user is None:
            return dashboard.to_login(request)
        matched_ids = _ids(matched.split(","))[:MAX_ACTION]
        done_ids = set(_ids(done.split(",")))
        rows = []
        for delivery_id in matched_ids:
            try:
                rows.append(app.store.get_delivery(delivery_id))
            except NotFound:
                continue
        return render(
            request,
            "result.html",
            {
                **base(user),
                "action": "discard" if action == "discard" else "replay",
                "dry_run": bool(dry_run),
                "rows": scrubbed(app, rows),
                "done": done_ids,
                "skipped": [i for i in matched_ids if i not in done_ids],
            },
        )

    return router
