"""The Shopify Admin REST simulator over HTTP."""

from __future__ import annotations

import httpx

from interlock.sandbox import ShopifySimulator, Vendors, run

TOKEN = {"X-Shopify-Access-Token": "shpat_sandbox"}
API = "/admin/api/2024-10"


def test_orders_fulfillments_and_customers(vendors: Vendors) -> None:
    with httpx.Client(base_url=vendors.shopify.url + API, headers=TOKEN) as http:
        created = http.post(
            "/orders.json",
            json={
                "order": {
                    "email": "jo@x.test",
                    "line_items": [{"title": "Mug", "price": "12.5", "quantity": 2}],
                    "customer": {"first_name": "Jo", "email": "jo@x.test"},
                }
            },
        )
        assert created.status_code == 201
        order = created.json()["order"]
        assert order["total_price"] == "25.00"
        assert order["name"] == "#1001"
        assert order["admin_graphql_api_id"] == f"gid://shopify/Order/{order['id']}"
        assert created.headers["x-shopify-shop-api-call-limit"] == "1/40"
        (fo,) = http.get(f"/orders/{order['id']}/fulfillment_orders.json").json()[
            "fulfillment_orders"
        ]
        shipped = http.post(
            "/fulfillments.json",
            json={
                "fulfillment": {
                    "line_items_by_fulfillment_order": [{"fulfillment_order_id": fo["id"]}],
                    "tracking_info": {"number": "1Z999", "company": "UPS"},
                }
            },
        )
        assert shipped.status_code == 201
        assert shipped.json()["fulfillment"]["tracking_number"] == "1Z999"
        again = http.get(f"/orders/{order['id']}.json").json()["order"]
        assert again["fulfillment_status"] == "fulfilled"
        refused = http.post(
            "/fulfillments.json",
            json={
                "fulfillment": {
                    "line_items_by_fulfillment_order": [{"fulfillment_order_id": fo["id"]}]
                }
            },
        )
        assert refused.status_code == 422
        dup = http.post("/customers.json", json={"customer": {"email": "jo@x.test"}})
        assert dup.status_code == 422
        assert dup.json() == {"errors": {"email": ["has already been taken"]}}
        found = http.get("/customers/search.json", params={"query": "email:jo@x.test"}).json()
        assert len(found["customers"]) == 1
        assert http.get("/orders/1.json").json() == {"errors": "Not Found"}
        assert http.post("/orders.json", json={}).status_code == 400
    denied = httpx.get(vendors.shopify.url + API + "/orders.json")
    assert denied.status_code == 401
    assert "Invalid API key or access token" in denied.json()["errors"]


def test_link_header_pagination_with_page_info(vendors: Vendors) -> None:
    with httpx.Client(base_url=vendors.shopify.url + API, headers=TOKEN) as http:
        for i in range(5):
            http.post("/customers.json", json={"customer": {"email": f"c{i}@x.test"}})
        seen: list[str] = []
        url: str | None = vendors.shopify.url + API + "/customers.json?limit=2"
        while url:
            page = http.get(url)
            seen += [c["email"] for c in page.json()["customers"]]
            url = page.links.get("next", {}).get("url")
        assert seen == [f"c{i}@x.test" for i in range(5)]
        assert "previous" in page.links
        mixed = http.get("/customers.json", params={"page_info": "x", "email": "a"})
        assert mixed.status_code == 400


def test_the_leaky_bucket_answers_429_with_retry_after() -> None:
    with (
        run((ShopifySimulator(bucket=3, leak_per_second=0.5),)) as vendors,
        httpx.Client(base_url=vendors.shopify.url + API, headers=TOKEN) as http,
    ):
        limits = [
            http.get("/orders.json").headers.get("x-shopify-shop-api-call-limit") for _ in range(3)
        ]
        throttled = http.get("/orders.json")
    assert limits == ["1/3", "2/3", "3/3"]
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2.0"
    assert "Exceeded 2 calls per second" in throttled.json()["errors"]
