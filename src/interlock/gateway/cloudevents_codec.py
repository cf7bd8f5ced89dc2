"""CloudEvents 1.0 decoding: a request's content type, headers and body to events.

    mode = detect_mode(content_type)                         # or Rejected (415)
    events = decode(mode, raw_headers, body, max_batch=1000)  # list[Incoming], or Rejected

Pure: plain strings, bytes and ``(name, value)`` header pairs in, validated
:class:`Incoming` events or a :class:`Rejected` problem out; nothing is read from
a socket or stored here (:mod:`interlock.gateway.cloudevents` does that).

The mode follows the HTTP protocol binding (CloudEvents 1.0.2, §3): a body of
``application/cloudevents+json`` is one event, ``application/cloudevents-batch+json``
a JSON array of events, and anything else is binary mode: the attributes are
``ce-*`` headers (a quoted string is unescaped, then the value percent-decoded
as strict UTF-8) and the body is the event's ``data``. Interlock contracts are
JSON, so the data must be JSON too.

The checks here: the media type (415), strict JSON and a batch's length (400),
then the attributes (400), every error of an event listed at once; in a batch
a rejection names the event at fault. The event's ``data`` is not checked
against its contract here. Problems name attributes and fields, never their
values.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Literal
from urllib.parse import unquote_to_bytes

from interlock.gateway import problems
from interlock.gateway.jsonpolicy import BadJson, parse_json
from interlock.gateway.problems import MAX_ERRORS, Problem, problem_type

__all__ = [
    "BATCH",
    "MAX_CHARS",
    "MEDIA_TYPES",
    "STRUCTURED",
    "Incoming",
    "Mode",
    "Rejected",
    "decode",
    "detect_mode",
]

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
MEDIA_TYPES: Final = (STRUCTURED, BATCH, "application/json")
MAX_CHARS: Final = 1024  # any string attribute

Mode = Literal["structured", "binary", "batch"]
ErrorList = list[dict[str, str]]

_CORE: Final = frozenset(
    {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema"}
)
_USED: Final = frozenset({"interlockversion", "correlationid", "causationid"})
_NAME: Final = re.compile(r"[a-z0-9]{1,64}")
_URI_REFERENCE: Final = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_URN: Final = "urn:interlock:contract:"
_CONTRACT_URN: Final = re.compile(r"urn:interlock:contract:(.+):v([1-9][0-9]{0,5})")
_VERSION: Final = re.compile(r"[1-9][0-9]{0,5}")
_RFC3339: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_QUOTED: Final = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_ESCAPE: Final = re.compile(rb"\\(.)")
# CloudEvents strings exclude control characters, surrogates and Unicode noncharacters.
_DISALLOWED: Final = re.compile(
    r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(rf"\U{plane << 16 | 0xFFFE:08x}\U{plane << 16 | 0xFFFF:08x}" for plane in range(17))
    + "]"
)
_INT32: Final = range(-(2**31), 2**31)


class Rejected(Exception):
    """A request answered with ``problem``; ``reason`` labels the counter and the log line."""

    def __init__(self, reason: str, problem: Problem, index: int | None = None) -> None:
        super().__init__(problem.detail)
        self.reason = reason
        self.problem = problem
        self.index = index

    def at(self, index: int) -> Rejected:
        """The same rejection, blamed on event ``index`` of a batch."""
        problem = dataclasses.replace(
            self.problem,
            detail=f"event {index} of the batch: {self.problem.detail}",
            extensions={**self.problem.extensions, "index": index},
        )
        return Rejected(self.reason, problem, index)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One CloudEvent whose attributes passed; its data is not checked yet."""

    id: str
    source: str
    type: str
    data: Any
    has_data: bool
    subject: str | None = None
    occurred_at: float | None = None
    version: int | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    ignored: tuple[str, ...] = ()


def decode(
    mode: str, headers: Sequence[tuple[bytes, bytes]], body: bytes, *, max_batch: int
) -> list[Incoming]:
    """The events of a request in ``mode`` (from :func:`detect_mode`), attributes checked."""
    if mode == "binary":
        return [_from_binary(headers, body)]
    value = _json(body)
    if mode == "structured":
        return [_from_json(value)]
    if not isinstance(value, list):
        error = {"field": "(body)", "message": "a batch is a JSON array", "type": "list_type"}
        raise Rejected("invalid_event", _invalid([error]))
    if len(value) > max_batch:
        raise Rejected("too_many_events", _batch_too_large(max_batch))
    events = []
    for index, item in enumerate(value):
        try:
            events.append(_from_json(item))
        except Rejected as exc:
            raise exc.at(index) from None
    return events


# -- modes and decoding ------------------------------------------------------------------


