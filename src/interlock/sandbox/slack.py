"""A Slack Web API simulator: ``auth.test``, ``chat.postMessage``, ``conversations.list``.

Methods live at ``/api/{method}`` and take form or JSON bodies (JSON needs the
token in ``Authorization: Bearer``; without ``charset`` the answer warns
``missing_charset``). API errors are HTTP 200 with ``{"ok": false, "error": …}``
(``not_authed``, ``invalid_auth``, ``token_expired``, ``channel_not_found``,
``no_text``, ``not_in_channel``, ``is_archived``, ``msg_too_long``,
``invalid_cursor``); rate limits are HTTP 429 with ``Retry-After`` and
``{"ok": false, "error": "ratelimited"}``, per method tier (``auth.test`` tier 4,
``conversations.list`` tier 2) and, for ``chat.postMessage``, about one message
a second per channel with short bursts. ``oauth.v2.access`` refreshes rotating
``xoxe.xoxb-`` tokens (which expire after 12 hours).
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from interlock.sandbox.faults import Decision
from interlock.sandbox.oauth import OAuthError, TokenIssuer, token_request
from interlock.sandbox.ratelimits import FixedWindow, LeakyBucket
from interlock.sandbox.simulator import Call, Simulator, json_response
from interlock.sandbox.webhooks import SignedWebhook, slack_signature

BOT_TOKEN = "xoxb-sandbox"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CLIENT_ID = "1111111111.2222222222"
CLIENT_SECRET = "slack-sandbox-client-secret"
TEAM_ID, TEAM = "T0SANDBOX", "Sandbox"
BOT_USER, BOT_ID, APP_ID = "U0SANDBOXBOT", "B0SANDBOXBOT", "A0SANDBOXAPP"
TIERS = {"auth.test": 100, "conversations.list": 20, "chat.postMessage": 600}  # per minute
_CHANNELS = [  # name, private, member, archived, members
    ("general", False, True, False, 42),
    ("random", False, True, False, 40),
    ("alerts", False, True, False, 7),
    ("revops", True, True, False, 5),
    ("leadership", True, False, False, 4),
    ("old-launch", False, False, True, 12),
    ("design", False, False, False, 9),
]
JSON = "application/json; charset=utf-8"


class SlackSimulator(Simulator):
    """Slack's Web API (see the module docstring)."""

    name = "slack"
    collections = ("channels", "messages")

    def __init__(self, *, seed: int = 0, post_burst: int = 10, **kw: Any) -> None:
        self.post_burst = post_burst
        super().__init__(seed=seed, **kw)

    def setup(self) -> None:
        self.windows = {method: FixedWindow(limit, 60.0) for method, limit in TIERS.items()}
        self.channel_buckets: dict[str, LeakyBucket] = {}
        self.issuer = TokenIssuer(
            self.faults,
            access_prefix="xoxe.xoxb-1-",
            refresh_prefix="xoxe-1-",
            ttl=43200,
            rotate=False,
            scope="chat:write,channels:read,groups:read",
            seed=self.seed,
            clock=self.clock,
        )
        self.first_refresh_token = self.issuer.issue().refresh_token or ""
        created = 1_600_000_000
        for i, (name, private, member, archived, members) in enumerate(_CHANNELS):
            ident = f"C0{i + 1:02d}SANDBOX"
            self.state["channels"][ident] = {
                "id": ident,
                "name": name,
                "is_channel": True,
                "is_group": False,
                "is_im": False,
                "is_mpim": False,
                "is_private": private,
                "created": created + i,
                "is_archived": archived,
                "is_general": name == "general",
                "unlinked": 0,
                "name_normalized": name,
                "is_shared": False,
                "is_org_shared": False,
                "is_pending_ext_shared": False,
                "pending_shared": [],
                "context_team_id": TEAM_ID,
                "updated": (created + i) * 1000,
                "parent_conversation": None,
                "creator": "U0SANDBOXADMIN",
                "is_ext_shared": False,
                "shared_team_ids": [TEAM_ID],
                "pending_connected_team_ids": [],
                "is_member": member,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {
                    "value": f"The #{name} channel",
                    "creator": "U0SANDBOXADMIN",
                    "last_set": created,
                },
                "previous_names": [],
                "num_members": members,
            }

    @property
    def credentials(self) -> dict[str, str]:
        return {
            "bot_token": BOT_TOKEN,
            "signing_secret": SIGNING_SECRET,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": self.first_refresh_token,
            "team_id": TEAM_ID,
        }

    def routes(self) -> Sequence[BaseRoute]:
        methods: dict[str, Callable[[Call, dict[str, Any]], Response]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "conversations.list": self._conversations,
        }
        routes = [self.route("/api/oauth.v2.access", self._oauth, ["POST"])]
        for method, fn in methods.items():
            routes.append(self.route(f"/api/{method}", self._method(method, fn), ["GET", "POST"]))
        return routes

    # -- plumbing -----------------------------------------------------------------------

    @staticmethod
    def reply(body: Mapping[str, Any], status: int = 200, **headers: str) -> Response:
        return json_response(dict(body), status, headers, media_type=JSON)

    def _args(self, call: Call) -> tuple[dict[str, Any], list[str]]:
        kind = call.headers.get("content-type", "")
        args: dict[str, Any] = dict(call.query)
        warnings: list[str] = []
        if call.method == "POST" and "json" in kind:
            if "charset" not in kind:
                warnings.append("missing_charset")
            try:
                body = call.json() or {}
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise _Fail("invalid_json")
            args.update(body)
            args.pop("token", None)  # JSON bodies cannot carry the token
        elif call.method == "POST":
            args.update(parse_qsl(call.body.decode(errors="replace"), keep_blank_values=True))
        return args, warnings

    def _method(self, method: str, fn: Callable[[Call, dict[str, Any]], Response]) -> Any:
        def handler(call: Call) -> Response:
            try:
                args, warnings = self._args(call)
                self._authenticate(call, args)
                ok, _, reset_in = self.windows[method].take("team", self.clock())
                if not ok:
                    return self._ratelimited(reset_in)
                response = fn(call, args)
            except _Fail as fail:
                return self.reply({"ok": False, "error": fail.error, **fail.extra})
            if warnings and response.status_code == 200:
                body = orjson.loads(response.body)
                body.update(warning=",".join(warnings), response_metadata={"warnings": warnings})
                response = self.reply(body)
            return response

        return handler

    def _authenticate(self, call: Call, args: dict[str, Any]) -> None:
        scheme, _, header = call.headers.get("authorization", "").partition(" ")
        token = header.strip() if scheme.lower() == "bearer" else str(args.get("token") or "")
        if not token:
            raise _Fail("not_authed")
        if token == BOT_TOKEN:
            return
        status = self.issuer.check(token)
        if status == "expired":
            raise _Fail("token_expired")
        if status == "revoked":
            raise _Fail("token_revoked")
        if status != "ok":
            raise _Fail("invalid_auth")

    def _ratelimited(self, retry_after: float) -> Response:
        return self.reply(
            {"ok": False, "error": "ratelimited"},
            429,
            **{"Retry-After": str(max(1, math.ceil(retry_after)))},
        )

    def fault_response(self, decision: Decision) -> Response:
        if decision.kind == "rate_limit":
            return self._ratelimited(decision.retry_after)
        headers = {"Retry-After": str(max(1, math.ceil(decision.retry_after)))}
        error = "service_unavailable" if decision.kind == "outage" else "internal_error"
        return self.reply(
            {"ok": False, "error": error},
            decision.status,
            **(headers if decision.kind == "outage" else {}),
        )

    def not_found(self, request: Request, status: int) -> Response:
        method = request.url.path.removeprefix("/api/")
        return self.reply({"ok": False, "error": "unknown_method", "req_method": method}, 404)

    # -- methods -----------------------------------------------------------------------

    def _auth_test(self, call: Call, args: dict[str, Any]) -> Response:
        return self.reply(
            {
                "ok": True,
                "url": "https://sandbox.slack.com/",
                "team": TEAM,
                "user": "interlock",
                "team_id": TEAM_ID,
                "user_id": BOT_USER,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        )

    def _channel(self, ref: Any) -> dict[str, Any]:
        name = str(ref or "").lstrip("#")
        for channel in self.state["channels"].values():
            if channel["id"] == name or channel["name"] == name:
                if channel["is_private"] and not channel["is_member"]:
                    break  # a private channel the bot is not in is invisible to it
                return channel
        raise _Fail("channel_not_found")

    def _post_message(self, call: Call, args: dict[str, Any]) -> Response:
        if call.method != "POST":
            raise _Fail("invalid_arguments")
        channel = self._channel(args.get("channel"))
        text, blocks = args.get("text"), args.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = orjson.loads(blocks)
            except orjson.JSONDecodeError:
                raise _Fail("invalid_blocks_format") from None
        if blocks is not None and not isinstance(blocks, list):
            raise _Fail("invalid_blocks_format")
        if not text and not blocks and not args.get("attachments"):
            raise _Fail("no_text")
        if text and len(str(text)) > 40000:
            raise _Fail("msg_too_long")
        if channel["is_archived"]:
            raise _Fail("is_archived")
        if not channel["is_member"]:
            raise _Fail("not_in_channel")
        bucket = self.channel_buckets.setdefault(channel["id"], LeakyBucket(self.post_burst, 1.0))
        allowed, _ = bucket.take(self.clock())
        if not allowed:
            return self._ratelimited(1.0)
        ts = f"{int(self.clock())}.{len(self.state['messages']) + 1:06d}"
        message: dict[str, Any] = {
            "user": BOT_USER,
            "type": "message",
            "ts": ts,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "text": text or "",
            "team": TEAM_ID,
            "bot_profile": {
                "id": BOT_ID,
                "app_id": APP_ID,
                "name": "interlock",
                "deleted": False,
                "team_id": TEAM_ID,
            },
        }
        if blocks:
            message["blocks"] = blocks
        if args.get("thread_ts"):
            message["thread_ts"] = str(args["thread_ts"])
        self.state["messages"][ts] = {**message, "channel": channel["id"]}
        return self.reply({"ok": True, "channel": channel["id"], "ts": ts, "message": message})

    def _conversations(self, call: Call, args: dict[str, Any]) -> Response:
        try:
            limit = int(args.get("limit") or 100)
        except ValueError:
            raise _Fail("invalid_limit") from None
        types = str(args.get("types") or "public_channel").split(",")
        exclude_archived = str(args.get("exclude_archived", "false")).lower() in ("true", "1")
        visible = [
            c
            for c in self.state["channels"].values()
            if (("private_channel" in types) if c["is_private"] else ("public_channel" in types))
            and (c["is_member"] or not c["is_private"])
            and not (exclude_archived and c["is_archived"])
        ]
        start = 0
        cursor = str(args.get("cursor") or "")
        if cursor:
            try:
                after = base64.b64decode(cursor, validate=True).decode().removeprefix("next:")
                start = next(i for i, c in enumerate(visible) if c["id"] == after)
            except (binascii.Error, UnicodeDecodeError, StopIteration):
                raise _Fail("invalid_cursor") from None
        chunk = visible[start : start + max(1, min(limit, 1000))]
        rest = visible[start + len(chunk) :]
        next_cursor = base64.b64encode(f"next:{rest[0]['id']}".encode()).decode() if rest else ""
        return self.reply(
            {"ok": True, "channels": chunk, "response_metadata": {"next_cursor": next_cursor}}
        )

    def _oauth(self, call: Call) -> Response:
        fields = dict(parse_qsl(call.body.decode(errors="replace"), keep_blank_values=True))
        scheme, _, basic = call.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                cid, _, secret = base64.b64decode(basic).decode().partition(":")
                fields.setdefault("client_id", cid)
                fields.setdefault("client_secret", secret)
            except (binascii.Error, UnicodeDecodeError):
                pass
        try:
            grant = token_request(self.issuer, fields, CLIENT_ID, CLIENT_SECRET)
        except OAuthError as exc:
            return self.reply({"ok": False, "error": exc.error})
        return self.reply(
            {
                "ok": True,
                "access_token": grant.access_token,
                "token_type": "bot",
                "scope": grant.scope,
                "bot_user_id": BOT_USER,
                "app_id": APP_ID,
                "team": {"id": TEAM_ID, "name": TEAM},
                "expires_in": grant.expires_in,
                "refresh_token": grant.refresh_token,
            }
        )

    def webhook(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        url: str = "",
        timestamp: int | None = None,
        secret: str | None = None,
        **options: Any,
    ) -> SignedWebhook:
        """An Events API ``event_callback`` with ``X-Slack-Signature`` (v0)."""
        ts = int(time.time()) if timestamp is None else timestamp
        event = {"type": event_type, "event_ts": f"{ts}.000100", **dict(data or {})}
        body = orjson.dumps(
            {
                "token": "deprecated-verification-token",
                "team_id": TEAM_ID,
                "api_app_id": APP_ID,
                "event": event,
                "type": "event_callback",
                "event_id": self.random_id("Ev", 10),
                "event_time": ts,
                "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER, "is_bot": True}],
            }
        )
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": slack_signature(body, secret or SIGNING_SECRET, ts),
        }
        return SignedWebhook(body, headers)


class _Fail(Exception):
    """A Slack API error: HTTP 200 with ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra
