"""Fault injection: each fault as a client sees it, set from Python or over HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from interlock.errors import ConfigurationError
from interlock.sandbox import Vendors

STRIPE = {"Authorization": "Bearer sk_test_sandbox"}
GENERIC = {"X-API-Key": "sandbox-api-key"}


def statuses(url: str, n: int) -> list[int]:
    with httpx.Client(base_url=url, headers=GENERIC) as http:
        return [http.get("/v1/things").status_code for _ in range(n)]


def test_error_rate_is_deterministic_for_a_seed(vendors: Vendors) -> None:
    vendors.generic.faults.set(error_rate=0.5, error_status=500)
    first = statuses(vendors.generic.url, 20)
    vendors.generic.faults.clear()
    vendors.generic.faults.set(error_rate=0.5, error_status=500)
    again = statuses(vendors.generic.url, 20)
    assert first == again
    assert {200, 500} == set(first)


def test_a_429_burst_carries_retry_after_in_each_vendors_shape(vendors: Vendors) -> None:
    vendors.stripe.faults.rate_limit(2, retry_after=3)
    with httpx.Client(base_url=vendors.stripe.url, headers=STRIPE) as http:
        burst = [http.get("/v1/customers") for _ in range(3)]
    assert [r.status_code for r in burst] == [429, 429, 200]
    assert burst[0].headers["retry-after"] == "3"
    assert burst[0].json()["error"]["code"] == "rate_limit"
    vendors.shopify.faults.rate_limit(1, retry_after=2)
    shop = httpx.get(
        vendors.shopify.url + "/admin/api/2024-10/orders.json",
        headers={"X-Shopify-Access-Token": "shpat_sandbox"},
    )
    assert (shop.status_code, shop.headers["retry-after"]) == (429, "2.0")
    vendors.slack.faults.rate_limit(1, retry_after=5)
    slack = httpx.post(vendors.slack.url + "/api/auth.test")
    assert slack.status_code == 429
    assert slack.headers["retry-after"] == "5"
    assert slack.json() == {"ok": False, "error": "ratelimited"}
    assert vendors.stripe.requests.all()[0].fault == "rate_limit"


def test_5xx_then_recovery(vendors: Vendors) -> None:
    vendors.stripe.faults.fail(1, status=502)
    with httpx.Client(base_url=vendors.stripe.url, headers=STRIPE) as http:
        failed = http.get("/v1/customers")
        ok = http.get("/v1/customers")
    assert failed.status_code == 502
    assert failed.json()["error"]["type"] == "api_error"
    assert failed.headers["stripe-should-retry"] == "true"
    assert ok.status_code == 200


def test_added_latency(vendors: Vendors) -> None:
    vendors.generic.faults.set(latency=0.2)
    started = time.monotonic()
    assert statuses(vendors.generic.url, 1) == [200]
    assert time.monotonic() - started >= 0.2


def test_a_held_request_times_the_client_out_but_takes_effect(vendors: Vendors) -> None:
    vendors.stripe.faults.timeout(1, hold=3.0)
    with httpx.Client(base_url=vendors.stripe.url, headers=STRIPE, timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post(
                "/v1/customers", data={"email": "slow@x.test"}, headers={"Idempotency-Key": "t"}
            )
        retried = http.post(
            "/v1/customers", data={"email": "slow@x.test"}, headers={"Idempotency-Key": "t"}
        )
    assert retried.headers["idempotent-replayed"] == "true"
    assert len(vendors.stripe.state["customers"]) == 1
    assert [e.fault for e in vendors.stripe.requests] == ["timeout", None]


def test_a_held_request_without_effect_does_nothing(vendors: Vendors) -> None:
    vendors.stripe.faults.timeout(1, hold=3.0, effect=False)
    with (
        httpx.Client(base_url=vendors.stripe.url, headers=STRIPE, timeout=0.3) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        http.post("/v1/customers", data={"email": "slow@x.test"})
    time.sleep(0.1)
    assert vendors.stripe.state["customers"] == {}


def test_a_connection_reset_gives_no_response(vendors: Vendors) -> None:
    vendors.generic.faults.reset(1)
    with httpx.Client(base_url=vendors.generic.url, headers=GENERIC) as http:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            http.get("/v1/things")
        assert http.get("/v1/things").status_code == 200
    (reset, ok) = vendors.generic.requests
    assert (reset.fault, reset.status, ok.status) == ("reset", None, 200)


def test_an_outage_window(vendors: Vendors) -> None:
    vendors.zendesk.faults.outage(0.3)
    auth = ("agent@sandbox.test/token", "zendesk-sandbox-api-token")
    url = vendors.zendesk.url + "/api/v2/tickets.json"
    down = httpx.get(url, auth=auth)
    assert down.status_code == 503
    assert "retry-after" in down.headers
    time.sleep(0.35)
    assert httpx.get(url, auth=auth).status_code == 200


def test_schema_drift_renames_enums_and_na(vendors: Vendors) -> None:
    vendors.stripe.faults.drift(
        rename={"email": "email_address"}, enum={"status": "on_hold"}, na=["amount"]
    )
    with httpx.Client(base_url=vendors.stripe.url, headers=STRIPE) as http:
        customer = http.post("/v1/customers", data={"email": "d@x.test"}).json()
        intent = http.post("/v1/payment_intents", data={"amount": 900, "currency": "usd"}).json()
        missing = http.get("/v1/customers/cus_none").json()
    assert customer["email_address"] == "d@x.test" and "email" not in customer
    assert (intent["status"], intent["amount"]) == ("on_hold", "NA")
    assert "error" in missing  # errors are never drifted
    vendors.shopify.faults.drift(na=["total_price"])
    order = httpx.post(
        vendors.shopify.url + "/admin/api/2024-10/orders.json",
        headers={"X-Shopify-Access-Token": "shpat_sandbox"},
        json={"order": {"line_items": [{"title": "x", "price": "5.00"}]}},
    ).json()["order"]
    assert order["total_price"] == "NA"


def test_the_control_endpoint_steers_from_another_client(vendors: Vendors) -> None:
    control = httpx.Client(base_url=vendors.stripe.url)
    with control:
        settings = control.post("/_sandbox/faults", json={"rate_limit_next": 1, "latency": 0.01})
        assert settings.json()["rate_limit_next"] == 1
        assert vendors.stripe.faults.settings.latency == 0.01
        limited = httpx.get(vendors.stripe.url + "/v1/customers", headers=STRIPE)
        assert limited.status_code == 429
        httpx.post(vendors.stripe.url + "/v1/customers", data={"name": "x"}, headers=STRIPE)
        state = control.get("/_sandbox/state").json()
        assert state["credentials"]["api_key"] == "sk_test_sandbox"
        assert len(state["state"]["customers"]) == 1
        assert state["requests"] == 2
        log = control.get("/_sandbox/requests").json()
        assert [e["status"] for e in log] == [429, 200]
        bad = control.post("/_sandbox/faults", json={"error_rate": 3})
        assert bad.status_code == 400
        assert control.post("/_sandbox/faults", json={"expire_tokens": True}).status_code == 200
        assert control.post("/_sandbox/reset").json() == {"ok": True}
        assert control.get("/_sandbox/state").json()["state"]["customers"] == []
        assert control.get("/_sandbox/faults").json()["latency"] == 0.0


def test_settings_are_validated() -> None:
    from interlock.sandbox import Faults

    faults = Faults()
    with pytest.raises(ConfigurationError):
        faults.set(error_rate=1.5)
    with pytest.raises(ConfigurationError):
        faults.set(colour="red")
    with pytest.raises(ConfigurationError):
        faults.fail(1, status=200)
