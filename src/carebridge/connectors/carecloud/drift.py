"""Drift detection: compare what the upstream sent with the wire model that should describe it.

::

    check(payload, Model, endpoint, report)          one JSON object  -> Model
    check_list(payload, Model, endpoint, report)     a JSON array     -> list[Model]
      │
      ├─ compare(payload, Model) -> [Finding]        pure: walks the JSON and the model together
      │     unknown   a key the model does not know             additive: tolerated, reported
      │     missing   a field the upstream always sends is absent    breaking
      │     retyped   a value of another JSON type than the model's  breaking when the field is
      │               (``"42"`` for an integer id, ``null`` where    always sent; otherwise it is
      │               the field is never null)                       breaking only if it no longer
      │                                                              validates
      ├─ report.record(endpoint, findings)           counts and first/last seen, per endpoint
      ├─ breaking finding?  -> UnexpectedPayload(field_path=..., endpoint=...)
      └─ Model.model_validate(payload)               a value of the right JSON type that still does
                                                     not fit (a malformed date, a naive timestamp)
                                                     is recorded as ``invalid`` and raised the same

Field paths use the upstream's spellings, dots between keys and ``[]`` for array items:
``appointment.start_time``, ``[].appointment.provider_id``, ``patient.addresses[].zip_code``.
Messages and reports carry paths, JSON type names and pydantic error types, never values:
payloads are PHI.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal, TypeVar, cast

from pydantic import BaseModel, PydanticUserError, TypeAdapter, ValidationError

from carebridge.connectors.carecloud.wire.v2 import upstream_keys
from carebridge.errors import UnexpectedPayload

M = TypeVar("M", bound=BaseModel)

JsonType = Literal["object", "array", "string", "integer", "number", "boolean", "null"]
FindingKind = Literal["unknown", "missing", "retyped", "invalid"]

ROOT = "$"
"""The path of the payload itself."""


def json_type(value: Any) -> JsonType:
    """The JSON type name of a parsed JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return "string"  # pragma: no cover - json.loads yields nothing else


# --- what the model expects -----------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """The JSON a value may take: its types (None: any), and what objects and array items hold."""

    types: frozenset[JsonType] | None
    model: type[BaseModel] | None = None
    item: Shape | None = None

    def accepts(self, kind: JsonType) -> bool:
        """True when a value of JSON type ``kind`` fits (an integer fits a number)."""
        if self.types is None:
            return True
        return kind in self.types or (kind == "integer" and "number" in self.types)

    def expected(self) -> str:
        """The accepted JSON types, for a report (``"integer|null"``)."""
        return "any" if self.types is None else "|".join(sorted(self.types))


@dataclass(frozen=True)
class FieldSpec:
    """One field of a model as the upstream sends it."""

    name: str
    keys: tuple[str, ...]
    """Every spelling the upstream may use, the preferred one first."""
    required: bool
    shape: Shape


@dataclass(frozen=True)
class ModelSpec:
    fields: tuple[FieldSpec, ...]
    known_keys: frozenset[str]


_ANY = Shape(types=None)
_SCALARS: dict[type, frozenset[JsonType]] = {
    bool: frozenset({"boolean"}),
    int: frozenset({"integer"}),
    float: frozenset({"number"}),
    str: frozenset({"string"}),
    bytes: frozenset({"string"}),
    Decimal: frozenset({"string", "number"}),
    date: frozenset({"string"}),
    datetime: frozenset({"string"}),
    time: frozenset({"string"}),
}


def _merge(shapes: Sequence[Shape]) -> Shape:
    if any(s.types is None for s in shapes):
        return _ANY
    kinds: set[JsonType] = set()
    model: type[BaseModel] | None = None
    item: Shape | None = None
    for s in shapes:
        kinds |= s.types or set()
        model = model or s.model
        item = item or s.item
    return Shape(frozenset(kinds), model, item)


