"""``GET /api/v1/alerts`` and flow health in ``GET /api/v1/flows`` over the gateway's ASGI
app: filters, RFC 3339 times, tokens required, bad parameters refused with a problem."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from interlock import SLO, BusinessMetric, Contract, Interlock
from interlock.gateway.app import build_gateway
from interlock.stores.analytics import NewAlert
from interlock.testing import FakeClock, drain

AppFactory = Callable[..., Interlock]


class Paid(Contract, event="invoice.paid.api", subject="invoice_id"):
    invoice_id: str
    amount: float


async def test_alerts_and_flow_health(make_app: AppFactory, clock: FakeClock) -> None:
    app = make_app()

    @app.flow(
        Paid,
        owner="finance@acme.test",
        slo=SLO(target=0.99, within="1m", window="1d"),
        metric=BusinessMetric("revenue", value="amount", unit="USD", aggregate="sum"),
    )
    async def book(event: Paid) -> None:
        return None

    @app.flow(Paid, owner="finance@acme.test", name="plain")
    async def plain(event: Paid) -> None:
        return None

    for n, amount in enumerate((10.0, 32.5)):
        await app.emit(Paid(invoice_id=f"in_{n}", amount=amount))
    clock.advance(5)
    await drain(app)
    t0 = clock.now()
    old, _ = await app.store.fire_alert(
        NewAlert("book", "ticket", t0, 7, 8, 21600, 1800, 6, 0.9, "old")
    )
    await app.store.resolve_alert("book", "ticket", now=t0 + 60)
    page, _ = await app.store.fire_alert(
        NewAlert("book", "page", t0 + 120, 20, 30, 3600, 300, 14.4, 0.5, "page")
    )
    clock.advance(1)  # ranges end before now: the successes at t0 are in
    token = (await app.store.create_token("viewer", "viewer", actor="t", now=t0)).secret
    transport = httpx.ASGITransport(app=build_gateway(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        assert (await client.get("/api/v1/alerts")).status_code == 401
        client.headers["authorization"] = f"Bearer {token}"
        every = (await client.get("/api/v1/alerts")).json()["items"]
        assert [a["id"] for a in every] == [page.id, old.id]
        assert every[1]["state"] == "resolved" and every[1]["resolved_at"].endswith("Z")
        firing = (await client.get("/api/v1/alerts", params={"state": "firing"})).json()
        assert [a["severity"] for a in firing["items"]] == ["page"]
        since = "2027-01-15T08:05:00Z"  # after the ticket resolved: only the page is left
        later = (await client.get("/api/v1/alerts", params={"since": since})).json()
        assert [a["id"] for a in later["items"]] == [page.id]
        assert (await client.get("/api/v1/alerts", params={"flow": "plain"})).json() == {
            "items": []
        }
        bad = await client.get("/api/v1/alerts", params={"state": "burning", "limit": 0})
        assert bad.status_code == 400
        assert bad.headers["content-type"] == "application/problem+json"
        assert {e["field"] for e in bad.json()["errors"]} == {"query.state", "query.limit"}
        flows = {f["name"]: f for f in (await client.get("/api/v1/flows")).json()}
        health = flows["book"]["health"]
        assert health["slo"]["good"] == 2 and health["slo"]["sli"] == 1.0
        assert health["slo"]["status"] == "page" and len(health["slo"]["burn"]) == 4
        assert health["metric"] == {
            "name": "revenue",
            "unit": "USD",
            "aggregate": "sum",
            "window_s": 604800.0,
            "value": 42.5,
            "samples": 2,
        }
        assert flows["book"]["metric"]["kind"] == "value"
        assert flows["plain"]["health"] == {"slo": None, "metric": None}
