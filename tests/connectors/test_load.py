"""Sustained load at twice a vendor's limit: every event is delivered, no 429 goes unhandled
(each one reschedules its delivery), and the calls keep to the vendor's rate."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from interlock import Context, Contract, Interlock
from interlock.connectors import ApiKey, HttpConnector, Rate, allow_egress, disallow_egress
from interlock.sandbox import GenericSimulator, serve
from interlock.sandbox.ratelimits import FixedWindow

from .test_limiter import assert_within

LIMIT = 20  # the vendor's calls per second


class PerSecond(GenericSimulator):
    """The generic service with a one-second window of ``LIMIT`` calls (not per minute)."""

    def setup(self) -> None:
        super().setup()
        self.window = FixedWindow(LIMIT, 1.0)


class Ticket(Contract, event="ticket.opened", subject="ticket_id"):
    ticket_id: str


async def test_twice_the_vendor_limit_is_delivered_without_unhandled_429s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_GENERIC_KEY", "sandbox-api-key")
    app = Interlock("load", f"sqlite:///{tmp_path / 'load.db'}")
    async with serve((PerSecond(),)) as vendors:
        generic = vendors.generic
        allow_egress(generic.url)
        crm = app.connector(
            HttpConnector(
                "crm",
                base_url=generic.url,
                auth=ApiKey(secret="generic-key"),
                rate=Rate(LIMIT, per="1s"),
            )
        )

        @app.flow(Ticket, owner="support@acme.test")
        async def sync_ticket(event: Ticket, ctx: Context) -> None:
            await ctx.step(
                "push", ctx.connector("crm").post, "/v1/tickets", {"ref": event.ticket_id}
            )

        stop = asyncio.Event()
        worker = asyncio.create_task(app.worker(concurrency=256).run(stop))
        events = 2 * LIMIT * 2  # two seconds at twice the limit
        started = time.monotonic()
        for n in range(events):
            await app.emit(Ticket(ticket_id=f"t{n}"))
            await asyncio.sleep(max(0.0, started + (n + 1) / (2 * LIMIT) - time.monotonic()))
        deadline = time.monotonic() + 30
        while app.store.flow_counts().get("sync_ticket", {}).get("succeeded", 0) < events:
            assert time.monotonic() < deadline, app.store.flow_counts()
            await asyncio.sleep(0.1)
        stop.set()
        await worker
        await crm.aclose()
        disallow_egress(generic.url)
    counts = app.store.flow_counts()["sync_ticket"]
    assert counts == {"succeeded": events}, "every event delivered, none dead"
    exchanges = generic.requests.all()
    refused = [e for e in exchanges if e.status == 429]
    rescheduled = app.store.stats(time.time()).retries
    assert rescheduled == len(refused), "every 429 became a rescheduled delivery"
    print(f"{len(exchanges)} calls, {len(refused)} answered 429")
    assert len(refused) <= events // 10, "the limiter kept almost every call under the limit"
    assert len(generic.state["tickets"]) == events
    assert_within([e.at for e in exchanges], LIMIT, 1, slack=0.1)
    app.close()