def shape_of(annotation: Any) -> Shape:
    """The JSON shape of a Python annotation as pydantic reads JSON into it."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return shape_of(args[0])
    if annotation is Any or annotation is object:
        return _ANY
    if annotation is None or annotation is types.NoneType:
        return Shape(frozenset({"null"}))
    if origin in (typing.Union, types.UnionType):
        return _merge([shape_of(a) for a in args])
    if origin is Literal:
        return _merge([Shape(frozenset({json_type(a)})) for a in args])
    if origin in (list, tuple, set, frozenset, Sequence, typing.Sequence):
        inner = args[0] if args else Any
        return Shape(frozenset({"array"}), item=shape_of(inner))
    if origin in (dict, Mapping, typing.Mapping) or annotation is dict:
        return Shape(frozenset({"object"}))
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return Shape(frozenset({"object"}), model=annotation)
        if issubclass(annotation, Enum):
            return _merge([Shape(frozenset({json_type(m.value)})) for m in annotation])
        for kind, kinds in _SCALARS.items():
            if issubclass(annotation, kind):
                return Shape(kinds)
    return _schema_shape(annotation)


_SCHEMA_TYPES: frozenset[str] = frozenset(typing.get_args(JsonType))


def _schema_shape(annotation: Any) -> Shape:
    """The shape of a type pydantic knows by a custom schema (``AwareDatetime``...), read from
    its JSON schema; anything it cannot say is ``any``."""
    try:
        schema = TypeAdapter(annotation).json_schema()
    except (PydanticUserError, TypeError, ValueError):
        return _ANY
    declared = schema.get("type")
    names = [declared] if isinstance(declared, str) else declared
    if not isinstance(names, list) or not names or not set(names) <= _SCHEMA_TYPES:
        return _ANY
    return Shape(frozenset(cast(list[JsonType], names)))


@cache
def model_spec(model: type[BaseModel]) -> ModelSpec:
    """The fields of ``model`` with their upstream spellings, requiredness and JSON shapes."""
    specs = []
    for name, info in model.model_fields.items():
        keys = upstream_keys(model, name)
        specs.append(FieldSpec(name, keys, info.is_required(), shape_of(info.annotation)))
    known = frozenset(k for s in specs for k in s.keys)
    return ModelSpec(tuple(specs), known)


# --- comparing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One difference between a payload and its wire model."""

    kind: FindingKind
    path: str
    expected: str | None = None
    """The JSON types the model accepts (``retyped``), or the pydantic error type (``invalid``)."""
    actual: str | None = None
    """The JSON type the upstream sent (``unknown``, ``retyped``)."""
    breaking: bool = False


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def compare(payload: Any, model: type[BaseModel], *, many: bool = False) -> list[Finding]:
    """Every difference between ``payload`` and ``model`` (an array of them when ``many``).

    Findings are deduplicated by (kind, path): one unknown key in each of a hundred list items is
    one finding. Ordered by path.
    """
    root = Shape(frozenset({"object"}), model=model)
    shape = Shape(frozenset({"array"}), item=root) if many else root
    found: dict[tuple[str, str], Finding] = {}
    _walk(payload, shape, "", required=True, found=found)
    return sorted(found.values(), key=lambda f: (f.path, f.kind))


def _walk(
    value: Any, shape: Shape, path: str, *, required: bool, found: dict[tuple[str, str], Finding]
) -> None:
    kind = json_type(value)
    if not shape.accepts(kind):
        where = path or ROOT
        found.setdefault(
            ("retyped", where),
            Finding("retyped", where, shape.expected(), kind, breaking=required),
        )
        return
    if kind == "object" and shape.model is not None:
        _walk_object(value, shape.model, path, found)
    elif kind == "array" and shape.item is not None:
        for item in value:
            _walk(item, shape.item, f"{path}[]", required=required, found=found)


def _walk_object(
    obj: Mapping[str, Any], model: type[BaseModel], path: str, found: dict[tuple[str, str], Finding]
) -> None:
    spec = model_spec(model)
    for name, value in obj.items():
        if name not in spec.known_keys:
            where = _join(path, str(name))
            found.setdefault(("unknown", where), Finding("unknown", where, actual=json_type(value)))
    for fld in spec.fields:
        present = next((k for k in fld.keys if k in obj), None)
        if present is None:
            if fld.required:
                where = _join(path, fld.keys[0])
                found.setdefault(("missing", where), Finding("missing", where, breaking=True))
            continue
        _walk(obj[present], fld.shape, _join(path, present), required=fld.required, found=found)


# --- the report -----------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Observation:
    """A finding as seen over time on one endpoint."""

    kind: FindingKind
    path: str
    expected: str | None
    actual: str | None
    breaking: bool
    count: int
    """How many checked responses showed it."""
    first_seen: datetime
    last_seen: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "kind": self.kind,
            "path": self.path,
            "expected": self.expected,
            "actual": self.actual,
            "breaking": self.breaking,
            "count": self.count,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
        }


