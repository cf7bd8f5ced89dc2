"""``POST /hooks/{source}[/{topic}]``: verified webhook ingress.

The order matters and never changes: size and type checks, then the
signature over the raw bytes, then strict JSON, then the contract mapping,
then a durable write — and only then a 2xx with the event id. A rejection
stores nothing and answers with an RFC 9457 problem that names no secret.
A vendor's retry of a delivery it already made is answered with the first
event's id and creates nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from interlock.app import Interlock
from interlock.contracts import Contract
from interlock.drift import monitor_of
from interlock.errors import ConfigurationError, ContractViolation, LimitExceeded, StoreError
from interlock.gateway import problems
from interlock.gateway.jsonpolicy import BadJson, parse_json
from interlock.gateway.problems import MEDIA_TYPE, Problem, retry_after_seconds
from interlock.gateway.signatures import Keys, SignatureError, Verifier, scheme
from interlock.sources import WebhookSource

log = structlog.get_logger("interlock.gateway")

JSON_TYPES = ("application/json", "application/cloudevents+json")

_JSON = b"application/json"
_PROBLEM_JSON = MEDIA_TYPE.encode()


@dataclass(slots=True)
class Answer:
    """A webhook's answer: status, body and content type (and ``Retry-After`` when the
    sender should come back later). Sent as ASGI messages, as a Starlette response or
    as raw bytes by the server's direct path (:mod:`interlock.gateway.direct`)."""

    status: int
    body: bytes
    media_type: bytes
    retry_after: int | None = None

    @classmethod
    def of_problem(cls, problem: Problem) -> Answer:
        retry = problem.extensions.get("retry_after")
        if retry is None and problem.status in (429, 503):
            retry = 1
        seconds = retry_after_seconds(retry) if isinstance(retry, int | float) else None
        return cls(problem.status, problem.to_json(), _PROBLEM_JSON, seconds)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The answer's header fields, as ASGI wants them."""
        headers = [(b"content-type", self.media_type), (b"content-length", b"%d" % len(self.body))]
        if self.retry_after is not None:
            headers.append((b"retry-after", b"%d" % self.retry_after))
        return headers

    def response(self) -> Response:
        response = Response(self.body, status_code=self.status)
        response.raw_headers = self.headers()
        return response


