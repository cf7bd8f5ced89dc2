"""Contracts: typed, versioned event payloads.

A contract is a frozen pydantic model that names its event and version::

    class OrderShipped(Contract, event="order.shipped", version=2, subject="order_id"):
        order_id: str
        email: PII[str]
        carrier: Literal["ups", "fedex", "dhl"]

    @OrderShipped.upcaster(from_version=1)
    def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "carrier": data.pop("shipper", "ups")}

Beyond types, a contract says which fields are nullable (``str | None``) or
optional (a default), which hold enums (``Literal`` or ``Enum``), which are
computed (pydantic's ``@computed_field``: derived, never read from input) and
what each field means (a docstring under the field, or ``Field(description=)``).
It may also name its ``marker`` (the field that orders an entity's versions,
such as ``updated_at``) and its error semantics: ``on_missing`` (a referenced
record does not exist yet) and ``on_invalid`` (a stored event fails validation),
each ``"retry"``, ``"dead"``, ``"skip"`` or ``"park"`` (see :mod:`interlock.semantics`);
a flow may override both.

Fields marked ``PII[...]`` are redacted wherever interlock writes text a
person may read (logs, attempt reasons, dead-letter contexts). Events stored
under an older version are upcast through the registered functions before a
flow sees them, so a flow always sees one shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from interlock.errors import ConfigurationError, ContractViolation
from interlock.redaction import Redactor

T = TypeVar("T")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
Policy = Literal["retry", "dead", "skip", "park"]
POLICIES: tuple[Policy, ...] = ("retry", "dead", "skip", "park")


class PIIMarker:
    """Annotation metadata marking a field as personal data."""

    def __repr__(self) -> str:
        return "PII"

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["x-pii"] = True
        return json_schema


PII = Annotated[T, PIIMarker()]
"""Mark a contract field as personal data: ``email: PII[str]``."""


class Contract(BaseModel):
    """Base class of every event contract. Instances are immutable."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    __event__: ClassVar[str] = ""
    __version__: ClassVar[int] = 1
    __subject__: ClassVar[str | None] = None
    __upcasters__: ClassVar[dict[int, Upcaster]] = {}
    __marker__: ClassVar[str | None] = None
    __on_missing__: ClassVar[Policy | None] = None
    __on_invalid__: ClassVar[Policy | None] = None

    def __init_subclass__(
        cls,
        *,
        event: str | None = None,
        version: int | None = None,
        subject: str | None = None,
        marker: str | None = None,
        on_missing: Policy | None = None,
        on_invalid: Policy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        for label, policy in (("on_missing", on_missing), ("on_invalid", on_invalid)):
            if policy is not None and policy not in POLICIES:
                raise ConfigurationError(
                    f"contract {cls.__name__}: {label}={policy!r} must be one of "
                    f"{', '.join(POLICIES)}"
                )
        if on_missing is not None:
            cls.__on_missing__ = on_missing
        if on_invalid is not None:
            cls.__on_invalid__ = on_invalid
        if marker is not None:
            cls.__marker__ = marker
        if event is not None:
            if not event or event.strip() != event or " " in event:
                raise ConfigurationError(
                    f"contract {cls.__name__}: event name {event!r} must be a non-empty "
                    "dotted name such as 'order.shipped'"
                )
            cls.__event__ = event
        if version is not None:
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise ConfigurationError(
                    f"contract {cls.__name__}: version must be an integer >= 1, got {version!r}"
                )
            cls.__version__ = version
        if subject is not None:
            cls.__subject__ = subject
        cls.__upcasters__ = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = {**cls.model_fields, **cls.model_computed_fields}
        for label, name in (("subject", cls.__subject__), ("marker", cls.__marker__)):
            if name is not None and name not in fields:
                raise ConfigurationError(
                    f"contract {cls.__name__}: {label}={name!r} is not one of its fields "
                    f"({', '.join(fields) or 'none'})"
                )

    # -- identity ---------------------------------------------------------------
    @classmethod
    def event_type(cls) -> str:
        if not cls.__event__:
            raise ConfigurationError(
                f"contract {cls.__name__} declares no event name: "
                f"write `class {cls.__name__}(Contract, event='thing.happened')`"
            )
        return cls.__event__

    def subject(self) -> str | None:
        """The business id this event is about, e.g. ``order:1042``, if the contract names one."""
        field = type(self).__subject__
        if field is None:
            return None
        value = getattr(self, field)
        if value is None or value == "":
            return None
        prefix = type(self).event_type().split(".", 1)[0]
        return f"{prefix}:{value}"

    # -- versions ---------------------------------------------------------------
    @classmethod
    def upcaster(cls, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning version ``from_version`` data into ``from_version + 1``."""
        if from_version < 1 or from_version >= cls.__version__:
            raise ConfigurationError(
                f"contract {cls.__name__} is version {cls.__version__}: an upcaster must start "
                f"from a version between 1 and {cls.__version__ - 1}, not {from_version}"
            )

        def register(fn: Upcaster) -> Upcaster:
            cls.__upcasters__[from_version] = fn
            return fn

        return register

    @classmethod
    def upcast(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """Bring ``data`` stored under ``version`` up to this contract's version."""
        if version > cls.__version__:
            raise ContractViolation(
                f"{cls.event_type()} v{version} is newer than the code's v{cls.__version__}: "
                "deploy the newer contract before delivering these events"
            )
        for v in range(version, cls.__version__):
            fn = cls.__upcasters__.get(v)
            if fn is None:
                raise ContractViolation(
                    f"{cls.event_type()}: no upcaster from v{v} to v{v + 1}; register one with "
                    f"@{cls.__name__}.upcaster(from_version={v})"
                )
            try:
                data = fn(dict(data))
            except Exception as exc:
                # Never echo the payload: the message may hold personal data.
                raise ContractViolation(
                    f"{cls.event_type()}: the upcaster from v{v} to v{v + 1} failed with "
                    f"{type(exc).__name__}; fix it and replay"
                ) from None
        return data

    @classmethod
    def load(cls: type[C], data: dict[str, Any], version: int | None = None) -> C:
        """Validate stored or incoming ``data`` (upcasting older versions) into a contract."""
        if version is not None and version != cls.__version__:
            data = cls.upcast(data, version)
        if cls.model_computed_fields:  # stored with the event, derived again on load
            data = {k: v for k, v in data.items() if k not in cls.model_computed_fields}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise contract_violation(cls, exc) from None

    # -- PII and schema -----------------------------------------------------------
    @classmethod
    def pii_paths(cls) -> tuple[tuple[str, ...], ...]:
        """Paths of PII-marked fields, nested contracts included."""
        cached = _PII_CACHE.get(cls)
        if cached is None:
            cached = _PII_CACHE[cls] = tuple(_pii_paths(cls, ()))
        return cached

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema of this contract (what it accepts), with ``x-interlock-event``,
        ``-version`` and ``-marker``, ``x-pii`` on personal data, and computed fields
        listed as ``readOnly`` with ``x-computed``."""
        schema = cls.model_json_schema()
        for path in cls.pii_paths():  # PII[str] | None marks only the union's str: mark the field
            if len(path) == 1 and path[0] in schema.get("properties", {}):
                schema["properties"][path[0]]["x-pii"] = True
        if cls.model_computed_fields:
            output = cls.model_json_schema(mode="serialization")
            properties = schema.setdefault("properties", {})
            for name in cls.model_computed_fields:
                properties[name] = {**output["properties"][name], "x-computed": True}
        schema["x-interlock-event"] = cls.__event__
        schema["x-interlock-version"] = cls.__version__
        if cls.__marker__ is not None:
            schema["x-interlock-marker"] = cls.__marker__
        return schema


C = TypeVar("C", bound=Contract)
_PII_CACHE: dict[type[BaseModel], tuple[tuple[str, ...], ...]] = {}


def contract_violation(cls: type[BaseModel], exc: ValidationError) -> ContractViolation:
    """A readable ContractViolation that names fields but never echoes input values."""
    errors: list[dict[str, object]] = []
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        # Some messages quote the input (a union tag, a validator's ValueError): scrub it.
        msg = Redactor(_scalars(err.get("input"))).text(err["msg"])
        errors.append({"field": loc, "type": err["type"], "message": msg})
        parts.append(f"{loc}: {msg}")
    name = getattr(cls, "__event__", "") or cls.__name__
    return ContractViolation(f"{name} payload is invalid: " + "; ".join(parts), errors=errors)


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _scalars(item)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        yield str(value)


def _is_pii(metadata: list[Any]) -> bool:
    return any(isinstance(m, PIIMarker) for m in metadata)


def _annotation_is_pii(annotation: Any) -> bool:
    """``PII[...]`` inside a union or a container: ``PII[str] | None``, ``list[PII[str]]``."""
    if get_origin(annotation) is Annotated:
        if _is_pii(list(getattr(annotation, "__metadata__", ()))):
            return True
        return _annotation_is_pii(get_args(annotation)[0])
    return any(_annotation_is_pii(arg) for arg in get_args(annotation))


def _nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            yield from _nested_models(arg)


def _pii_paths(model: type[BaseModel], prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        if _is_pii(info.metadata) or _annotation_is_pii(info.annotation):
            yield path
            continue
        for nested in _nested_models(info.annotation):
            if len(prefix) < 8:
                yield from _pii_paths(nested, path)