@dataclass
class EndpointDrift:
    """What one endpoint's responses looked like against their wire model."""

    endpoint: str
    checks: int = 0
    """Responses checked."""
    breaking: int = 0
    """Responses refused as breaking drift."""
    last_checked: datetime | None = None
    observations: dict[tuple[str, str], Observation] = field(default_factory=dict)
    overflow: int = 0
    """Distinct findings not kept because the endpoint already holds ``max_paths``."""

    def find(self, kind: FindingKind, path: str) -> Observation | None:
        """The observation of ``kind`` at ``path``, if any."""
        return self.observations.get((kind, path))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, observations ordered by path."""
        return {
            "checks": self.checks,
            "breaking": self.breaking,
            "last_checked": None if self.last_checked is None else self.last_checked.isoformat(),
            "unknown": self._count("unknown"),
            "missing": self._count("missing"),
            "retyped": self._count("retyped"),
            "invalid": self._count("invalid"),
            "overflow": self.overflow,
            "observations": [
                o.as_dict()
                for o in sorted(self.observations.values(), key=lambda o: (o.path, o.kind))
            ],
        }

    def _count(self, kind: FindingKind) -> int:
        return sum(1 for o in self.observations.values() if o.kind == kind)


class DriftReport:
    """Drift observations per endpoint, for ``/health/upstream`` and ``upstream.drift`` events.

    Args:
        clock: the current instant (aware UTC); injected in tests.
        max_paths: distinct findings kept per endpoint (an upstream sending dynamic keys must not
            grow the report without bound); the rest are counted in ``overflow``.
        on_new: called once per endpoint and finding, when it is first seen.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = _utcnow,
        max_paths: int = 256,
        on_new: Callable[[str, Observation], None] | None = None,
    ) -> None:
        self._clock = clock
        self._max_paths = max_paths
        self._on_new = on_new
        self._endpoints: dict[str, EndpointDrift] = {}

    def record(
        self, endpoint: str, findings: Iterable[Finding], *, refused: bool = False
    ) -> EndpointDrift:
        """Count one checked response of ``endpoint`` and what it showed."""
        now = self._clock()
        entry = self._endpoints.setdefault(endpoint, EndpointDrift(endpoint))
        entry.checks += 1
        entry.last_checked = now
        if refused:
            entry.breaking += 1
        for f in findings:
            key = (f.kind, f.path)
            seen = entry.observations.get(key)
            if seen is not None:
                seen.count += 1
                seen.last_seen = now
                continue
            if len(entry.observations) >= self._max_paths:
                entry.overflow += 1
                continue
            seen = Observation(f.kind, f.path, f.expected, f.actual, f.breaking, 1, now, now)
            entry.observations[key] = seen
            if self._on_new is not None:
                self._on_new(endpoint, seen)
        return entry

    def endpoint(self, endpoint: str) -> EndpointDrift | None:
        """What ``endpoint`` showed so far, if it was checked."""
        return self._endpoints.get(endpoint)

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The endpoints checked so far, sorted."""
        return tuple(sorted(self._endpoints))

    @property
    def drifted(self) -> bool:
        """True when any endpoint showed any finding."""
        return any(e.observations or e.overflow for e in self._endpoints.values())

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON for ``/health/upstream``: per endpoint, counts and observations."""
        return {
            "drifted": self.drifted,
            "endpoints": {name: self._endpoints[name].as_dict() for name in self.endpoints},
        }


# --- checking -------------------------------------------------------------------------------------


def check(payload: Any, model: type[M], endpoint: str, report: DriftReport | None = None) -> M:
    """``payload`` (one JSON object) as ``model``, after recording its drift.

    Raises:
        UnexpectedPayload: breaking drift (a field the upstream always sends is missing or has
            another JSON type), or a value that does not validate; ``field_path`` names it.
    """
    return cast(M, _check(payload, model, endpoint, report, many=False, adapter=None))


def check_list(
    payload: Any, model: type[M], endpoint: str, report: DriftReport | None = None
) -> list[M]:
    """``payload`` (a JSON array of objects) as a list of ``model``; see ``check``.

    Raises:
        UnexpectedPayload: as ``check``; array items are ``[]`` in the field path.
    """
    parsed = _check(payload, model, endpoint, report, many=True, adapter=_list_adapter(model))
    return cast(list[M], parsed)


@cache
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]  # a runtime class as type argument


def _check(
    payload: Any,
    model: type[BaseModel],
    endpoint: str,
    report: DriftReport | None,
    *,
    many: bool,
    adapter: TypeAdapter[Any] | None,
) -> Any:
    findings = compare(payload, model, many=many)
    breaking = next((f for f in findings if f.breaking), None)
    if breaking is not None:
        if report is not None:
            report.record(endpoint, findings, refused=True)
        raise UnexpectedPayload(
            f"{endpoint}: breaking upstream drift, {breaking.kind} field {breaking.path}"
            + (
                f" (expected {breaking.expected}, got {breaking.actual})" if breaking.actual else ""
            ),
            field_path=breaking.path,
            endpoint=endpoint,
        )
    try:
        parsed = (
            adapter.validate_python(payload)
            if adapter is not None
            else model.model_validate(payload)
        )
    except ValidationError as err:
        first = err.errors(include_input=False, include_url=False)[0]
        path = loc_path(first["loc"])
        findings.append(Finding("invalid", path, expected=first["type"], breaking=True))
        if report is not None:
            report.record(endpoint, findings, refused=True)
        raise UnexpectedPayload(
            f"{endpoint}: upstream value at {path} does not fit the wire model ({first['type']})",
            field_path=path,
            endpoint=endpoint,
        ) from None
    if report is not None:
        report.record(endpoint, findings)
    return parsed


def loc_path(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a field path: list indexes become ``[]``."""
    path = ""
    for part in loc:
        path = f"{path}[]" if isinstance(part, int) else _join(path, part)
    return path or ROOT


__all__ = [
    "ROOT",
    "DriftReport",
    "EndpointDrift",
    "FieldSpec",
    "Finding",
    "FindingKind",
    "JsonType",
    "ModelSpec",
    "Observation",
    "Shape",
    "check",
    "check_list",
    "compare",
    "json_type",
    "loc_path",
    "model_spec",
    "shape_of",
]
