"""Webhook emitters, checked by interlock's verifiers, the vendors' libraries, and the gateway."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import standardwebhooks
import stripe

from interlock import Contract, Interlock
from interlock.gateway.server import server_for
from interlock.gateway.signatures import GitHub, Shopify, Slack, StandardWebhooks, Stripe
from interlock.sandbox import Vendors


def test_stripe_events_verify_with_interlock_and_the_stripe_library(vendors: Vendors) -> None:
    signed = vendors.stripe.webhook("invoice.payment_failed", {"id": "in_1", "amount_due": 500})
    secret = vendors.stripe.credentials["webhook_secret"]
    Stripe().verify(signed.body, signed.headers, [secret], time.time())
    event = stripe.Webhook.construct_event(
        signed.body.decode(), signed.headers["Stripe-Signature"], secret
    )
    assert event["type"] == "invoice.payment_failed"
    assert event["data"]["object"]["id"] == "in_1"
    assert event["id"].startswith("evt_")


def test_shopify_slack_and_github_signatures_verify(vendors: Vendors) -> None:
    now = time.time()
    shop = vendors.shopify.webhook("orders/fulfilled", {"id": 1042})
    verified = Shopify().verify(shop.body, shop.headers, ["shpss_sandbox"], now)
    assert verified.delivery_id == shop.headers["X-Shopify-Webhook-Id"]
    assert shop.headers["X-Shopify-Topic"] == "orders/fulfilled"
    slack = vendors.slack.webhook("app_mention", {"text": "hi"})
    Slack().verify(slack.body, slack.headers, [vendors.slack.credentials["signing_secret"]], now)
    gh = vendors.generic.webhook("issues", {"action": "opened"}, scheme="github")
    found = GitHub().verify(
        gh.body, gh.headers, [vendors.generic.credentials["webhook_secret"]], now
    )
    assert found.delivery_id == gh.headers["X-GitHub-Delivery"]


def test_standard_webhooks_verify_with_interlock_and_the_reference_library(
    vendors: Vendors,
) -> None:
    signed = vendors.generic.webhook("order.shipped", {"order_id": "1042"})
    secret = vendors.generic.credentials["standard_webhook_secret"]
    verified = StandardWebhooks().verify(signed.body, signed.headers, [secret], time.time())
    assert verified.delivery_id == signed.headers["webhook-id"]
    payload = standardwebhooks.Webhook(secret).verify(signed.body, signed.headers)
    assert payload["data"] == {"order_id": "1042"}


def test_hubspot_v3_and_zendesk_signatures_match_their_documented_recipes(vendors: Vendors) -> None:
    url = "https://hooks.example.test/hubspot"
    hub = vendors.hubspot.webhook("contact.creation", {"objectId": 7}, url=url)
    ts = hub.headers["X-HubSpot-Request-Timestamp"]
    expected = base64.b64encode(
        hmac.new(
            b"hubspot-sandbox-secret",
            b"POST" + url.encode() + hub.body + ts.encode(),
            hashlib.sha256,
        ).digest()
    ).decode()
    assert hub.headers["X-HubSpot-Signature-v3"] == expected
    assert orjson.loads(hub.body)[0]["objectId"] == 7
    zd = vendors.zendesk.webhook("ticket.created", {"id": 5})
    stamp = zd.headers["X-Zendesk-Webhook-Signature-Timestamp"]
    mac = hmac.new(b"zendesk-sandbox-webhook-secret", stamp.encode() + zd.body, hashlib.sha256)
    assert zd.headers["X-Zendesk-Webhook-Signature"] == base64.b64encode(mac.digest()).decode()


class PaymentFailed(Contract, event="invoice.payment_failed", subject="invoice_id"):
    invoice_id: str
    amount_due: int


class OrderFulfilled(Contract, event="order.fulfilled", subject="order_id"):
    order_id: str


@pytest.fixture
async def gateway(
    tmp_path: Path, vendors: Vendors, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Interlock, str]]:
    monkeypatch.setenv(
        "INTERLOCK_SECRET_STRIPE_HOOKS", vendors.stripe.credentials["webhook_secret"]
    )
    monkeypatch.setenv(
        "INTERLOCK_SECRET_SHOPIFY_HOOKS", vendors.shopify.credentials["webhook_secret"]
    )
    app = Interlock("sandbox-e2e", f"sqlite:///{tmp_path / 'gw.db'}")
    stripe_source = app.webhook("stripe", verify="stripe", secret="stripe-hooks")
    shopify_source = app.webhook("shopify", verify="shopify", secret="shopify-hooks")

    @stripe_source.maps("invoice.payment_failed")
    def failed(body: dict[str, Any]) -> PaymentFailed:
        obj = body["data"]["object"]
        return PaymentFailed(invoice_id=obj["id"], amount_due=obj["amount_due"])

    @shopify_source.maps("orders/fulfilled")
    def fulfilled(body: dict[str, Any]) -> OrderFulfilled:
        return OrderFulfilled(order_id=str(body["id"]))

    server = server_for(app, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    app.close()


async def test_the_sandbox_drives_the_gateway_end_to_end(
    vendors: Vendors, gateway: tuple[Interlock, str]
) -> None:
    app, url = gateway
    invoice = {"id": "in_sandbox", "object": "invoice", "amount_due": 1500}
    sent = await vendors.stripe.send_webhook(
        url + "/hooks/stripe", event_type="invoice.payment_failed", data=invoice
    )
    assert sent.status_code == 202, sent.text
    shipped = await vendors.shopify.send_webhook(
        url + "/hooks/shopify", event_type="orders/fulfilled", data={"id": 1042}
    )
    assert shipped.status_code == 202, shipped.text
    forged = await vendors.stripe.send_webhook(
        url + "/hooks/stripe", event_type="invoice.payment_failed", data=invoice, secret="whsec_x"
    )
    assert forged.status_code == 401
    conn = sqlite3.connect(app.store.path)
    try:
        rows = conn.execute("SELECT source, type FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    assert rows == [("stripe", "invoice.payment_failed"), ("shopify", "order.fulfilled")]
