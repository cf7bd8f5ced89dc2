"""The Stripe connector against the Stripe simulator: customers, invoices, payment intents and
refunds in Stripe's form-encoded API; idempotency keys replayed by Stripe; every failure
classified with Stripe's code and message; schema drift; dry-run in Stripe's shapes; the probe."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from interlock import PII, Context, Contract, Interlock, Retry
from interlock.connectors import Stripe, Timeouts, check
from interlock.connectors.stripe import PaymentIntent, Refund
from interlock.errors import (
    PermissionDenied,
    RateLimited,
    ResourceNotFound,
    VendorRejected,
    VendorUnavailable,
)
from interlock.sandbox import StripeSimulator, Vendors, run
from interlock.testing import drain


@pytest.fixture(scope="module")
def served_stripe() -> Iterator[Vendors]:
    with run(("stripe",)) as vendors:
        yield vendors


@pytest.fixture
def sim(served_stripe: Vendors, monkeypatch: pytest.MonkeyPatch) -> StripeSimulator:
    served_stripe.reset()
    monkeypatch.setenv("INTERLOCK_SECRET_STRIPE_API_KEY", "sk_test_sandbox")
    return served_stripe.stripe


@pytest.fixture
async def stripe(sim: StripeSimulator) -> AsyncIterator[Stripe]:
    connector = Stripe(base_url=sim.url, timeouts=Timeouts(connect="1s", total="0.3s"))
    yield connector
    await connector.aclose()


async def test_customers_invoices_payments_and_refunds(
    stripe: Stripe, sim: StripeSimulator
) -> None:
    customer = await stripe.create_customer(
        email="jo@example.test",
        name="Jo",
        metadata={"account_id": "a7"},
        payment_method="pm_card_visa",
        idempotency_key="cus-1",
    )
    assert customer.id.startswith("cus_") and customer.metadata == {"account_id": "a7"}
    sent = sim.requests.matching("POST", "/v1/customers")[0]
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.form()["metadata[account_id]"] == "a7"
    assert sent.headers["stripe-version"] == "2024-06-20" and sent.idempotency_key == "cus-1"
    assert (await stripe.find_customer("jo@example.test")) == customer
    assert await stripe.find_customer("nobody@example.test") is None
    renamed = await stripe.update_customer(customer.id, name="Jo Doe", metadata={"tier": "gold"})
    assert renamed.name == "Jo Doe" and renamed.metadata == {"account_id": "a7", "tier": "gold"}
    (found,) = await stripe.search_customers("metadata['account_id']:'a7'")
    assert found.id == customer.id

    item = await stripe.add_invoice_item(customer.id, 1500, description="Setup")
    invoice = await stripe.create_invoice(customer.id, metadata={"order_id": "1042"})
    assert (invoice.status, invoice.amount_due, item.amount) == ("draft", 1500, 1500)
    opened = await stripe.finalize_invoice(invoice.id)
    assert opened.status == "open" and opened.number
    paid = await stripe.pay_invoice(invoice.id)
    assert (paid.status, paid.amount_paid) == ("paid", 1500)
    assert [i.id for i in await stripe.list_invoices(customer=customer.id, status="paid")] == [
        invoice.id
    ]
    empty = await stripe.finalize_invoice((await stripe.create_invoice(customer.id)).id)
    assert empty.status == "paid", "a zero total is paid at once"
    for action in (stripe.void_invoice, stripe.mark_invoice_uncollectible):
        draft = await stripe.create_invoice(customer.id, include_pending_items=False)
        await stripe.add_invoice_item(customer.id, 700, invoice=draft.id)
        opened = await stripe.finalize_invoice(draft.id)
        assert (opened.status, opened.amount_due) == ("open", 700)
        assert (await action(draft.id)).status in ("void", "uncollectible")

    intent = await stripe.create_payment_intent(
        5000, customer=customer.id, payment_method="pm_card_visa", confirm=True
    )
    assert (intent.status, intent.amount_received, intent.latest_charge is not None) == (
        "succeeded",
        5000,
        True,
    )
    held = await stripe.create_payment_intent(
        2000, payment_method="pm_card_mastercard", capture_method="manual", confirm=True
    )
    assert held.status == "requires_capture"
    assert (await stripe.capture_payment_intent(held.id, amount=1500)).amount_received == 1500
    pending = await stripe.create_payment_intent(900)
    assert (await stripe.cancel_payment_intent(pending.id)).status == "canceled"
    later = await stripe.create_payment_intent(900, payment_method="pm_card_amex")
    assert (await stripe.confirm_payment_intent(later.id)).status == "succeeded"
    assert len(await stripe.list_payment_intents(limit=2)) == 2

    partial = await stripe.refund(payment_intent=intent.id, amount=1000, reason="duplicate")
    rest = await stripe.refund(payment_intent=intent.id, metadata={"why": "order cancelled"})
    assert (partial.amount, rest.amount, rest.status) == (1000, 4000, "succeeded")
    assert {r.id for r in await stripe.list_refunds(payment_intent=intent.id)} == {
        partial.id,
        rest.id,
    }
    assert (await stripe.get_refund(rest.id)).charge == intent.latest_charge
    assert (await stripe.get_payment_intent(intent.id)).customer == customer.id
    assert (await stripe.delete_customer(customer.id)).deleted
    assert stripe.runtime.metrics.calls[("stripe", "refund", "ok")] == 2


async def test_lists_follow_starting_after(stripe: Stripe, sim: StripeSimulator) -> None:
    stripe.page_size = 2
    intents = [await stripe.create_payment_intent(100 + n) for n in range(5)]
    listed = await stripe.list_payment_intents(limit=4)
    assert [p.id for p in listed] == [i.id for i in reversed(intents)][:4]
    pages = sim.requests.matching("GET", "/v1/payment_intents")
    assert [e.query for e in pages] == [
        "limit=2",
        f"limit=2&starting_after={intents[3].id}",
    ]


async def test_idempotency_keys_replay_stripes_first_answer(
    stripe: Stripe, sim: StripeSimulator
) -> None:
    first = await stripe.create_customer(email="jo@example.test", idempotency_key="k-1")
    again = await stripe.create_customer(email="jo@example.test", idempotency_key="k-1")
    assert again == first and len(sim.state["customers"]) == 1
    replayed = sim.requests.with_idempotency_key("k-1")[1]
    assert replayed.response_headers["idempotent-replayed"] == "true"
    with pytest.raises(VendorRejected, match="idempotency_error") as reused:
        await stripe.create_customer(email="other@example.test", idempotency_key="k-1")
    assert (reused.value.status, reused.value.code) == (400, "idempotency_error")

    # Stripe charges, but the answer never arrives: the retry with the key gets that charge.
    intent = await stripe.create_payment_intent(2500, payment_method="pm_card_visa")
    sim.faults.timeout(1, hold=1.0, effect=True)
    with pytest.raises(VendorUnavailable, match="timeout"):
        await stripe.confirm_payment_intent(intent.id, idempotency_key="confirm-1")
    confirmed = await stripe.confirm_payment_intent(intent.id, idempotency_key="confirm-1")
    assert confirmed.status == "succeeded"
    assert len(sim.state["charges"]) == 1, "charged once"


async def test_failures_keep_stripes_code_and_message(stripe: Stripe, sim: StripeSimulator) -> None:
    with pytest.raises(VendorRejected) as missing:
        await stripe.create_invoice("")
    assert (missing.value.status, missing.value.code) == (400, "parameter_missing")
    assert "Missing required param: customer" in str(missing.value)
    with pytest.raises(VendorRejected, match="email_invalid Invalid email address"):
        await stripe.create_customer(email="not-an-email")
    with pytest.raises(VendorRejected) as declined:
        await stripe.create_payment_intent(
            5000, payment_method="pm_card_chargeDeclinedInsufficientFunds", confirm=True
        )
    assert (declined.value.status, declined.value.code) == (402, "card_declined")
    assert "(decline_code insufficient_funds)" in str(declined.value)
    intent = await stripe.create_payment_intent(1000, payment_method="pm_card_visa", confirm=True)
    await stripe.refund(payment_intent=intent.id)
    with pytest.raises(VendorRejected, match="charge_already_refunded"):
        await stripe.refund(payment_intent=intent.id)
    with pytest.raises(ResourceNotFound, match="resource_missing No such customer") as nf:
        await stripe.get_customer("cus_nope")
    assert (nf.value.status, nf.value.operation) == (404, "get_customer")

    sim.faults.fail(1, status=403)
    with pytest.raises(PermissionDenied, match="403: api_error"):
        await stripe.list_refunds()
    sim.faults.fail(1, status=500)
    with pytest.raises(VendorUnavailable, match="500: api_error"):
        await stripe.list_refunds()
    sim.faults.reset(1)
    with pytest.raises(VendorUnavailable, match="connection_reset"):
        await stripe.list_refunds()
    sim.faults.timeout(1, hold=1.0)
    with pytest.raises(VendorUnavailable, match="timeout"):
        await stripe.list_refunds()
    sim.faults.rate_limit(1, retry_after=3)  # last: the bucket now waits out Retry-After
    with pytest.raises(RateLimited) as limited:
        await stripe.get_customer("cus_nope")
    assert limited.value.retry_after == 3.0
    outcomes = {key[2] for key in stripe.runtime.metrics.calls}
    assert outcomes >= {"ok", "permanent", "not_found", "rate_limited", "retryable"}


async def test_a_wrong_key_is_permission_denied_and_never_shown(
    sim: StripeSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_OLD_KEY", "sk_test_revoked_0123456789")
    stripe = Stripe(api_key="old-key", base_url=sim.url)
    try:
        with pytest.raises(PermissionDenied, match="Invalid API Key provided") as denied:
            await stripe.get_customer("cus_1")
        assert denied.value.status == 401
        assert "sk_test_revoked_0123456789" not in str(denied.value)
        (result,) = await check(stripe)
        assert (result.ok, result.auth) == (False, "denied")
    finally:
        await stripe.aclose()


def answer(status: int, body: object, **headers: str) -> httpx.Response:
    request = httpx.Request("POST", "https://api.stripe.com/v1/refunds")
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_stripe_should_retry_has_the_last_word() -> None:
    stripe = Stripe()

    def kind(status: int, error: dict[str, str], **headers: str) -> str | None:
        classified = stripe.vendor_error(answer(status, {"error": error}, **headers))
        return classified.kind if classified is not None else None

    in_use = {"type": "invalid_request_error", "code": "idempotency_key_in_use"}
    assert kind(409, in_use) == "retryable", "another request with the key is still running"
    assert kind(409, {"type": "invalid_request_error"}) == "permanent"
    assert kind(409, {"type": "invalid_request_error"}, **{"Stripe-Should-Retry": "true"}) == (
        "retryable"
    )
    assert kind(500, {"type": "api_error"}, **{"Stripe-Should-Retry": "false"}) == "permanent"
    assert kind(402, {"type": "card_error", "code": "card_declined"}) == "permanent"
    limited = answer(
        429,
        {"error": {"code": "rate_limit"}},
        **{"Retry-After": "2", "Stripe-Should-Retry": "true"},
    )
    error = stripe.vendor_error(limited)
    assert error is not None and (error.kind, error.retry_after) == ("rate_limited", 2.0)
    scoped = answer(
        403,
        {
            "error": {
                "type": "invalid_request_error",
                "message": "The provided key 'rk_test_***' does not have the required permissions "
                "for this endpoint. Having the 'rak_refund_write' permission would allow this "
                "request to continue.",
            }
        },
    )
    assert stripe.error_details(scoped).required_scope == "rak_refund_write"


async def test_schema_drift_is_tolerated_or_a_clear_contract_error(
    stripe: Stripe, sim: StripeSimulator
) -> None:
    intent = await stripe.create_payment_intent(1000, payment_method="pm_card_visa", confirm=True)
    sim.faults.drift(enum={"status": "processing_v2"}, rename={"receipt_email": "receipt"})
    drifted = await stripe.get_payment_intent(intent.id)
    assert drifted.status == "processing_v2" and drifted.model_extra is not None
    assert "receipt" in drifted.model_extra, "the vendor's new field is kept"
    sim.faults.drift(na=["amount"])
    with pytest.raises(VendorRejected, match=r"does not fit PaymentIntent .* amount") as na:
        await stripe.get_payment_intent(intent.id)
    assert na.value.code == "schema_mismatch"
    sim.faults.drift(rename={"id": "identifier"})
    with pytest.raises(VendorRejected, match="id: Field required"):
        await stripe.get_payment_intent(intent.id)


async def test_dry_run_answers_in_stripes_shapes(sim: StripeSimulator) -> None:
    stripe = Stripe(base_url=sim.url, dry_run=True)
    try:
        customer = await stripe.create_customer(
            email="jo@example.test", metadata={"a": "1"}, idempotency_key="k"
        )
        assert customer.id.startswith("cus_dry") and customer.object == "customer"
        assert (customer.email, customer.metadata, customer.livemode) == (
            "jo@example.test",
            {"a": "1"},
            False,
        )
        again = await stripe.create_customer(email="jo@example.test", idempotency_key="k")
        assert again.id == customer.id, "stable per idempotency key"
        intent = await stripe.create_payment_intent(
            4200, customer=customer.id, payment_method="pm_card_visa", confirm=True
        )
        assert isinstance(intent, PaymentIntent)
        assert (intent.amount, intent.status, intent.id[:3]) == (4200, "succeeded", "pi_")
        refund = await stripe.refund(payment_intent=intent.id, amount=200)
        assert isinstance(refund, Refund)
        assert (refund.amount, refund.status, refund.payment_intent) == (
            200,
            "succeeded",
            intent.id,
        )
        invoice = await stripe.finalize_invoice("in_123")
        assert (invoice.id, invoice.status) == ("in_123", "open")
        assert (await stripe.delete_customer("cus_1")).deleted
        assert len(sim.requests) == 0, "nothing sent"
        record = stripe.dry_runs[2]
        assert record.body["amount"] == "4200" and record.answer["status"] == 200
        assert record.idempotency_key is None
    finally:
        await stripe.aclose()


async def test_the_probe_reads_one_customer(stripe: Stripe, sim: StripeSimulator) -> None:
    (result,) = await check(stripe)
    assert (result.ok, result.status, result.probe) == (True, 200, "customers")
    assert sim.requests.last.query == "limit=1"


class PaymentFailed(Contract, event="payment.failed", subject="payment_intent"):
    payment_intent: str
    email: PII[str]


async def test_a_flow_refunds_once_with_the_steps_key(
    fake_app: Interlock, served_stripe: Vendors, sim: StripeSimulator
) -> None:
    stripe = fake_app.connector(Stripe(base_url=sim.url, timeouts=Timeouts(total="0.3s")))
    intent = await stripe.create_payment_intent(3000, payment_method="pm_card_visa", confirm=True)

    @fake_app.flow(PaymentFailed, owner="billing@acme.test", retry=Retry(attempts=3))
    async def refund(event: PaymentFailed, ctx: Context) -> None:
        stripe = ctx.connector(Stripe)
        if ctx.attempt == 1:  # Stripe refunds, but its answer is lost
            sim.faults.timeout(1, hold=1.0, effect=True)
        await ctx.step("refund", stripe.refund, payment_intent=event.payment_intent)

    eid = await fake_app.emit(PaymentFailed(payment_intent=intent.id, email="jo@example.test"))
    worker = await drain(fake_app, advance=True)
    assert (worker.counters.succeeded, worker.counters.retried) == (1, 1)
    key = "il_" + hashlib.sha256(f"{eid}/refund/refund".encode()).hexdigest()[:40]
    first, second = sim.requests.matching("POST", "/v1/refunds")
    assert first.idempotency_key == second.idempotency_key == key
    assert second.response_headers["idempotent-replayed"] == "true"
    assert len(sim.state["refunds"]) == 1
    await stripe.aclose()
