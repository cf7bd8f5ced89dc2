"""Where alert notices go: a structured log event, a signed webhook, Slack.

A sink is any object with ``async def send(notice) -> None`` (:class:`AlertSink`);
configure them on the app::

    app.alerting.sinks.append(WebhookSink("https://ops.acme.test/hooks/interlock",
                                          secret="alerts-webhook-secret"))
    app.alerting.sinks.append(SlackSink(channel="#ops"))   # through app's Slack connector

A notice is sent once per transition (fired, resolved). A sink that fails is
tried again at the next evaluations while the notice is recent (see
:mod:`interlock.observability.alerts`); its failures are logged.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import orjson
import structlog

from interlock.errors import ConfigurationError
from interlock.ids import new_correlation_id
from interlock.stores.analytics import AlertRow

if TYPE_CHECKING:
    from interlock.app import Interlock

__all__ = ["AlertNotice", "AlertSink", "LogSink", "SlackSink", "WebhookSink"]

log = structlog.get_logger("interlock.alerts")


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """An alert that fired or resolved, with what a person needs to act on it."""

    app: Interlock
    alert: AlertRow
    owner: str

    @property
    def kind(self) -> str:
        return "fired" if self.alert.state == "firing" else "resolved"

    @property
    def id(self) -> str:
        """Stable per alert and transition: receivers de-duplicate on it."""
        return f"alert_{self.alert.id}_{self.kind}"

    def payload(self) -> dict[str, Any]:
        a = self.alert
        return {
            "type": f"interlock.alert.{self.kind}",
            "timestamp": _rfc3339(a.resolved_at if a.resolved_at is not None else a.fired_at),
            "data": {
                "id": a.id,
                "app": self.app.name,
                "flow": a.flow,
                "owner": self.owner,
                "severity": a.severity,
                "state": a.state,
                "fired_at": _rfc3339(a.fired_at),
                "resolved_at": None if a.resolved_at is None else _rfc3339(a.resolved_at),
                "burn_long": round(a.burn_long, 4),
                "burn_short": round(a.burn_short, 4),
                "long_s": a.long_s,
                "short_s": a.short_s,
                "factor": a.factor,
                "budget_remaining": round(a.budget_remaining, 6),
                "summary": a.summary,
            },
        }

    def text(self) -> str:
        a = self.alert
        if a.state == "firing":
            return f"[{a.severity.upper()}] FIRING {a.summary}. Owner: {self.owner}."
        took = (a.resolved_at or a.updated_at) - a.fired_at
        return f"[{a.severity.upper()}] RESOLVED {a.flow} after {took:.0f}s: {a.summary}."


class AlertSink(Protocol):
    """Sends one alert notice; raises when it could not."""

    async def send(self, notice: AlertNotice) -> None: ...


class LogSink:
    """A structured log event ``alert.fired`` (warning) or ``alert.resolved`` (info)."""

    async def send(self, notice: AlertNotice) -> None:
        fields = notice.payload()["data"]
        if notice.kind == "fired":
            log.warning("alert.fired", **fields)
        else:
            log.info("alert.resolved", **fields)


class WebhookSink:
    """POSTs the notice as JSON signed with Standard Webhooks (``webhook-id``,
    ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>``).

    ``secret`` names the ``whsec_…`` signing secret (resolved like every secret:
    the secrets store, then ``INTERLOCK_SECRET_<NAME>``). Any 2xx is success.
    """

    def __init__(self, url: str, *, secret: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"WebhookSink url must be http(s), not {url!r}")
        self.url = url
        self.secret = secret
        self.timeout = timeout

    def sign(self, notice_id: str, timestamp: int, body: bytes, secret: str) -> dict[str, str]:
        """The Standard Webhooks headers for ``body`` (the gateway's own key handling)."""
        from interlock.gateway.signatures import Keys

        mac = Keys([secret]).macs("sha256", whsec=True)[0].copy()
        mac.update(f"{notice_id}.{timestamp}.".encode() + body)
        return {
            "webhook-id": notice_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
        }

    async def send(self, notice: AlertNotice) -> None:
        body = orjson.dumps(notice.payload())
        secret = notice.app.secrets.resolve(self.secret)
        headers = self.sign(notice.id, int(time.time()), body, secret)
        headers["content-type"] = "application/json"
        headers["x-correlation-id"] = new_correlation_id()
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.url, content=body, headers=headers)
        if not response.is_success:
            raise RuntimeError(f"alert webhook {self.url} answered {response.status_code}")


class SlackSink:
    """Posts the notice to a Slack channel through the app's Slack connector (``name``)."""

    def __init__(self, channel: str, *, connector: str = "slack") -> None:
        self.channel = channel
        self.connector = connector

    async def send(self, notice: AlertNotice) -> None:
        from interlock.connectors.slack import Slack

        slack = notice.app.connectors.get(self.connector)
        if not isinstance(slack, Slack):
            raise ConfigurationError(
                f"SlackSink: the app has no Slack connector named {self.connector!r} "
                "(register one with app.connector(Slack(...)))"
            )
        await slack.post_message(self.channel, notice.text())


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
