"""The Shopify connector against the Shopify simulator: orders, fulfillments and customers in
the Admin REST API; the leaky bucket's header pacing calls; natural-key idempotency; every
failure classified with Shopify's message; OAuth tokens in X-Shopify-Access-Token; schema
drift; dry-run in Shopify's shapes; the probe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from interlock.connectors import Rate, Shopify, Timeouts, check
from interlock.connectors.shopify import Order
from interlock.errors import (
    PermissionDenied,
    RateLimited,
    ResourceNotFound,
    VendorRejected,
    VendorUnavailable,
)
from interlock.sandbox import ShopifySimulator, Vendors, serve

LINES = [{"title": "Mug", "price": "12.50", "quantity": 2, "sku": "MUG-1"}]


@pytest.fixture
def sim(served: Vendors, monkeypatch: pytest.MonkeyPatch) -> ShopifySimulator:
    served.shopify.reset()
    monkeypatch.setenv("INTERLOCK_SECRET_SHOPIFY_TOKEN", "shpat_sandbox")
    monkeypatch.setenv("INTERLOCK_SECRET_SHOPIFY_CLIENT_SECRET", "shpss_sandbox")
    return served.shopify


@pytest.fixture
async def shop(sim: ShopifySimulator) -> AsyncIterator[Shopify]:
    connector = Shopify(shop="acme", base_url=sim.url, timeouts=Timeouts(total="0.3s"))
    yield connector
    await connector.aclose()


async def test_orders_fulfillments_and_customers(shop: Shopify, sim: ShopifySimulator) -> None:
    assert shop.base_url == sim.url and Shopify(shop="acme").base_url == (
        "https://acme.myshopify.com"
    )
    customer = await shop.create_customer(email="jo@example.test", first_name="Jo", tags="vip")
    order = await shop.create_order(LINES, customer_id=customer.id, note="gift")
    assert isinstance(order, Order) and order.name == "#1001"
    assert order.total_price == Decimal("25.00") and order.customer is not None
    assert order.customer.id == customer.id
    sent = sim.requests.matching("POST", "/admin/api/2024-10/orders.json")[0]
    assert sent.headers["x-shopify-access-token"] == "shpat_sandbox"
    assert sent.json() == {
        "order": {"line_items": LINES, "note": "gift", "customer": {"id": customer.id}}
    }
    assert (await shop.get_order(order.id)).line_items[0].sku == "MUG-1"
    assert (await shop.update_order(order.id, tags="priority")).tags == "priority"
    assert await shop.count_orders() == 1

    (fo,) = await shop.fulfillment_orders(order.id)
    assert (fo.status, fo.fulfillable) == ("open", True)
    shipped = await shop.fulfill_order(
        order.id,
        tracking_number="1Z999",
        tracking_company="UPS",
        line_items={order.line_items[0].id: 1},
    )
    assert (shipped.tracking_number, shipped.tracking_company) == ("1Z999", "UPS")
    assert (await shop.get_order(order.id)).fulfillment_status == "partial"
    rest = await shop.fulfill_order(order.id, tracking_number="1Z998")
    assert (await shop.get_order(order.id)).fulfillment_status == "fulfilled"
    moved = await shop.update_tracking(rest.id, "1Z997", company="FedEx")
    assert (moved.tracking_number, moved.tracking_company) == ("1Z997", "FedEx")
    assert [f.id for f in await shop.fulfillments(order.id)] == [shipped.id, rest.id]

    assert (await shop.close_order(order.id)).closed_at is not None
    assert (await shop.reopen_order(order.id)).closed_at is None
    cancelled = await shop.cancel_order(order.id, reason="customer")
    assert cancelled.cancelled_at is not None
    assert (await shop.find_customer("JO@example.test")) == await shop.get_customer(customer.id)
    assert await shop.find_customer("nobody@example.test") is None
    assert (await shop.update_customer(customer.id, note="called")).note == "called"


async def test_lists_follow_link_page_info(shop: Shopify, sim: ShopifySimulator) -> None:
    made = [await shop.create_order(LINES, financial_status="pending") for _ in range(5)]
    shop.page_size = 2
    listed = await shop.list_orders(financial_status="pending")
    assert [o.id for o in listed] == [o.id for o in made]
    pages = sim.requests.matching("GET", "/admin/api/2024-10/orders.json")
    assert len(pages) == 3 and "page_info=" in pages[1].query and "status" not in pages[1].query
    assert len(await shop.list_orders(limit=3)) == 3


async def test_writes_are_idempotent_by_natural_key(shop: Shopify, sim: ShopifySimulator) -> None:
    order = await shop.create_order(LINES)
    # Shopify ships, but the answer is lost: the retry finds the fulfillment.
    sim.faults.timeout(1, hold=1.0, effect=True)
    with pytest.raises(VendorUnavailable, match="timeout"):
        await shop.fulfill_order(order.id)
    first = await shop.fulfill_order(order.id)
    again = await shop.fulfill_order(order.id, tracking_number="NEW-1")
    assert first.id == again.id and len(sim.state["fulfillments"]) == 1
    other = await shop.create_order(LINES)
    tracked = await shop.fulfill_order(
        other.id, tracking_number="T-1", line_items={other.line_items[0].id: 1}
    )
    assert (await shop.fulfill_order(other.id, tracking_number="T-1")).id == tracked.id
    assert len(sim.state["fulfillments"]) == 2, "the same tracking number ships once"
    with pytest.raises(VendorRejected, match="nothing left to fulfill") as nothing:
        await shop.fulfill_order(order.id, line_items={order.line_items[0].id: 1})
    assert nothing.value.code == "nothing_to_fulfill"

    made = await shop.upsert_customer("ann@example.test", first_name="Ann")
    same = await shop.upsert_customer("ann@example.test", last_name="Lee")
    assert made.id == same.id and (same.first_name, same.last_name) == ("Ann", "Lee")
    assert len(sim.state["customers"]) == 1


async def test_failures_keep_shopifys_message(shop: Shopify, sim: ShopifySimulator) -> None:
    await shop.create_customer(email="jo@example.test")
    with pytest.raises(VendorRejected, match="422: email has already been taken") as taken:
        await shop.create_customer(email="jo@example.test")
    assert taken.value.status == 422
    with pytest.raises(VendorRejected, match="line_items must have at least one line item"):
        await shop.create_order([])
    with pytest.raises(ResourceNotFound, match="404: Not Found") as nf:
        await shop.get_order(1)
    assert nf.value.operation == "get_order"
    sim.faults.fail(1, status=403)
    with pytest.raises(PermissionDenied, match="403"):
        await shop.count_orders()
    sim.faults.fail(1, status=502)
    with pytest.raises(VendorUnavailable, match="502: Internal Server Error"):
        await shop.count_orders()
    sim.faults.reset(1)
    with pytest.raises(VendorUnavailable, match="connection_reset"):
        await shop.count_orders()
    sim.faults.outage(5.0)
    with pytest.raises(VendorUnavailable, match="503: Unavailable Shop"):
        await shop.count_orders()
    sim.faults.clear()
    sim.faults.rate_limit(1, retry_after=1.5)
    with pytest.raises(RateLimited) as limited:
        await shop.count_orders()
    assert limited.value.retry_after == 1.5, "Shopify's Retry-After"


async def test_a_wrong_token_is_permission_denied(
    sim: ShopifySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_OLD_TOKEN", "shpat_revoked_123456")
    shop = Shopify(shop="acme", access_token="old-token", base_url=sim.url)
    try:
        with pytest.raises(PermissionDenied, match="Invalid API key or access token") as denied:
            await shop.get_order(1)
        assert "shpat_revoked_123456" not in str(denied.value)
        (result,) = await check(shop)
        assert (result.ok, result.auth, result.status) == (False, "denied", 401)
    finally:
        await shop.aclose()


async def test_the_call_limit_header_paces_calls_before_the_bucket_fills(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_SHOPIFY_TOKEN", "shpat_sandbox")
    async with serve((ShopifySimulator(bucket=6, leak_per_second=10.0),)) as vendors:
        sim = vendors.shopify
        shop = Shopify(
            shop="acme",
            base_url=sim.url,
            bucket=6,
            leak_per_second=10.0,
            rate=Rate(1000, per="1s"),  # far above Shopify's: its header does the pacing
        )
        try:
            for _ in range(14):
                await shop.count_orders()
        finally:
            await shop.aclose()
    statuses = [e.status for e in sim.requests.all()]
    assert statuses == [200] * 14, "paused before the bucket filled: no 429"
    assert (
        max(
            int(e.response_headers["x-shopify-shop-api-call-limit"].split("/")[0])
            for e in sim.requests.all()
        )
        <= 6
    )
    assert shop.runtime.metrics.headroom["shopify"] >= 0


async def test_oauth_tokens_go_in_the_access_token_header_and_rotate(
    sim: ShopifySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_SHOPIFY_REFRESH_TOKEN", sim.credentials["refresh_token"])
    auth = Shopify.oauth(client_id="shopify-sandbox-client", refresh_token="shopify-refresh-token")
    shop = Shopify(shop="acme", base_url=sim.url, auth=auth)
    try:
        await shop.count_orders()
        sim.faults.expire_tokens()
        await shop.count_orders()  # 401 → one refresh with the rotated token → retried
    finally:
        await shop.aclose()
    calls = sim.requests.matching(None, "/admin/api/2024-10/orders/count.json")
    assert [c.status for c in calls] == [200, 401, 200]
    assert calls[0].headers["x-shopify-access-token"].startswith("shpat_")
    assert "authorization" not in calls[0].headers
    refreshes = sim.requests.matching("POST", "/admin/oauth/access_token")
    assert [r.form()["grant_type"] for r in refreshes] == ["refresh_token"] * 2
    assert refreshes[1].form()["refresh_token"] != refreshes[0].form()["refresh_token"]

    own = Shopify(
        "own", shop="acme", base_url=sim.url, auth=Shopify.oauth(client_id="shopify-sandbox-client")
    )
    try:
        assert await own.count_orders() == 0
    finally:
        await own.aclose()
    assert sim.requests.last.headers["x-shopify-access-token"].startswith("shpat_")


async def test_schema_drift_is_tolerated_or_a_clear_contract_error(
    shop: Shopify, sim: ShopifySimulator
) -> None:
    order = await shop.create_order(LINES)
    sim.faults.drift(enum={"financial_status": "pending_review"}, rename={"note": "notes"})
    drifted = await shop.get_order(order.id)
    assert drifted.financial_status == "pending_review" and drifted.note is None
    sim.faults.drift(na=["total_price"])
    with pytest.raises(VendorRejected, match=r"does not fit Order .*total_price") as na:
        await shop.get_order(order.id)
    assert na.value.code == "schema_mismatch"
    sim.faults.drift(rename={"order": "Order"})
    with pytest.raises(VendorRejected, match="does not fit Order") as gone:
        await shop.get_order(order.id)
    assert gone.value.code == "schema_mismatch"


async def test_dry_run_answers_in_shopifys_shapes(shop: Shopify, sim: ShopifySimulator) -> None:
    order = await shop.create_order(LINES)
    dark = Shopify("dark", shop="acme", base_url=sim.url, dry_run=True)
    try:
        made = await dark.create_order(LINES, email="jo@example.test")
        assert made.id > 0 and made.total_price is not None and str(made.total_price) == "25.00"
        assert made.admin_graphql_api_id == f"gid://shopify/Order/{made.id}"
        shipped = await dark.fulfill_order(order.id, tracking_number="1Z1", tracking_company="UPS")
        assert (shipped.status, shipped.tracking_numbers) == ("success", ["1Z1"])
        assert (await dark.cancel_order(order.id)).cancelled_at is not None
        customer = await dark.create_customer(email="ann@example.test")
        assert customer.email == "ann@example.test"
    finally:
        await dark.aclose()
    writes = [e for e in sim.requests.all() if e.method != "GET"]
    assert len(writes) == 1, "only the setup's order was sent: reads went through, writes not"
    record = dark.dry_runs[1]
    assert record.body["fulfillment"]["tracking_info"] == {"number": "1Z1", "company": "UPS"}


async def test_an_unsupported_version_is_logged_once(sim: ShopifySimulator) -> None:
    old = Shopify(shop="acme", base_url=sim.url, api_version="2023-01")
    try:
        with capture_logs() as logs:
            await old.count_orders()
            await old.count_orders()
    finally:
        await old.aclose()
    (warning,) = [e for e in logs if e["event"] == "connector.api_version"]
    assert (warning["asked"], warning["served"]) == ("2023-01", "2024-07")


async def test_the_probe_counts_orders(shop: Shopify, sim: ShopifySimulator) -> None:
    (result,) = await check(shop)
    assert (result.ok, result.probe, result.limit) == (True, "orders", 40)
    assert sim.requests.last.path == "/admin/api/2024-10/orders/count.json"
