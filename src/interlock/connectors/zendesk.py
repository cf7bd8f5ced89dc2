"""The Zendesk connector: tickets, comments and users in the Zendesk Support API.

::

    desk = app.connector(Zendesk(subdomain="acme", email="agent@acme.test",
                                 api_token="zendesk-api-token"))

    @app.flow(PaymentFailed, owner="support@acme.test")
    async def open_ticket(event: PaymentFailed, ctx: Context) -> None:
        desk = ctx.connector(Zendesk)
        await ctx.step("ticket", desk.create_ticket, "Payment failed", "Card declined",
                       requester_email=event.email)        # one ticket, however often retried

See :class:`Zendesk` for every operation, and :mod:`interlock.connectors.zendesk_wire`
for the objects it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx

from interlock.connectors.auth import Auth, BasicAuth
from interlock.connectors.base import Probe
from interlock.connectors.classify import ErrorDetails, VendorError
from interlock.connectors.limiter import Rate
from interlock.connectors.oauth import OAuth2RefreshToken
from interlock.connectors.signals import RateSignal
from interlock.connectors.vendor import VendorConnector, present
from interlock.connectors.zendesk_wire import (
    Comment,
    Ticket,
    User,
    error_details,
    rate_signal,
    simulate,
)
from interlock.errors import ConfigurationError

Status = Literal["new", "open", "pending", "hold", "solved", "closed"]
Priority = Literal["urgent", "high", "normal", "low"]
TicketType = Literal["problem", "incident", "question", "task"]


class Zendesk(VendorConnector):
    """Zendesk Support's API (``https://{subdomain}.zendesk.com/api/v2``) as an agent with
    an API token (``email`` and the ``api_token`` secret's name) or OAuth (:meth:`oauth`).

    Ticket creation carries an ``Idempotency-Key`` (the step's inside a flow, or
    ``idempotency_key=``): Zendesk answers a repeat with the first ticket, so a retry
    after a lost answer does not open a second one. Operations:

    - tickets: :meth:`create_ticket` (``POST /api/v2/tickets.json``), :meth:`get_ticket`,
      :meth:`update_ticket` (``PUT /api/v2/tickets/{id}.json``), :meth:`add_comment`
      (an update with a comment), :meth:`comments` (``GET …/tickets/{id}/comments.json``,
      cursor pages), :meth:`delete_ticket`
    - users: :meth:`me` (``GET /api/v2/users/me.json``), :meth:`get_user`,
      :meth:`find_user` (``GET /api/v2/users/search.json?query=email:…``),
      :meth:`create_user`, :meth:`upsert_user` (``POST /api/v2/users/create_or_update.json``,
      by email or external id)
    - probe: ``GET /api/v2/users/me.json``

    Calls keep under ``rate`` (190 a minute by default: set your plan's) and pause when
    ``X-Rate-Limit-Remaining`` reaches zero. Errors keep Zendesk's error and
    description (``RecordInvalid: Record validation errors; Priority: is not valid``):
    400 and 422 are permanent, 401/403 a ``PermissionDenied``, 404 a
    ``ResourceNotFound``, 429 a ``RateLimited`` after ``Retry-After``; 5xx, 409 (a
    concurrent update), timeouts and resets are retried.
    """

    def __init__(
        self,
        name: str = "zendesk",
        *,
        subdomain: str,
        email: str | None = None,
        api_token: str = "zendesk-api-token",
        base_url: str | None = None,
        **options: Any,
    ) -> None:
        if "auth" not in options:
            if not email:
                raise ConfigurationError(
                    f"connector {name}: API token auth needs the agent's email "
                    "(Zendesk(email='agent@acme.test', ...)), or pass auth=Zendesk.oauth(...)"
                )
            options["auth"] = BasicAuth(username=f"{email}/token", secret=api_token)
        options.setdefault("rate", Rate(190, per="1m", burst=10))
        options.setdefault("probes", (Probe("me", "/api/v2/users/me.json"),))
        handle = subdomain.removesuffix(".zendesk.com")
        super().__init__(name, base_url=base_url or f"https://{handle}.zendesk.com", **options)
        self.subdomain = handle
        self.page_size = 100  # comments per cursor page (Zendesk's maximum)

    @staticmethod
    def oauth(
        *,
        client_id: str,
        client_secret: str = "zendesk-client-secret",
        refresh_token: str = "zendesk-refresh-token",
        scope: str | None = "read write",
    ) -> Auth:
        """OAuth bearer tokens from ``/oauth/tokens``, refreshed (and rotated) from the
        ``refresh_token`` secret."""
        return OAuth2RefreshToken(
            token_url="/oauth/tokens",
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            scope=scope,
        )

    # -- hooks -----------------------------------------------------------------------
    def error_details(self, response: httpx.Response) -> ErrorDetails:
        return error_details(response)

    def vendor_error(self, response: httpx.Response) -> VendorError | None:
        error = super().vendor_error(response)
        if error is not None and response.status_code == 409:  # another update won: retry
            return VendorError("retryable", error.status, error.code, error.message)
        return error

    def rate_signal(self, response: httpx.Response) -> RateSignal:
        return rate_signal(response)

    def simulate(self, request: httpx.Request, idempotency_key: str | None) -> httpx.Response:
        return simulate(request, idempotency_key)

    # -- tickets -----------------------------------------------------------------------
    async def create_ticket(
        self,
        subject: str,
        body: str,
        *,
        requester_email: str | None = None,
        requester_name: str | None = None,
        requester_id: int | None = None,
        priority: Priority | None = None,
        type: TicketType | None = None,
        status: Status | None = None,
        tags: Sequence[str] = (),
        external_id: str | None = None,
        assignee_id: int | None = None,
        group_id: int | None = None,
        custom_fields: Mapping[int, Any] | None = None,
        public: bool = True,
        idempotency_key: str | None = None,
    ) -> Ticket:
        """A ticket whose first comment is ``body``, requested by a user given by id or by
        email (found, or created with ``requester_name``)."""
        ticket: dict[str, Any] = {
            "subject": subject,
            "comment": {"body": body, "public": public},
            **present(
                priority=priority,
                type=type,
                status=status,
                external_id=external_id,
                assignee_id=assignee_id,
                group_id=group_id,
                requester_id=requester_id,
            ),
        }
        if requester_email:
            ticket["requester"] = {
                "email": requester_email,
                "name": requester_name or requester_email,
            }
        if tags:
            ticket["tags"] = list(tags)
        if custom_fields:
            ticket["custom_fields"] = [{"id": k, "value": v} for k, v in custom_fields.items()]
        return await self.fetch(
            "POST",
            "/api/v2/tickets.json",
            Ticket,
            envelope="ticket",
            operation="create_ticket",
            json={"ticket": ticket},
            idempotency_key=idempotency_key,
        )

    async def get_ticket(self, ticket_id: int) -> Ticket:
        path = f"/api/v2/tickets/{ticket_id}.json"
        return await self.fetch("GET", path, Ticket, envelope="ticket", operation="get_ticket")

    async def update_ticket(
        self,
        ticket_id: int,
        *,
        status: Status | None = None,
        priority: Priority | None = None,
        type: TicketType | None = None,
        assignee_id: int | None = None,
        group_id: int | None = None,
        tags: Sequence[str] | None = None,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        external_id: str | None = None,
        custom_fields: Mapping[int, Any] | None = None,
        comment: str | None = None,
        public: bool = True,
    ) -> Ticket:
        """Set the given fields (``None`` leaves a field alone), optionally with a comment.
        A closed ticket refuses updates (permanent ``RecordInvalid``)."""
        ticket: dict[str, Any] = present(
            status=status,
            priority=priority,
            type=type,
            assignee_id=assignee_id,
            group_id=group_id,
            external_id=external_id,
        )
        if tags is not None:
            ticket["tags"] = list(tags)
        if add_tags:
            ticket["additional_tags"] = list(add_tags)
        if remove_tags:
            ticket["remove_tags"] = list(remove_tags)
        if custom_fields:
            ticket["custom_fields"] = [{"id": k, "value": v} for k, v in custom_fields.items()]
        if comment is not None:
            ticket["comment"] = {"body": comment, "public": public}
        return await self._update(ticket_id, ticket, "update_ticket")

    async def add_comment(
        self, ticket_id: int, body: str, *, public: bool = True, author_id: int | None = None
    ) -> Ticket:
        """A public reply (or, with ``public=False``, an internal note) on a ticket."""
        comment = {"body": body, "public": public, **present(author_id=author_id)}
        return await self._update(ticket_id, {"comment": comment}, "add_comment")

    async def _update(self, ticket_id: int, ticket: Mapping[str, Any], operation: str) -> Ticket:
        path = f"/api/v2/tickets/{ticket_id}.json"
        return await self.fetch(
            "PUT", path, Ticket, envelope="ticket", operation=operation, json={"ticket": ticket}
        )

    async def comments(self, ticket_id: int, *, limit: int = 1000) -> list[Comment]:
        """A ticket's comments, oldest first, following cursor pages."""
        path = f"/api/v2/tickets/{ticket_id}/comments.json"
        query: dict[str, Any] = {"page[size]": max(1, min(self.page_size, limit))}
        found: list[Comment] = []
        while len(found) < limit:
            response = await self.send("GET", path, operation="comments", params=query)
            page = self.body(response, operation="comments")
            found.extend(self.parse_all(Comment, page.get("comments"), operation="comments"))
            meta = page.get("meta") or {}
            if not meta.get("has_more") or not meta.get("after_cursor"):
                break
            query["page[after]"] = meta["after_cursor"]
        return found[:limit]

    async def delete_ticket(self, ticket_id: int) -> None:
        await self.send("DELETE", f"/api/v2/tickets/{ticket_id}.json", operation="delete_ticket")

    # -- users -------------------------------------------------------------------------
    async def me(self) -> User:
        """The agent the connector acts as."""
        return await self.fetch(
            "GET", "/api/v2/users/me.json", User, envelope="user", operation="me"
        )

    async def get_user(self, user_id: int) -> User:
        path = f"/api/v2/users/{user_id}.json"
        return await self.fetch("GET", path, User, envelope="user", operation="get_user")

    async def find_user(self, email: str) -> User | None:
        """The user with exactly this email (case-insensitive), or None."""
        found = await self.fetch_all(
            "GET",
            "/api/v2/users/search.json",
            User,
            operation="find_user",
            envelope="users",
            params={"query": f"email:{email}"},
        )
        wanted = email.lower()
        return next((u for u in found if (u.email or "").lower() == wanted), None)

    async def create_user(
        self,
        name: str,
        *,
        email: str | None = None,
        role: Literal["end-user", "agent", "admin"] = "end-user",
        external_id: str | None = None,
        **fields: Any,
    ) -> User:
        """A new user (an email already in use is a permanent ``RecordInvalid``)."""
        user = {"name": name, "role": role, **present(email=email, external_id=external_id)}
        return await self.fetch(
            "POST",
            "/api/v2/users.json",
            User,
            envelope="user",
            operation="create_user",
            json={"user": {**user, **fields}},
        )

    async def upsert_user(
        self,
        name: str,
        *,
        email: str | None = None,
        external_id: str | None = None,
        **fields: Any,
    ) -> User:
        """The user with this ``external_id`` or ``email``, updated, or created: Zendesk's
        natural key, so a retry finds the first one."""
        if not (email or external_id):
            raise ConfigurationError("upsert_user needs an email or an external_id to match on")
        user = {"name": name, **present(email=email, external_id=external_id), **fields}
        return await self.fetch(
            "POST",
            "/api/v2/users/create_or_update.json",
            User,
            envelope="user",
            operation="upsert_user",
            json={"user": user},
        )


__all__ = [
    "Comment",
    "Ticket",
    "User",
    "Zendesk",
]