def detect_mode(content_type: str) -> Mode:
    """The binding mode a ``Content-Type`` selects; 415 for a format interlock does not take."""
    media, _, parameters = content_type.partition(";")
    media = media.strip().lower()
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            raise _unsupported("unsupported_media_type", "JSON is UTF-8: send charset=utf-8")
    if media.startswith("application/cloudevents-batch"):
        if media == BATCH:
            return "batch"
        raise _unsupported("unsupported_media_type", f"the batch format supported is {BATCH}")
    if media.startswith("application/cloudevents"):
        if media == STRUCTURED:
            return "structured"
        raise _unsupported("unsupported_media_type", f"the event format supported is {STRUCTURED}")
    if media and not _is_json(media):
        raise _unsupported(
            "unsupported_media_type",
            "in binary mode the body is the event's data, and interlock data is JSON: "
            "send it as application/json (or send a structured event)",
        )
    return "binary"


def _is_json(media_type: str) -> bool:
    """``*/json`` or ``*/*+json``, as the JSON event format defines JSON data."""
    main, _, sub = media_type.split(";")[0].strip().lower().partition("/")
    return bool(main) and (sub == "json" or sub.endswith("+json"))


def _json(body: bytes) -> Any:
    try:
        return parse_json(body)
    except BadJson as exc:
        raise Rejected(exc.reason, problems.bad_json(exc)) from None


def _from_json(value: Any) -> Incoming:
    """A structured-mode event (one JSON object) to attributes and data."""
    if not isinstance(value, dict):
        error = {"field": "(event)", "message": "an event is a JSON object", "type": "dict_type"}
        raise Rejected("invalid_event", _invalid([error]))
    attributes = dict(value)
    has_data = "data" in attributes
    data = attributes.pop("data", None)
    if attributes.pop("data_base64", None) is not None:
        raise _unsupported(
            "unsupported_data", "data_base64 carries binary data; interlock event data is JSON"
        )
    declared = attributes.get("datacontenttype")
    if isinstance(declared, str) and not _is_json(declared):
        raise _unsupported(
            "unsupported_data", "datacontenttype is not JSON; interlock event data is JSON"
        )
    return _incoming(attributes, data, has_data, str)


def _from_binary(headers: Sequence[tuple[bytes, bytes]], body: bytes) -> Incoming:
    """A binary-mode event: attributes from ``ce-*`` headers, data from the body."""
    data = _json(body) if body else None
    attributes: dict[str, Any] = {}
    errors: ErrorList = []
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if not name.startswith("ce-"):
            continue
        attribute = name[3:]
        if not _NAME.fullmatch(attribute):
            errors.append(_error("ce-*", "attribute names are lowercase letters and digits"))
        elif attribute == "datacontenttype":
            errors.append(_error(name, "in binary mode Content-Type is the data's media type"))
        elif attribute in attributes:
            errors.append(_error(name, "sent more than once"))
        elif (decoded := _header_value(raw_value)) is None:
            errors.append(_error(name, "is not percent-encoded UTF-8"))
        else:
            attributes[attribute] = decoded
    if not attributes and not errors:
        detail = (
            f"no CloudEvent found: send {STRUCTURED}, {BATCH}, or binary mode with "
            "ce-specversion, ce-id, ce-source and ce-type headers and JSON data"
        )
        raise Rejected("no_cloudevent", _invalid([], detail))
    if errors:
        raise Rejected("invalid_event", _invalid(errors))
    return _incoming(attributes, data, bool(body), lambda attribute: f"ce-{attribute}")


def _header_value(raw: bytes) -> str | None:
    """HTTP binding §3.1.3.2: unescape a quoted string, then one round of percent-decoding."""
    value = raw.strip(b" \t")
    if quoted := _QUOTED.fullmatch(value):
        value = _ESCAPE.sub(rb"\1", quoted[1])
    try:
        return unquote_to_bytes(value).decode("utf-8")
    except UnicodeDecodeError:  # overlong forms, lone surrogates, stray bytes
        return None


# -- attributes --------------------------------------------------------------------------


