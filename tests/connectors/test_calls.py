"""Calls through the generic connector against the generic simulator: answers, pagination,
every failure class with the vendor's own code and message, redirects, timeouts, resets."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Route
from structlog.testing import capture_logs

from interlock.connectors import ApiKey, Egress, HttpConnector, Rate, Timeouts, allow_egress
from interlock.errors import (
    EgressDenied,
    PermissionDenied,
    RateLimited,
    ResourceNotFound,
    VendorRejected,
    VendorUnavailable,
)
from interlock.sandbox import GenericSimulator, serve

from .conftest import ConnectorFactory


class Customer(BaseModel):
    id: str
    name: str


async def test_crud_round_trip_and_pagination(
    connector: ConnectorFactory, generic: GenericSimulator
) -> None:
    crm = connector()
    made = await crm.post("/v1/customers", {"name": "Ada"}, model=Customer)
    assert made.name == "Ada"
    assert (await crm.get(f"/v1/customers/{made.id}"))["name"] == "Ada"
    assert (await crm.patch(f"/v1/customers/{made.id}", {"tier": "gold"}))["tier"] == "gold"
    for n in range(4):
        await crm.post("/v1/customers", {"name": f"c{n}"})
    pages = [page async for page in crm.pages("/v1/customers", params={"limit": 2})]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert await crm.delete(f"/v1/customers/{made.id}") is None
    assert made.id not in generic.state["customers"]
    sent = generic.requests.matching("POST", "/v1/customers")[0]
    assert sent.headers["x-api-key"] == "sandbox-api-key"


async def test_each_failure_is_classified_with_the_vendor_code_and_message(
    connector: ConnectorFactory, generic: GenericSimulator
) -> None:
    crm = connector(timeouts=Timeouts(connect="1s", total="0.3s"))
    with pytest.raises(ResourceNotFound, match="not_found customers nope not found") as nf:
        await crm.get("/v1/customers/nope")
    assert (nf.value.status, nf.value.code, nf.value.operation) == (
        404,
        "not_found",
        "GET /v1/customers/nope",
    )
    with pytest.raises(VendorRejected, match="invalid_json") as bad:
        await crm.request("POST", "/v1/customers", content=b"[1]")
    assert bad.value.status == 400
    await crm.post("/v1/customers", {"id": "c1"})
    with pytest.raises(VendorRejected, match="409: conflict"):
        await crm.post("/v1/customers", {"id": "c1"})
    generic.faults.fail(1, status=502)
    with pytest.raises(VendorUnavailable, match="502: internal_error"):
        await crm.get("/v1/customers")
    generic.faults.rate_limit(1, retry_after=3)
    with pytest.raises(RateLimited) as limited:
        await crm.get("/v1/customers")
    assert limited.value.retry_after == 3.0
    generic.faults.timeout(1, hold=2.0)
    with pytest.raises(VendorUnavailable, match="timed out"):
        await crm.get("/v1/customers")
    generic.faults.reset(1)
    with pytest.raises(VendorUnavailable, match="connection_reset"):
        await crm.get("/v1/customers")
    generic.faults.outage(5.0)
    with pytest.raises(VendorUnavailable, match="503: unavailable"):
        await crm.get("/v1/customers")
    outcomes = {key[2] for key in crm.runtime.metrics.calls}
    assert outcomes == {"ok", "not_found", "permanent", "retryable", "rate_limited"}


async def test_permission_denied_is_a_first_class_event_and_never_retried(
    connector: ConnectorFactory, generic: GenericSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_WRONG_KEY", "not-the-key-123")
    crm = connector(auth=ApiKey(secret="wrong-key"))
    with capture_logs() as logs, pytest.raises(PermissionDenied, match="401: unauthorized") as e:
        await crm.get("/v1/customers", operation="list_customers")
    assert len(generic.requests.all()) == 1, "a 401 is not retried"
    (event,) = [entry for entry in logs if entry["event"] == "connector.permission_denied"]
    assert (event["connector"], event["operation"], event["status"]) == (
        "crm",
        "list_customers",
        401,
    )
    assert e.value.code == "unauthorized"
    generic.faults.fail(1, status=403)
    with pytest.raises(PermissionDenied):
        await crm.get("/v1/customers")
    assert crm.runtime.metrics.alerts[("crm", "permission_denied")] == 2


async def test_credentials_never_appear_in_an_error(
    connector: ConnectorFactory, generic: GenericSimulator
) -> None:
    crm = connector()
    with pytest.raises(ResourceNotFound) as found:
        await crm.get("/v1/customers/sandbox-api-key")  # the vendor echoes the id
    assert "sandbox-api-key" not in str(found.value)
    assert "[redacted]" in str(found.value)


class Redirecting(GenericSimulator):
    """The generic service plus redirects to itself and to elsewhere."""

    def routes(self) -> Sequence[BaseRoute]:
        async def same(request: Request) -> RedirectResponse:
            return RedirectResponse("/v1/customers", 302)

        async def away(request: Request) -> RedirectResponse:
            return RedirectResponse("http://169.254.169.254/latest/meta-data", 302)

        return [
            Route("/same", same),
            Route("/away", away, methods=["GET", "POST"]),
            *super().routes(),
        ]


async def test_redirects_are_followed_only_to_the_same_origin_for_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_GENERIC_KEY", "sandbox-api-key")
    async with serve((Redirecting(),)) as vendors:
        allow_egress(vendors.generic.url)
        crm = HttpConnector("crm", base_url=vendors.generic.url, auth=ApiKey(secret="generic-key"))
        try:
            assert (await crm.get("/same"))["data"] == []
            with pytest.raises(VendorRejected, match=r"302: redirect to http://169\.254"):
                await crm.get("/away")
            with pytest.raises(VendorRejected, match="redirect"):
                await crm.post("/away", {})
        finally:
            await crm.aclose()
    paths = [e.path for e in vendors.generic.requests.all()]
    assert paths == ["/same", "/v1/customers", "/away", "/away"]


async def test_vendor_rate_limit_signals_pause_the_bucket(
    connector: ConnectorFactory, generic: GenericSimulator
) -> None:
    crm = connector(rate=Rate(100, per="1s"))
    generic.faults.rate_limit(1, retry_after=1)
    with pytest.raises(RateLimited):
        await crm.get("/v1/customers")
    started = crm.clock.now()
    await crm.get("/v1/customers")  # waits out the vendor's Retry-After first
    assert crm.clock.now() - started >= 0.9
    assert [e.status for e in generic.requests.all()] == [429, 200]


async def test_schema_drift_is_caught_by_the_model(
    connector: ConnectorFactory, generic: GenericSimulator
) -> None:
    crm = connector()
    await crm.post("/v1/customers", {"id": "c1", "name": "Ada"})
    assert (await crm.get("/v1/customers/c1", model=Customer)).name == "Ada"
    generic.faults.drift(rename={"name": "full_name"})
    with pytest.raises(VendorRejected, match="does not fit Customer") as drifted:
        await crm.get("/v1/customers/c1", model=Customer)
    assert drifted.value.code == "schema_mismatch"


async def test_settings_override_code_and_accounts_get_their_own_buckets(
    generic: GenericSimulator, monkeypatch: pytest.MonkeyPatch, connectors: list[HttpConnector]
) -> None:
    monkeypatch.setenv("INTERLOCK_CONNECTOR_CRM_BASE_URL", generic.url)
    monkeypatch.setenv("INTERLOCK_CONNECTOR_CRM_RATE", "50/1s burst 2")
    monkeypatch.setenv("INTERLOCK_CONNECTOR_CRM_TIMEOUT", "2s")
    crm = HttpConnector("crm", base_url="https://unused.example", auth=ApiKey(secret="generic-key"))
    connectors.append(crm)
    assert (crm.base_url, crm.rate, crm.timeouts.total) == (generic.url, Rate(50, "1s", 2), "2s")
    await crm.get("/v1/customers", account="a1")
    await crm.get("/v1/customers", account="a2")
    await crm.get("/v1/customers")
    assert sorted(crm.guards.limiters.get()) == ["crm", "crm@a1", "crm@a2"]


async def test_a_refused_connection_is_retryable(connectors: list[HttpConnector]) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    crm = HttpConnector("crm", base_url=url, egress=Egress(allow=(url,)))
    connectors.append(crm)
    with pytest.raises(VendorUnavailable, match="connect_error"):
        await crm.get("/v1/customers")


async def test_the_sandbox_allows_its_own_ports_only_while_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_GENERIC_KEY", "sandbox-api-key")
    async with serve(("generic",)) as vendors:
        url = vendors.generic.url
        crm = HttpConnector("crm", base_url=url, auth=ApiKey(secret="generic-key"))
        try:
            assert (await crm.get("/v1/customers"))["data"] == []
        finally:
            await crm.aclose()
    later = HttpConnector("crm", base_url=url, auth=ApiKey(secret="generic-key"))
    try:
        with pytest.raises(EgressDenied):
            await later.get("/v1/customers")
    finally:
        await later.aclose()
