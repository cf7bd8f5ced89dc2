"""Stripe payment intents and refunds: the part of :class:`~interlock.connectors.Stripe`
that moves money (see its docstring for every operation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from interlock.connectors.stripe_wire import PaymentIntent, Refund, StripeApi

RefundReason = Literal["duplicate", "fraudulent", "requested_by_customer"]


class StripePayments(StripeApi):
    """Payment intents (create, confirm, capture, cancel, read, list) and refunds."""

    # -- payment intents ---------------------------------------------------------------
    async def create_payment_intent(
        self,
        amount: int,
        currency: str = "usd",
        *,
        customer: str | None = None,
        payment_method: str | None = None,
        confirm: bool = False,
        capture_method: Literal["automatic", "manual"] | None = None,
        description: str | None = None,
        receipt_email: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> PaymentIntent:
        """A payment intent for ``amount`` (smallest currency unit); with ``confirm`` it
        charges ``payment_method`` at once (a decline is a permanent ``card_declined``)."""
        return await self._post(
            "/v1/payment_intents",
            PaymentIntent,
            "create_payment_intent",
            idempotency_key,
            amount=amount,
            currency=currency,
            customer=customer,
            payment_method=payment_method,
            confirm=confirm or None,
            capture_method=capture_method,
            description=description,
            receipt_email=receipt_email,
            metadata=metadata,
        )

    async def get_payment_intent(self, payment_intent_id: str) -> PaymentIntent:
        path = f"/v1/payment_intents/{payment_intent_id}"
        return await self.fetch("GET", path, PaymentIntent, operation="get_payment_intent")

    async def list_payment_intents(
        self, *, customer: str | None = None, limit: int = 100
    ) -> list[PaymentIntent]:
        return await self._list(
            "/v1/payment_intents", PaymentIntent, "list_payment_intents", limit, customer=customer
        )

    async def confirm_payment_intent(
        self,
        payment_intent_id: str,
        *,
        payment_method: str | None = None,
        idempotency_key: str | None = None,
    ) -> PaymentIntent:
        return await self._post(
            f"/v1/payment_intents/{payment_intent_id}/confirm",
            PaymentIntent,
            "confirm_payment_intent",
            idempotency_key,
            payment_method=payment_method,
        )

    async def capture_payment_intent(
        self,
        payment_intent_id: str,
        *,
        amount: int | None = None,
        idempotency_key: str | None = None,
    ) -> PaymentIntent:
        """Capture an authorized (``capture_method="manual"``) intent, in full or ``amount``."""
        return await self._post(
            f"/v1/payment_intents/{payment_intent_id}/capture",
            PaymentIntent,
            "capture_payment_intent",
            idempotency_key,
            amount_to_capture=amount,
        )

    async def cancel_payment_intent(
        self,
        payment_intent_id: str,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> PaymentIntent:
        return await self._post(
            f"/v1/payment_intents/{payment_intent_id}/cancel",
            PaymentIntent,
            "cancel_payment_intent",
            idempotency_key,
            cancellation_reason=reason,
        )

    # -- refunds -----------------------------------------------------------------------
    async def refund(
        self,
        *,
        payment_intent: str | None = None,
        charge: str | None = None,
        amount: int | None = None,
        reason: RefundReason | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Refund:
        """Refund a payment intent (or a charge) in full, or ``amount`` of it. Stripe refuses
        more than is left (``charge_already_refunded``): permanent."""
        return await self._post(
            "/v1/refunds",
            Refund,
            "refund",
            idempotency_key,
            payment_intent=payment_intent,
            charge=charge,
            amount=amount,
            reason=reason,
            metadata=metadata,
        )

    async def get_refund(self, refund_id: str) -> Refund:
        return await self.fetch("GET", f"/v1/refunds/{refund_id}", Refund, operation="get_refund")

    async def list_refunds(
        self,
        *,
        payment_intent: str | None = None,
        charge: str | None = None,
        limit: int = 100,
    ) -> list[Refund]:
        return await self._list(
            "/v1/refunds",
            Refund,
            "list_refunds",
            limit,
            payment_intent=payment_intent,
            charge=charge,
        )
