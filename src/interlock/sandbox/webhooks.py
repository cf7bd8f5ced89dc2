"""Webhook signatures exactly as the vendors compute them, and a sender.

Each function signs raw body bytes the way its vendor documents (and the way
``interlock.gateway.signatures`` and the vendors' own libraries verify):

- Stripe: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`` keyed by the
  whole ``whsec_…`` string
- Shopify: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>`` keyed by the app secret
- Slack: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:ts:body">`` with the signing secret
- GitHub style: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``
- Standard Webhooks: ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.ts.body">`` keyed by
  the base64-decoded tail of a ``whsec_`` secret
- HubSpot v3: ``X-HubSpot-Signature-v3: <base64 HMAC-SHA256 of method+uri+body+ts_ms>``
- Zendesk: ``X-Zendesk-Webhook-Signature: <base64 HMAC-SHA256 of timestamp+body>``
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class SignedWebhook:
    """A webhook ready to send: the exact bytes and the headers that sign them."""

    body: bytes
    headers: dict[str, str]


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def stripe_signature(body: bytes, secret: str, timestamp: int) -> str:
    sig = _mac(secret.encode(), f"{timestamp}.".encode() + body).hex()
    return f"t={timestamp},v1={sig}"


def shopify_hmac(body: bytes, secret: str) -> str:
    return base64.b64encode(_mac(secret.encode(), body)).decode()


def slack_signature(body: bytes, secret: str, timestamp: int) -> str:
    return "v0=" + _mac(secret.encode(), f"v0:{timestamp}:".encode() + body).hex()


def github_signature(body: bytes, secret: str) -> str:
    return "sha256=" + _mac(secret.encode(), body).hex()


def standard_webhooks_signature(msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    raw = secret.removeprefix("whsec_")
    key = base64.b64decode(raw + "=" * (-len(raw) % 4))
    return "v1," + base64.b64encode(_mac(key, f"{msg_id}.{timestamp}.".encode() + body)).decode()


def hubspot_v3_signature(method: str, uri: str, body: bytes, timestamp_ms: int, secret: str) -> str:
    message = f"{method.upper()}{uri}".encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(_mac(secret.encode(), message)).decode()


def zendesk_signature(body: bytes, secret: str, timestamp: str) -> str:
    return base64.b64encode(_mac(secret.encode(), timestamp.encode() + body)).decode()


async def deliver(url: str, webhook: SignedWebhook, *, timeout: float = 10.0) -> httpx.Response:
    """POST ``webhook`` to ``url`` and return the receiver's answer."""
    async with httpx.AsyncClient(timeout=timeout) as client:
        return await client.post(url, content=webhook.body, headers=webhook.headers)
