"""Zendesk tickets and their comments.

A ticket is created with its first comment (the description) and a requester
given by id or as ``{"name", "email"}`` (found or created); an update may add a
comment; a closed ticket refuses updates with 422.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from interlock.sandbox.simulator import Call, json_response
from interlock.sandbox.zendesk_users import new_user
from interlock.sandbox.zendesk_wire import (
    Handler,
    deleter,
    envelope,
    find,
    getter,
    invalid,
    lister,
    page,
)

if TYPE_CHECKING:
    from interlock.sandbox.zendesk import ZendeskSimulator

Obj = dict[str, Any]
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("urgent", "high", "normal", "low")
TYPES = ("problem", "incident", "question", "task")


def _comment(sim: ZendeskSimulator, fields: Any, author: int, ticket: Obj) -> Obj:
    text = str(fields.get("body") or fields.get("html_body") or "")
    ident = sim.new_id()
    comment: Obj = {
        "id": ident,
        "type": "Comment",
        "author_id": fields.get("author_id") or author,
        "body": text,
        "html_body": f'<div class="zd-comment" dir="auto"><p dir="auto">{html.escape(text)}</p></div>',
        "plain_body": text,
        "public": bool(fields.get("public", True)),
        "attachments": [],
        "audit_id": sim.new_id(),
        "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": sim.timestamp(),
        "metadata": {"system": {"client": "interlock-sandbox"}, "custom": {}},
    }
    sim.comments.setdefault(ticket["id"], []).append(comment)
    return comment


def _check(fields: Obj) -> None:
    for name, allowed in (("status", STATUSES), ("priority", PRIORITIES), ("type", TYPES)):
        value = fields.get(name)
        if value is not None and value not in allowed:
            raise invalid(name, f"{name.capitalize()}: is not valid")


def create_ticket(sim: ZendeskSimulator, call: Call) -> Response:
    fields = envelope(call, "ticket")
    _check(fields)
    comment = fields.get("comment") if isinstance(fields.get("comment"), dict) else None
    if not comment or not (comment.get("body") or comment.get("html_body")):
        raise invalid("description", "Description: cannot be blank", "BlankValue")
    requester_id = fields.get("requester_id")
    requester = fields.get("requester")
    if isinstance(requester, dict):
        found = sim.user_by_email(str(requester.get("email") or ""))
        requester_id = (
            found
            or new_user(
                sim,
                {
                    "name": requester.get("name") or requester.get("email"),
                    "email": requester.get("email"),
                },
            )
        )["id"]
    elif requester_id is not None:
        find(sim, "users", requester_id)
    requester_id = requester_id or sim.agent_id
    sim.next_ticket += 1
    ident, now = sim.next_ticket, sim.timestamp()
    subject = fields.get("subject")
    ticket: Obj = {
        "url": f"{sim.url}/api/v2/tickets/{ident}.json",
        "id": ident,
        "external_id": fields.get("external_id"),
        "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": now,
        "updated_at": now,
        "generated_timestamp": int(sim.clock()),
        "type": fields.get("type"),
        "subject": subject,
        "raw_subject": subject,
        "description": comment.get("body") or comment.get("html_body"),
        "priority": fields.get("priority"),
        "status": fields.get("status") or "new",
        "recipient": None,
        "requester_id": requester_id,
        "submitter_id": sim.agent_id,
        "assignee_id": fields.get("assignee_id"),
        "organization_id": fields.get("organization_id"),
        "group_id": fields.get("group_id"),
        "collaborator_ids": [],
        "follower_ids": [],
        "email_cc_ids": [],
        "forum_topic_id": None,
        "problem_id": None,
        "has_incidents": False,
        "is_public": bool(comment.get("public", True)),
        "due_at": fields.get("due_at"),
        "tags": sorted(set(fields.get("tags") or [])),
        "custom_fields": fields.get("custom_fields") or [],
        "satisfaction_rating": None,
        "sharing_agreement_ids": [],
        "custom_status_id": None,
        "fields": fields.get("custom_fields") or [],
        "followup_ids": [],
        "ticket_form_id": None,
        "brand_id": 360000000001,
        "allow_channelback": False,
        "allow_attachments": True,
        "from_messaging_channel": False,
    }
    sim.state["tickets"][ident] = ticket
    made = _comment(sim, comment, sim.agent_id, ticket)
    audit = {
        "id": made["audit_id"],
        "ticket_id": ident,
        "created_at": now,
        "author_id": sim.agent_id,
        "events": [{"id": made["id"], "type": "Comment", "body": made["body"]}],
    }
    return json_response({"ticket": ticket, "audit": audit}, 201)


def update_ticket(sim: ZendeskSimulator, call: Call) -> Response:
    ticket = find(sim, "tickets", call.params["id"])
    fields = envelope(call, "ticket")
    if ticket["status"] == "closed":
        raise invalid("status", "Status: closed prevents ticket update")
    _check(fields)
    for name in (
        "subject",
        "status",
        "priority",
        "type",
        "assignee_id",
        "group_id",
        "tags",
        "external_id",
        "due_at",
        "custom_fields",
        "organization_id",
    ):
        if name in fields:
            ticket[name] = fields[name]
    for name in ("additional_tags", "remove_tags"):
        if name in fields:
            tags = set(ticket["tags"])
            tags = (
                tags | set(fields[name]) if name == "additional_tags" else tags - set(fields[name])
            )
            ticket["tags"] = sorted(tags)
    if isinstance(fields.get("comment"), dict):
        _comment(sim, fields["comment"], sim.agent_id, ticket)
    ticket["updated_at"] = sim.timestamp()
    return json_response({"ticket": ticket, "audit": {"ticket_id": ticket["id"], "events": []}})


def list_comments(sim: ZendeskSimulator, call: Call) -> Response:
    ticket = find(sim, "tickets", call.params["id"])
    return page(sim, call, sim.comments.get(ticket["id"], []), "comments")


ROUTES: list[tuple[str, str, Handler]] = [
    ("/api/v2/tickets.json", "GET", lister("tickets")),
    ("/api/v2/tickets.json", "POST", create_ticket),
    ("/api/v2/tickets/{id}.json", "GET", getter("tickets", "ticket")),
    ("/api/v2/tickets/{id}.json", "PUT", update_ticket),
    ("/api/v2/tickets/{id}.json", "DELETE", deleter("tickets")),
    ("/api/v2/tickets/{id}/comments.json", "GET", list_comments),
]
