"""Vendor sandbox: in-memory simulators of the vendors connectors talk to.

Stripe, Shopify, HubSpot, Zendesk, Slack and a generic JSON service, each on its
own loopback port with the vendor's paths, auth, status codes, error bodies,
pagination, rate-limit headers and idempotency; fault injection settable at
runtime (errors, 429 bursts, 5xx, latency, timeouts, connection resets,
outages, expiring tokens, schema drift); and webhooks signed exactly as each
vendor signs them::

    import interlock.sandbox

    with interlock.sandbox.run(("stripe", "slack"), seed=7) as vendors:
        stripe.api_base = vendors.stripe.url
        vendors.stripe.faults.rate_limit(2, retry_after=1)
        ...
        await vendors.stripe.send_webhook(gateway + "/hooks/stripe",
                                          event_type="invoice.payment_failed", data=invoice)

In async tests, ``async with interlock.sandbox.serve() as vendors:``; in pytest,
the ``vendors`` fixture of :mod:`interlock.sandbox.pytest`.
"""

from interlock.sandbox.faults import Decision, Drift, Faults, FaultSettings
from interlock.sandbox.generic import GenericSimulator
from interlock.sandbox.hubspot import HubSpotSimulator
from interlock.sandbox.requestlog import Exchange, RequestLog
from interlock.sandbox.runner import ALL, PORT_OFFSETS, SIMULATORS, run, serve
from interlock.sandbox.shopify import ShopifySimulator
from interlock.sandbox.simulator import Simulator
from interlock.sandbox.slack import SlackSimulator
from interlock.sandbox.stripe import StripeSimulator
from interlock.sandbox.vendors import Vendors
from interlock.sandbox.webhooks import SignedWebhook
from interlock.sandbox.zendesk import ZendeskSimulator

__all__ = [
    "ALL",
    "PORT_OFFSETS",
    "SIMULATORS",
    "Decision",
    "Drift",
    "Exchange",
    "FaultSettings",
    "Faults",
    "GenericSimulator",
    "HubSpotSimulator",
    "RequestLog",
    "ShopifySimulator",
    "SignedWebhook",
    "Simulator",
    "SlackSimulator",
    "StripeSimulator",
    "Vendors",
    "ZendeskSimulator",
    "run",
    "serve",
]
