"""The Slack connector: ``chat.postMessage`` and friends in the Slack Web API.

::

    slack = app.connector(Slack(token="slack-bot-token"))

    @app.flow(PaymentFailed, owner="billing@acme.test")
    async def alert(event: PaymentFailed, ctx: Context) -> None:
        slack = ctx.connector(Slack)
        await ctx.step("alert", slack.post_message, "#alerts", f"Payment {event.payment_intent} failed")

Slack answers API errors with HTTP 200 and ``{"ok": false, "error": "channel_not_found"}``;
the connector classifies those like any other vendor error. Rate limits are per method
tier, and ``chat.postMessage`` about one message a second per channel.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from interlock.connectors.auth import Auth, BearerToken
from interlock.connectors.base import Probe
from interlock.connectors.calls import Call
from interlock.connectors.classify import ErrorKind, VendorError, json_body
from interlock.connectors.limiter import Rate
from interlock.connectors.oauth import OAuth2RefreshToken
from interlock.connectors.vendor import (
    VendorConnector,
    VendorModel,
    dry_answer,
    dry_body,
    dry_digest,
    present,
)

JSON = "application/json; charset=utf-8"
# Slack's documented tiers (calls a minute, with bursts) kept under, burst included.
TIERS = {
    1: Rate(1, per="1m"),
    2: Rate(15, per="1m", burst=5),
    3: Rate(40, per="1m", burst=10),
    4: Rate(80, per="1m", burst=20),
}
METHOD_TIERS = {
    "auth.test": 4,
    "conversations.list": 2,
    "conversations.info": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.join": 3,
    "chat.update": 3,
    "chat.delete": 3,
    "reactions.add": 3,
    "users.info": 4,
    "users.lookupByEmail": 3,
}
POST_RATE = Rate(1, per="1s", burst=4)  # chat.postMessage: per channel
_KINDS: dict[str, ErrorKind] = {
    **dict.fromkeys(
        (
            "not_authed",
            "invalid_auth",
            "account_inactive",
            "token_revoked",
            "token_expired",
            "no_permission",
            "missing_scope",
            "not_allowed_token_type",
            "ekm_access_denied",
            "org_login_required",
        ),
        "permission",
    ),
    **dict.fromkeys(
        ("channel_not_found", "user_not_found", "message_not_found", "thread_not_found"),
        "not_found",
    ),
    **dict.fromkeys(
        ("internal_error", "fatal_error", "service_unavailable", "request_timeout"),
        "retryable",
    ),
    "ratelimited": "rate_limited",
}


class Message(VendorModel):
    """A posted message: its channel id and ``ts`` (its id, and a thread's ``thread_ts``)."""

    channel: str
    ts: str
    text: str | None = None
    thread_ts: str | None = None


class Channel(VendorModel):
    id: str
    name: str | None = None
    is_private: bool = False
    is_archived: bool = False
    is_member: bool = False
    num_members: int | None = None


class Identity(VendorModel):
    """Who the token is (``auth.test``)."""

    team_id: str
    user_id: str
    team: str | None = None
    url: str | None = None
    bot_id: str | None = None


class Slack(VendorConnector):
    """Slack's Web API (``https://slack.com/api/{method}``) with a bot token (``token``
    names the secret) or rotating tokens (:meth:`oauth`).

    Slack has no idempotency keys; keep each post in its own step, so a completed post
    is not repeated when a delivery is retried. Operations:

    - :meth:`post_message` (``chat.postMessage``, JSON with ``text``, ``blocks``,
      ``thread_ts``)
    - :meth:`list_channels` (``conversations.list``, following ``next_cursor``),
      :meth:`find_channel` (by name)
    - :meth:`auth_test` (``auth.test``)
    - :meth:`call`: any other Web API method, classified and rate limited the same way
    - probe: ``auth.test``

    Errors: ``ok: false`` answers keep Slack's error code (``channel_not_found``,
    ``not_in_channel``, ``is_archived``, ``msg_too_long``…) and are classified —
    ``invalid_auth``/``token_revoked``/``missing_scope`` a ``PermissionDenied``,
    ``*_not_found`` a ``ResourceNotFound``, ``ratelimited`` (HTTP 429) a
    ``RateLimited`` after ``Retry-After``, ``internal_error`` and 5xx retried, the rest
    permanent. ``token_expired`` refreshes a rotating token once and tries again. Each
    method draws from its tier's bucket (tiers 1 to 4, per minute), and ``chat.postMessage``
    from one bucket per channel (one a second, bursts of four).
    """

    idempotency_header = None  # Slack takes none

    def __init__(
        self,
        name: str = "slack",
        *,
        token: str = "slack-bot-token",
        base_url: str = "https://slack.com",
        **options: Any,
    ) -> None:
        options.setdefault("auth", BearerToken(secret=token))
        options.setdefault("probes", (Probe("auth", "/api/auth.test"),))
        super().__init__(name, base_url=base_url, **options)
        self.page_size = 200  # channels per conversations.list page

    @staticmethod
    def oauth(
        *,
        client_id: str,
        client_secret: str = "slack-client-secret",
        refresh_token: str = "slack-refresh-token",
    ) -> Auth:
        """Rotating tokens (``xoxe.xoxb-…``, 12 hours) refreshed at ``oauth.v2.access``."""
        return OAuth2RefreshToken(
            token_url="/api/oauth.v2.access",
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
        )

    # -- hooks -----------------------------------------------------------------------
    def vendor_error(self, response: httpx.Response) -> VendorError | None:
        """``ok: false`` (with HTTP 200, or 429 and 5xx) classified by Slack's error code."""
        body = json_body(response)
        error = body.get("error") if isinstance(body, dict) and body.get("ok") is False else None
        status = response.status_code
        if error is None:
            return super().vendor_error(response)
        kind = _KINDS.get(str(error), "permanent")
        if status == 429:
            kind = "rate_limited"
        elif status in (401, 403):
            kind = "permission"
        elif status >= 500 and status != 501:
            kind = "retryable"
        retry = self.rate_signal(response).retry_after if kind == "rate_limited" else None
        needed = body.get("needed") if isinstance(body, dict) else None
        return VendorError(kind, status, str(error), _said(body), retry, needed)

    def credentials_refused(self, response: httpx.Response, error: VendorError) -> bool:
        return error.code == "token_expired" or super().credentials_refused(response, error)

    def rate_for(self, call: Call) -> tuple[str, Rate] | None:
        method = call.url.rsplit("/api/", 1)[-1]
        if method == "chat.postMessage":
            channel = f"@{call.account}" if call.account else ""
            return f"{self.name}:{method}{channel}", POST_RATE
        return f"{self.name}:{method}", TIERS[METHOD_TIERS.get(method, 3)]

    def simulate(self, request: httpx.Request, idempotency_key: str | None) -> httpx.Response:
        """``chat.postMessage`` answered as Slack would; other methods ``{"ok": true}``."""
        method = request.url.path.rsplit("/api/", 1)[-1]
        if method != "chat.postMessage":
            return dry_answer(request, 200, {"ok": True})
        args = dry_body(request)
        digest = dry_digest(request, idempotency_key)
        ts = f"{int(time.time())}.{int(digest[:5], 16) % 1_000_000:06d}"
        message = {"type": "message", "ts": ts, "text": args.get("text") or ""}
        message.update(present(thread_ts=args.get("thread_ts"), blocks=args.get("blocks")))
        body = {"ok": True, "channel": args.get("channel"), "ts": ts, "message": message}
        return dry_answer(request, 200, body, {"Content-Type": JSON})

    # -- methods -----------------------------------------------------------------------
    async def call(
        self,
        method: str,
        args: Mapping[str, Any] | None = None,
        *,
        read: bool = False,
        account: str | None = None,
    ) -> dict[str, Any]:
        """Any Web API method: reads (``read=True``) as GET with query arguments, others
        as POST with a JSON body. Returns Slack's answer (``ok: true``)."""
        path = f"/api/{method}"
        if read:
            params = {k: _arg(v) for k, v in (args or {}).items() if v is not None}
            response = await self.send("GET", path, operation=method, params=params)
        else:
            response = await self.send(
                "POST",
                path,
                operation=method,
                content=orjson.dumps(present(**dict(args or {}))),
                headers={"Content-Type": JSON},
                account=account,
            )
        return self.body(response, operation=method)

    async def post_message(
        self,
        channel: str,
        text: str | None = None,
        *,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        thread_ts: str | None = None,
        unfurl_links: bool | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        """Post to a channel (id, ``#name`` or name) or a thread; ``text`` is also the
        notification fallback when ``blocks`` are given."""
        args = present(
            channel=channel,
            text=text,
            blocks=list(blocks) if blocks is not None else None,
            thread_ts=thread_ts,
            unfurl_links=unfurl_links,
            metadata=dict(metadata) if metadata is not None else None,
        )
        body = await self.call("chat.postMessage", args, account=channel)
        posted = body.get("message")
        fields = dict(posted) if isinstance(posted, dict) else {}
        fields.update(present(channel=body.get("channel"), ts=body.get("ts")))
        return self.parse(Message, fields, operation="chat.postMessage", status=200)

    async def list_channels(
        self,
        *,
        types: Sequence[str] = ("public_channel", "private_channel"),
        exclude_archived: bool = True,
        limit: int = 1000,
    ) -> list[Channel]:
        """Channels the token can see, following ``response_metadata.next_cursor``."""
        args: dict[str, Any] = {
            "types": ",".join(types),
            "exclude_archived": exclude_archived,
            "limit": max(1, min(self.page_size, limit)),
        }
        found: list[Channel] = []
        while len(found) < limit:
            page = await self.call("conversations.list", args, read=True)
            found.extend(
                self.parse_all(Channel, page.get("channels"), operation="conversations.list")
            )
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
            args["cursor"] = cursor
        return found[:limit]

    async def find_channel(self, name: str) -> Channel | None:
        """The channel called ``name`` (with or without ``#``), archived ones included."""
        wanted = name.lstrip("#")
        for channel in await self.list_channels(exclude_archived=False):
            if channel.name == wanted or channel.id == wanted:
                return channel
        return None

    async def auth_test(self) -> Identity:
        body = await self.call("auth.test", read=True)
        return self.parse(Identity, body, operation="auth.test", status=200)


def _arg(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _said(body: Any) -> str | None:
    """Slack's extra words on an error: the scope needed, the warnings, the messages."""
    if not isinstance(body, dict):
        return None
    parts = []
    if body.get("needed"):
        parts.append(f"needed {body['needed']}, provided {body.get('provided', '?')}")
    messages = (body.get("response_metadata") or {}).get("messages")
    if messages:
        parts.append("; ".join(str(m) for m in messages))
    return "; ".join(parts) or None


__all__ = ["Channel", "Identity", "Message", "Slack"]
