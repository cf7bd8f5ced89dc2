"""The HubSpot connector: contacts, companies, deals, notes and associations in CRM v3.

::

    crm = app.connector(HubSpot(access_token="hubspot-token", deal_key="order_id"))

    @app.flow(OrderShipped, owner="revops@acme.test")
    async def note_in_crm(event: OrderShipped, ctx: Context) -> None:
        crm = ctx.connector(HubSpot)
        deal = await ctx.step("find-deal", crm.find_deal, event.order_id)  # a dict, or None
        if deal is not None:
            await ctx.step("add-note", crm.add_note, deal["id"], f"Shipped via {event.carrier}")

See :class:`HubSpot` for every operation, and :mod:`interlock.connectors.hubspot_wire`
for the objects it returns.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from interlock.connectors.auth import Auth, BearerToken
from interlock.connectors.base import Probe
from interlock.connectors.hubspot_wire import (
    Company,
    Contact,
    Deal,
    HubSpotApi,
    HubSpotObject,
    Note,
)
from interlock.connectors.limiter import Rate
from interlock.connectors.oauth import OAuth2RefreshToken
from interlock.errors import ConfigurationError

ObjectType = Literal["contacts", "companies", "deals", "notes"]


class HubSpot(HubSpotApi):
    """HubSpot's CRM API (``https://api.hubapi.com``) with a private app's token
    (``access_token`` names the secret) or OAuth refresh tokens (:meth:`oauth`).

    ``deal_key`` names a unique deal property (e.g. ``order_id``, defined in HubSpot
    with "unique values") that :meth:`find_deal` and :meth:`upsert_deal` use. HubSpot
    has no idempotency keys: creates that must happen once go through upserts by a
    unique property (``email`` for contacts, ``deal_key`` for deals), which a retry
    repeats harmlessly. Operations:

    - contacts: :meth:`get_contact`, :meth:`find_contact` (by email, ``GET
      /crm/v3/objects/contacts/{email}?idProperty=email``), :meth:`create_contact`,
      :meth:`update_contact`, :meth:`upsert_contact` (``POST …/contacts/batch/upsert``)
    - companies: :meth:`get_company`, :meth:`find_company` (by domain, search),
      :meth:`create_company`, :meth:`update_company`
    - deals: :meth:`get_deal`, :meth:`find_deal`, :meth:`search_deals` (``POST
      …/deals/search``), :meth:`create_deal` (with associations), :meth:`update_deal`,
      :meth:`upsert_deal`
    - notes: :meth:`add_note` (``POST /crm/v3/objects/notes``, associated to its object)
    - associations (v4): :meth:`associate` (``PUT /crm/v4/objects/{from}/{id}/
      associations/default/{to}/{toId}``), :meth:`associations`, :meth:`dissociate`
    - probe: ``GET /crm/v3/objects/contacts?limit=1``

    Calls keep under ``rate`` (95 per 10 s by default: set your tier's) and pause when
    ``X-HubSpot-RateLimit-Remaining`` (or the daily quota) runs out; searches have their
    own bucket (4 a second). Errors keep HubSpot's category and message:
    ``VALIDATION_ERROR`` and ``CONFLICT`` are permanent, 401/403 a ``PermissionDenied``
    (naming a missing scope), 404 a ``ResourceNotFound``, 429 a ``RateLimited`` (an
    hour for the daily quota); 5xx, 423 (locked), timeouts and resets are retried. In
    dry-run, searches still go through.
    """

    def __init__(
        self,
        name: str = "hubspot",
        *,
        access_token: str = "hubspot-token",
        deal_key: str | None = None,
        base_url: str = "https://api.hubapi.com",
        **options: Any,
    ) -> None:
        options.setdefault("auth", BearerToken(secret=access_token))
        options.setdefault("rate", Rate(95, per="10s"))
        probe = Probe("contacts", "/crm/v3/objects/contacts", params={"limit": "1"})
        options.setdefault("probes", (probe,))
        super().__init__(name, base_url=base_url, **options)
        self.deal_key = deal_key

    @staticmethod
    def oauth(
        *,
        client_id: str,
        client_secret: str = "hubspot-client-secret",
        refresh_token: str = "hubspot-refresh-token",
        scope: str | None = None,
    ) -> Auth:
        """OAuth refresh tokens at ``/oauth/v1/token`` (30-minute access tokens)."""
        return OAuth2RefreshToken(
            token_url="/oauth/v1/token",
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            scope=scope,
        )

    # -- contacts ----------------------------------------------------------------------
    async def get_contact(
        self, contact_id: str, *, properties: Sequence[str] | None = None
    ) -> Contact:
        return await self._get(
            "contacts", contact_id, Contact, properties=properties, operation="get_contact"
        )

    async def find_contact(
        self, email: str, *, properties: Sequence[str] | None = None
    ) -> Contact | None:
        return await self._find(
            "contacts", email, Contact, by="email", properties=properties, operation="find_contact"
        )

    async def create_contact(
        self, email: str, properties: Mapping[str, Any] | None = None
    ) -> Contact:
        """A new contact (a second with the same email is a permanent ``CONFLICT``)."""
        props = {"email": email, **(properties or {})}
        return await self._create("contacts", Contact, props, operation="create_contact")

    async def update_contact(self, contact_id: str, properties: Mapping[str, Any]) -> Contact:
        return await self._update(
            "contacts", contact_id, Contact, properties, operation="update_contact"
        )

    async def upsert_contact(
        self, email: str, properties: Mapping[str, Any] | None = None
    ) -> Contact:
        """The contact with ``email``, updated, or created (``contact.new`` says which)."""
        return await self._upsert(
            "contacts", Contact, "email", email, properties or {}, "upsert_contact"
        )

    # -- companies ---------------------------------------------------------------------
    async def get_company(
        self, company_id: str, *, properties: Sequence[str] | None = None
    ) -> Company:
        return await self._get(
            "companies", company_id, Company, properties=properties, operation="get_company"
        )

    async def find_company(self, domain: str) -> Company | None:
        """The first company with this domain (HubSpot's search, so seconds behind writes)."""
        found = await self._search(
            "companies",
            Company,
            {"domain": domain},
            properties=None,
            limit=1,
            operation="find_company",
        )
        return found[0] if found else None

    async def create_company(
        self, name: str, *, domain: str | None = None, properties: Mapping[str, Any] | None = None
    ) -> Company:
        props = {"name": name, **({"domain": domain} if domain else {}), **(properties or {})}
        return await self._create("companies", Company, props, operation="create_company")

    async def update_company(self, company_id: str, properties: Mapping[str, Any]) -> Company:
        return await self._update(
            "companies", company_id, Company, properties, operation="update_company"
        )

    # -- deals -------------------------------------------------------------------------
    def _deal_key(self, by: str | None) -> str:
        key = by or self.deal_key
        if not key:
            raise ConfigurationError(
                f"{self.name}: say which unique deal property to look deals up by: "
                "HubSpot(deal_key='order_id') or by='order_id'"
            )
        return key

    async def get_deal(self, deal_id: str, *, properties: Sequence[str] | None = None) -> Deal:
        return await self._get("deals", deal_id, Deal, properties=properties, operation="get_deal")

    async def find_deal(
        self, value: str, *, by: str | None = None, properties: Sequence[str] | None = None
    ) -> Deal | None:
        """The deal whose unique property ``by`` (default ``deal_key``) is ``value``, or
        None. Read by id property, so never behind a write (unlike search)."""
        key = self._deal_key(by)
        return await self._find(
            "deals", value, Deal, by=key, properties=properties, operation="find_deal"
        )

    async def search_deals(
        self,
        equals: Mapping[str, Any],
        *,
        properties: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Deal]:
        """Deals whose properties equal ``equals`` (e.g. ``{"dealstage": "closedwon"}``)."""
        return await self._search(
            "deals", Deal, equals, properties=properties, limit=limit, operation="search_deals"
        )

    async def create_deal(
        self,
        name: str,
        *,
        stage: str | None = None,
        amount: Any = None,
        pipeline: str = "default",
        properties: Mapping[str, Any] | None = None,
        contact_ids: Sequence[str] = (),
        company_ids: Sequence[str] = (),
    ) -> Deal:
        """A new deal, associated with contacts and companies."""
        props: dict[str, Any] = {"dealname": name, "pipeline": pipeline, **(properties or {})}
        if stage is not None:
            props["dealstage"] = stage
        if amount is not None:
            props["amount"] = amount
        links = [("contacts", c) for c in contact_ids] + [("companies", c) for c in company_ids]
        return await self._create("deals", Deal, props, associations=links, operation="create_deal")

    async def update_deal(self, deal_id: str, properties: Mapping[str, Any]) -> Deal:
        return await self._update("deals", deal_id, Deal, properties, operation="update_deal")

    async def upsert_deal(
        self, value: str, properties: Mapping[str, Any], *, by: str | None = None
    ) -> Deal:
        """The deal whose unique property ``by`` (default ``deal_key``) is ``value``,
        updated, or created with ``properties`` (``deal.new`` says which)."""
        key = self._deal_key(by)
        return await self._upsert("deals", Deal, key, value, properties, "upsert_deal")

    # -- notes and associations ------------------------------------------------------
    async def add_note(
        self,
        object_id: str,
        body: str,
        *,
        object_type: Literal["deals", "contacts", "companies"] = "deals",
        timestamp: float | None = None,
    ) -> Note:
        """A note on a deal (or contact, or company), stamped now unless ``timestamp``."""
        stamp = int((time.time() if timestamp is None else timestamp) * 1000)
        props = {"hs_note_body": body, "hs_timestamp": stamp}
        return await self._create(
            "notes", Note, props, associations=[(object_type, object_id)], operation="add_note"
        )

    async def associate(
        self, from_type: ObjectType, from_id: str, to_type: ObjectType, to_id: str
    ) -> None:
        """Associate two objects with HubSpot's default association type."""
        path = f"/crm/v4/objects/{from_type}/{from_id}/associations/default/{to_type}/{to_id}"
        await self.send("PUT", path, operation="associate")

    async def dissociate(
        self, from_type: ObjectType, from_id: str, to_type: ObjectType, to_id: str
    ) -> None:
        path = f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}"
        await self.send("DELETE", path, operation="dissociate")

    async def associations(
        self, from_type: ObjectType, from_id: str, to_type: ObjectType
    ) -> list[str]:
        """The ids of the ``to_type`` objects associated with this one."""
        path = f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}"
        response = await self.send("GET", path, operation="associations")
        results = self.body(response, operation="associations").get("results") or []
        return [str(r["toObjectId"]) for r in results if isinstance(r, dict) and "toObjectId" in r]


__all__ = [
    "Company",
    "Contact",
    "Deal",
    "HubSpot",
    "HubSpotObject",
    "Note",
]
