"""The Stripe simulator over HTTP, with httpx and with the official stripe SDK."""

from __future__ import annotations

import httpx
import pytest
import stripe

from interlock.sandbox import Vendors

KEY = {"Authorization": "Bearer sk_test_sandbox"}


def client(vendors: Vendors) -> httpx.Client:
    return httpx.Client(base_url=vendors.stripe.url, headers=KEY)


def test_customers_are_form_encoded_with_bracketed_metadata(vendors: Vendors) -> None:
    with client(vendors) as http:
        made = http.post("/v1/customers", data={"email": "jo@x.test", "metadata[order]": "1042"})
        assert made.status_code == 200
        customer = made.json()
        assert customer["id"].startswith("cus_")
        assert customer["object"] == "customer"
        assert customer["metadata"] == {"order": "1042"}
        assert made.headers["request-id"].startswith("req_")
        updated = http.post(f"/v1/customers/{customer['id']}", data={"metadata[order]": ""})
        assert updated.json()["metadata"] == {}
        found = http.get("/v1/customers/search", params={"query": "email:'jo@x.test'"})
        assert [c["id"] for c in found.json()["data"]] == [customer["id"]]
        deleted = http.delete(f"/v1/customers/{customer['id']}")
        assert deleted.json() == {"id": customer["id"], "object": "customer", "deleted": True}


def test_errors_have_stripes_shape(vendors: Vendors) -> None:
    with client(vendors) as http:
        missing = http.get("/v1/customers/cus_nope")
        unknown = http.post("/v1/customers", data={"colour": "red"})
        no_amount = http.post("/v1/payment_intents", data={"currency": "usd"})
        route = http.get("/v1/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "message": "No such customer: 'cus_nope'",
        "type": "invalid_request_error",
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "param": "id",
    }
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "parameter_unknown"
    assert no_amount.json()["error"]["param"] == "amount"
    assert route.status_code == 404
    assert "Unrecognized request URL" in route.json()["error"]["message"]
    bad = httpx.get(vendors.stripe.url + "/v1/customers", headers={"Authorization": "Bearer sk_x"})
    none = httpx.get(vendors.stripe.url + "/v1/customers")
    assert bad.status_code == none.status_code == 401
    assert bad.json()["error"]["message"].startswith("Invalid API Key provided")
    assert none.json()["error"]["message"].startswith("You did not provide an API key")


def test_list_pages_newest_first_with_starting_after(vendors: Vendors) -> None:
    with client(vendors) as http:
        ids = [http.post("/v1/customers", data={"name": f"c{i}"}).json()["id"] for i in range(5)]
        first = http.get("/v1/customers", params={"limit": 2}).json()
        assert first["object"] == "list"
        assert first["url"] == "/v1/customers"
        assert [c["id"] for c in first["data"]] == ids[::-1][:2]
        assert first["has_more"] is True
        seen = [c["id"] for c in first["data"]]
        page = first
        while page["has_more"]:
            page = http.get(
                "/v1/customers", params={"limit": 2, "starting_after": page["data"][-1]["id"]}
            ).json()
            seen += [c["id"] for c in page["data"]]
        assert seen == ids[::-1]
        bad = http.get("/v1/customers", params={"limit": 101})
        assert bad.status_code == 400


def test_idempotency_replays_and_refuses_a_different_body(vendors: Vendors) -> None:
    with client(vendors) as http:
        headers = {"Idempotency-Key": "k-1"}
        first = http.post("/v1/customers", data={"email": "a@x.test"}, headers=headers)
        again = http.post("/v1/customers", data={"email": "a@x.test"}, headers=headers)
        other = http.post("/v1/customers", data={"email": "b@x.test"}, headers=headers)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    assert len(vendors.stripe.state["customers"]) == 1
    seen = vendors.stripe.requests.with_idempotency_key("k-1")
    assert len(seen) == 3
    assert seen[0].response_body == seen[1].response_body


def test_payment_intent_decline_refund_and_invoice_lifecycle(vendors: Vendors) -> None:
    with client(vendors) as http:
        cus = http.post("/v1/customers", data={"email": "p@x.test"}).json()["id"]
        paid = http.post(
            "/v1/payment_intents",
            data={
                "amount": 2000,
                "currency": "usd",
                "customer": cus,
                "payment_method": "pm_card_visa",
                "confirm": "true",
                "expand[]": "latest_charge",
            },
        ).json()
        assert paid["id"].startswith("pi_")
        assert paid["status"] == "succeeded"
        assert paid["latest_charge"]["object"] == "charge"
        declined = http.post(
            "/v1/payment_intents",
            data={
                "amount": 2000,
                "currency": "usd",
                "confirm": "true",
                "payment_method": "pm_card_chargeDeclinedInsufficientFunds",
            },
        )
        assert declined.status_code == 402
        error = declined.json()["error"]
        assert (error["type"], error["code"], error["decline_code"]) == (
            "card_error",
            "card_declined",
            "insufficient_funds",
        )
        assert error["payment_intent"]["status"] == "requires_payment_method"
        refund = http.post("/v1/refunds", data={"payment_intent": paid["id"], "amount": 500})
        assert refund.json()["id"].startswith("re_")
        assert refund.json()["amount"] == 500
        too_much = http.post("/v1/refunds", data={"payment_intent": paid["id"], "amount": 5000})
        assert too_much.status_code == 400
        invoice = http.post("/v1/invoices", data={"customer": cus}).json()
        assert invoice["id"].startswith("in_")
        assert invoice["status"] == "draft"
        http.post(
            "/v1/invoiceitems", data={"customer": cus, "amount": 1500, "invoice": invoice["id"]}
        )
        opened = http.post(f"/v1/invoices/{invoice['id']}/finalize").json()
        assert (opened["status"], opened["amount_due"]) == ("open", 1500)
        failed = http.post(
            f"/v1/invoices/{invoice['id']}/pay", data={"payment_method": "pm_card_chargeDeclined"}
        )
        assert failed.status_code == 402
        done = http.post(
            f"/v1/invoices/{invoice['id']}/pay", data={"payment_method": "pm_card_visa"}
        )
        assert done.json()["status"] == "paid"
        assert done.json()["attempt_count"] == 2


def test_the_official_sdk_works_against_the_sandbox(vendors: Vendors) -> None:
    sdk = stripe.StripeClient(
        "sk_test_sandbox", base_addresses={"api": vendors.stripe.url}, max_network_retries=0
    )
    customer = sdk.v1.customers.create(params={"email": "sdk@x.test", "metadata": {"a": "1"}})
    assert customer.id.startswith("cus_")
    assert customer.to_dict()["metadata"] == {"a": "1"}
    listed = sdk.v1.customers.list(params={"limit": 1})
    assert [c.id for c in listed.data] == [customer.id]
    with pytest.raises(stripe.CardError) as declined:
        sdk.v1.payment_intents.create(
            params={
                "amount": 999,
                "currency": "usd",
                "confirm": True,
                "payment_method": "pm_card_chargeDeclined",
            }
        )
    assert declined.value.code == "card_declined"
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.customers.retrieve("cus_missing")
    vendors.stripe.faults.rate_limit(1)
    with pytest.raises(stripe.RateLimitError):
        sdk.v1.customers.list()
