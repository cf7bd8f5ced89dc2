"""Stripe payment intents, charges and refunds, with Stripe's test cards.

A payment intent confirmed with a succeeding test card creates a charge and
ends ``succeeded`` (or ``requires_capture`` with ``capture_method=manual``); a
declining card answers 402 ``card_error`` with the intent (back to
``requires_payment_method``, with ``last_payment_error``) in the error. Refunds
take a ``payment_intent`` or a ``charge`` and never exceed what is unrefunded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from interlock.sandbox.stripe_wire import (
    StripeError,
    boolean,
    check_params,
    integer,
    merge_metadata,
    missing,
    no_such,
    page,
)

if TYPE_CHECKING:
    from interlock.sandbox.stripe import StripeSimulator

Params = dict[str, Any]
_SUCCEEDING = ("pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_visa_debit")
_DECLINES = {  # suffix of a declining test card: (code, decline_code, message)
    "InsufficientFunds": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "ExpiredCard": ("expired_card", "expired_card", "Your card has expired."),
    "IncorrectCvc": ("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    "ProcessingError": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "LostCard": ("card_declined", "lost_card", "Your card was declined."),
    "": ("card_declined", "generic_decline", "Your card was declined."),
}
_PI_PARAMS = (
    "amount",
    "currency",
    "customer",
    "description",
    "metadata",
    "payment_method",
    "confirm",
    "capture_method",
    "payment_method_types",
    "receipt_email",
    "off_session",
    "setup_future_usage",
    "statement_descriptor",
    "automatic_payment_methods",
    "return_url",
)


def _decline(method: str) -> tuple[str, str, str] | None:
    if method in _SUCCEEDING:
        return None
    if "chargeDeclined" in method:
        suffix = method.split("chargeDeclined", 1)[1]
        return _DECLINES.get(suffix, _DECLINES[""])
    raise StripeError(
        400, f"No such PaymentMethod: '{method}'", code="resource_missing", param="payment_method"
    )


def charge_card(
    sim: StripeSimulator,
    method: str,
    amount: int,
    currency: str,
    customer: str | None,
    payment_intent: str | None = None,
) -> Params:
    """A charge for ``amount`` on a test payment method, succeeded or failed."""
    decline = _decline(method)
    ident = sim.random_id("ch_", 24)
    ok = decline is None
    code, reason, message = decline or (None, None, None)
    charge: Params = {
        "id": ident,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if ok else 0,
        "amount_refunded": 0,
        "captured": ok,
        "created": sim.now(),
        "currency": currency,
        "customer": customer,
        "failure_code": code,
        "failure_message": message,
        "livemode": False,
        "metadata": {},
        "outcome": {
            "network_status": "approved_by_network" if ok else "declined_by_network",
            "reason": reason,
            "reason_code": code,
            "risk_level": "normal",
            "seller_message": "Payment complete."
            if ok
            else "The bank did not return any further details with this decline.",
            "type": "authorized" if ok else "issuer_declined",
        },
        "paid": ok,
        "payment_intent": payment_intent,
        "payment_method": method,
        "refunded": False,
        "status": "succeeded" if ok else "failed",
    }
    sim.state["charges"][ident] = charge
    return charge


def _confirm(sim: StripeSimulator, intent: Params) -> Params:
    method = intent["payment_method"]
    if not method:
        raise StripeError(
            400,
            "You cannot confirm this PaymentIntent because it's missing a payment method. "
            "To confirm the PaymentIntent with cus_..., specify a payment method attached to "
            "this customer along with the customer ID.",
            code="payment_intent_unexpected_state",
        )
    charge = charge_card(
        sim, method, intent["amount"], intent["currency"], intent["customer"], intent["id"]
    )
    intent["latest_charge"] = charge["id"]
    if charge["status"] == "failed":
        intent["status"] = "requires_payment_method"
        error = {
            "type": "card_error",
            "code": charge["failure_code"],
            "decline_code": charge["outcome"]["reason"],
            "message": charge["failure_message"],
            "charge": charge["id"],
            "payment_method": {"id": method, "object": "payment_method", "type": "card"},
        }
        intent["last_payment_error"] = error
        intent["payment_method"] = None
        raise StripeError(
            402,
            charge["failure_message"],
            type="card_error",
            code=charge["failure_code"],
            decline_code=charge["outcome"]["reason"],
            charge=charge["id"],
            payment_intent=dict(intent),
        )
    intent["last_payment_error"] = None
    if intent["capture_method"] == "manual":
        charge.update(captured=False, amount_captured=0)
        intent.update(status="requires_capture", amount_capturable=intent["amount"])
    else:
        intent.update(status="succeeded", amount_received=intent["amount"])
    return intent


def create_intent(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, _PI_PARAMS)
    amount = integer(params, "amount", required=True) or 0
    if not params.get("currency"):
        raise missing("currency")
    if amount < 50:
        raise StripeError(
            400, "Amount must be at least $0.50 usd", code="amount_too_small", param="amount"
        )
    customer = params.get("customer")
    if customer:
        sim.find("customers", "customer", customer, "customer")
    capture = params.get("capture_method") or "automatic"
    method = params.get("payment_method")
    ident = sim.random_id("pi_", 24)
    intent: Params = {
        "id": ident,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture,
        "client_secret": f"{ident}_secret_{sim.random_id('', 25)}",
        "confirmation_method": "automatic",
        "created": sim.now(),
        "currency": str(params["currency"]).lower(),
        "customer": customer,
        "description": params.get("description"),
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata")),
        "next_action": None,
        "payment_method": method,
        "payment_method_types": params.get("payment_method_types") or ["card"],
        "receipt_email": params.get("receipt_email"),
        "setup_future_usage": params.get("setup_future_usage"),
        "status": "requires_confirmation" if method else "requires_payment_method",
    }
    sim.state["payment_intents"][ident] = intent
    if boolean(params, "confirm"):
        _confirm(sim, intent)
    return intent


def confirm_intent(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, ("payment_method", "return_url", "off_session", "receipt_email"))
    intent = sim.find("payment_intents", "payment_intent", path["id"])
    if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise StripeError(
            400,
            f"This PaymentIntent's status is {intent['status']}, which does not allow it to be "
            "confirmed.",
            code="payment_intent_unexpected_state",
        )
    if params.get("payment_method"):
        intent["payment_method"] = params["payment_method"]
    return _confirm(sim, intent)


def capture_intent(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, ("amount_to_capture",))
    intent = sim.find("payment_intents", "payment_intent", path["id"])
    if intent["status"] != "requires_capture":
        raise StripeError(
            400,
            f"This PaymentIntent could not be captured because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may be "
            "captured: requires_capture.",
            code="payment_intent_unexpected_state",
        )
    amount = integer(params, "amount_to_capture") or intent["amount"]
    charge = sim.state["charges"][intent["latest_charge"]]
    charge.update(captured=True, amount_captured=amount)
    intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
    return intent


def cancel_intent(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, ("cancellation_reason",))
    intent = sim.find("payment_intents", "payment_intent", path["id"])
    if intent["status"] in ("succeeded", "canceled"):
        raise StripeError(
            400,
            f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. "
            "Only a PaymentIntent with one of the following statuses may be canceled: "
            "requires_payment_method, requires_capture, requires_confirmation, requires_action, "
            "processing.",
            code="payment_intent_unexpected_state",
        )
    intent.update(status="canceled", canceled_at=sim.now())
    intent["cancellation_reason"] = params.get("cancellation_reason")
    return intent


def update_intent(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, ("amount", "description", "metadata", "payment_method", "receipt_email"))
    intent = sim.find("payment_intents", "payment_intent", path["id"])
    for field in ("description", "payment_method", "receipt_email"):
        if field in params:
            intent[field] = params[field] or None
    if "amount" in params:
        intent["amount"] = integer(params, "amount")
    intent["metadata"] = merge_metadata(intent["metadata"], params.get("metadata"))
    return intent


def create_refund(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, ("payment_intent", "charge", "amount", "reason", "metadata"))
    if params.get("payment_intent"):
        intent = sim.find(
            "payment_intents", "payment_intent", params["payment_intent"], "payment_intent"
        )
        if intent["status"] != "succeeded":
            raise StripeError(
                400,
                "This PaymentIntent does not have a successful charge to refund.",
                param="payment_intent",
            )
        charge = sim.state["charges"][intent["latest_charge"]]
    elif params.get("charge"):
        charge = sim.find("charges", "charge", params["charge"], "charge")
    else:
        raise StripeError(
            400,
            "One of `charge` or `payment_intent` is required.",
            code="parameter_missing",
            saved=False,
        )
    left = charge["amount_captured"] - charge["amount_refunded"]
    if left <= 0:
        raise StripeError(
            400,
            f"Charge {charge['id']} has already been refunded.",
            code="charge_already_refunded",
        )
    amount = integer(params, "amount") or left
    if amount > left:
        raise StripeError(
            400,
            f"Refund amount (${amount / 100:.2f}) is greater than unrefunded amount on charge "
            f"(${left / 100:.2f})",
            param="amount",
        )
    reason = params.get("reason")
    if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
        raise StripeError(400, f"Invalid reason: {reason}", param="reason", saved=False)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
    ident = sim.random_id("re_", 24)
    refund: Params = {
        "id": ident,
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": sim.now(),
        "currency": charge["currency"],
        "metadata": merge_metadata({}, params.get("metadata")),
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "status": "succeeded",
    }
    sim.state["refunds"][ident] = refund
    return refund


def update_refund(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, ("metadata",))
    refund = sim.find("refunds", "refund", path["id"])
    refund["metadata"] = merge_metadata(refund["metadata"], params.get("metadata"))
    return refund


def _lister(
    collection: str, kind: str, url: str, filters: tuple[str, ...]
) -> Callable[..., Params]:
    def list_(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
        check_params(params, ("limit", "starting_after", "ending_before", "created", *filters))
        objects = sim.newest_first(collection)
        for field in filters:
            if params.get(field):
                objects = [o for o in objects if o.get(field) == params[field]]
        return page(objects, params, url, kind)

    return list_


def _getter(collection: str, kind: str) -> Callable[..., Params]:
    def get(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
        check_params(params, ())
        obj = sim.state[collection].get(path["id"])
        if obj is None:
            raise no_such(kind, path["id"])
        return obj

    return get


ROUTES: list[tuple[str, str, Callable[..., Params]]] = [
    ("/v1/payment_intents", "POST", create_intent),
    (
        "/v1/payment_intents",
        "GET",
        _lister("payment_intents", "payment_intent", "/v1/payment_intents", ("customer",)),
    ),
    ("/v1/payment_intents/{id}", "GET", _getter("payment_intents", "payment_intent")),
    ("/v1/payment_intents/{id}", "POST", update_intent),
    ("/v1/payment_intents/{id}/confirm", "POST", confirm_intent),
    ("/v1/payment_intents/{id}/capture", "POST", capture_intent),
    ("/v1/payment_intents/{id}/cancel", "POST", cancel_intent),
    (
        "/v1/charges",
        "GET",
        _lister("charges", "charge", "/v1/charges", ("customer", "payment_intent")),
    ),
    ("/v1/charges/{id}", "GET", _getter("charges", "charge")),
    ("/v1/refunds", "POST", create_refund),
    (
        "/v1/refunds",
        "GET",
        _lister("refunds", "refund", "/v1/refunds", ("charge", "payment_intent")),
    ),
    ("/v1/refunds/{id}", "GET", _getter("refunds", "refund")),
    ("/v1/refunds/{id}", "POST", update_refund),
]
