"""HubSpot CRM v3 objects (contacts, companies, deals, notes) and v4 associations.

Objects are ``{"id", "properties", "createdAt", "updatedAt", "archived"}`` with
numeric-string ids; properties are validated against each type's schema
(unknown names, enumeration options, numbers, emails) the way HubSpot reports
them: a 400 ``VALIDATION_ERROR`` whose message lists the invalid properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

TYPES = {
    "contacts": "contacts",
    "contact": "contacts",
    "0-1": "contacts",
    "companies": "companies",
    "company": "companies",
    "0-2": "companies",
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
    "notes": "notes",
    "note": "notes",
    "0-46": "notes",
}
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal", "notes": "note"}
DEFAULT_PROPERTIES = {
    "contacts": (
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    "notes": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}
_WRITABLE = {
    "contacts": (
        "email",
        "firstname",
        "lastname",
        "phone",
        "company",
        "website",
        "jobtitle",
        "lifecyclestage",
        "hs_lead_status",
        "city",
        "country",
        "hubspot_owner_id",
    ),
    "companies": (
        "name",
        "domain",
        "industry",
        "phone",
        "city",
        "state",
        "country",
        "numberofemployees",
        "annualrevenue",
        "lifecyclestage",
        "hubspot_owner_id",
    ),
    "deals": (
        "dealname",
        "amount",
        "dealstage",
        "pipeline",
        "closedate",
        "hubspot_owner_id",
        "dealtype",
        "description",
    ),
    "notes": ("hs_note_body", "hs_timestamp", "hubspot_owner_id", "hs_attachment_ids"),
}
ENUMS = {
    "dealstage": (
        "appointmentscheduled",
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
        "contractsent",
        "closedwon",
        "closedlost",
    ),
    "lifecyclestage": (
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ),
    "pipeline": ("default",),
}
NUMBERS = ("amount", "numberofemployees", "annualrevenue")
# HUBSPOT_DEFINED default association type ids, from -> to.
ASSOCIATION_TYPES = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
    ("contacts", "notes"): 201,
    ("notes", "contacts"): 202,
    ("companies", "notes"): 189,
    ("notes", "companies"): 190,
    ("deals", "notes"): 213,
    ("notes", "deals"): 214,
}


class CrmError(Exception):
    """A HubSpot error answer: status, category and message (plus optional context)."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra


class Schema:
    """The properties each object type accepts, and which are unique (usable as idProperty)."""

    def __init__(self) -> None:
        self.writable = {t: set(props) for t, props in _WRITABLE.items()}
        self.unique = {t: {"hs_object_id"} for t in _WRITABLE}
        self.unique["contacts"].add("email")

    def define(self, object_type: str, name: str, *, unique: bool = False) -> None:
        self.writable[object_type].add(name)
        if unique:
            self.unique[object_type].add(name)

    def validate(self, object_type: str, properties: Any) -> dict[str, str]:
        if not isinstance(properties, Mapping):
            raise CrmError(
                400, "VALIDATION_ERROR", "Invalid input JSON: properties must be an object"
            )
        problems: list[dict[str, Any]] = []
        clean: dict[str, str] = {}
        for name, value in properties.items():
            text = (
                ""
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
            if name not in self.writable[object_type]:
                problems.append(
                    _problem(
                        name, text, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
                    )
                )
            elif name in ENUMS and text and text not in ENUMS[name]:
                problems.append(
                    _problem(
                        name,
                        text,
                        "INVALID_OPTION",
                        f"{text} was not one of the allowed options: {list(ENUMS[name])}",
                    )
                )
            elif name in NUMBERS and text and not _is_number(text):
                problems.append(
                    _problem(name, text, "INVALID_FLOAT", f"{text} is not a valid number")
                )
            elif name == "email" and text and ("@" not in text or " " in text):
                problems.append(
                    _problem(name, text, "INVALID_EMAIL", f"Email address {text} is invalid")
                )
            else:
                clean[name] = text
        if problems:
            raise CrmError(
                400,
                "VALIDATION_ERROR",
                "Property values were not valid: " + orjson.dumps(problems).decode(),
            )
        return clean


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _problem(name: str, value: str, error: str, message: str) -> dict[str, Any]:
    return {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    }


def object_type(raw: str) -> str:
    found = TYPES.get(raw.lower())
    if found is None:
        raise CrmError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {raw}")
    return found


def render(obj: Mapping[str, Any], object_type: str, wanted: list[str] | None) -> dict[str, Any]:
    """An object as the API returns it, with the requested (or default) properties."""
    names = wanted if wanted else DEFAULT_PROPERTIES[object_type]
    props = obj["properties"]
    if wanted:
        shown = {name: props.get(name) for name in names}
    else:
        shown = {name: props[name] for name in names if name in props}
    return {
        "id": obj["id"],
        "properties": shown,
        "createdAt": obj["createdAt"],
        "updatedAt": obj["updatedAt"],
        "archived": obj["archived"],
    }


def matches(props: Mapping[str, Any], group: list[Mapping[str, Any]]) -> bool:
    """Whether an object's properties pass every filter of one filter group."""
    for f in group:
        name, op = f.get("propertyName", ""), f.get("operator", "EQ")
        have = props.get(name)
        want = f.get("value")
        if op == "HAS_PROPERTY":
            ok = have not in (None, "")
        elif op == "NOT_HAS_PROPERTY":
            ok = have in (None, "")
        elif op == "IN":
            ok = have is not None and have.lower() in [str(v).lower() for v in f.get("values", [])]
        elif op == "NOT_IN":
            ok = have is None or have.lower() not in [str(v).lower() for v in f.get("values", [])]
        elif op == "CONTAINS_TOKEN":
            ok = have is not None and str(want).strip("*").lower() in have.lower()
        elif op in ("EQ", "NEQ"):
            same = have is not None and have.lower() == str(want).lower()
            ok = same if op == "EQ" else not same
        elif op in ("LT", "LTE", "GT", "GTE"):
            ok = have is not None and _compare(have, str(want), op)
        else:
            raise CrmError(400, "VALIDATION_ERROR", f"Unknown filter operator: {op}")
        if not ok:
            return False
    return True


def _compare(have: str, want: str, op: str) -> bool:
    a: Any = have
    b: Any = want
    if _is_number(have) and _is_number(want):
        a, b = float(have), float(want)
    return bool({"LT": a < b, "LTE": a <= b, "GT": a > b, "GTE": a >= b}[op])
