from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from interlock.gateway.jsonpolicy import BadJson, parse_json
from interlock.gateway.problems import (
    MAX_DETAIL,
    MAX_ERRORS,
    MEDIA_TYPE,
    Problem,
    bad_json,
    contract_failed,
    forbidden,
    headers_too_large,
    overloaded,
    payload_too_large,
    problem_response,
    problem_type,
    rate_limited,
    unauthorized,
    unknown_source,
    unsupported_media_type,
)

BASE = "https://interlock.dev/problems/"


def body(response: Response) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(bytes(response.body))
    return data


def a_bad_json() -> BadJson:
    with pytest.raises(BadJson) as info:
        parse_json(b'{"a": 1,\n "a": [1,]}')
    return info.value


ALL = [
    bad_json(a_bad_json()),
    unauthorized("bad_signature"),
    forbidden(),
    unknown_source(),
    payload_too_large(1024),
    unsupported_media_type(),
    contract_failed([{"field": "a", "message": "Field required", "type": "missing"}]),
    rate_limited(5),
    headers_too_large(),
    overloaded(30),
]


@pytest.mark.parametrize("problem", ALL, ids=lambda p: str(p.status))
def test_every_response_is_problem_json_with_the_required_members(problem: Problem) -> None:
    response = problem_response(problem)
    assert response.status_code == problem.status
    assert response.headers["content-type"] == "application/problem+json" == MEDIA_TYPE
    members = body(response)
    assert list(members)[:4] == ["type", "title", "status", "detail"]
    assert members["status"] == problem.status
    assert members["type"].startswith(BASE)
    assert members["title"]
    assert members["detail"]


def test_the_named_type_uris_are_stable() -> None:
    slugs = {p.status: p.type.removeprefix(BASE) for p in ALL}
    assert slugs == {
        400: "bad-json",
        401: "signature-rejected",
        403: "forbidden",
        404: "unknown-source",
        413: "payload-too-large",
        415: "unsupported-media-type",
        422: "contract-violation",
        429: "rate-limited",
        431: "headers-too-large",
        503: "overloaded",
    }
    assert problem_type("x-y") == BASE + "x-y"


def test_an_ad_hoc_problem_is_about_blank_and_omits_an_unset_instance() -> None:
    problem = Problem(503, "Service Unavailable", "the store is unreachable")
    assert problem.to_dict() == {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "the store is unreachable",
    }
    assert problem.to_json() == json.dumps(problem.to_dict(), separators=(",", ":")).encode()


def test_instance_and_extensions_follow_the_standard_members() -> None:
    problem = Problem(409, "Conflict", "taken", instance="/events/1", extensions={"n": 1})
    assert list(problem.to_dict()) == ["type", "title", "status", "detail", "instance", "n"]


def test_detail_is_truncated_to_500_characters() -> None:
    exact = Problem(400, "Bad Request", "d" * MAX_DETAIL)
    assert exact.detail == "d" * MAX_DETAIL
    long = Problem(400, "Bad Request", "d" * 10_000)
    assert len(long.detail) == MAX_DETAIL == 500
    assert long.detail.endswith("d…")
    assert body(problem_response(long))["detail"] == long.detail


def test_problems_are_frozen_and_extensions_are_a_read_only_copy() -> None:
    source = {"reason": "x"}
    problem = Problem(400, "Bad Request", "no", extensions=source)
    source["reason"] = "changed"
    assert problem.extensions["reason"] == "x"
    with pytest.raises(TypeError):
        problem.extensions["reason"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        problem.detail = "other"  # type: ignore[misc]


@pytest.mark.parametrize("status", [200, 302, 399, 600])
def test_status_must_be_an_error(status: int) -> None:
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Problem(status, "Nope", "nope")


@pytest.mark.parametrize("member", ["type", "title", "status", "detail", "instance"])
def test_extensions_cannot_redefine_standard_members(member: str) -> None:
    with pytest.raises(ValueError, match="standard members"):
        Problem(400, "Bad Request", "no", extensions={member: "x"})


@pytest.mark.parametrize(
    ("problem", "seconds"),
    [(rate_limited(5), "5"), (rate_limited(0.2), "1"), (overloaded(2.01), "3")],
)
def test_shedding_answers_carry_retry_after(problem: Problem, seconds: str) -> None:
    response = problem_response(problem)
    assert response.headers["retry-after"] == seconds
    assert body(response)["retry_after"] == int(seconds)


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [(0, 1), (-5, 1), (float("nan"), 1), (float("inf"), 1), (1e300, 86_400), (59.0, 59)],
)
def test_retry_after_is_whole_seconds_from_one_to_a_day(delay: float, seconds: int) -> None:
    assert rate_limited(delay).extensions["retry_after"] == seconds


