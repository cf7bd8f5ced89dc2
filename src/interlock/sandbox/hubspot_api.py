"""HubSpot's CRM endpoints: objects, search, batch create/read/update/upsert, associations.

Every handler takes the simulator and the call and returns the answer; errors
are :class:`~interlock.sandbox.hubspot_crm.CrmError`, rendered by the simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from interlock.sandbox.hubspot_crm import (
    ASSOCIATION_TYPES,
    SINGULAR,
    CrmError,
    matches,
    object_type,
    render,
)
from interlock.sandbox.simulator import Call, iso, json_response

if TYPE_CHECKING:
    from interlock.sandbox.hubspot import HubSpotSimulator

Obj = dict[str, Any]
_BASE = "https://api.hubapi.com"


def _body(call: Call) -> Any:
    try:
        body = call.json()
    except ValueError as exc:
        raise CrmError(400, "VALIDATION_ERROR", f"Invalid input JSON on line 1: {exc}") from None
    if not isinstance(body, dict):
        raise CrmError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    return body


def _wanted(call: Call) -> list[str] | None:
    names = [n for value in call.query.getlist("properties") for n in value.split(",") if n]
    return names or None


def _not_found(ident: str) -> CrmError:
    return CrmError(
        404,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
        context={"id": [ident]},
    )


def _find(sim: HubSpotSimulator, kind: str, ident: str, id_property: str | None = None) -> Obj:
    objects = sim.state[kind]
    if id_property and id_property != "hs_object_id":
        if id_property not in sim.schema.unique[kind]:
            raise CrmError(
                400, "VALIDATION_ERROR", f"{id_property} is not a unique property of {kind}"
            )
        for obj in objects.values():
            value = obj["properties"].get(id_property) or ""
            if value.lower() == ident.lower() and not obj["archived"]:
                found: Obj = obj
                return found
        raise _not_found(ident)
    current = objects.get(ident)
    if current is None or current["archived"]:
        raise _not_found(ident)
    return current


def _check_unique(sim: HubSpotSimulator, kind: str, props: Obj, own_id: str | None) -> None:
    for name in sim.schema.unique[kind] - {"hs_object_id"}:
        value = (props.get(name) or "").lower()
        for obj in sim.state[kind].values():
            if (
                obj["id"] != own_id
                and not obj["archived"]
                and value
                and ((obj["properties"].get(name) or "").lower() == value)
            ):
                what = SINGULAR[kind].capitalize()
                raise CrmError(409, "CONFLICT", f"{what} already exists. Existing ID: {obj['id']}")


def _create(sim: HubSpotSimulator, kind: str, body: Obj) -> Obj:
    props = sim.schema.validate(kind, body.get("properties", {}))
    if kind == "notes" and not props.get("hs_timestamp"):
        raise CrmError(
            400,
            "VALIDATION_ERROR",
            "Property values were not valid: "
            '[{"isValid":false,"message":"hs_timestamp is required",'
            '"error":"REQUIRED_PROPERTY","name":"hs_timestamp"}]',
        )
    _check_unique(sim, kind, props, None)
    ident, now = sim.new_id(), iso(sim.clock())
    created = "hs_createdate" if kind == "notes" else "createdate"
    modified = "lastmodifieddate" if kind == "contacts" else "hs_lastmodifieddate"
    props.update({created: now, modified: now, "hs_object_id": ident})
    obj = {"id": ident, "properties": props, "createdAt": now, "updatedAt": now, "archived": False}
    sim.state[kind][ident] = obj
    for assoc in body.get("associations") or []:
        to_id = str((assoc.get("to") or {}).get("id", ""))
        types = assoc.get("types") or [{}]
        to_kind = _kind_of_type(kind, types[0].get("associationTypeId"))
        _find(sim, to_kind, to_id)
        _associate(sim, kind, ident, to_kind, to_id)
    return obj


def _kind_of_type(kind: str, type_id: Any) -> str:
    for (src, dst), known in ASSOCIATION_TYPES.items():
        if src == kind and known == type_id:
            return dst
    raise CrmError(400, "VALIDATION_ERROR", f"Unknown association type {type_id} from {kind}")


def _update(sim: HubSpotSimulator, kind: str, obj: Obj, body: Obj) -> Obj:
    props = sim.schema.validate(kind, body.get("properties", {}))
    _check_unique(sim, kind, {**obj["properties"], **props}, obj["id"])
    now = iso(sim.clock())
    obj["properties"].update(props)
    obj["properties"]["lastmodifieddate" if kind == "contacts" else "hs_lastmodifieddate"] = now
    obj["updatedAt"] = now
    return obj


def _paging(after: int, limit: int, total: int, link: str | None) -> Obj:
    if after + limit >= total:
        return {}
    nxt: Obj = {"after": str(after + limit)}
    if link:
        nxt["link"] = f"{link}?after={after + limit}&limit={limit}"
    return {"paging": {"next": nxt}}


def _limit(value: Any, default: int, maximum: int) -> int:
    try:
        limit = int(value) if value is not None else default
    except (TypeError, ValueError):
        raise CrmError(400, "VALIDATION_ERROR", f"limit must be a number, got {value}") from None
    if not 1 <= limit <= maximum:
        raise CrmError(400, "VALIDATION_ERROR", f"limit must be between 1 and {maximum}")
    return limit


def _after(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise CrmError(400, "VALIDATION_ERROR", f"Invalid paging cursor: {value}") from None


def list_objects(sim: HubSpotSimulator, call: Call) -> Response:
    kind = object_type(call.params["type"])
    limit = _limit(call.query.get("limit"), 10, 100)
    after = _after(call.query.get("after"))
    archived = call.query.get("archived") == "true"
    objects = [o for o in sim.state[kind].values() if o["archived"] == archived]
    chunk = objects[after : after + limit]
    wanted = _wanted(call)
    body: Obj = {"results": [_with_associations(sim, kind, o, call, wanted) for o in chunk]}
    body.update(_paging(after, limit, len(objects), f"{_BASE}/crm/v3/objects/{kind}"))
    return json_response(body)


def _with_associations(
    sim: HubSpotSimulator, kind: str, obj: Obj, call: Call, wanted: list[str] | None
) -> Obj:
    out = render(obj, kind, wanted)
    names = [n for v in call.query.getlist("associations") for n in v.split(",") if n]
    if names:
        out["associations"] = {}
        for name in names:
            to_kind = object_type(name)
            ids = [
                t
                for f, i, k, t in sorted(sim.associations)
                if (f, i, k) == (kind, obj["id"], to_kind)
            ]
            if ids:
                label = f"{SINGULAR[kind]}_to_{SINGULAR[to_kind]}"
                out["associations"][to_kind] = {"results": [{"id": t, "type": label} for t in ids]}
    return out


def create_object(sim: HubSpotSimulator, call: Call) -> Response:
    kind = object_type(call.params["type"])
    return json_response(render(_create(sim, kind, _body(call)), kind, None), 201)


def get_object(sim: HubSpotSimulator, call: Call) -> Response:
    kind = object_type(call.params["type"])
    obj = _find(sim, kind, call.params["id"], call.query.get("idProperty"))
    return json_response(_with_associations(sim, kind, obj, call, _wanted(call)))


def update_object(sim: HubSpotSimulator, call: Call) -> Response:
    kind = object_type(call.params["type"])
    obj = _find(sim, kind, call.params["id"], call.query.get("idProperty"))
    return json_response(render(_update(sim, kind, obj, _body(call)), kind, None))


def archive_object(sim: HubSpotSimulator, call: Call) -> Response:
    kind = object_type(call.params["type"])
    obj = sim.state[kind].get(call.params["id"])
    if obj is not None:  # archiving an unknown id is a silent 204 on HubSpot too
        obj["archived"] = True
        obj["archivedAt"] = iso(sim.clock())
    return Response(status_code=204)


def search_objects(sim: HubSpotSimulator, call: Call) -> Response:
    kind = object_type(call.params["type"])
    body = _body(call)
    groups = body.get("filterGroups") or []
    if len(groups) > 5 or any(len(g.get("filters", [])) > 6 for g in groups):
        raise CrmError(400, "VALIDATION_ERROR", "Too many filter groups or filters in a group")
    limit = _limit(body.get("limit"), 10, 200)
    after = _after(body.get("after"))
    found = [
        o
        for o in sim.state[kind].values()
        if not o["archived"]
        and (not groups or any(matches(o["properties"], g.get("filters", [])) for g in groups))
    ]
    text = str(body.get("query") or "").lower()
    if text:
        found = [
            o for o in found if any(text in (v or "").lower() for v in o["properties"].values())
        ]
    for sort in reversed(body.get("sorts") or []):
        name = sort.get("propertyName", "") if isinstance(sort, dict) else str(sort)
        desc = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
        found.sort(key=lambda o: o["properties"].get(name) or "", reverse=desc)
    wanted = body.get("properties") or None
    result: Obj = {
        "total": len(found),
        "results": [render(o, kind, wanted) for o in found[after : after + limit]],
    }
    result.update(_paging(after, limit, len(found), None))
    return json_response(result)


def _batch(sim: HubSpotSimulator, call: Call) -> tuple[str, list[Obj], str]:
    kind = object_type(call.params["type"])
    inputs = _body(call).get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise CrmError(400, "VALIDATION_ERROR", "inputs must be a non-empty list")
    if len(inputs) > 100:
        raise CrmError(400, "VALIDATION_ERROR", "Batch size must be at most 100")
    started = iso(sim.clock())
    return kind, inputs, started


def _batch_answer(results: list[Obj], started: str, sim: HubSpotSimulator, status: int) -> Response:
    return json_response(
        {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso(sim.clock()),
        },
        status,
    )


def batch_create(sim: HubSpotSimulator, call: Call) -> Response:
    kind, inputs, started = _batch(sim, call)
    results = [render(_create(sim, kind, i), kind, None) for i in inputs]
    return _batch_answer(results, started, sim, 201)


def batch_read(sim: HubSpotSimulator, call: Call) -> Response:
    kind, inputs, started = _batch(sim, call)
    body = _body(call)
    id_property = body.get("idProperty")
    results = [
        render(
            _find(sim, kind, str(i.get("id")), id_property), kind, body.get("properties") or None
        )
        for i in inputs
    ]
    return _batch_answer(results, started, sim, 200)


def batch_update(sim: HubSpotSimulator, call: Call) -> Response:
    kind, inputs, started = _batch(sim, call)
    results = [
        render(
            _update(sim, kind, _find(sim, kind, str(i.get("id")), i.get("idProperty")), i),
            kind,
            None,
        )
        for i in inputs
    ]
    return _batch_answer(results, started, sim, 200)


def batch_upsert(sim: HubSpotSimulator, call: Call) -> Response:
    """Create or update by a unique ``idProperty`` (e.g. contacts by ``email``)."""
    kind, inputs, started = _batch(sim, call)
    results: list[Obj] = []
    for item in inputs:
        id_property = item.get("idProperty")
        if not id_property:
            raise CrmError(400, "VALIDATION_ERROR", "idProperty is required for upsert")
        ident = str(item.get("id", ""))
        try:
            obj, new = _update(sim, kind, _find(sim, kind, ident, id_property), item), False
        except CrmError as exc:
            if exc.status != 404:
                raise
            props = {**(item.get("properties") or {}), id_property: ident}
            obj, new = _create(sim, kind, {"properties": props}), True
        results.append({**render(obj, kind, None), "new": new})
    return _batch_answer(results, started, sim, 200)


def _associate(sim: HubSpotSimulator, kind: str, ident: str, to_kind: str, to_id: str) -> None:
    sim.associations.add((kind, ident, to_kind, to_id))
    sim.associations.add((to_kind, to_id, kind, ident))


def associate_default(sim: HubSpotSimulator, call: Call) -> Response:
    kind, to_kind = object_type(call.params["from"]), object_type(call.params["to"])
    ident, to_id = call.params["id"], call.params["toId"]
    _find(sim, kind, ident)
    _find(sim, to_kind, to_id)
    if (kind, to_kind) not in ASSOCIATION_TYPES:
        raise CrmError(400, "VALIDATION_ERROR", f"{kind} cannot be associated with {to_kind}")
    _associate(sim, kind, ident, to_kind, to_id)
    started = iso(sim.clock())
    results = [
        {
            "from": {"id": a},
            "to": {"id": b},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": ASSOCIATION_TYPES[(k1, k2)],
            },
        }
        for a, k1, b, k2 in ((ident, kind, to_id, to_kind), (to_id, to_kind, ident, kind))
    ]
    return _batch_answer(results, started, sim, 200)


def list_associations(sim: HubSpotSimulator, call: Call) -> Response:
    kind, to_kind = object_type(call.params["from"]), object_type(call.params["to"])
    _find(sim, kind, call.params["id"])
    ids = sorted(
        t for f, i, k, t in sim.associations if (f, i, k) == (kind, call.params["id"], to_kind)
    )
    type_id = ASSOCIATION_TYPES.get((kind, to_kind))
    results = [
        {
            "toObjectId": int(t),
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}],
        }
        for t in ids
    ]
    return json_response({"results": results})


def remove_association(sim: HubSpotSimulator, call: Call) -> Response:
    kind, to_kind = object_type(call.params["from"]), object_type(call.params["to"])
    ident, to_id = call.params["id"], call.params["toId"]
    sim.associations.discard((kind, ident, to_kind, to_id))
    sim.associations.discard((to_kind, to_id, kind, ident))
    return Response(status_code=204)


_Fn = Callable[["HubSpotSimulator", Call], Response]
_V3 = "/crm/v3/objects/{type}"
_V4 = "/crm/v4/objects/{from}/{id}/associations"
ROUTES: list[tuple[str, str, _Fn]] = [
    (_V3, "GET", list_objects),
    (_V3, "POST", create_object),
    (_V3 + "/search", "POST", search_objects),
    (_V3 + "/batch/create", "POST", batch_create),
    (_V3 + "/batch/read", "POST", batch_read),
    (_V3 + "/batch/update", "POST", batch_update),
    (_V3 + "/batch/upsert", "POST", batch_upsert),
    (_V3 + "/{id}", "GET", get_object),
    (_V3 + "/{id}", "PATCH", update_object),
    (_V3 + "/{id}", "DELETE", archive_object),
    (_V4 + "/default/{to}/{toId}", "PUT", associate_default),
    (_V4 + "/{to}", "GET", list_associations),
    (_V4 + "/{to}/{toId}", "DELETE", remove_association),
]
