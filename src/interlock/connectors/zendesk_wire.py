"""Zendesk Support's wire format for the Zendesk connector: objects, errors, limits, dry-run.

- Objects are pydantic models of what flows use (:class:`Ticket`, :class:`Comment`,
  :class:`User`); ids are integers, bodies enveloped (``{"ticket": {...}}``).
- Errors are ``{"error": "RecordInvalid", "description", "details": {field: [{...}]}}``,
  ``{"error": "RecordNotFound", …}``, ``{"error": "Couldn't authenticate you"}`` or
  OAuth's ``{"error": "invalid_token", "error_description"}``.
- Limits come in ``X-Rate-Limit`` / ``X-Rate-Limit-Remaining`` per minute; a 429 carries
  ``Retry-After``.
- Dry-run answers are enveloped objects with made-up ids, as Zendesk would create them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import Field

from interlock.connectors.classify import ErrorDetails, generic_details, json_body
from interlock.connectors.signals import RateSignal
from interlock.connectors.vendor import VendorModel, clip, dry_answer, dry_body, dry_digest

WINDOW = 60.0  # Zendesk counts requests per minute


class ZendeskObject(VendorModel):
    id: int


class User(ZendeskObject):
    name: str | None = None
    email: str | None = None
    role: str | None = None  # end-user, agent, admin
    external_id: str | None = None
    organization_id: int | None = None
    active: bool = True
    suspended: bool = False
    tags: list[str] = Field(default_factory=list)


class Comment(ZendeskObject):
    body: str | None = None
    author_id: int | None = None
    public: bool = True
    created_at: datetime | None = None


class Ticket(ZendeskObject):
    subject: str | None = None
    description: str | None = None
    status: str | None = None  # new, open, pending, hold, solved, closed
    priority: str | None = None  # urgent, high, normal, low
    type: str | None = None  # problem, incident, question, task
    requester_id: int | None = None
    assignee_id: int | None = None
    group_id: int | None = None
    organization_id: int | None = None
    external_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    custom_fields: list[dict[str, Any]] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


def error_details(response: httpx.Response) -> ErrorDetails:
    """Zendesk's error name and description, with each invalid field's message."""
    body = json_body(response)
    if not isinstance(body, dict):
        return generic_details(response)
    error = body.get("error")
    if isinstance(error, dict):  # {"error": {"title", "message"}} (403s)
        return ErrorDetails(
            _text(error.get("title")), clip(str(error.get("message") or "")) or None
        )
    if not isinstance(error, str):
        return generic_details(response)
    description = body.get("description") or body.get("error_description")
    if " " in error and description is None:  # {"error": "Couldn't authenticate you"}
        return ErrorDetails(None, clip(error))
    said = [str(description)] if description else []
    details = body.get("details")
    if isinstance(details, dict):
        for problems in details.values():
            for problem in problems if isinstance(problems, list) else [problems]:
                text = problem.get("description") if isinstance(problem, dict) else problem
                if text:
                    said.append(str(text))
    message = said[0] if said else ""
    if len(said) > 1:
        message += ": " + "; ".join(said[1:])
    return ErrorDetails(error, clip(message) or None)


def _text(value: Any) -> str | None:
    return str(value) if value else None


def rate_signal(response: httpx.Response) -> RateSignal:
    """``X-Rate-Limit(-Remaining)`` and ``Retry-After``; the window resets within a minute."""
    signal = RateSignal.from_headers(response.headers)
    if signal.remaining is not None and signal.reset_after is None:
        return RateSignal(signal.limit, signal.remaining, WINDOW, signal.retry_after)
    return signal


# -- dry-run ----------------------------------------------------------------------------
def simulate(request: httpx.Request, idempotency_key: str | None) -> httpx.Response:
    """What Zendesk would answer to a ticket or user create or update not sent."""
    parts = request.url.path.removesuffix(".json").split("/api/v2/", 1)[-1].split("/")
    if request.method == "DELETE":
        return dry_answer(request, 204, None)
    now = datetime.fromtimestamp(int(time.time()), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    made = 10**9 + int(dry_digest(request, idempotency_key)[:7], 16)
    name = "ticket" if parts[0] == "tickets" else "user"
    fields: dict[str, Any] = dict(dry_body(request).get(name) or {})
    comment = fields.pop("comment", None)
    status = 201
    if len(parts) > 1 and parts[1].isdigit():
        obj = {"id": int(parts[1]), **fields, "updated_at": now}
        status = 200
    elif name == "ticket":
        fields.pop("requester", None)  # Zendesk finds or creates the user: its id is unknown
        obj = {
            "id": made,
            "status": "new",
            **fields,
            "description": (comment or {}).get("body"),
            "requester_id": fields.get("requester_id"),
            "created_at": now,
            "updated_at": now,
        }
    else:
        obj = {"id": made, "role": "end-user", "active": True, **fields, "created_at": now}
        status = 201 if parts[-1] != "create_or_update" else 200
    answer: dict[str, Any] = {name: obj}
    if name == "ticket":
        events = [{"type": "Comment", "body": comment.get("body")}] if comment else []
        answer["audit"] = {"ticket_id": obj["id"], "created_at": now, "events": events}
    return dry_answer(request, status, answer)
