"""Zendesk users: create, create-or-update (by external id or email), search, update."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from interlock.sandbox.simulator import Call, json_response
from interlock.sandbox.zendesk_wire import (
    Handler,
    deleter,
    envelope,
    find,
    getter,
    invalid,
    lister,
)

if TYPE_CHECKING:
    from interlock.sandbox.zendesk import ZendeskSimulator

Obj = dict[str, Any]
ROLES = ("end-user", "agent", "admin")


def new_user(sim: ZendeskSimulator, fields: Obj) -> Obj:
    name, email = fields.get("name"), fields.get("email")
    if not name:
        raise invalid("name", "Name: cannot be blank", "BlankValue")
    if email is not None and ("@" not in str(email) or " " in str(email)):
        raise invalid("email", f"Email: {email} is not properly formatted")
    if email and sim.user_by_email(str(email)) is not None:
        raise invalid(
            "email", f"Email: {email} is already being used by another user", "DuplicateValue"
        )
    role = fields.get("role") or "end-user"
    if role not in ROLES:
        raise invalid("role", "Role: is not valid")
    ident, now = sim.new_id(), sim.timestamp()
    user: Obj = {
        "id": ident,
        "url": f"{sim.url}/api/v2/users/{ident}.json",
        "name": name,
        "email": email,
        "created_at": now,
        "updated_at": now,
        "time_zone": "UTC",
        "iana_time_zone": "Etc/UTC",
        "phone": fields.get("phone"),
        "locale": "en-US",
        "locale_id": 1,
        "organization_id": fields.get("organization_id"),
        "role": role,
        "verified": True,
        "external_id": fields.get("external_id"),
        "tags": fields.get("tags") or [],
        "active": True,
        "suspended": False,
        "user_fields": fields.get("user_fields") or {},
        "notes": fields.get("notes"),
        "details": fields.get("details"),
    }
    sim.state["users"][ident] = user
    return user


def _update_user(user: Obj, fields: Obj, sim: ZendeskSimulator) -> Obj:
    for name in (
        "name",
        "email",
        "phone",
        "role",
        "external_id",
        "tags",
        "notes",
        "details",
        "organization_id",
        "user_fields",
        "suspended",
    ):
        if name in fields:
            user[name] = fields[name]
    user["updated_at"] = sim.timestamp()
    return user


def create_user(sim: ZendeskSimulator, call: Call) -> Response:
    return json_response({"user": new_user(sim, envelope(call, "user"))}, 201)


def create_or_update_user(sim: ZendeskSimulator, call: Call) -> Response:
    fields = envelope(call, "user")
    existing = None
    if fields.get("external_id"):
        existing = next(
            (u for u in sim.state["users"].values() if u["external_id"] == fields["external_id"]),
            None,
        )
    if existing is None and fields.get("email"):
        existing = sim.user_by_email(str(fields["email"]))
    if existing is None:
        return json_response({"user": new_user(sim, fields)}, 201)
    return json_response({"user": _update_user(existing, fields, sim)}, 200)


def update_user(sim: ZendeskSimulator, call: Call) -> Response:
    user = find(sim, "users", call.params["id"])
    return json_response({"user": _update_user(user, envelope(call, "user"), sim)})


def search_users(sim: ZendeskSimulator, call: Call) -> Response:
    query = (call.query.get("query") or "").removeprefix("email:").lower()
    external = call.query.get("external_id")
    found = [
        u
        for u in sim.state["users"].values()
        if (external and u["external_id"] == external)
        or (query and (query in (u["email"] or "").lower() or query in u["name"].lower()))
    ]
    return json_response(
        {"users": found, "next_page": None, "previous_page": None, "count": len(found)}
    )


def me(sim: ZendeskSimulator, call: Call) -> Response:
    return json_response({"user": sim.state["users"][sim.agent_id]})


ROUTES: list[tuple[str, str, Handler]] = [
    ("/api/v2/users.json", "GET", lister("users")),
    ("/api/v2/users.json", "POST", create_user),
    ("/api/v2/users/me.json", "GET", me),
    ("/api/v2/users/search.json", "GET", search_users),
    ("/api/v2/users/create_or_update.json", "POST", create_or_update_user),
    ("/api/v2/users/{id}.json", "GET", getter("users", "user")),
    ("/api/v2/users/{id}.json", "PUT", update_user),
    ("/api/v2/users/{id}.json", "DELETE", deleter("users")),
]
