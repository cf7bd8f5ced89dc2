"""The HubSpot connector against the HubSpot simulator: contacts, companies, deals, notes and
associations in CRM v3/v4; upserts by unique property as the idempotency HubSpot offers; every
failure classified with HubSpot's category and message; X-HubSpot-RateLimit-* signals and the
search bucket; OAuth refresh tokens; schema drift; dry-run (searches still read); the probe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import httpx
import pytest

from interlock.connectors import HubSpot, Rate, Timeouts, check
from interlock.connectors.calls import Call
from interlock.errors import (
    ConfigurationError,
    ConnectionPaused,
    PermissionDenied,
    RateLimited,
    ResourceNotFound,
    VendorRejected,
    VendorUnavailable,
)
from interlock.sandbox import HubSpotSimulator, Vendors, run


@pytest.fixture(scope="module")
def served_hubspot() -> Iterator[Vendors]:
    with run(("hubspot",)) as vendors:
        vendors.hubspot.schema.define("deals", "order_id", unique=True)
        yield vendors


@pytest.fixture
def sim(served_hubspot: Vendors, monkeypatch: pytest.MonkeyPatch) -> HubSpotSimulator:
    served_hubspot.reset()
    sim = served_hubspot.hubspot
    monkeypatch.setenv("INTERLOCK_SECRET_HUBSPOT_TOKEN", sim.credentials["private_app_token"])
    monkeypatch.setenv("INTERLOCK_SECRET_HUBSPOT_CLIENT_SECRET", "hubspot-sandbox-secret")
    monkeypatch.setenv("INTERLOCK_SECRET_HUBSPOT_REFRESH_TOKEN", sim.credentials["refresh_token"])
    return sim


@pytest.fixture
async def crm(sim: HubSpotSimulator) -> AsyncIterator[HubSpot]:
    connector = HubSpot(base_url=sim.url, deal_key="order_id", timeouts=Timeouts(total="0.3s"))
    yield connector
    await connector.aclose()


async def test_contacts_companies_deals_notes_and_associations(
    crm: HubSpot, sim: HubSpotSimulator
) -> None:
    contact = await crm.upsert_contact("jo@example.test", {"firstname": "Jo"})
    assert (contact.new, contact.email, contact.first_name) == (True, "jo@example.test", "Jo")
    again = await crm.upsert_contact("jo@example.test", {"lastname": "Doe"})
    assert (again.id, again.new) == (contact.id, False)
    found = await crm.find_contact("jo@example.test")
    assert found is not None and (found.first_name, found.last_name) == ("Jo", "Doe")
    assert await crm.find_contact("nobody@example.test") is None
    other = await crm.create_contact("ann@example.test", {"lifecyclestage": "lead"})
    assert (await crm.update_contact(other.id, {"lifecyclestage": "customer"})).id == other.id
    assert (await crm.get_contact(other.id)).get("lifecyclestage") == "customer"

    company = await crm.create_company("Acme", domain="acme.test")
    assert (company.name, company.domain) == ("Acme", "acme.test")
    assert (await crm.find_company("acme.test")) is not None
    assert (await crm.update_company(company.id, {"industry": "RETAIL"})).id == company.id
    assert (await crm.get_company(company.id)).get("industry") == "RETAIL"

    deal = await crm.create_deal(
        "Order 1042",
        stage="appointmentscheduled",
        amount=Decimal("1200.50"),
        properties={"order_id": "1042"},
        contact_ids=[contact.id],
        company_ids=[company.id],
    )
    assert (deal.name, deal.amount, deal.stage) == (
        "Order 1042",
        Decimal("1200.50"),
        "appointmentscheduled",
    )
    by_order = await crm.find_deal("1042")
    assert by_order is not None and (by_order.id, by_order.get("order_id")) == (deal.id, "1042")
    assert await crm.find_deal("9999") is None
    won = await crm.update_deal(deal.id, {"dealstage": "closedwon"})
    assert won.stage == "closedwon" and (await crm.get_deal(deal.id)).stage == "closedwon"
    assert [d.id for d in await crm.search_deals({"dealstage": "closedwon"})] == [deal.id]

    note = await crm.add_note(deal.id, "Shipped via UPS")
    assert note.body == "Shipped via UPS"
    assert await crm.associations("deals", deal.id, "notes") == [note.id]
    assert await crm.associations("deals", deal.id, "contacts") == [contact.id]
    await crm.associate("contacts", other.id, "companies", company.id)
    assert await crm.associations("companies", company.id, "contacts") == [other.id]
    await crm.dissociate("contacts", other.id, "companies", company.id)
    assert await crm.associations("companies", company.id, "contacts") == []
    sent = sim.requests.matching("POST", "/crm/v3/objects/notes")[0].json()
    assert sent["associations"][0]["types"][0]["associationTypeId"] == 214


async def test_upserts_by_unique_property_make_retries_harmless(
    crm: HubSpot, sim: HubSpotSimulator
) -> None:
    # HubSpot creates the deal, but its answer is lost; the retried upsert updates it.
    sim.faults.timeout(1, hold=1.0, effect=True)
    with pytest.raises(VendorUnavailable, match="timeout"):
        await crm.upsert_deal("1042", {"dealname": "Order 1042", "amount": 99})
    deal = await crm.upsert_deal("1042", {"dealname": "Order 1042", "amount": 99})
    assert deal.new is False and len(sim.state["deals"]) == 1
    upsert = sim.requests.matching("POST", "/crm/v3/objects/deals/batch/upsert")[0].json()
    assert upsert == {
        "inputs": [
            {
                "idProperty": "order_id",
                "id": "1042",
                "properties": {"dealname": "Order 1042", "amount": "99"},
            }
        ]
    }
    unkeyed = HubSpot(base_url=sim.url)
    with pytest.raises(ConfigurationError, match="deal_key"):
        await unkeyed.find_deal("1042")
    assert (await unkeyed.upsert_deal("1042", {"amount": 100}, by="order_id")).amount == Decimal(
        100
    )
    await unkeyed.aclose()


async def test_failures_keep_hubspots_category_and_message(
    crm: HubSpot, sim: HubSpotSimulator
) -> None:
    with pytest.raises(VendorRejected) as invalid:
        await crm.create_deal("Bad", stage="not-a-stage")
    assert (invalid.value.status, invalid.value.code) == (400, "VALIDATION_ERROR")
    assert "INVALID_OPTION" in str(invalid.value) and "not-a-stage" in str(invalid.value)
    await crm.create_contact("jo@example.test")
    with pytest.raises(VendorRejected, match="409: CONFLICT Contact already exists") as conflict:
        await crm.create_contact("jo@example.test")
    assert conflict.value.code == "CONFLICT"
    with pytest.raises(ResourceNotFound, match="404: OBJECT_NOT_FOUND") as missing:
        await crm.get_deal("404404")
    assert missing.value.operation == "get_deal"
    sim.faults.fail(1, status=403)
    with pytest.raises(PermissionDenied, match="403"):
        await crm.get_deal("1")
    sim.faults.fail(1, status=500)
    with pytest.raises(VendorUnavailable, match="500: INTERNAL_ERROR"):
        await crm.get_deal("1")
    sim.faults.reset(1)
    with pytest.raises(VendorUnavailable, match="connection_reset"):
        await crm.get_deal("1")
    assert crm.runtime.metrics.headroom["hubspot"] > 0, "X-HubSpot-RateLimit-Remaining read"
    sim.faults.rate_limit(1, retry_after=2)
    with pytest.raises(RateLimited) as limited:
        await crm.get_deal("1")
    assert limited.value.retry_after == 2.0


async def test_a_wrong_token_is_permission_denied(
    sim: HubSpotSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_OLD_TOKEN", "pat-na1-revoked-token")
    crm = HubSpot(access_token="old-token", base_url=sim.url)
    try:
        with pytest.raises(PermissionDenied, match="401: INVALID_AUTHENTICATION") as denied:
            await crm.get_contact("1")
        assert denied.value.code == "INVALID_AUTHENTICATION"
        (result,) = await check(crm)
        assert (result.ok, result.auth) == (False, "denied")
    finally:
        await crm.aclose()


def answer(status: int, body: object, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "https://api.hubapi.com/crm/v3/objects/deals/1")
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_hubspots_rate_limit_headers_and_policies() -> None:
    crm = HubSpot()
    window = crm.rate_signal(
        answer(
            200,
            {},
            **{
                "X-HubSpot-RateLimit-Max": "100",
                "X-HubSpot-RateLimit-Remaining": "0",
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Daily": "250000",
                "X-HubSpot-RateLimit-Daily-Remaining": "4000",
            },
        )
    )
    assert (window.limit, window.remaining, window.reset_after, window.exhausted()) == (
        100,
        0,
        10,
        True,
    )
    daily = crm.rate_signal(
        answer(
            200,
            {},
            **{"X-HubSpot-RateLimit-Daily": "250000", "X-HubSpot-RateLimit-Daily-Remaining": "0"},
        )
    )
    assert (daily.limit, daily.remaining, daily.reset_after) == (250000, 0, 3600)
    spent = crm.vendor_error(
        answer(
            429,
            {
                "status": "error",
                "message": "daily",
                "policyName": "DAILY",
                "category": "RATE_LIMITS",
            },
            **{"Retry-After": "1"},
        )
    )
    assert spent is not None and (spent.kind, spent.retry_after, spent.code) == (
        "rate_limited",
        3600,
        "DAILY",
    )
    locked = crm.vendor_error(
        answer(423, {"status": "error", "message": "locked", "category": "LOCKED"})
    )
    assert locked is not None and locked.kind == "retryable"
    scoped = crm.error_details(
        answer(
            403,
            {
                "status": "error",
                "message": "This app hasn't been granted all required scopes to make this call.",
                "category": "MISSING_SCOPES",
                "errors": [{"context": {"requiredGranularScopes": ["crm.objects.deals.read"]}}],
            },
        )
    )
    assert (scoped.code, scoped.required_scope) == ("MISSING_SCOPES", "crm.objects.deals.read")
    search = Call("POST", "https://api.hubapi.com/crm/v3/objects/deals/search", "search_deals")
    read = Call("GET", "https://api.hubapi.com/crm/v3/objects/deals", "list")
    assert crm.rate_for(search) == ("hubspot:search", Rate(4, per="1s"))
    assert crm.rate_for(read) == ("hubspot", Rate(95, per="10s"))
    assert not crm.mutates(search) and crm.mutates(
        Call("POST", "https://api.hubapi.com/crm/v3/objects/deals/batch/upsert", "upsert_deal")
    )


async def test_oauth_refresh_tokens(sim: HubSpotSimulator) -> None:
    crm = HubSpot(base_url=sim.url, auth=HubSpot.oauth(client_id="hubspot-sandbox-client"))
    try:
        await crm.upsert_contact("jo@example.test")
        sim.faults.expire_tokens()
        found = await crm.find_contact("jo@example.test")  # 401 → one refresh → retried
        assert found is not None
        calls = [e for e in sim.requests.all() if e.path.startswith("/crm/")]
        assert [c.status for c in calls] == [200, 401, 200]
        assert calls[1].response_json()["category"] == "EXPIRED_AUTHENTICATION"
        assert calls[0].headers["authorization"].startswith("Bearer CKsandbox-")
        assert len(sim.requests.matching("POST", "/oauth/v1/token")) == 2

        async with httpx.AsyncClient() as client:  # someone revokes the app's refresh token
            await client.delete(
                f"{sim.url}/oauth/v1/refresh-tokens/{sim.credentials['refresh_token']}"
            )
        sim.faults.expire_tokens()
        with pytest.raises(ConnectionPaused, match="needs re-authorization"):
            await crm.find_contact("jo@example.test")
    finally:
        await crm.aclose()


async def test_schema_drift_is_tolerated_or_a_clear_contract_error(
    crm: HubSpot, sim: HubSpotSimulator
) -> None:
    deal = await crm.create_deal("Order 7", amount=70, stage="qualifiedtobuy")
    sim.faults.drift(enum={"dealstage": "negotiation_v2"})
    assert (await crm.get_deal(deal.id)).stage == "negotiation_v2"
    sim.faults.drift(na=["amount"])
    with pytest.raises(
        VendorRejected, match=r"does not fit Deal .*amount 'NA' is not a number"
    ) as na:
        await crm.get_deal(deal.id)
    assert na.value.code == "schema_mismatch"
    sim.faults.drift(rename={"id": "objectId"})
    with pytest.raises(VendorRejected, match="id: Field required"):
        await crm.get_deal(deal.id)


async def test_dry_run_writes_nothing_but_still_reads(crm: HubSpot, sim: HubSpotSimulator) -> None:
    real = await crm.create_deal("Order 1", stage="closedwon", properties={"order_id": "1"})
    dark = HubSpot("dark", base_url=sim.url, deal_key="order_id", dry_run=True)
    try:
        found = await dark.search_deals({"dealstage": "closedwon"})
        assert [d.id for d in found] == [real.id], "a search is a read: it went through"
        deal = await dark.upsert_deal("2", {"dealname": "Order 2", "amount": 20})
        assert (deal.get("order_id"), deal.amount, deal.name) == ("2", Decimal(20), "Order 2")
        made = await dark.create_contact("new@example.test")
        assert made.email == "new@example.test" and made.id.isdigit()
        assert (await dark.update_deal(real.id, {"dealstage": "closedlost"})).id == real.id
        note = await dark.add_note(real.id, "hello")
        assert note.body == "hello"
        await dark.associate("deals", real.id, "contacts", made.id)
    finally:
        await dark.aclose()
    writes = [e for e in sim.requests.all() if e.method != "GET" and not e.path.endswith("/search")]
    assert len(writes) == 1, "only the setup's deal was created"
    assert [r.operation for r in dark.dry_runs] == [
        "upsert_deal",
        "create_contact",
        "update_deal",
        "add_note",
        "associate",
    ]


async def test_the_probe_reads_one_contact(crm: HubSpot) -> None:
    (result,) = await check(crm)
    assert (result.ok, result.probe, result.limit) == (True, "contacts", 100)
