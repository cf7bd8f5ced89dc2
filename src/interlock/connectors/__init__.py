"""Connectors: how flows talk to vendors, behind guardrails that protect both sides.

Flow code never speaks raw HTTP to a vendor: it calls a connector, which keeps
the domain contract stable while the vendor changes underneath::

    from interlock.connectors import BearerToken, HttpConnector, Rate

    crm = app.connector(HttpConnector("crm", base_url="https://crm.acme.test",
                                      auth=BearerToken(secret="crm-token"),
                                      rate=Rate(10, per="1s")))

    async def flow(event, ctx):
        crm = ctx.connector("crm")            # bound to this delivery (keys, dry-run)
        await ctx.step("add-note", crm.post, "/v1/notes", {"text": "shipped"})

Each call gets auth (API keys, bearer, basic, OAuth2 with single-flight
refresh), a rate limit shared by every worker process, a circuit breaker, an
egress guard, timeouts, error classification, idempotency keys, correlation and
trace headers, and dry-run. See docs/connectors.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlock.connectors.auth import ApiKey, Auth, BasicAuth, BearerToken, Credential
from interlock.connectors.base import Connector, Probe, Timeouts
from interlock.connectors.breaker import BreakerPolicy
from interlock.connectors.calls import Call, DryRun
from interlock.connectors.checks import CheckResult, check, check_all, run_checks
from interlock.connectors.classify import ErrorDetails, VendorError
from interlock.connectors.egress import Egress, allow_egress, disallow_egress
from interlock.connectors.http import HttpConnector
from interlock.connectors.hubspot import HubSpot
from interlock.connectors.limiter import Rate
from interlock.connectors.metrics import ConnectorMetrics
from interlock.connectors.oauth import OAuth2ClientCredentials, OAuth2RefreshToken
from interlock.connectors.runtime import runtime_of
from interlock.connectors.shopify import Shopify
from interlock.connectors.signals import RateSignal, call_limit
from interlock.connectors.slack import Slack
from interlock.connectors.stripe import Stripe
from interlock.connectors.tokenset import TokenSet
from interlock.connectors.zendesk import Zendesk

if TYPE_CHECKING:
    from interlock.app import Interlock


def connector_metrics(app: Interlock) -> ConnectorMetrics:
    """The connector metrics of ``app`` in this process (a prometheus_client collector)."""
    return runtime_of(app).metrics


__all__ = [
    "ApiKey",
    "Auth",
    "BasicAuth",
    "BearerToken",
    "BreakerPolicy",
    "Call",
    "CheckResult",
    "Connector",
    "ConnectorMetrics",
    "Credential",
    "DryRun",
    "Egress",
    "ErrorDetails",
    "HttpConnector",
    "HubSpot",
    "OAuth2ClientCredentials",
    "OAuth2RefreshToken",
    "Probe",
    "Rate",
    "RateSignal",
    "Shopify",
    "Slack",
    "Stripe",
    "Timeouts",
    "TokenSet",
    "VendorError",
    "Zendesk",
    "allow_egress",
    "call_limit",
    "check",
    "check_all",
    "connector_metrics",
    "disallow_egress",
    "run_checks",
]
