"""The app the browser tests drive: two flows calling a CRM (the sandbox's generic
simulator) through a connector, and a traffic generator.

Failures come from the simulator (injected 5xx become retries; an outage turns
deliveries dead) and from the payloads: an invoice whose note asks for it is refused
by the flow for good, with the note (naughty strings included) in the reason, and
one whose note is "flaky" fails its first attempt.
"""

from __future__ import annotations

import asyncio
import random

from interlock import PII, SLO, Context, Contract, Interlock, Permanent, Retry, Retryable
from interlock.connectors import ApiKey, BreakerPolicy, HttpConnector, Timeouts
from interlock.observability import AlertPolicy, BurnWindow

NAUGHTY = (
    "<script>window.__pwned = 1</script>",
    '"><img src=x onerror="window.__pwned=2">',
    "'; DROP TABLE events; --",
    "{{ 7*7 }} ${7*7} %s %n \u202eevil\u202c",
    "Ω≈ç√ 田中さん 🧨 \u0000",
)


class InvoiceOverdue(Contract, event="invoice.overdue", version=1, subject="invoice_id"):
    invoice_id: str
    account_id: str
    email: PII[str]
    note: str


class DemoRequested(Contract, event="demo.requested", version=1, subject="lead_id"):
    lead_id: str
    company: str


def build(database_url: str, crm_url: str) -> Interlock:
    app = Interlock("billing", database_url)
    # Burn-rate alerting on seconds instead of hours, evaluated every second.
    app.alerting.policy = AlertPolicy(
        windows=(BurnWindow("page", long="20s", short="4s", factor=2.0),), min_events=5
    )
    app.alerting.every = 1.0
    app.connector(
        HttpConnector(
            "crm",
            base_url=crm_url,
            auth=ApiKey(secret="crm-key"),
            timeouts=Timeouts(connect="1s", total="2s"),
            breaker=BreakerPolicy(min_calls=200, window="5s", cooldown="1s"),
        )
    )

    @app.flow(
        InvoiceOverdue,
        owner="finance@billing.test",
        system_of_record="stripe",
        key="account_id",
        idempotency="invoice_id",
        slo=SLO(target=0.9, within="5s", window="1h"),
        retry=Retry(attempts=3, base="50ms", cap="200ms"),
        on_dead="skip",
    )
    async def remind_overdue(event: InvoiceOverdue, ctx: Context) -> None:
        """Record a reminder in the CRM; a note asking to reject is refused for good."""
        crm = ctx.connector("crm")
        if event.note.startswith("reject"):
            raise Permanent(f"the CRM refuses this invoice: {event.note}")
        if event.note == "flaky" and ctx.attempt == 1:
            raise Retryable("crm: 503 Service Unavailable on the first try")
        await ctx.step(
            "remind", crm.post, "/v1/reminders", {"invoice": event.invoice_id, "note": event.note}
        )

    @app.flow(
        DemoRequested,
        owner="sales@billing.test",
        system_of_record="hubspot",
        slo=SLO(target=0.95, within="5s", window="1h"),
        retry=Retry(attempts=2, base="50ms", cap="100ms"),
    )
    async def route_demo(event: DemoRequested, ctx: Context) -> None:
        """Create the lead in the CRM."""
        await ctx.step(
            "create-lead", ctx.connector("crm").post, "/v1/leads", {"company": event.company}
        )

    return app


async def traffic(app: Interlock, running: asyncio.Event, rate: float = 20.0) -> None:
    """Emit invoices and demo requests at ``rate`` per second while ``running`` is set."""
    rng = random.Random(7)
    n = 0
    while True:
        await running.wait()
        n += 1
        if n % 5:
            await app.emit(
                InvoiceOverdue(
                    invoice_id=f"in_{n}",
                    account_id=f"acct_{rng.randrange(12)}",
                    email=f"payer{n}@example.test",
                    note=rng.choice(("first reminder", "second reminder", "final notice")),
                ),
                source="stripe",
                idempotency_key=f"evt_{n}",
            )
        else:
            await app.emit(
                DemoRequested(lead_id=f"lead_{n}", company=f"Company {n}"), source="hubspot"
            )
        await asyncio.sleep(1 / rate)
