"""A typed usage file of the public API; mypy checks it (it is not run)."""

from __future__ import annotations

from typing import Literal

from interlock import PII, SLO, BusinessMetric, Context, Contract, Interlock, Retry, SyncContext
from interlock.observability import (
    AlertPolicy,
    BurnWindow,
    FlowHealth,
    SlackSink,
    WebhookSink,
    slo_report,
)
from interlock.testing import FakeClock, drain

app = Interlock("typing", "sqlite:///typing.db", clock=FakeClock())
app.alerting.policy = AlertPolicy(windows=(BurnWindow("page", "1h", "5m", 14.4),))
app.alerting.sinks += [WebhookSink("https://ops.example/hook", secret="hook"), SlackSink("#ops")]


class OrderShipped(Contract, event="order.shipped", version=1, subject="order_id"):
    order_id: str
    account_id: str
    email: PII[str]
    carrier: Literal["ups", "fedex", "dhl"]


class InvoicePaid(Contract, event="invoice.paid"):
    invoice_id: str


async def lookup(order_id: str) -> dict[str, str]:
    return {"deal": order_id}


@app.flow(
    OrderShipped,
    owner="revops@acme.test",
    key="account_id",
    idempotency=lambda e: e.order_id,
    slo=SLO(target=0.995, within="2m"),
    retry=Retry(attempts=5, cap="1m"),
    metric=BusinessMetric("minutes to note", end="succeeded_at", unit="min", aggregate="p95"),
)
async def note(event: OrderShipped, ctx: Context) -> None:
    deal = await ctx.step("find-deal", lookup, event.order_id)
    key: str = ctx.step_key("add-note")
    paid: InvoicePaid | None = await ctx.wait_for_event(
        InvoicePaid, match={"invoice_id": deal["deal"]}, timeout="1h"
    )
    await ctx.sleep("5m")
    ctx.log.info("noted", key=key, paid=paid is not None)


@app.flow(OrderShipped, owner="ops", name="sync-note", on_dead="skip")
def sync_note(event: OrderShipped, ctx: SyncContext) -> None:
    ctx.step("echo", str.upper, event.order_id)


async def main() -> None:
    event_id: str = await app.emit(
        OrderShipped(order_id="1", account_id="a", email="x@y.z", carrier="ups"),
        idempotency_key="k",
    )
    same: str = app.emit_sync(
        OrderShipped(order_id="1", account_id="a", email="x@y.z", carrier="ups"),
        idempotency_key="k",
    )
    worker = await drain(app, advance=True)
    print(event_id == same, worker.counters.succeeded)


def health() -> list[float | None]:
    report: list[FlowHealth] = slo_report(app, now=0.0)
    return [h.slo.sli if h.slo is not None else None for h in report]