class Ingress:
    """The webhook endpoint of one app; verifiers are built once per source.

    Each request resolves its source's secrets afresh (an environment lookup, or the
    app's :class:`~interlock.secrets.Secrets` cache for stored ones, so a changed
    secret takes effect as it does everywhere else); the verifier's keys are prepared
    once per set of values and reused while the values stay the same.
    """

    def __init__(self, app: Interlock, *, max_depth: int = 64, max_backlog: int = 10_000) -> None:
        self.app = app
        self.max_depth = max_depth
        # Writes queued in this process beyond which new webhooks are shed with a 503.
        self.max_backlog = max_backlog
        self.verifiers: dict[str, Verifier] = {
            name: scheme(source.verify, **source.verify_options)
            for name, source in app.sources.items()
        }
        self.rejected: dict[tuple[str, str], int] = {}
        self.accepted: dict[str, int] = {}
        self._keys: dict[str, Keys] = {}  # per source: its secrets, prepared

    def keys_for(self, source: WebhookSource) -> Keys:
        """``source``'s current secrets, prepared for its verifier (raises
        ConfigurationError when one is not set)."""
        values = source.secret_values(self.app.secrets.resolve)
        keys = self._keys.get(source.name)
        if keys is None or keys.secrets != values:
            keys = self._keys[source.name] = Keys(values)
        return keys

    def _reject(self, source: str, reason: str, problem: Problem) -> Answer:
        key = (source, reason)
        self.rejected[key] = self.rejected.get(key, 0) + 1
        log.warning("webhook.rejected", source=source, reason=reason, status=problem.status)
        return Answer.of_problem(problem)

    async def handle(self, request: Request) -> Response:
        """Answer ``request`` (an ASGI request to a hook route) as a Starlette response."""
        return (await self.answer(request)).response()

    async def answer(self, request: Request) -> Answer:
        """Answer ``request`` (an ASGI request to a hook route)."""
        name = request.path_params["source"]
        headers = request.headers
        source = self.precheck(name, headers)
        if isinstance(source, Answer):
            return source
        body = await self._read(request, source)
        if isinstance(body, Answer):
            return body
        correlation_id = getattr(request.state, "correlation_id", None)  # the middleware's
        topic = request.path_params.get("topic") or None
        return await self.accept(source, topic, headers, body, correlation_id)

    def precheck(self, name: str, headers: Mapping[str, str]) -> WebhookSource | Answer:
        """What is checked before the body is read: the source, the content type, the
        declared length and the store's backlog; the source, or the rejection."""
        source = self.app.sources.get(name)
        if source is None:
            return self._reject(name, "unknown_source", problems.unknown_source())
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in JSON_TYPES and not ctype.endswith("+json"):
            return self._reject(
                name, "unsupported_media_type", problems.unsupported_media_type(JSON_TYPES)
            )
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return self._reject(
                    name,
                    "bad_content_length",
                    Problem(400, "Bad Content-Length", "Content-Length is not a number"),
                )
            if int(declared) > source.max_body_bytes:
                return self._too_large(source)
        backlog = self.app.store.write_backlog()
        if backlog > self.max_backlog:
            # The store is behind: refuse before reading the body rather than queue without
            # bound; vendors retry on 503 and honour Retry-After.
            return self._reject(
                name,
                "overloaded",
                problems.overloaded(1, "the store is behind; the event was not stored"),
            )
        return source

    async def accept(
        self,
        source: WebhookSource,
        path_topic: str | None,
        headers: Mapping[str, str],
        body: bytes,
        correlation_id: str | None,
    ) -> Answer:
        """Verify, parse, map and durably store a webhook whose whole body has arrived
        (after :meth:`precheck` passed); the answer to send."""
        name = source.name
        try:
            secrets = self.keys_for(source)
        except ConfigurationError as exc:
            log.error("webhook.misconfigured", source=name, error=str(exc))
            return self._reject(
                name,
                "misconfigured",
                Problem(503, "Source not ready", "the source's secret is not configured"),
            )
        try:
            verified = self.verifiers[name].verify(body, headers, secrets, self.app.clock.now())
        except SignatureError as exc:
            if exc.reason in ("no_secret", "invalid_secret"):
                log.error("webhook.misconfigured", source=name, error=str(exc))
                return self._reject(
                    name,
                    "misconfigured",
                    Problem(503, "Source not ready", "the source's secret is not usable"),
                )
            return self._reject(name, exc.reason, problems.unauthorized(exc.reason, str(exc)))
        try:
            payload = parse_json(body, max_depth=self.max_depth)
        except BadJson as exc:
            return self._reject(name, exc.reason, problems.bad_json(exc))
        topic = source.topic_of(path_topic, headers, payload)
        drift = monitor_of(self.app)  # profiles every verified payload, valid or not
        drifted = drift.observe(name, topic or "-", payload)
        mapper = source.mapper_for(topic)
        if mapper is None or not isinstance(payload, dict):
            self.accepted[name] = self.accepted.get(name, 0) + 1
            return _json({"status": "ignored", "topic": topic}, 200)
        try:
            mapped = mapper(payload)
            events = _as_list(mapped)
        except ContractViolation as exc:
            return self._reject(name, "contract", _contract_problem(exc))
        except ValidationError as exc:
            return self._reject(name, "contract", _contract_problem(contract_violation_of(exc)))
        except Exception as exc:
            # A mapping that trips over the payload (a missing key, a bad value) is the
            # payload's fault as seen from the vendor: 422, with the error's type only.
            return self._reject(
                name,
                "mapping_failed",
                Problem(
                    422,
                    "Payload does not fit its mapping",
                    f"mapping for topic {topic!r} failed with {type(exc).__name__}",
                ),
            )
        if not events:  # the mapping chose to ignore this payload
            self.accepted[name] = self.accepted.get(name, 0) + 1
            return _json({"status": "ignored", "topic": topic}, 200)
        key = verified.delivery_id or _body_id(payload)
        try:
            if len(events) == 1:
                ids = [
                    await self.app.emit(
                        events[0], source=name, idempotency_key=key, correlation_id=correlation_id
                    )
                ]
            else:  # several events from one payload: stored together or not at all
                keyed = [
                    (event, None if key is None else f"{key}#{i}" if i else key)
                    for i, event in enumerate(events)
                ]
                ids = await self.app.emit_many(keyed, source=name, correlation_id=correlation_id)
        except LimitExceeded as exc:
            return self._reject(name, "too_large", Problem(413, "Payload too large", str(exc)))
        except StoreError as exc:
            log.error("webhook.store_failed", source=name, error=str(exc))
            return self._reject(
                name,
                "store_unavailable",
                problems.overloaded(1, "the store is unavailable; the event was not stored"),
            )
        self.accepted[name] = self.accepted.get(name, 0) + 1
        drift.sample(name, topic, _topic_header(source, headers), payload, events)
        answer: dict[str, Any] = {"status": "accepted", "event_ids": ids, "topic": topic}
        if drifted:  # valid, accepted, and flagged (the finding itself is logged once)
            answer["drift"] = drifted
        return _json(answer, 202)

    async def _read(self, request: Request, source: WebhookSource) -> bytes | Answer:
        limit = source.max_body_bytes
        # What Request.stream() does, without an async generator per request.
        receive = request.receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.request":
                chunk: bytes = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        return self._too_large(source)
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _too_large(self, source: WebhookSource) -> Answer:
        return self._reject(
            source.name,
            "too_large",
            Problem(
                413,
                "Payload too large",
                f"the body is over this source's limit of {source.max_body_bytes:,} bytes",
                extensions={"limit": source.max_body_bytes},
            ),
        )


def _json(content: dict[str, Any], status: int) -> Answer:
    return Answer(status, orjson.dumps(content), _JSON)


def _as_list(mapped: Contract | Sequence[Contract] | None) -> list[Contract]:
    if mapped is None:
        return []
    if isinstance(mapped, Contract):
        return [mapped]
    return list(mapped)


def _topic_header(source: WebhookSource, headers: Any) -> dict[str, str]:
    """The header a fixture needs to find the topic again (and no other)."""
    name = source.topic_header
    return {name: headers[name]} if name and name in headers else {}


def _body_id(payload: dict[str, Any]) -> str | None:
    value = payload.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= 200 else None


def contract_violation_of(exc: ValidationError) -> ContractViolation:
    """Field-level errors without the input values (they may be personal data)."""
    errors: list[dict[str, object]] = [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "(root)",
            "type": err["type"],
            "message": err["msg"],
        }
        for err in exc.errors(include_input=False, include_url=False)
    ]
    fields = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return ContractViolation(f"{exc.title} payload is invalid: {fields}", errors=errors)


def _contract_problem(exc: ContractViolation) -> Problem:
    return problems.contract_failed(exc.errors, str(exc))
