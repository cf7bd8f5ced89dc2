"""``POST /events`` on a real server on loopback: CloudEvents from the official SDK, in
structured, binary and batch modes, are stored as sent, once; every rejection stores nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
import pytest
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1.conversion import to_binary as v1_to_binary
from cloudevents.v1.conversion import to_structured as v1_to_structured
from cloudevents.v1.http import CloudEvent as V1CloudEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from interlock import PII, Context, Contract, Interlock
from interlock.events import Event
from interlock.gateway.server import server_for

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
EMAIL = "jo.secret@customer.test"
WHEN = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)


class OrderShipped(Contract, event="order.shipped", subject="order_id"):
    order_id: str
    carrier: Literal["ups", "fedex", "dhl"]
    email: PII[str]


class Contact(Contract, event="contact.created", version=2, subject="contact_id"):
    contact_id: str
    email: str


@Contact.upcaster(from_version=1)
def _mail_to_email(data: dict[str, Any]) -> dict[str, Any]:
    return {"contact_id": data["contact_id"], "email": data["mail"]}


class Note(Contract, event="note.added", subject="note_id"):
    note_id: str
    text: str
    count: int
    ratio: float
    tags: list[str]
    done: bool


@dataclass
class Served:
    app: Interlock
    url: str
    tokens: dict[str, str]

    def auth(self, role: str = "operator") -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[role]}"}

    def stored(self) -> list[Event]:
        return list(reversed(self.app.store.list_events(limit=10_000)))


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    app = Interlock("ce", f"sqlite:///{tmp_path / 'ce.db'}")
    app.contract(Contact)
    app.contract(Note)

    @app.flow(OrderShipped, owner="ops@acme.test", key="order_id")
    async def notify(event: OrderShipped, ctx: Context) -> None:
        return None

    now = time.time()
    tokens = {
        role: app.store.create_token_sync(role, role, actor="test", now=now).secret
        for role in ("viewer", "operator", "admin")
    }
    tokens["revoked"] = app.store.create_token_sync("gone", "admin", actor="test", now=now).secret
    app.store.revoke_token_sync("gone", actor="test", reason="left", now=now)
    server = server_for(app, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Served(app, f"http://127.0.0.1:{port}", tokens)
    server.should_exit = True
    await task
    app.close()


def order(order_id: str = "1042", carrier: str = "ups") -> dict[str, Any]:
    return {"order_id": order_id, "carrier": carrier, "email": EMAIL}


def attributes(**extra: Any) -> dict[str, Any]:
    return {
        "type": "order.shipped",
        "source": "/shop/orders",
        "id": f"ship-{uuid.uuid4()}",
        **extra,
    }


def structured(event: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    return {"content-type": STRUCTURED}, orjson.dumps({"specversion": "1.0", **event})


Encoder = Callable[[dict[str, Any], dict[str, Any]], tuple[dict[str, str], bytes]]


def sdk_structured(attrs: dict[str, Any], data: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    message = to_structured_event(CloudEvent(dict(attrs), data))
    return message.headers, message.body


def sdk_binary(attrs: dict[str, Any], data: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    message = to_binary_event(CloudEvent(dict(attrs), data))
    return message.headers, message.body


def v1_structured(attrs: dict[str, Any], data: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    fields = {**attrs, "time": attrs["time"].isoformat()}
    return v1_to_structured(V1CloudEvent(fields, data))


def v1_binary(attrs: dict[str, Any], data: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    # The 1.x-style API sends header values as they are (no percent-encoding): ASCII only.
    fields = {**attrs, "time": attrs["time"].isoformat()}
    headers, body = v1_to_binary(V1CloudEvent(fields, data))
    return {name: str(value) for name, value in headers.items()}, body


def batch_of(*events: CloudEvent) -> tuple[dict[str, str], bytes]:
    """The JSON batch format: an array of the SDK's structured events (the SDK has no encoder)."""
    body = b"[" + b",".join(JSONFormat().write(event) for event in events) + b"]"
    return {"content-type": BATCH}, body


async def post(
    served: Served,
    headers: dict[str, str] | list[tuple[str, str]],
    body: bytes,
    role: str = "operator",
) -> httpx.Response:
    merged = [*(headers.items() if isinstance(headers, dict) else headers)]
    if role:
        merged.append(("authorization", f"Bearer {served.tokens[role]}"))
    async with httpx.AsyncClient(base_url=served.url) as client:
        return await client.post("/events", content=body, headers=merged)


