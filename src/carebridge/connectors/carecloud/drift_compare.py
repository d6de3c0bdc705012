"""Drift detection's pure half: what a wire model expects (:func:`model_spec`) and how a
payload differs from it (:func:`compare`); see ``drift.py`` for the whole flow.

Findings carry paths, JSON type names and pydantic error types, never values: payloads are PHI.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, PydanticUserError, TypeAdapter

from carebridge.connectors.carecloud.wire.v2 import upstream_keys

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
