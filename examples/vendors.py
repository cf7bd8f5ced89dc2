"""In-process stand-ins for a CRM and a billing system, with injected failures.

They behave like real vendor APIs where it matters to the flows: they time
out now and then, rate-limit with a Retry-After, reject some requests for
good, and de-duplicate writes by idempotency key.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from interlock import Permanent, RateLimited, Retryable


@dataclass
class FaultPlan:
    timeout_rate: float = 0.06
    rate_limit_rate: float = 0.02
    latency_s: float = 0.002


@dataclass
class Crm:
    """A CRM: deals by order id, notes deduplicated by idempotency key."""

    faults: FaultPlan = field(default_factory=FaultPlan)
    notes: dict[str, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    async def _call(self) -> None:
        await asyncio.sleep(self.faults.latency_s * self.rng.random() * 2)
        roll = self.rng.random()
        if roll < self.faults.timeout_rate:
            raise Retryable("crm: upstream timed out after 10s")
        if roll < self.faults.timeout_rate + self.faults.rate_limit_rate:
            raise RateLimited("crm: 429 Too Many Requests", retry_after=1.0)

    async def find_deal(self, order_id: str) -> dict[str, str]:
        await self._call()
        if order_id.endswith("13"):
            raise Permanent(f"crm: 404 no deal for order {order_id}")
        return {"deal_id": f"deal_{order_id}", "stage": "closed-won"}

    async def add_note(self, deal_id: str, text: str, idempotency_key: str) -> dict[str, str]:
        await self._call()
        self.notes.setdefault(idempotency_key, text)
        return {"note_id": f"note_{len(self.notes)}", "deal_id": deal_id}


@dataclass
class Billing:
    """A billing system: invoices that a customer may pay late."""

    paid: set[str] = field(default_factory=set)
    escalated: dict[str, str] = field(default_factory=dict)

    async def invoice_status(self, invoice_id: str) -> str:
        await asyncio.sleep(0.001)
        return "paid" if invoice_id in self.paid else "open"

    async def send_reminder(self, invoice_id: str, idempotency_key: str) -> dict[str, str]:
        await asyncio.sleep(0.001)
        return {"reminder": idempotency_key[:12], "invoice_id": invoice_id}

    async def escalate(self, invoice_id: str, idempotency_key: str) -> dict[str, str]:
        await asyncio.sleep(0.001)
        self.escalated.setdefault(idempotency_key, invoice_id)
        return {"case": f"coll_{invoice_id}"}