def test_explicit_headers_win_and_are_kept() -> None:
    response = problem_response(overloaded(30), headers={"retry-after": "7", "X-Request-Id": "r1"})
    assert response.headers["retry-after"] == "7"
    assert response.headers.getlist("retry-after") == ["7"]
    assert response.headers["x-request-id"] == "r1"


def test_no_retry_after_without_the_extension() -> None:
    assert "retry-after" not in problem_response(forbidden()).headers


def test_a_hand_made_retry_after_becomes_valid_delay_seconds() -> None:
    problem = Problem(503, "Service Unavailable", "busy", extensions={"retry_after": 2.5})
    assert problem_response(problem).headers["retry-after"] == "3"


def test_bad_json_carries_the_reason_and_position() -> None:
    members = bad_json(a_bad_json()).to_dict()
    assert members["status"] == 400
    assert members["reason"] == "malformed"
    assert (members["line"], members["column"]) == (2, 10)
    assert members["detail"].startswith("malformed JSON")


def test_bad_json_without_a_position() -> None:
    with pytest.raises(BadJson) as info:
        parse_json(b'{"a": 1, "a": 2}')
    members = bad_json(info.value).to_dict()
    assert members["reason"] == "duplicate_key"
    assert "line" not in members


@pytest.mark.parametrize("reason", ["missing_signature", "bad_signature", "stale_timestamp"])
def test_unauthorized_names_the_reason(reason: str) -> None:
    members = unauthorized(reason).to_dict()
    assert (members["status"], members["reason"]) == (401, reason)
    assert unauthorized(reason, "custom detail").detail == "custom detail"
    assert unauthorized("something_else").detail


def test_too_large_unsupported_and_unknown() -> None:
    assert payload_too_large(1_048_576).to_dict()["limit"] == 1_048_576
    assert "1,048,576 bytes" in payload_too_large(1_048_576).detail
    assert unsupported_media_type().to_dict()["accepted"] == ["application/json"]
    assert unknown_source().status == 404
    assert headers_too_large().status == 431
    assert forbidden("not from this network").detail == "not from this network"


def test_contract_failure_lists_field_errors() -> None:
    errors = [
        {"field": "order.total", "message": "Input should be a valid integer", "type": "int_type"},
        {"field": "email", "message": "Field required", "type": "missing"},
    ]
    members = contract_failed(errors).to_dict()
    assert members["status"] == 422
    assert members["errors"] == errors
    assert members["detail"] == "the payload does not satisfy its contract (order.total, email)"
    assert "more_errors" not in members


def test_contract_failure_is_bounded() -> None:
    errors = [{"field": f"f{i}", "message": "m" * 1000, "type": 3} for i in range(MAX_ERRORS + 7)]
    members = contract_failed(errors).to_dict()
    assert len(members["errors"]) == MAX_ERRORS
    assert members["more_errors"] == 7
    assert len(members["errors"][0]["message"]) == 200
    assert members["errors"][0]["type"] == "3"
    assert members["detail"].endswith("(f0, f1, f2, f3, f4, ...)")
    assert contract_failed([]).detail == "the payload does not satisfy its contract"
    assert contract_failed([{}]).to_dict()["errors"] == [{"field": "", "message": "", "type": ""}]


async def test_served_over_asgi() -> None:
    async def shed(request: Request) -> Response:
        return problem_response(overloaded(4, "the store is unreachable"))

    app = Starlette(routes=[Route("/", shed, methods=["POST"])])
    start, payload = await call(app)
    assert start["status"] == 503
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert headers["content-type"] == "application/problem+json"
    assert headers["retry-after"] == "4"
    assert headers["content-length"] == str(len(payload))
    assert json.loads(payload) == {
        "type": BASE + "overloaded",
        "title": "Service unavailable",
        "status": 503,
        "detail": "the store is unreachable; retry after 4 s",
        "retry_after": 4,
    }


async def call(app: Starlette) -> tuple[Message, bytes]:
    """One ``POST /`` through the ASGI interface (no HTTP client needed)."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    start, *chunks = sent
    return start, b"".join(chunk.get("body", b"") for chunk in chunks)
