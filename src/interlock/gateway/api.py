"""The REST API, ``/api/v1``: what happened, and the operator's levers.

Viewers read events, traces, deliveries, dead letters, flows, sources and the
audit trail; operators replay and discard dead letters; admins manage tokens.
Every mutation is recorded in the audit trail with the token's name as actor.
Payloads and subjects are masked where their contract marks PII.
"""

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from interlock.app import Interlock
from interlock.errors import ConfigurationError, NotFound
from interlock.gateway import problems
from interlock.gateway.auth import Auth, ProblemError
from interlock.gateway.ingress import Ingress
from interlock.gateway.schemas import (
    ActionIn,
    ActionResult,
    AttemptOut,
    AuditOut,
    AuditPage,
    BulkActionIn,
    DeliveryOut,
    DeliveryPage,
    DeliveryStatusName,
    EventOut,
    EventPage,
    FlowOut,
    NewTokenOut,
    SourceOut,
    StepOut,
    Time,
    TokenIn,
    TokenOut,
    TraceOut,
)
from interlock.gateway.slo_schemas import FlowHealthOut
from interlock.observability.health import slo_report
from interlock.redaction import Redactor, mask_event, masked_trace, scrub_delivery
from interlock.replay import act_on_dead
from interlock.stores.base import DeadFilter, DeliveryRow
from interlock.tokens import TokenRow

MAX_PAGE = 500

# Problem answers every endpoint may give, for the OpenAPI document.
_PROBLEM = {"content": {"application/problem+json": {"schema": {"type": "object"}}}}
_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid parameters", **_PROBLEM},
    401: {"description": "Missing, unknown or revoked token", **_PROBLEM},
    403: {"description": "The token's role is too weak", **_PROBLEM},
    503: {"description": "The store is unavailable", **_PROBLEM},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such item", **_PROBLEM}}


