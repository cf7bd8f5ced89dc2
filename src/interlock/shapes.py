"""Shape profiles: what the payloads of one source and event type look like.

A :class:`Profile` holds, per field path (``customer.email``, ``lines[].sku``),
the JSON types seen, how often the field was present and null, the values of
short strings while they stay few (enum-like), and first/last seen times.
:meth:`Profile.observe` is the per-payload hot path, so it does as little as it
can: one dictionary lookup and a few counter updates per field. Lists are
profiled by their first and last items (``[]`` in the path).

Profiles merge: each process keeps its own in memory and hands the store the
difference since its last flush (:meth:`Profile.delta`), which the store adds
to the stored profile (:func:`merge`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

FindingKind = Literal[
    "new_field", "vanished_field", "new_enum_value", "type_change", "nullability_change"
]
FINDING_KINDS: tuple[FindingKind, ...] = (
    "new_field",
    "vanished_field",
    "new_enum_value",
    "type_change",
    "nullability_change",
)

ENUM_CAP = 24  # distinct short strings before a field stops counting as enum-like
ENUM_MAX_LEN = 48  # longer strings are free text, not enum values
# Times (epoch seconds or milliseconds, ISO 8601 date-times) repeat within a second or a
# millisecond, so a busy source would make them look enum-like: they never are. A date
# alone (Stripe's api_version "2024-06-20") still can be.
_TIME_LIKE = re.compile(r"\d{9,}(?:\.\d+)?|\d{4}-\d\d-\d\d[T ]\d\d:\d\d.*")
# A map keyed by ids (``metadata``, ``properties``) is not a shape: past this many keys in
# one object, or this many paths in a profile, further keys are not profiled.
MAX_KEYS = 100
MAX_FIELDS = 2000
_TYPE_NAMES: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
}


@dataclass(slots=True)
class FieldShape:
    """What one field path looked like so far."""

    path: str
    types: set[str] = field(default_factory=set)  # JSON types seen (null is counted apart)
    seen: int = 0  # payloads that had the field (null included)
    nulls: int = 0
    values: set[str] | None = field(default_factory=set)  # None: not enum-like
    first_seen: float = 0.0
    last_seen: float = 0.0
    first_index: int = 0  # the profile's event number when first / last present
    last_index: int = 0
    cls: type | None = None  # the Python type of the last non-null value (the fast check)
    children: dict[str, FieldShape] | None = None  # an object's fields, by key
    items: dict[str, FieldShape] | None = None  # the fields of a list's object items
    marks: dict[str, Tally] | None = None  # drift raised on this path: detail -> its tally

    def to_json(self) -> dict[str, Any]:
        return {
            "types": sorted(self.types),
            "seen": self.seen,
            "nulls": self.nulls,
            "values": None if self.values is None else sorted(self.values),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }

    @classmethod
    def from_json(cls, path: str, data: dict[str, Any], index: int) -> FieldShape:
        values = data.get("values")
        return cls(
            path,
            types={str(t) for t in data.get("types", ())},
            seen=int(data.get("seen", 0)),
            nulls=int(data.get("nulls", 0)),
            values=None if values is None else {str(v) for v in values},
            first_seen=float(data.get("first_seen", 0.0)),
            last_seen=float(data.get("last_seen", 0.0)),
            first_index=index,
            last_index=index,
        )


@dataclass(slots=True)
class Tally:
    """How many payloads showed a raised drift finding since the last flush."""

    count: int = 0
    last_seen: float = 0.0


@dataclass(slots=True)
class Observation:
    """A drift condition met by one payload: ``kind`` at ``path`` (``detail`` names the new
    type, the new value or ``null``)."""

    kind: FindingKind
    path: str
    detail: str


class Profile:
    """The shape profile of one (source, event type)."""

    __slots__ = (
        "_found",
        "_snapshot",
        "event_type",
        "events",
        "fields",
        "first_seen",
        "hit",
        "last_seen",
        "root",
        "source",
    )

    def __init__(self, source: str, event_type: str) -> None:
        self.source = source
        self.event_type = event_type
        self.events = 0
        self.first_seen = 0.0
        self.last_seen = 0.0
        self.fields: dict[str, FieldShape] = {}  # every path, flat
        self.root: dict[str, FieldShape] = {}  # the top-level fields (a tree by children)
        self.hit = False  # the last payload showed an already raised finding
        self._snapshot: dict[str, Any] = {"events": 0, "fields": {}}
        self._found: list[Observation] | None = None  # the payload being observed's findings

    # -- the hot path -------------------------------------------------------------------
    def observe(self, payload: Any, now: float, mature: bool) -> list[Observation] | None:
        """Count ``payload`` in; with ``mature`` (the profile has a baseline), return the drift
        conditions it meets (None when there are none, the common case)."""
        self.events += 1
        if not self.first_seen:
            self.first_seen = now
        self.last_seen = now
        self.hit = False
        found: list[Observation] | None = [] if mature else None
        self._found = found
        if type(payload) is dict:
            self._walk(payload, self.root, "")
        return found or None

    def _walk(self, obj: dict[str, Any], children: dict[str, FieldShape], prefix: str) -> None:
        # Per field, the common case: one lookup, two counters, one type check.
        index = self.events
        for key, value in obj.items():
            shape = children.get(key)
            if shape is None:
                if len(children) >= MAX_KEYS or len(self.fields) >= MAX_FIELDS:
                    continue
                shape = children[key] = self._new_field(prefix + key)
            shape.seen += 1
            shape.last_index = index
            cls = type(value)
            if cls is not shape.cls and self._unusual(shape, value, cls):
                continue
            if cls is str:
                values = shape.values
                if values is not None and value not in values:
                    self._new_value(shape, value, self._found)
            elif cls is dict:
                sub = shape.children
                if sub is None:
                    sub = shape.children = {}
                self._walk(value, sub, shape.path + ".")
            elif cls is list and value:
                first = value[0]
                if type(first) is dict:
                    sub = shape.items
                    if sub is None:
                        sub = shape.items = {}
                    items = shape.path + "[]."
                    self._walk(first, sub, items)
                    last = value[-1]
                    if len(value) > 1 and type(last) is dict:
                        self._walk(last, sub, items)

    def _unusual(self, shape: FieldShape, value: Any, cls: type) -> bool:
        """A null, a type not seen last time, or a field with findings to count; True when
        the value is null (nothing more to look at)."""
        found = self._found
        if shape.marks is not None:
            self._tally(shape.marks, value, self.last_seen)
        if value is None:
            if shape.nulls == 0 and found is not None and shape.seen > 1:
                found.append(Observation("nullability_change", shape.path, "null"))
            shape.nulls += 1
            return True
        kind = _TYPE_NAMES.get(cls, "string")
        if kind not in shape.types:
            if found is not None and shape.types:
                found.append(Observation("type_change", shape.path, kind))
            shape.types.add(kind)
        # A field with findings stays off the fast path, so each payload is counted.
        shape.cls = cls if shape.marks is None else None
        return False

    def _new_field(self, path: str) -> FieldShape:
        shape = self.fields.get(path)  # a list item's field, met through another item
        if shape is None:
            shape = self.fields[path] = FieldShape(
                path, first_seen=self.last_seen, first_index=self.events
            )
            if self._found is not None:
                self._found.append(Observation("new_field", path, ""))
        return shape

    @staticmethod
    def _new_value(shape: FieldShape, value: str, found: list[Observation] | None) -> None:
        values = shape.values
        assert values is not None
        if len(value) > ENUM_MAX_LEN or len(values) >= ENUM_CAP or _TIME_LIKE.fullmatch(value):
            shape.values = None
            return
        if found is not None and values and _enum_like(shape):
            found.append(Observation("new_enum_value", shape.path, value))
        values.add(value)

    def _tally(self, marks: dict[str, Tally], value: Any, now: float) -> None:
        """Count a payload showing findings already raised on this field."""
        hits = [marks.get("")]  # new_field / vanished_field: the field's presence
        if value is None:
            hits.append(marks.get("null"))
        else:
            hits.append(marks.get(_TYPE_NAMES.get(type(value), "string")))
            if isinstance(value, str):
                hits.append(marks.get("=" + value))
        for tally in hits:
            if tally is not None:
                tally.count += 1
                tally.last_seen = now
                self.hit = True

    # -- merging ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "fields": {path: shape.to_json() for path, shape in sorted(self.fields.items())},
        }

    @classmethod
    def from_json(cls, source: str, event_type: str, data: dict[str, Any]) -> Profile:
        profile = cls(source, event_type)
        profile.events = int(data.get("events", 0))
        profile.first_seen = float(data.get("first_seen", 0.0))
        profile.last_seen = float(data.get("last_seen", 0.0))
        for path in sorted(data.get("fields", {}), key=len):
            shape = FieldShape.from_json(path, data["fields"][path], profile.events)
            profile.fields[path] = shape
            parent, key = _split(path)
            owner = profile.fields.get(parent.removesuffix("[]")) if parent is not None else None
            if owner is None:
                profile.root[key if parent is None else path] = shape
            elif parent is not None and parent.endswith("[]"):
                owner.items = owner.items if owner.items is not None else {}
                owner.items[key] = shape
            else:
                owner.children = owner.children if owner.children is not None else {}
                owner.children[key] = shape
        profile._snapshot = profile.to_json()
        return profile

    def delta(self) -> dict[str, Any] | None:
        """What changed since the last call (None: nothing), in the form :func:`merge` adds."""
        before = self._snapshot
        if self.events == before["events"]:
            return None
        since = before["events"]
        for shape in self.fields.values():
            if shape.last_index > since:  # seen since the last flush: as recent as the profile
                shape.last_seen = self.last_seen
        current = self.to_json()
        self._snapshot = current
        return diff(before, current)


def _split(path: str) -> tuple[str | None, str]:
    """``a.b[].c`` → (``a.b[]``, ``c``); a top-level field has no parent."""
    i = path.rfind(".")
    if i < 0:
        return None, path
    return path[:i], path[i + 1 :]


def _enum_like(shape: FieldShape) -> bool:
    """A few values, each seen several times: a status, a carrier, a currency."""
    values = shape.values
    return values is not None and shape.seen >= 4 * len(values)


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``after - before`` for counters; times, types and values are taken from ``after``."""
    fields: dict[str, Any] = {}
    old_fields = before.get("fields", {})
    for path, shape in after["fields"].items():
        old = old_fields.get(path)
        if old is None:
            fields[path] = shape
        elif shape["seen"] != old["seen"]:
            fields[path] = {
                **shape,
                "seen": shape["seen"] - old["seen"],
                "nulls": shape["nulls"] - old["nulls"],
            }
    return {
        "events": after["events"] - before["events"],
        "first_seen": after["first_seen"],
        "last_seen": after["last_seen"],
        "fields": fields,
    }


def merge(stored: dict[str, Any] | None, delta: dict[str, Any]) -> dict[str, Any]:
    """Add a process's ``delta`` to the ``stored`` profile (both JSON forms)."""
    if not stored:
        return delta
    fields = dict(stored.get("fields", {}))
    for path, add in delta["fields"].items():
        old = fields.get(path)
        if old is None:
            fields[path] = add
            continue
        values: list[str] | None = None
        if old["values"] is not None and add["values"] is not None:
            values = sorted(set(old["values"]) | set(add["values"]))
            if len(values) > ENUM_CAP:
                values = None
        fields[path] = {
            "types": sorted(set(old["types"]) | set(add["types"])),
            "seen": old["seen"] + add["seen"],
            "nulls": old["nulls"] + add["nulls"],
            "values": values,
            "first_seen": min(old["first_seen"], add["first_seen"]),
            "last_seen": max(old["last_seen"], add["last_seen"]),
        }
    return {
        "events": stored["events"] + delta["events"],
        "first_seen": min(stored["first_seen"], delta["first_seen"]),
        "last_seen": max(stored["last_seen"], delta["last_seen"]),
        "fields": fields,
    }
