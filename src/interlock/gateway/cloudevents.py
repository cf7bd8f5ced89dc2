"""``POST /events``: CloudEvents 1.0 intake in structured, binary and batch modes.

    router = build_events(app, auth)     # mounted by build_gateway()

Decoding (the mode, the body, the ``ce-*`` headers, the attributes) is
:mod:`interlock.gateway.cloudevents_codec`; this module reads the request,
checks each event's data against its contract, stores and answers.

The checks run in one order: the token (401/403, before the body is read), the
media type (415), the size (413), strict JSON and a batch's length (400), the
attributes (400), the contract (422); then every event of the request is written
in one transaction (503 if the store fails) and only then answered 202 with the
event ids. A rejection stores nothing; in a batch it names the event at fault.

A CloudEvent's ``source`` + ``id`` are unique by the spec: they are the interlock
source and idempotency key, so a resent event is answered with the first one's
id and creates nothing. Problems and logs name attributes and fields, never
their values, and never the token.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import structlog
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from interlock.app import Interlock
from interlock.contracts import Contract
from interlock.errors import ContractViolation, LimitExceeded, StoreError
from interlock.gateway import problems
from interlock.gateway.auth import Auth
from interlock.gateway.cloudevents_codec import (
    BATCH,
    MAX_CHARS,
    STRUCTURED,
    Incoming,
    Rejected,
    decode,
    detect_mode,
)
from interlock.gateway.middleware import trace_id_of, valid_correlation_id
from interlock.gateway.problems import Problem, problem_response, problem_type
from interlock.tokens import TokenRow

__all__ = ["EventIntake", "EventsRouter", "build_events"]

log = structlog.get_logger("interlock.gateway")

MAX_BODY_BYTES: Final = 1024 * 1024
MAX_BATCH: Final = 1000


class Accepted(BaseModel):
    """The answer once every event of the request is durable."""

    status: Literal["accepted"]
    event_ids: list[str] = Field(
        description="Stored event ids in request order; a resent event has its first id."
    )
    ignored_extensions: list[str] = Field(
        description="Extension attributes sent but not stored by interlock, sorted."
    )


class EventIntake:
    """``POST /events`` of one app, with counters: requests accepted by mode, rejected by reason."""

    def __init__(
        self, app: Interlock, *, max_body_bytes: int = MAX_BODY_BYTES, max_batch: int = MAX_BATCH
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_batch = max_batch
        self.accepted: dict[str, int] = {}
        self.rejected: dict[str, int] = {}

    async def handle(self, request: Request, token: TokenRow) -> Response:
        mode = "unknown"
        try:
            mode = detect_mode(request.headers.get("content-type", ""))
            body = await self._read(request)
            correlation = _request_correlation(request)
            events = decode(mode, request.headers.raw, body, max_batch=self.max_batch)
            ids = await self._store(mode, events, correlation)
        except Rejected as exc:
            self.rejected[exc.reason] = self.rejected.get(exc.reason, 0) + 1
            log.warning(
                "events.rejected",
                reason=exc.reason,
                status=exc.problem.status,
                mode=mode,
                index=exc.index,
                token=token.id,
            )
            return problem_response(exc.problem)
        self.accepted[mode] = self.accepted.get(mode, 0) + 1
        ignored = sorted({name for event in events for name in event.ignored})
        answer = {"status": "accepted", "event_ids": ids, "ignored_extensions": ignored}
        return JSONResponse(answer, status_code=202)

    async def _read(self, request: Request) -> bytes:
        limit = self.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not re.fullmatch(r"[0-9]{1,18}", declared):
                bad = Problem(400, "Bad Content-Length", "Content-Length is not a number")
                raise Rejected("bad_content_length", bad)
            if int(declared) > limit:
                raise Rejected("too_large", problems.payload_too_large(limit))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Rejected("too_large", problems.payload_too_large(limit))
            chunks.append(chunk)
        return b"".join(chunks)

    async def _store(self, mode: str, events: list[Incoming], correlation: str | None) -> list[str]:
        contracts = []
        for index, event in enumerate(events):
            try:
                contracts.append(self._contract(event))
            except Rejected as exc:
                raise (exc.at(index) if mode == "batch" else exc) from None
        options = [_options(event, correlation) for event in events]
        try:
            if mode != "batch":
                return [await self.app.emit(contracts[0], **options[0])]
            items = []
            for index, (contract, option) in enumerate(zip(contracts, options, strict=True)):
                try:
                    items.append(self.app.prepare(contract, **option))
                except LimitExceeded as exc:
                    raise _too_large(exc).at(index) from None
            if not items:
                return []
            # What emit_many does, with each event's own source, subject and correlation.
            results = await self.app.store.emit(items)
            self.app._notify()
            return [result.event_id for result in results]
        except LimitExceeded as exc:
            raise _too_large(exc) from None
        except StoreError as exc:
            log.error("events.store_failed", error=str(exc))
            detail = "the store is unavailable; nothing was stored"
            raise Rejected("store_unavailable", problems.overloaded(1, detail)) from None

    def _contract(self, event: Incoming) -> Contract:
        if event.type not in self.app.contracts:
            known = sorted(self.app.contracts)
            detail = "this app has no contract for the event's type; it knows: " + (
                ", ".join(known) or "none"
            )
            unknown = Problem(
                422,
                "Unknown event type",
                detail,
                type=problem_type("unknown-event-type"),
                extensions={"known_types": known},
            )
            raise Rejected("unknown_type", unknown)
        if not isinstance(event.data, dict):
            message = "Field required" if not event.has_data else "Input should be a JSON object"
            kind = "missing" if not event.has_data else "dict_type"
            error = {"field": "data", "message": message, "type": kind}
            raise Rejected("contract", problems.contract_failed([error]))
        try:
            return self.app.parse(event.type, event.data, event.version)
        except ContractViolation as exc:
            errors = [{**e, "field": _in_data(e.get("field"))} for e in exc.errors]
            problem = problems.contract_failed(errors, None if errors else str(exc))
            raise Rejected("contract", problem) from None


class EventsRouter(APIRouter):
    """The router of ``POST /events``; ``intake`` holds its counters."""

    def __init__(self, intake: EventIntake) -> None:
        super().__init__()
        self.intake = intake


def build_events(
    app: Interlock,
    auth: Auth,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_batch: int = MAX_BATCH,
) -> EventsRouter:
    """The ``POST /events`` router of ``app``, for tokens with the operator role or above."""
    intake = EventIntake(app, max_body_bytes=max_body_bytes, max_batch=max_batch)
    router = EventsRouter(intake)
    operator = Depends(auth.require("operator"))

    @router.post(
        "/events",
        tags=["events"],
        summary="Send CloudEvents 1.0: structured, binary or batch (operator)",
        description=_DESCRIPTION,
        status_code=202,
        response_model=None,
        response_class=JSONResponse,
        responses=_responses(max_body_bytes, max_batch),
        openapi_extra=_openapi_body(max_batch, sorted(app.contracts)),
    )
    async def send_events(request: Request, token: TokenRow = operator) -> Response:
        return await intake.handle(request, token)

    return router


# -- requests and options ----------------------------------------------------------------


def _request_correlation(request: Request) -> str | None:
    """The request's correlation id, as :class:`GatewayMiddleware` chose it (and answers it).

    Without the middleware: a valid ``X-Correlation-ID``, else the trace id of a valid W3C
    ``traceparent``, else none (each event then gets a new one).
    """
    chosen = getattr(request.state, "correlation_id", None)
    if isinstance(chosen, str):
        return chosen
    headers = request.headers
    return valid_correlation_id(headers.get("x-correlation-id")) or trace_id_of(
        headers.get("traceparent")
    )


def _options(event: Incoming, correlation: str | None) -> dict[str, Any]:
    return {
        "source": event.source,
        "idempotency_key": event.id,
        "correlation_id": event.correlation_id or correlation,
        "causation_id": event.causation_id,
        "subject": event.subject,
        "occurred_at": event.occurred_at,
    }


def _in_data(field: object) -> str:
    return "data" if field in (None, "", "(root)") else f"data.{field}"


def _too_large(exc: LimitExceeded) -> Rejected:
    slug = problem_type("payload-too-large")
    problem = Problem(
        413, "Payload too large", str(exc), type=slug, extensions={"limit": exc.maximum}
    )
    return Rejected("too_large", problem)


# -- OpenAPI -----------------------------------------------------------------------------

_DESCRIPTION = (
    "CloudEvents 1.0 over HTTP. **Structured**: `Content-Type: application/cloudevents+json`, "
    "the body is the event. **Batch**: `application/cloudevents-batch+json`, a JSON array of "
    "events, stored together or not at all. **Binary**: a JSON body is the event's `data`, its "
    "attributes are `ce-*` headers (percent-encoded). `type` must be a contract of this app; "
    "`data` is validated against it (the version from `dataschema` "
    "`urn:interlock:contract:<type>:v<N>` or the `interlockversion` extension). `source` + `id` "
    "are the idempotency key: a resent event is answered with its first id. Extensions "
    "`correlationid` and `causationid` are kept; without `correlationid` an event takes the "
    "request's correlation id (`X-Correlation-ID`, else the trace id of `traceparent`)."
)

_PROBLEM: Final = {"content": {"application/problem+json": {"schema": {"type": "object"}}}}


def _responses(max_body_bytes: int, max_batch: int) -> dict[int | str, dict[str, Any]]:
    return {
        202: {"description": "Every event is durably stored (or was already)", "model": Accepted},
        400: {
            "description": f"Malformed JSON, not a valid CloudEvent 1.0, or over {max_batch:,} "
            "events in a batch",
            **_PROBLEM,
        },
        401: {"description": "Missing, unknown or revoked token", **_PROBLEM},
        403: {"description": "The token's role is below operator", **_PROBLEM},
        413: {"description": f"Body over {max_body_bytes:,} bytes", **_PROBLEM},
        415: {"description": "Not a JSON event format, or data that is not JSON", **_PROBLEM},
        422: {"description": "Unknown event type, or data failing its contract", **_PROBLEM},
        503: {"description": "The store is unavailable; nothing was stored", **_PROBLEM},
    }


def _openapi_body(max_batch: int, known_types: list[str]) -> dict[str, Any]:
    string = {"type": "string", "minLength": 1, "maxLength": MAX_CHARS}
    types = {"enum": known_types} if known_types else {}
    event = {
        "type": "object",
        "required": ["specversion", "id", "source", "type"],
        "properties": {
            "specversion": {"type": "string", "enum": ["1.0"]},
            "id": string,
            "source": {**string, "format": "uri-reference"},
            "type": {**string, **types, "description": "An event type of this app's contracts"},
            "subject": string,
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {**string, "description": "A JSON media type"},
            "dataschema": {"type": "string", "format": "uri"},
            "interlockversion": {"type": "integer", "minimum": 1},
            "correlationid": string,
            "causationid": string,
            "data": {"type": "object", "description": "The contract's JSON object"},
        },
        "propertyNames": {"pattern": "^[a-z0-9]{1,64}$|^data_base64$"},
        "additionalProperties": {
            "description": "Extensions: strings, 32-bit integers or booleans",
            "type": ["string", "integer", "boolean", "null"],
        },
    }
    headers = [
        ("ce-specversion", "Binary mode: 1.0"),
        ("ce-id", "Binary mode: the event id (idempotency key with ce-source)"),
        ("ce-source", "Binary mode: the event source, a URI-reference"),
        ("ce-type", "Binary mode: the event type"),
        ("ce-subject", "Binary mode: the subject (else the contract's own)"),
        ("ce-time", "Binary mode: when it occurred, RFC 3339"),
        ("X-Correlation-ID", "The correlation id of events without a correlationid"),
        ("traceparent", "W3C Trace Context: its trace id, when no X-Correlation-ID"),
    ]
    return {
        "parameters": [
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": text,
                "schema": {"type": "string"},
            }
            for name, text in headers
        ],
        "requestBody": {
            "required": True,
            "content": {
                STRUCTURED: {"schema": event},
                BATCH: {"schema": {"type": "array", "items": event, "maxItems": max_batch}},
                "application/json": {
                    "schema": {"type": "object", "description": "Binary mode: the event's data"}
                },
            },
        },
    }