def encode_cursor(kind: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The position in an opaque cursor from an earlier page; 400 when it is not one."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found, _, position = raw.partition(":")
        if found == kind and position.isdigit() and len(position) < 19:
            return int(position)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ProblemError(
        problems.invalid_request(
            [{"field": "cursor", "message": "not a cursor from this list", "type": "cursor"}]
        )
    )


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def build_api(app: Interlock, auth: Auth, ingress: Ingress) -> APIRouter:
    """The ``/api/v1`` router of ``app``."""
    viewer = Depends(auth.require("viewer"))
    operator = Depends(auth.require("operator"))
    admin = Depends(auth.require("admin"))
    api = APIRouter(prefix="/api/v1", responses=_READ_ERRORS)

    def contract_of(event_type: str) -> Any:
        return app.contracts.get(event_type)

    def deliveries_out(rows: list[DeliveryRow]) -> list[DeliveryOut]:
        """Rows with their events' PII values scrubbed from subject, lane, reason and
        context (a lane is the value of the flow's key, which may be personal data)."""
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
                    redactor = mask_event(event, contract_of(event.type))[1]
                redactors[row.event_id] = redactor
            out.append(DeliveryOut.of(scrub_delivery(row, redactor)))
        return out

    # -- events -------------------------------------------------------------------------
    @api.get("/events", tags=["events"], summary="List events, newest first")
    def list_events(
        _: Annotated[TokenRow, viewer],
        type: Annotated[str | None, Query(description="Event type, e.g. order.shipped")] = None,
        subject: Annotated[str | None, Query(description="Exact subject, e.g. order:1042")] = None,
        correlation_id: str | None = None,
        since: Annotated[Time | None, Query(description="Received at or after")] = None,
        until: Annotated[Time | None, Query(description="Received before")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the page before")] = None,
    ) -> EventPage:
        rows = app.store.list_events(
            type=type,
            subject=subject,
            correlation_id=correlation_id,
            since=_epoch(since),
            until=_epoch(until),
            before_seq=decode_cursor("e", cursor),
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        items = [EventOut.of(mask_event(e, contract_of(e.type))[0]) for e in rows]
        return EventPage(
            items=items, next_cursor=encode_cursor("e", rows[-1].seq) if more else None
        )

    @api.get("/events/{event_id}", tags=["events"], summary="One event", responses=_NOT_FOUND)
    def get_event(event_id: str, _: Annotated[TokenRow, viewer]) -> EventOut:
        try:
            event = app.store.get_event(event_id)
        except NotFound as exc:
            raise ProblemError(problems.not_found(str(exc))) from None
        return EventOut.of(mask_event(event, contract_of(event.type))[0])

    @api.get(
        "/trace/{query}",
        tags=["events"],
        summary="What happened: the timeline of a subject, correlation id, event or delivery",
        responses=_NOT_FOUND,
    )
    def trace(query: str, _: Annotated[TokenRow, viewer]) -> TraceOut:
        found = masked_trace(app.store.trace(query), app)
        if not found.events:
            raise ProblemError(
                problems.not_found("no event matches this subject, correlation id or id")
            )
        return TraceOut(
            query=query,
            events=[EventOut.of(e) for e in found.events],
            deliveries=[DeliveryOut.of(d) for d in found.deliveries],
            attempts=[AttemptOut.of(a) for a in found.attempts],
            steps=[StepOut.of(s) for s in found.steps],
            audit=[AuditOut.of(a) for a in found.audit],
        )

    # -- deliveries and dead letters -------------------------------------------------------
    @api.get("/deliveries", tags=["deliveries"], summary="List deliveries, newest first")
    def list_deliveries(
        _: Annotated[TokenRow, viewer],
        status: DeliveryStatusName | None = None,
        flow: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: str | None = None,
    ) -> DeliveryPage:
        rows = app.store.list_deliveries(
            status=status, flow=flow, before_id=decode_cursor("d", cursor), limit=limit + 1
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return DeliveryPage(
            items=deliveries_out(rows),
            next_cursor=encode_cursor("d", rows[-1].id) if more else None,
        )

    @api.get(
        "/deliveries/{delivery_id}",
        tags=["deliveries"],
        summary="One delivery",
        responses=_NOT_FOUND,
    )
    def get_delivery(delivery_id: int, _: Annotated[TokenRow, viewer]) -> DeliveryOut:
        try:
            return deliveries_out([app.store.get_delivery(delivery_id)])[0]
        except NotFound as exc:
            raise ProblemError(problems.not_found(str(exc))) from None

    @api.get("/dead-letters", tags=["dead letters"], summary="List dead letters, oldest first")
    def list_dead(
        _: Annotated[TokenRow, viewer],
        flow: str | None = None,
        error_class: str | None = None,
        since: Annotated[Time | None, Query(description="Dead since")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    ) -> list[DeliveryOut]:
        selection = DeadFilter(flow=flow, error_class=error_class, since=_epoch(since), limit=limit)
        return deliveries_out(app.store.list_dead(selection))

    async def act(
        action: str, selection: DeadFilter, body: ActionIn, token: TokenRow
    ) -> ActionResult:
        outcome = await act_on_dead(
            app,
            "replay" if action == "replay" else "discard",
            selection,
            actor=token.actor,
            reason=body.reason,
            dry_run=body.dry_run,
        )
        return ActionResult(
            action=outcome.action,
            dry_run=outcome.dry_run,
            matched=outcome.matched,
            done=outcome.done,
        )

    def single(delivery_id: int) -> DeadFilter:
        try:
            row = app.store.get_delivery(delivery_id)
        except NotFound as exc:
            raise ProblemError(problems.not_found(str(exc))) from None
        if row.status != "dead":
            raise ProblemError(
                problems.conflict(f"delivery {delivery_id} is {row.status}, not dead")
            )
        return DeadFilter(ids=(delivery_id,), limit=1)

    def bulk(body: BulkActionIn) -> DeadFilter:
        chosen = body.ids or body.flow or body.error_class or body.since
        if not chosen and not body.all:
            raise ProblemError(
                problems.invalid_request(
                    [
                        {
                            "field": "body",
                            "message": "select with ids, flow, error_class or since, "
                            "or set all=true",
                            "type": "selection",
                        }
                    ]
                )
            )
        return DeadFilter(
            ids=tuple(body.ids or ()),
            flow=body.flow,
            error_class=body.error_class,
            since=_epoch(body.since),
            limit=body.limit,
        )

    mutation = {**_NOT_FOUND, 409: {"description": "Not a dead letter", **_PROBLEM}}

    @api.post(
        "/dead-letters/{delivery_id}/replay",
        tags=["dead letters"],
        summary="Replay one dead letter (operator)",
        responses=mutation,
    )
    async def replay_one(
        delivery_id: int, body: ActionIn, token: Annotated[TokenRow, operator]
    ) -> ActionResult:
        return await act("replay", single(delivery_id), body, token)

    @api.post(
        "/dead-letters/{delivery_id}/discard",
        tags=["dead letters"],
        summary="Discard one dead letter (operator)",
        responses=mutation,
    )
    async def discard_one(
        delivery_id: int, body: ActionIn, token: Annotated[TokenRow, operator]
    ) -> ActionResult:
        return await act("discard", single(delivery_id), body, token)

    @api.post(
        "/dead-letters/replay",
        tags=["dead letters"],
        summary="Replay the dead letters a selection matches (operator)",
    )
    async def replay_many(body: BulkActionIn, token: Annotated[TokenRow, operator]) -> ActionResult:
        return await act("replay", bulk(body), body, token)

    @api.post(
        "/dead-letters/discard",
        tags=["dead letters"],
        summary="Discard the dead letters a selection matches (operator)",
    )
    async def discard_many(
        body: BulkActionIn, token: Annotated[TokenRow, operator]
    ) -> ActionResult:
        return await act("discard", bulk(body), body, token)

    # -- flows and sources ------------------------------------------------------------------
    def flows_out() -> list[FlowOut]:
        counts = app.store.flow_counts()
        blocked = app.store.blocked_flows()
        health = {h.flow: FlowHealthOut.of(h) for h in slo_report(app)}
        out = []
        for flow in app.flows.values():
            c = counts.get(flow.name, {})
            if flow.name in blocked:
                state = "blocked"
            elif c.get("dead"):
                state = "failing"
            elif any(c.get(s) for s in ("queued", "pending", "running", "waiting")):
                state = "active"
            else:
                state = "idle"
            out.append(
                FlowOut(**flow.describe(), state=state, counts=c, health=health.get(flow.name))
            )
        return out

    @api.get("/flows", tags=["flows"], summary="Flows with owner, SLO, state and live counts")
    def list_flows(_: Annotated[TokenRow, viewer]) -> list[FlowOut]:
        return flows_out()

    @api.get("/flows/{name}", tags=["flows"], summary="One flow", responses=_NOT_FOUND)
    def get_flow(name: str, _: Annotated[TokenRow, viewer]) -> FlowOut:
        for flow in flows_out():
            if flow.name == name:
                return flow
        raise ProblemError(problems.not_found("no flow of that name in this app"))

    @api.get("/sources", tags=["sources"], summary="Webhook sources and their intake counts")
    def list_sources(_: Annotated[TokenRow, viewer]) -> list[SourceOut]:
        out = []
        for name, source in app.sources.items():
            rejected = {r: n for (s, r), n in ingress.rejected.items() if s == name}
            out.append(
                SourceOut(
                    **source.describe(), accepted=ingress.accepted.get(name, 0), rejected=rejected
                )
            )
        return out

    # -- audit and tokens ---------------------------------------------------------------------
    @api.get("/audit", tags=["audit"], summary="The audit trail, newest first")
    def list_audit(
        _: Annotated[TokenRow, viewer],
        action: Annotated[str | None, Query(description="e.g. dlq.replay")] = None,
        actor: str | None = None,
        target: Annotated[str | None, Query(description="e.g. delivery:42")] = None,
        since: Annotated[Time | None, Query(description="At or after")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        cursor: str | None = None,
    ) -> AuditPage:
        rows = app.store.list_audit(
            limit + 1,
            action=action,
            actor=actor,
            target=target,
            since=_epoch(since),
            before_id=decode_cursor("a", cursor),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return AuditPage(
            items=[AuditOut.of(r) for r in rows],
            next_cursor=encode_cursor("a", rows[-1].id) if more else None,
        )

    @api.get("/tokens", tags=["tokens"], summary="Live API tokens (admin)")
    def list_tokens(_: Annotated[TokenRow, admin], include_revoked: bool = False) -> list[TokenOut]:
        return [TokenOut.of(t) for t in app.store.list_tokens(include_revoked=include_revoked)]

    @api.post(
        "/tokens",
        tags=["tokens"],
        summary="Create a token (admin); the answer holds it, once",
        status_code=201,
        responses={409: {"description": "A live token has that name", **_PROBLEM}},
    )
    async def create_token(body: TokenIn, token: Annotated[TokenRow, admin]) -> NewTokenOut:
        try:
            new = await app.store.create_token(
                body.name, body.role, actor=token.actor, now=app.clock.now()
            )
        except ConfigurationError as exc:
            status = 409 if "exists" in str(exc) else 400
            if status == 409:
                raise ProblemError(problems.conflict(str(exc))) from None
            raise ProblemError(
                problems.invalid_request(
                    [{"field": "name", "message": str(exc), "type": "value_error"}]
                )
            ) from None
        return NewTokenOut(**TokenOut.of(new.row).model_dump(), token=new.secret)

    @api.delete(
        "/tokens/{token}",
        tags=["tokens"],
        summary="Revoke a token by id or name (admin); it stops working at once",
        responses=_NOT_FOUND,
    )
    async def revoke_token(
        token: str,
        caller: Annotated[TokenRow, admin],
        reason: Annotated[str, Query(min_length=1, max_length=500)] = "revoked",
    ) -> TokenOut:
        revoked = await app.store.revoke_token(
            token, actor=caller.actor, reason=reason, now=app.clock.now()
        )
        if revoked is None:
            raise ProblemError(problems.not_found("no live token with that id or name"))
        return TokenOut.of(revoked)

    return api