def assert_stored_as_sent(event: Event, attrs: dict[str, Any], data: dict[str, Any]) -> None:
    assert event.type == attrs["type"]
    assert event.source == attrs["source"]
    assert event.idempotency_key == attrs["id"]
    assert event.subject == attrs.get("subject", event.subject)
    assert event.occurred_at == pytest.approx(attrs["time"].timestamp(), abs=1e-6)
    assert event.data == data
    assert event.correlation_id == attrs.get("correlationid", event.correlation_id)
    assert event.causation_id == attrs.get("causationid")


@pytest.mark.parametrize(
    "encode",
    [sdk_structured, sdk_binary, v1_structured, v1_binary],
    ids=["structured", "binary", "v1-api-structured", "v1-api-binary"],
)
async def test_sdk_events_are_stored_as_sent(served: Served, encode: Encoder) -> None:
    ascii_only = encode is v1_binary
    attrs = attributes(
        subject="order:1042" if ascii_only else 'order:1042 "Zürich" 100% €',
        time=WHEN,
        correlationid="corr-77",
        causationid="evt_cause",
        tenant="acme",
        priority=3,
    )
    headers, body = encode(attrs, order())
    response = await post(served, headers, body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "accepted"
    assert answer["ignored_extensions"] == ["priority", "tenant"]
    (event,) = served.stored()
    assert answer["event_ids"] == [event.id]
    assert_stored_as_sent(event, attrs, order())
    assert len(served.app.store.trace(event.id).deliveries) == 1  # the flow's delivery


async def test_a_batch_of_sdk_events_is_stored_in_order(served: Served) -> None:
    sent = [
        (attributes(time=WHEN, subject="order:a"), order("a")),
        (attributes(time=WHEN, correlationid="c-2"), order("b", "dhl")),
        (
            {"type": "contact.created", "source": "/crm", "id": "c-1", "time": WHEN},
            {"contact_id": "c1", "email": "x@y.test"},
        ),
    ]
    headers, body = batch_of(*(CloudEvent(dict(a), d) for a, d in sent))
    response = await post(served, headers, body)
    assert response.status_code == 202, response.text
    stored = served.stored()
    assert response.json()["event_ids"] == [e.id for e in stored]
    for event, (attrs, data) in zip(stored, sent, strict=True):
        assert_stored_as_sent(event, attrs, data)
    assert stored[2].subject == "contact:c1"  # no subject attribute: the contract's own
    empty = await post(served, {"content-type": BATCH}, b"[]")
    assert (empty.status_code, empty.json()["event_ids"]) == (202, [])


@pytest.mark.parametrize("mode", ["structured", "binary"])
async def test_an_interlock_cloudevent_posted_back_is_accepted(served: Served, mode: str) -> None:
    app = served.app
    first = await app.emit(
        OrderShipped(order_id="7", carrier="fedex", email=EMAIL),
        source="shopify",
        idempotency_key="fulfillment:88",
        causation_id="evt_parent",
    )
    original = app.store.get_event(first)
    cloudevent = original.to_cloudevent()
    if mode == "structured":
        headers, body = structured(cloudevent)
    else:
        fields = {k: v for k, v in cloudevent.items() if k != "data"}
        fields["time"] = datetime.fromisoformat(cloudevent["time"])
        headers, body = sdk_binary(fields, cloudevent["data"])
    response = await post(served, headers, body)
    assert response.status_code == 202, response.text
    assert response.json()["ignored_extensions"] == ["idempotencykey"]
    (copy_id,) = response.json()["event_ids"]
    copy = app.store.get_event(copy_id)
    assert copy.id != original.id
    assert copy.idempotency_key == original.id  # the CloudEvent's id
    same = ("type", "version", "source", "subject", "data", "correlation_id", "causation_id")
    assert [getattr(copy, f) for f in same] == [getattr(original, f) for f in same]
    assert copy.occurred_at == pytest.approx(original.occurred_at, abs=0.001)


async def test_resending_an_event_answers_its_first_id_and_stores_nothing(served: Served) -> None:
    attrs = attributes(time=WHEN)
    first = await post(served, *sdk_structured(attrs, order()))
    again = await post(served, *sdk_binary(attrs, order(carrier="dhl")))
    in_batch = await post(served, *batch_of(CloudEvent(dict(attrs), order())))
    other_source = await post(served, *sdk_structured({**attrs, "source": "/other"}, order()))
    assert {first.status_code, again.status_code, in_batch.status_code} == {202}
    ids = first.json()["event_ids"]
    assert again.json()["event_ids"] == in_batch.json()["event_ids"] == ids
    assert other_source.json()["event_ids"] != ids
    assert [e.source for e in served.stored()] == ["/shop/orders", "/other"]
    assert served.stored()[0].data == order()  # the first one's data


async def test_a_batch_with_one_bad_event_stores_nothing(served: Served) -> None:
    good = CloudEvent(attributes(time=WHEN), order())
    bad_data = CloudEvent(attributes(time=WHEN), order(carrier="bicycle"))
    _, body = batch_of(good, bad_data, good)
    contract = await post(served, {"content-type": BATCH}, body)
    assert contract.status_code == 422
    problem = contract.json()
    assert problem["index"] == 1
    assert [e["field"] for e in problem["errors"]] == ["data.carrier"]
    assert "bicycle" not in contract.text
    assert EMAIL not in contract.text
    no_id = orjson.dumps(
        [
            orjson.loads(JSONFormat().write(good)),
            {"specversion": "1.0", "type": "x", "source": "/s"},
        ]
    )
    invalid = await post(served, {"content-type": BATCH}, no_id)
    assert invalid.status_code == 400
    assert invalid.json()["index"] == 1
    assert [e["field"] for e in invalid.json()["errors"]] == ["id"]
    assert served.stored() == []


async def test_tokens_guard_the_endpoint(served: Served) -> None:
    headers, body = sdk_structured(attributes(time=WHEN), order())
    missing = await post(served, headers, body, role="")
    viewer = await post(served, headers, body, role="viewer")
    revoked = await post(served, headers, body, role="revoked")
    assert (missing.status_code, viewer.status_code, revoked.status_code) == (401, 403, 401)
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert all(
        r.headers["content-type"].startswith("application/problem+json")
        for r in (missing, viewer, revoked)
    )
    assert served.tokens["viewer"] not in viewer.text
    assert served.stored() == []
    admin = await post(served, headers, body, role="admin")
    assert admin.status_code == 202


def _with(**changes: Any) -> dict[str, Any]:
    event = {"specversion": "1.0", **attributes(), "data": order()}
    event.update(changes)
    return {k: v for k, v in event.items() if v is not ...}


def _binary(**headers: str) -> dict[str, str]:
    base = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "b-1",
        "ce-source": "/s",
        "ce-type": "order.shipped",
    }
    return {k: v for k, v in {**base, **headers}.items() if v}