def _incoming(
    attributes: Mapping[str, Any], data: Any, has_data: bool, label: Callable[[str], str]
) -> Incoming:
    """Check the context attributes (``label`` names one in a problem); 400 lists every error."""
    errors: ErrorList = []

    def fail(name: str, message: str, kind: str = "value_error") -> None:
        errors.append(_error(label(name), message, kind))

    def text(name: str, *, required: bool = False) -> str | None:
        value = attributes.get(name)
        if value is None:  # JSON null is an unset attribute
            if required:
                fail(name, "required attribute is missing", "missing")
        elif not isinstance(value, str):
            fail(name, "must be a string", "string_type")
        elif not value or len(value) > MAX_CHARS:
            fail(name, f"must be 1 to {MAX_CHARS:,} characters", "string_length")
        elif _DISALLOWED.search(value):
            fail(name, "holds a control character, a surrogate or a noncharacter")
        else:
            return value
        return None

    if (specversion := text("specversion", required=True)) is not None and specversion != "1.0":
        fail("specversion", 'must be "1.0": this endpoint takes CloudEvents 1.0', "specversion")
    event_id = text("id", required=True)
    source = text("source", required=True)
    if source is not None and not _URI_REFERENCE.fullmatch(source):
        fail("source", "must be a URI-reference (RFC 3986): percent-encode other characters")
    event_type = text("type", required=True)
    subject = text("subject")
    occurred_at = _time(text("time"), fail)
    version = _version(attributes, event_type, fail)
    correlation_id = text("correlationid")
    causation_id = text("causationid")
    text("datacontenttype")
    ignored = []
    for name, value in attributes.items():
        if name in _CORE or name in _USED or value is None:
            continue
        if not _NAME.fullmatch(name):
            fail("(attribute)", "attribute names are 1 to 64 lowercase letters and digits")
        elif name == "data":
            fail(name, "is reserved for the event's data")
        elif isinstance(value, str):
            if text(name) is not None:
                ignored.append(name)
        elif isinstance(value, bool) or (isinstance(value, int) and value in _INT32):
            ignored.append(name)
        else:
            fail(name, "an extension is a string, a 32-bit integer or a boolean", "extension_type")
    if errors or event_id is None or source is None or event_type is None:
        raise Rejected("invalid_event", _invalid(errors))
    return Incoming(
        id=event_id,
        source=source,
        type=event_type,
        data=data,
        has_data=has_data,
        subject=subject,
        occurred_at=occurred_at,
        version=version,
        correlation_id=correlation_id,
        causation_id=causation_id,
        ignored=tuple(ignored),
    )


def _time(value: str | None, fail: Callable[[str, str], None]) -> float | None:
    """An RFC 3339 timestamp as epoch seconds (a leap second counts into the next minute)."""
    if value is None:
        return None
    found = _RFC3339.fullmatch(value)
    try:
        if found is None:
            raise ValueError(value)
        year, month, day, hour, minute, second, hours, minutes = (
            int(found[group] or 0) for group in (1, 2, 3, 4, 5, 6, 9, 10)
        )
        if second > 60 or minutes > 59:
            raise ValueError(value)
        offset = timedelta(hours=hours, minutes=minutes) * (-1 if found[8] == "-" else 1)
        micros = int((found[7] or "")[:6].ljust(6, "0"))
        moment = datetime(year, month, day, hour, minute, min(second, 59), micros, timezone(offset))
    except ValueError:  # not the format, or a field out of range
        fail("time", "must be an RFC 3339 timestamp such as 2026-01-31T09:30:00Z")
        return None
    return moment.timestamp() + (second == 60)


def _version(
    attributes: Mapping[str, Any], event_type: str | None, fail: Callable[[str, str], None]
) -> int | None:
    """The contract version the data is at: from ``dataschema`` or ``interlockversion``."""
    version = None
    schema = attributes.get("dataschema")
    if schema is not None:
        if not isinstance(schema, str) or not _SCHEME.match(schema) or len(schema) > MAX_CHARS:
            fail("dataschema", "must be an absolute URI")
        elif schema.startswith(_URN):
            found = _CONTRACT_URN.fullmatch(schema)
            if found is None:
                fail("dataschema", f"an interlock contract reads {_URN}<type>:v<version>")
            elif event_type is not None and found[1] != event_type:
                fail("dataschema", "names another event type than the type attribute")
            else:
                version = int(found[2])
    raw = attributes.get("interlockversion")
    if raw is not None:
        given = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
        if not _VERSION.fullmatch(given):
            fail("interlockversion", "must be a contract version: an integer from 1")
        elif version is not None and int(given) != version:
            fail("interlockversion", "disagrees with the contract version in dataschema")
        else:
            version = int(given)
    return version


# -- problems ----------------------------------------------------------------------------


def _error(field: str, message: str, kind: str = "value_error") -> dict[str, str]:
    return {"field": field, "message": message, "type": kind}


def _invalid(errors: ErrorList, detail: str | None = None) -> Problem:
    """400: not a valid CloudEvent 1.0; ``errors`` name the attributes at fault."""
    fields = ", ".join(e["field"] for e in errors[:5]) + (", ..." if len(errors) > 5 else "")
    text = detail or "not a valid CloudEvent 1.0" + (f" ({fields})" * bool(fields))
    slug = problem_type("invalid-cloudevent")
    extensions = {"errors": errors[:MAX_ERRORS]}
    return Problem(400, "Invalid CloudEvent", text, type=slug, extensions=extensions)


def _unsupported(reason: str, detail: str) -> Rejected:
    slug = problem_type("unsupported-media-type")
    extensions = {"accepted": list(MEDIA_TYPES)}
    problem = Problem(415, "Unsupported media type", detail, type=slug, extensions=extensions)
    return Rejected(reason, problem)


def _batch_too_large(limit: int) -> Problem:
    """400 (not 413: the count breaks the documented ``maxItems``, whatever the byte size)."""
    detail = f"a batch holds at most {limit:,} events; send the rest in another request"
    slug = problem_type("batch-too-large")
    return Problem(400, "Batch too large", detail, type=slug, extensions={"limit": limit})
