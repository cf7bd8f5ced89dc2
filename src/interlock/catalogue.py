"""The contract catalogue: JSON Schema for every contract, and a page people read.

``interlock contracts schema`` prints :func:`schema_document` (``--format json``) or
:func:`markdown` (``--format markdown``): per contract its event, version, system of
record, owner flows, and fields with types, nullability, enums, defaults, PII and
descriptions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from interlock.app import Interlock
from interlock.contracts import Contract


@dataclass(frozen=True, slots=True)
class FieldInfo:
    name: str
    type: str
    required: bool
    nullable: bool
    enum: list[Any] | None
    default: Any
    pii: bool
    computed: bool
    description: str


def contracts_of(app: Interlock) -> list[type[Contract]]:
    """Every contract the app knows (registered, or declared by a flow), by event and
    version (a flow may pin an older version than the one registered)."""
    seen: dict[tuple[str, int], type[Contract]] = {}
    for cls in [*app.contracts.values(), *(f.contract for f in app.flows.values())]:
        seen.setdefault((cls.event_type(), cls.__version__), cls)
    return [seen[key] for key in sorted(seen)]


def schema_document(app: Interlock) -> dict[str, Any]:
    """One JSON document: each contract's JSON Schema with its catalogue facts."""
    return {
        "app": app.name,
        "contracts": [
            {
                "event": cls.event_type(),
                "version": cls.__version__,
                "title": cls.__name__,
                "systems_of_record": _systems(app, cls),
                "flows": _flows(app, cls),
                "upcasts_from": sorted(cls.__upcasters__),
                "schema": cls.json_schema(),
            }
            for cls in contracts_of(app)
        ],
    }


def fields_of(cls: type[Contract]) -> list[FieldInfo]:
    schema = cls.json_schema()
    required = set(schema.get("required", ()))
    defs = schema.get("$defs", {})
    pii = {path[0] for path in cls.pii_paths() if len(path) == 1}
    out = []
    for name, prop in schema.get("properties", {}).items():
        types, nullable, enum = _describe(prop, defs)
        computed = bool(prop.get("x-computed"))
        out.append(
            FieldInfo(
                name=name,
                type=" | ".join(types) or "any",
                required=name in required,
                nullable=nullable,
                enum=enum,
                default=prop.get("default"),
                pii=name in pii or bool(prop.get("x-pii")),
                computed=computed,
                description=str(prop.get("description", "")),
            )
        )
    return out


def _describe(
    prop: dict[str, Any], defs: dict[str, Any]
) -> tuple[list[str], bool, list[Any] | None]:
    """(types, nullable, enum values) of one JSON Schema property."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        target = defs.get(name, {})
        if "enum" in target:
            return [target.get("type", "string")], False, list(target["enum"])
        return [name], False, None
    if "anyOf" in prop:
        types: list[str] = []
        nullable = False
        enum: list[Any] | None = None
        for option in prop["anyOf"]:
            if option.get("type") == "null":
                nullable = True
                continue
            t, n, e = _describe(option, defs)
            types.extend(x for x in t if x not in types)
            nullable = nullable or n
            enum = e if enum is None else enum + (e or [])
        return types, nullable, enum
    if "enum" in prop:
        return [prop.get("type", "string")], None in prop["enum"], list(prop["enum"])
    if "const" in prop:
        return [prop.get("type", "string")], False, [prop["const"]]
    kind = prop.get("type")
    if kind == "array":
        items, _, enum = _describe(prop.get("items", {}), defs)
        return [f"array of {' | '.join(items) or 'any'}"], False, enum
    if isinstance(kind, list):
        return [k for k in kind if k != "null"], "null" in kind, None
    shown = kind or "any"
    if prop.get("format"):
        shown = f"{shown} ({prop['format']})"
    return [shown], False, None


def markdown(app: Interlock) -> str:
    """The human-readable catalogue, as Markdown."""
    lines = [f"# Contracts of {app.name}", ""]
    for cls in contracts_of(app):
        lines.append(f"## {cls.event_type()} (v{cls.__version__}) — `{cls.__name__}`")
        lines.append("")
        doc = (cls.__doc__ or "").strip()
        if doc:
            lines.extend([doc, ""])
        systems = ", ".join(_systems(app, cls)) or "—"
        flows = ", ".join(f"`{f['name']}` ({f['owner']})" for f in _flows(app, cls)) or "—"
        lines.append(f"- System of record: {systems}")
        lines.append(f"- Flows: {flows}")
        if cls.__upcasters__:
            lines.append("- Upcast from: " + ", ".join(f"v{v}" for v in sorted(cls.__upcasters__)))
        if cls.__subject__:
            lines.append(f"- Subject: `{cls.__subject__}`")
        if cls.__marker__:
            lines.append(f"- Version marker: `{cls.__marker__}`")
        semantics = [
            f"{label} → {value}"
            for label, value in (("missing", cls.__on_missing__), ("invalid", cls.__on_invalid__))
            if value
        ]
        if semantics:
            lines.append("- On error: " + ", ".join(semantics))
        lines.extend(
            [
                "",
                "| field | type | required | nullable | enum | default | PII | description |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
        )
        for f in fields_of(cls):
            name = f"`{f.name}`" + (" (computed)" if f.computed else "")
            enum = ", ".join(f"`{v}`" for v in f.enum) if f.enum else ""
            default = "" if f.required else f"`{json.dumps(f.default, ensure_ascii=False)}`"
            lines.append(
                f"| {name} | {f.type} | {'yes' if f.required else 'no'} | "
                f"{'yes' if f.nullable else 'no'} | {enum} | {default} | "
                f"{'PII' if f.pii else ''} | {_cell(f.description)} |"
            )
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _systems(app: Interlock, cls: type[Contract]) -> list[str]:
    return sorted(
        {
            f.system_of_record
            for f in app.flows.values()
            if f.event_type == cls.event_type() and f.system_of_record
        }
    )


def _flows(app: Interlock, cls: type[Contract]) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "owner": f.owner, "version": f.contract.__version__}
        for f in app.flows.values()
        if f.event_type == cls.event_type()
    ]