REJECTIONS: list[tuple[str, dict[str, str] | list[tuple[str, str]], bytes, int, str]] = [
    ("specversion", *structured(_with(specversion="0.3")), 400, "specversion"),
    ("missing id", *structured(_with(id=...)), 400, "id"),
    ("empty source", *structured(_with(source="")), 400, "source"),
    ("source not a URI-reference", *structured(_with(source="my shop")), 400, "source"),
    ("id not a string", *structured(_with(id=42)), 400, "id"),
    ("bad time", *structured(_with(time="yesterday")), 400, "time"),
    ("bad extension value", *structured(_with(score=1.5)), 400, "score"),
    ("bad attribute name", *structured(_with(Tenant="x")), 400, "(attribute)"),
    (
        "dataschema of another type",
        *structured(_with(dataschema="urn:interlock:contract:a.b:v1")),
        400,
        "dataschema",
    ),
    (
        "versions disagree",
        *structured(
            _with(dataschema="urn:interlock:contract:order.shipped:v1", interlockversion=2)
        ),
        400,
        "interlockversion",
    ),
    ("binary: missing ce-id", _binary(**{"ce-id": ""}), orjson.dumps(order()), 400, "ce-id"),
    (
        "binary: overlong UTF-8",
        _binary(**{"ce-subject": "%C0%A0"}),
        orjson.dumps(order()),
        400,
        "ce-subject",
    ),
    (
        "binary: ce-datacontenttype",
        _binary(**{"ce-datacontenttype": "a/json"}),
        orjson.dumps(order()),
        400,
        "ce-datacontenttype",
    ),
    ("binary: twice", [*_binary().items(), ("ce-id", "b-2")], orjson.dumps(order()), 400, "ce-id"),
    ("no CloudEvent", {"content-type": "application/json"}, orjson.dumps(order()), 400, ""),
    ("duplicate keys", {"content-type": STRUCTURED}, b'{"id": "a", "id": "b"}', 400, ""),
    ("NaN", {"content-type": STRUCTURED}, b'{"specversion": NaN}', 400, ""),
    ("not an object", {"content-type": STRUCTURED}, b"[]", 400, ""),
    ("batch not an array", {"content-type": BATCH}, b"{}", 400, "(body)"),
    ("unknown type", *structured(_with(type="order.lost")), 422, ""),
    (
        "contract violation",
        *structured(_with(data={**order(), "carrier": "bicycle"})),
        422,
        "data.carrier",
    ),
    ("unknown field", *structured(_with(data={**order(), "extra": EMAIL})), 422, "data.extra"),
    ("no data", *structured(_with(data=...)), 422, "data"),
    ("data not an object", *structured(_with(data=[EMAIL])), 422, "data"),
    ("binary: no body", _binary(), b"", 422, "data"),
    ("too new a version", *structured(_with(interlockversion=9)), 422, ""),
    ("text/plain", _binary(**{"content-type": "text/plain"}), b"hello", 415, ""),
    ("avro", {"content-type": "application/cloudevents+avro"}, b"\x00", 415, ""),
    ("latin-1", {"content-type": f"{STRUCTURED}; charset=latin-1"}, b"{}", 415, ""),
    ("data_base64", *structured(_with(data=..., data_base64="aGk=")), 415, ""),
    ("xml data", *structured(_with(datacontenttype="application/xml", data="<a/>")), 415, ""),
    ("over the size limit", {"content-type": STRUCTURED}, b" " * (1024 * 1024 + 1), 413, ""),
    (
        "over the batch limit",
        {"content-type": BATCH},
        b"[" + b",".join([b"{}"] * 1001) + b"]",
        400,
        "",
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "status", "field"),
    [case[1:] for case in REJECTIONS],
    ids=[case[0] for case in REJECTIONS],
)
async def test_rejections_are_problems_and_store_nothing(
    served: Served,
    headers: dict[str, str] | list[tuple[str, str]],
    body: bytes,
    status: int,
    field: str,
) -> None:
    response = await post(served, headers, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://interlock.dev/problems/")
    if field:
        assert field in [e["field"] for e in problem["errors"]], problem
    for secret in (
        EMAIL,
        "bicycle",
        "order.lost",
        "yesterday",
        "my shop",
        served.tokens["operator"],
    ):
        assert secret not in response.text
    assert served.stored() == []


async def test_unknown_types_are_answered_with_the_known_ones(served: Served) -> None:
    response = await post(served, *structured(_with(type="order.lost")))
    assert response.status_code == 422
    assert response.json()["known_types"] == ["contact.created", "note.added", "order.shipped"]


async def test_a_body_over_the_limit_is_refused_while_streaming(served: Served) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 100_000

    async with httpx.AsyncClient(base_url=served.url) as client:
        response = await client.post(
            "/events", content=chunks(), headers={"content-type": STRUCTURED, **served.auth()}
        )
    assert response.status_code == 413
    assert response.json()["limit"] == 1024 * 1024


async def test_binary_header_values_are_decoded_per_the_http_binding(served: Served) -> None:
    cases = {
        "Euro%20%E2%82%AC%20%F0%9F%98%80": "Euro € 😀",  # the spec's own example
        "%e2%82%ac%41": "€A",  # lower-case hex, and an unnecessary escape
        '"say \\"hi\\" to 100%25"': 'say "hi" to 100%',  # a quoted string, then percent-decoding
        "100%": "100%",  # a stray percent sign is kept
    }
    for index, (sent, subject) in enumerate(cases.items()):
        headers = _binary(**{"ce-id": f"h-{index}", "ce-subject": sent})
        response = await post(served, headers, orjson.dumps(order()))
        assert response.status_code == 202, (sent, response.text)
        (event_id,) = response.json()["event_ids"]
        assert served.app.store.get_event(event_id).subject == subject


async def test_correlation_comes_from_the_event_else_the_request(served: Served) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    cases = [
        ({"x-correlation-id": "req-42"}, {}, "req-42"),
        ({"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}, {}, trace),
        ({"x-correlation-id": "req-42"}, {"correlationid": "event-own"}, "event-own"),
    ]
    for extra_headers, extensions, expected in cases:
        headers, body = sdk_structured(attributes(time=WHEN, **extensions), order())
        response = await post(served, {**headers, **extra_headers}, body)
        assert response.status_code == 202, response.text
        (event_id,) = response.json()["event_ids"]
        assert served.app.store.get_event(event_id).correlation_id == expected


async def test_older_contract_versions_are_upcast_on_the_way_in(served: Served) -> None:
    v1 = {"contact_id": "c9", "mail": "c9@crm.test"}
    by_schema = _with(
        type="contact.created", dataschema="urn:interlock:contract:contact.created:v1", data=v1
    )
    first = await post(served, *structured(by_schema))
    by_extension = _binary(
        **{"ce-type": "contact.created", "ce-id": "v1-b", "ce-interlockversion": "1"}
    )
    second = await post(served, by_extension, orjson.dumps(v1))
    assert (first.status_code, second.status_code) == (202, 202), (first.text, second.text)
    for event in served.stored():
        assert (event.version, event.data) == (2, {"contact_id": "c9", "email": "c9@crm.test"})


async def test_a_failing_store_answers_503_and_stores_nothing(served: Served) -> None:
    ok = await post(served, *sdk_structured(attributes(time=WHEN), order()))
    assert ok.status_code == 202
    writer = served.app.store._async_writer._conn
    assert writer is not None
    (pages,) = writer.execute("PRAGMA page_count").fetchone()
    writer.execute(f"PRAGMA max_page_count = {pages}")
    try:
        note = {
            "note_id": "n",
            "text": "y" * 200_000,
            "count": 1,
            "ratio": 0.5,
            "tags": [],
            "done": True,
        }
        big = attributes(type="note.added", time=WHEN)
        down = await post(served, *sdk_structured(big, note))
    finally:
        writer.execute("PRAGMA max_page_count = 1073741823")
    assert down.status_code == 503
    assert down.headers["retry-after"] == "1"
    assert len(served.stored()) == 1


async def test_rejections_are_logged_by_reason_without_values_or_tokens(served: Served) -> None:
    with capture_logs() as logs:
        response = await post(served, *structured(_with(data={**order(), "carrier": "bicycle"})))
    assert response.status_code == 422
    (line,) = [entry for entry in logs if entry["event"] == "events.rejected"]
    assert (line["reason"], line["status"], line["mode"]) == ("contract", 422, "structured")
    assert line["token"].startswith("tok_")
    text = repr(logs)
    for secret in (EMAIL, "bicycle", served.tokens["operator"]):
        assert secret not in text


async def test_the_endpoint_is_documented_in_openapi(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/events"]["post"]
    assert operation["tags"] == ["events"]
    assert set(operation["requestBody"]["content"]) == {STRUCTURED, BATCH, "application/json"}
    assert {"202", "400", "401", "403", "413", "415", "422", "503"} <= set(operation["responses"])
    assert operation["security"] == [{"token": []}]
    assert "application/problem+json" in operation["responses"]["422"]["content"]


# -- property: whatever valid data and attributes, the stored event is what was sent ------------

ATTRIBUTE_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=30
)
JSON_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
NOTES = st.fixed_dictionaries(
    {
        "note_id": JSON_TEXT,
        "text": JSON_TEXT,
        "count": st.integers(min_value=-(2**63), max_value=2**63),
        "ratio": st.floats(allow_nan=False, allow_infinity=False),
        "tags": st.lists(JSON_TEXT, max_size=4),
        "done": st.booleans(),
    }
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=NOTES,
    suffix=ATTRIBUTE_TEXT,
    subject=ATTRIBUTE_TEXT,
    mode=st.sampled_from(["structured", "binary", "batch"]),
)
async def test_random_valid_events_round_trip_exactly(
    served: Served, data: dict[str, Any], suffix: str, subject: str, mode: str
) -> None:
    attrs = {
        "type": "note.added",
        "source": "/notes",
        "id": f"{uuid.uuid4()}{suffix}",
        "subject": subject,
        "time": WHEN,
    }
    if mode == "batch":
        headers, body = batch_of(CloudEvent(dict(attrs), data))
    else:
        headers, body = (sdk_structured if mode == "structured" else sdk_binary)(attrs, data)
    response = await post(served, headers, body)
    assert response.status_code == 202, response.text
    (event_id,) = response.json()["event_ids"]
    assert_stored_as_sent(served.app.store.get_event(event_id), attrs, data)
