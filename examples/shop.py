"""The demo shop: orders are noted in the CRM, failed payments are chased.

Run it with ``make run`` (or ``interlock demo examples.shop:app``).
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Literal

from examples.vendors import Billing, Crm
from interlock import PII, SLO, BusinessMetric, Context, Contract, Interlock, Retry
from interlock.connectors import ApiKey, HttpConnector, Timeouts

app = Interlock("shop")
crm = Crm()
billing = Billing()
# The CRM's activity API: the vendor sandbox's generic simulator, which `interlock demo`
# serves on port 9105 (`interlock sandbox faults generic --outage 60s` breaks it for a while).
# Elsewhere, point it at a real service with INTERLOCK_CONNECTOR_CRM_API_BASE_URL.
app.connector(
    HttpConnector(
        "crm-api",
        base_url="http://127.0.0.1:9105",
        auth=ApiKey(secret="crm-api-key"),
        timeouts=Timeouts(connect="1s", total="3s"),
    )
)

# How long a failed payment waits before it is checked again: days in production,
# seconds in the demo.
DUNNING_DELAY = os.environ.get("SHOP_DUNNING_DELAY", "8s")


class OrderShipped(Contract, event="order.shipped", version=1, subject="order_id"):
    order_id: str
    account_id: str
    email: PII[str]
    carrier: Literal["ups", "fedex", "dhl"]


class PaymentFailed(Contract, event="payment.failed", version=1, subject="invoice_id"):
    invoice_id: str
    account_id: str
    amount_cents: int
    email: PII[str]


@app.flow(
    OrderShipped,
    owner="revops@shop.test",
    system_of_record="shopify",
    key="account_id",
    idempotency="order_id",
    slo=SLO(target=0.995, within="2m"),
    retry=Retry(attempts=6, base="200ms", cap="5s"),
    metric=BusinessMetric(
        "seconds from shipment to CRM note", end="succeeded_at", unit="s", aggregate="p95"
    ),
)
async def note_in_crm(event: OrderShipped, ctx: Context) -> None:
    """Add a shipping note to the order's deal in the CRM, and log the activity."""
    deal = await ctx.step("find-deal", crm.find_deal, event.order_id)
    await ctx.step(
        "log-activity",
        ctx.connector(HttpConnector).post,
        "/v1/activities",
        {"deal": deal["deal_id"], "kind": "shipped", "carrier": event.carrier},
    )
    await ctx.step(
        "add-note",
        crm.add_note,
        deal["deal_id"],
        f"Shipped with {event.carrier}",
        ctx.step_key("add-note"),
    )


@app.flow(
    PaymentFailed,
    owner="finance@shop.test",
    system_of_record="stripe",
    key="invoice_id",
    retry=Retry(attempts=5, base="500ms", cap="10s"),
    on_dead="skip",
    metric=BusinessMetric(
        "failed payments (cents)", value="amount_cents", unit="cents", aggregate="sum", window="1d"
    ),
)
async def chase_failed_payment(event: PaymentFailed, ctx: Context) -> None:
    """Remind the customer, wait, then escalate to collections if still unpaid."""
    await ctx.step("remind", billing.send_reminder, event.invoice_id, ctx.step_key("remind"))
    await ctx.sleep(DUNNING_DELAY)
    status = await ctx.step("check-invoice", billing.invoice_status, event.invoice_id)
    if status != "paid":
        await ctx.step("escalate", billing.escalate, event.invoice_id, ctx.step_key("escalate"))


async def traffic(rate: float) -> None:
    """Emit a realistic mix of events at ``rate`` per second, forever."""
    rng = random.Random()
    n = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        n += 1
        if rng.random() < 0.8:
            await app.emit(
                OrderShipped(
                    order_id=f"{1000 + n}",
                    account_id=f"acct_{rng.randrange(40)}",
                    email=f"buyer{n}@example.test",
                    carrier=rng.choice(["ups", "fedex", "dhl"]),
                ),
                source="shopify",
                idempotency_key=f"fulfillment:{n}",
            )
        else:
            invoice = f"in_{n}"
            await app.emit(
                PaymentFailed(
                    invoice_id=invoice,
                    account_id=f"acct_{rng.randrange(40)}",
                    amount_cents=rng.randrange(500, 50000),
                    email=f"payer{n}@example.test",
                ),
                source="stripe",
                idempotency_key=f"evt_stripe_{n}",
            )
            if rng.random() < 0.6:
                loop.call_later(rng.uniform(1, 12), billing.paid.add, invoice)
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))


# The webhook sources and their mappings (golden fixtures in examples/fixtures/).
from examples import webhooks  # noqa: E402, F401  (registers on `app`)
