"""Webhook sources: where vendor payloads enter, and how they map to contracts.

    shopify = app.webhook("shopify", verify="shopify", secret="shopify-webhook-secret")

    @shopify.maps("orders/fulfilled")
    def order_fulfilled(body: dict[str, Any]) -> OrderShipped:
        return OrderShipped(order_id=str(body["id"]), ...)

The topic of a delivery comes from the URL (``/hooks/shopify/orders/fulfilled``),
else from the vendor's topic header (``X-Shopify-Topic``, ``X-GitHub-Event``),
else from a body field (``topic_field="type"`` for Stripe). A mapping may return
one contract, several, or ``None`` to ignore the payload. Secrets are named,
never written in code: ``secret=["current-name", "previous-name"]`` accepts both
during a rotation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from interlock.contracts import Contract
from interlock.errors import ConfigurationError
from interlock.secrets import env_name, resolve_secret

Mapper = Callable[[dict[str, Any]], Contract | Sequence[Contract] | None]
M = TypeVar("M", bound=Mapper)

# The header each vendor names its topic in (lower case).
TOPIC_HEADERS = {
    "shopify": "x-shopify-topic",
    "github": "x-github-event",
}
# A body field naming the event type, for vendors that put it there.
TOPIC_FIELDS = {"stripe": "type", "standard-webhooks": "type", "svix": "type"}


@dataclass
class TopicMappings:
    """The mappings of one source from a topic (a webhook's topic, a stream's subject)
    to contracts: what every kind of source shares."""

    name: str
    mappings: dict[str, Mapper] = field(default_factory=dict, kw_only=True)
    default: Mapper | None = field(default=None, kw_only=True)

    def maps(self, topic: str | None = None) -> Callable[[M], M]:
        """Register the mapping for ``topic`` (or, without one, for every unmapped topic)."""

        def register(fn: M) -> M:
            if topic is None:
                if self.default is not None:
                    raise ConfigurationError(f"source {self.name!r} has two catch-all mappings")
                self.default = fn
            else:
                if topic in self.mappings:
                    raise ConfigurationError(f"source {self.name!r} maps topic {topic!r} twice")
                self.mappings[topic] = fn
            return fn

        return register

    def mapper_for(self, topic: str | None) -> Mapper | None:
        if topic is not None and topic in self.mappings:
            return self.mappings[topic]
        return self.default


@dataclass
class WebhookSource(TopicMappings):
    """A webhook endpoint at ``POST /hooks/{name}[/{topic}]``."""

    verify: str
    secrets: tuple[str, ...]
    verify_options: dict[str, Any] = field(default_factory=dict)
    topic_header: str | None = None
    topic_field: str | None = None
    max_body_bytes: int = 1024 * 1024

    def topic_of(self, path_topic: str | None, headers: Mapping[str, str], body: Any) -> str | None:
        if path_topic:
            return path_topic
        if self.topic_header and headers.get(self.topic_header):
            return headers[self.topic_header]
        if self.topic_field and isinstance(body, dict):
            value = body.get(self.topic_field)
            if isinstance(value, str):
                return value
        return None

    def secret_values(self, resolve: Callable[[str], str] = resolve_secret) -> list[str]:
        """The current secret values (one, or two during a rotation); ``resolve`` is the
        app's resolver (environment, then the store), the environment alone by default."""
        return [resolve(name) for name in self.secrets]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verify": self.verify,
            "secrets": [{"name": n, "env": env_name(n)} for n in self.secrets],
            "topics": sorted(self.mappings),
            "catch_all": self.default is not None,
            "max_body_bytes": self.max_body_bytes,
        }


def build_source(
    name: str,
    *,
    verify: str,
    secret: str | Sequence[str],
    topic_header: str | None,
    topic_field: str | None,
    max_body_bytes: int,
    options: dict[str, Any],
) -> WebhookSource:
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigurationError(
            f"source name {name!r} must be letters, digits, '-' or '_' (it is a URL segment)"
        )
    secrets = (secret,) if isinstance(secret, str) else tuple(secret)
    if not 1 <= len(secrets) <= 2:
        raise ConfigurationError(f"source {name!r}: give one secret name, or two during a rotation")
    for s in secrets:
        env_name(s)  # validates the name
    if max_body_bytes < 1:
        raise ConfigurationError(f"source {name!r}: max_body_bytes must be positive")
    return WebhookSource(
        name=name,
        verify=verify,
        secrets=secrets,
        verify_options=options,
        topic_header=(topic_header or TOPIC_HEADERS.get(verify) or "").lower() or None,
        topic_field=topic_field if topic_field is not None else TOPIC_FIELDS.get(verify),
        max_body_bytes=max_body_bytes,
    )
