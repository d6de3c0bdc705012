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
from operator import itemgetter
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

    Every object of the payload is compared, none is sampled, but an object is compared against
    its model once per distinct *shape*: its keys and the Python type of each value, read at C
    speed (``tuple(obj)``, ``map(type, ...)``). The shape decides every finding at that level
    (an unknown key, a missing field, a retyped value) and which values hold nested objects or
    arrays to visit; what it decides is worked out once (:func:`compare_walk`'s rules at one
    level) and kept per model.

    The payload is gone through a level at a time (:func:`_batch_values`): every value at one
    path (the items of all the arrays at ``entry[].resource.identifier[]``, say) is taken
    together, grouped by shape, and each group's findings are made once and its nested values
    gathered for the next level, so a bundle of a thousand resources of a few shapes costs a
    few comprehensions per path rather than a call per object. The walk keeps the first of
    equal-keyed findings it meets; when two values at one path would give different findings
    under one key (a field a string in one item and a boolean in another), the order decides,
    and the payload is compared again object by object in the walk's order
    (:func:`compare_ordered`). The answer is exactly :func:`compare_walk`'s.
    """
    found: dict[tuple[str, str], Finding] = {}
    shape = _array_of(model) if many else _object_of(model)
    if _one_value(payload, shape, "", True, found):
        return compare_ordered(payload, model, many=many)
    return sorted(found.values(), key=lambda f: (f.path, f.kind))


def compare_ordered(payload: Any, model: type[BaseModel], *, many: bool = False) -> list[Finding]:
    """:func:`compare` one object at a time in the walk's order, with the same shape memo."""
    found: dict[tuple[str, str], Finding] = {}
    if many:
        _fast_value(payload, _array_of(model), "", True, found)
    else:
        _fast_value(payload, _object_of(model), "", True, found)
    return sorted(found.values(), key=lambda f: (f.path, f.kind))


def compare_walk(payload: Any, model: type[BaseModel], *, many: bool = False) -> list[Finding]:
    """:func:`compare` by walking every value against the model's spec: the rules themselves,
    which :func:`compare`'s shape memo applies once per shape (the tests hold the two equal)."""
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


# --- the shape memo -------------------------------------------------------------------------------

_OBJECT, _ARRAY = 1, 2
"""What a value holds to visit: an object to compare with a model, an array to go through."""

PLANS_PER_MODEL = 1024
"""Distinct object shapes remembered per model: an upstream that sends dynamic keys (each
object a new shape) is still compared in full, its shapes beyond this many not remembered."""

_Step = tuple[Any, ...]
"""``(0, kind, key, expected, actual, breaking)``: a finding at ``path.key`` (``key`` None:
at ``path`` itself); ``(_OBJECT, key, model)``; ``(_ARRAY, key, item_shape, required, dict_model)``, where
``dict_model`` is the model a ``dict`` item is compared with (None: a dict item is not visited
or is retyped)."""


@cache
def _object_of(model: type[BaseModel]) -> Shape:
    return Shape(frozenset({"object"}), model=model)


@cache
def _array_of(model: type[BaseModel]) -> Shape:
    return Shape(frozenset({"array"}), item=_object_of(model))


_object_plans: dict[type[BaseModel], dict[tuple[Any, ...], tuple[_Step, ...]]] = {}
_value_plans: dict[tuple[int, type, bool], tuple[int, _Step | None]] = {}
_shapes_seen: dict[int, Shape] = {}
"""The shapes ``_value_plans`` is keyed by (their ids), kept alive so an id is never reused."""


def _value_plan(shape: Shape, cls: type, value: Any, required: bool) -> tuple[int, _Step | None]:
    """For a value of Python type ``cls`` where ``shape`` is expected: what to visit in it
    (``_OBJECT``, ``_ARRAY`` or 0) and the retyped finding it makes, if any (``required``
    says whether it breaks)."""
    key = (id(shape), cls, required)
    plan = _value_plans.get(key)
    if plan is None:
        kind = json_type(value)
        if not shape.accepts(kind):
            plan = (0, (0, "retyped", None, shape.expected(), kind, required))
        elif kind == "object" and shape.model is not None:
            plan = (_OBJECT, None)
        elif kind == "array" and shape.item is not None:
            plan = (_ARRAY, None)
        else:
            plan = (0, None)
        _shapes_seen.setdefault(id(shape), shape)
        _value_plans[key] = plan
    return plan


def _emit(step: _Step, path: str, found: dict[tuple[str, str], Finding]) -> None:
    _, kind, key, expected, actual, breaking = step
    where = path if key is None else _join(path, key)
    if kind == "retyped":  # the walk names a retyped payload itself ``$``
        where = where or ROOT
    found.setdefault((kind, where), Finding(kind, where, expected, actual, breaking))


def _fast_value(
    value: Any, shape: Shape, path: str, required: bool, found: dict[tuple[str, str], Finding]
) -> None:
    visit, finding = _value_plan(shape, type(value), value, required)
    if finding is not None:
        _emit(finding, path, found)
    elif visit == _OBJECT:
        _fast_object(value, shape.model, path, found)  # type: ignore[arg-type]
    elif visit == _ARRAY:
        _fast_array(value, shape.item, path, required, found)  # type: ignore[arg-type]


def _fast_array(
    items: Sequence[Any],
    shape: Shape,
    path: str,
    required: bool,
    found: dict[tuple[str, str], Finding],
) -> None:
    where = f"{path}[]"
    for item in items:
        visit, finding = _value_plan(shape, type(item), item, required)
        if finding is not None:
            _emit(finding, where, found)
        elif visit == _OBJECT:
            _fast_object(item, shape.model, where, found)  # type: ignore[arg-type]
        elif visit == _ARRAY:
            _fast_array(item, shape.item, where, required, found)  # type: ignore[arg-type]


def _fast_object(
    obj: Mapping[str, Any],
    model: type[BaseModel],
    path: str,
    found: dict[tuple[str, str], Finding],
) -> None:
    plans = _object_plans.get(model)
    if plans is None:
        plans = _object_plans.setdefault(model, {})
    signature = (*obj, *map(type, obj.values()))
    plan = plans.get(signature)
    if plan is None:
        plan = _object_plan(obj, model)
        if len(plans) < PLANS_PER_MODEL:
            plans[signature] = plan
    for step in plan:
        what = step[0]
        if what == _OBJECT:
            key = step[1]
            _fast_object(obj[key], step[2], _join(path, key), found)
        elif what == _ARRAY:
            key = step[1]
            _fast_array(obj[key], step[2], _join(path, key), step[3], found)
        else:
            _emit(step, path, found)


def _object_plan(obj: Mapping[str, Any], model: type[BaseModel]) -> tuple[_Step, ...]:
    """:func:`_walk_object`'s rules at one level, as steps: what an object of this shape shows
    and which of its values to visit (in the walk's order)."""
    spec = model_spec(model)
    steps: list[_Step] = []
    for name, value in obj.items():
        if name not in spec.known_keys:
            steps.append((0, "unknown", str(name), None, json_type(value), False))
    for fld in spec.fields:
        present = next((k for k in fld.keys if k in obj), None)
        if present is None:
            if fld.required:
                steps.append((0, "missing", fld.keys[0], None, None, True))
            continue
        value = obj[present]
        visit, finding = _value_plan(fld.shape, type(value), value, fld.required)
        if finding is not None:
            steps.append((0, finding[1], present, *finding[3:]))
        elif visit == _OBJECT:
            steps.append((_OBJECT, present, fld.shape.model))
        elif visit == _ARRAY:
            item = fld.shape.item
            assert item is not None  # noqa: S101 - _value_plan visits arrays with an item shape
            dicts = item.model if item.model is not None and item.accepts("object") else None
            steps.append((_ARRAY, present, item, fld.required, dicts))
    return tuple(steps)


# --- a level at a time --------------------------------------------------------------------------


def _batch_emit(step: _Step, path: str, found: dict[tuple[str, str], Finding]) -> bool:
    """:func:`_emit`, answering True when a different finding already holds the key (the walk's
    order would decide which one stays)."""
    _, kind, key, expected, actual, breaking = step
    where = path if key is None else _join(path, key)
    if kind == "retyped":
        where = where or ROOT
    finding = Finding(kind, where, expected, actual, breaking)
    return found.setdefault((kind, where), finding) != finding


FEW = 4
"""Up to this many values at one path are compared one by one: grouping them costs more."""


def _one_value(
    value: Any, shape: Shape, path: str, required: bool, found: dict[tuple[str, str], Finding]
) -> bool:
    """One value at ``path`` compared, as :func:`_fast_value` compares it; True when findings
    clash."""
    visit, finding = _value_plan(shape, type(value), value, required)
    if finding is not None:
        return _batch_emit(finding, path, found)
    if visit == _OBJECT:
        return _one_object(value, shape.model, path, found)  # type: ignore[arg-type]  # _OBJECT: it has a model
    if visit != _ARRAY or not value:
        return False
    item_shape: Shape = shape.item  # type: ignore[assignment]  # _ARRAY: it has an item
    items = value if type(value) is list else list(value)
    where = f"{path}[]"
    if len(items) > FEW:
        return _batch_values(items, item_shape, where, required, found)
    for item in items:
        visit, finding = _value_plan(item_shape, type(item), item, required)
        if finding is not None:
            if _batch_emit(finding, where, found):
                return True
        elif visit == _OBJECT:
            if _one_object(item, item_shape.model, where, found):  # type: ignore[arg-type]  # _OBJECT: it has a model
                return True
        elif visit == _ARRAY and _one_value(item, item_shape, where, required, found):
            return True
    return False


def _batch_values(
    values: list[Any],
    shape: Shape,
    path: str,
    required: bool,
    found: dict[tuple[str, str], Finding],
) -> bool:
    """Every value at ``path`` (where ``shape`` is expected) compared, as :func:`_fast_value`
    compares each; True when findings clash (see :func:`compare`)."""
    if len(values) <= FEW:
        for value in values:  # noqa: SIM110 - any() of a generator costs a frame a call
            if _one_value(value, shape, path, required, found):
                return True
        return False
    classes = set(map(type, values))
    for cls in classes:
        same: list[Any] = values if len(classes) == 1 else [v for v in values if type(v) is cls]
        visit, finding = _value_plan(shape, cls, same[0], required)
        if finding is not None:
            if _batch_emit(finding, path, found):
                return True
        elif visit == _OBJECT:
            if _batch_objects(same, shape.model, path, found):  # type: ignore[arg-type]  # _ARRAY: it has an item
                return True
        elif visit == _ARRAY:
            items = [item for value in same for item in value]
            if items and _batch_values(items, shape.item, f"{path}[]", required, found):  # type: ignore[arg-type]  # _ARRAY: it has an item
                return True
    return False


def _one_object(
    obj: Mapping[str, Any],
    model: type[BaseModel],
    path: str,
    found: dict[tuple[str, str], Finding],
) -> bool:
    """One object at ``path`` compared with ``model``, as :func:`_fast_object` compares it;
    True when findings clash."""
    plans = _object_plans.get(model)
    if plans is None:
        plans = _object_plans.setdefault(model, {})
    signature = (*obj, *map(type, obj.values()))
    plan = plans.get(signature)
    if plan is None:
        plan = _object_plan(obj, model)
        if len(plans) < PLANS_PER_MODEL:
            plans[signature] = plan
    for step in plan:
        what = step[0]
        if what == _OBJECT:
            key = step[1]
            if _one_object(obj[key], step[2], f"{path}.{key}" if path else key, found):
                return True
        elif what == _ARRAY:
            items = obj[step[1]]
            if not items:
                continue
            where = f"{path}.{step[1]}[]" if path else f"{step[1]}[]"
            if type(items) is not list:
                items = list(items)
            if len(items) > FEW:
                if _batch_values(items, step[2], where, step[3], found):
                    return True
                continue
            dicts = step[4]
            for item in items:
                if dicts is not None and type(item) is dict:
                    # an object of the item model: what _value_plan says of a dict
                    if _one_object(item, dicts, where, found):
                        return True
                elif _one_value(item, step[2], where, step[3], found):
                    return True
        elif _batch_emit(step, path, found):
            return True
    return False


def _batch_objects(
    objs: list[Mapping[str, Any]],
    model: type[BaseModel],
    path: str,
    found: dict[tuple[str, str], Finding],
) -> bool:
    """Every object at ``path`` compared with ``model``, as :func:`_fast_object` compares each,
    a group of one shape at a time; True when findings clash."""
    if len(objs) <= FEW:
        for obj in objs:  # noqa: SIM110 - any() of a generator costs a frame a call
            if _one_object(obj, model, path, found):
                return True
        return False
    plans = _object_plans.get(model)
    if plans is None:
        plans = _object_plans.setdefault(model, {})
    signatures = [(*obj, *map(type, obj.values())) for obj in objs]
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]]
    if signatures.count(signatures[0]) == len(signatures):  # one shape: no hashing
        groups = {signatures[0]: objs}
    else:
        groups = {}
        for signature, obj in zip(signatures, objs, strict=True):
            group = groups.get(signature)
            if group is None:
                groups[signature] = [obj]
            else:
                group.append(obj)
    for signature, group in groups.items():
        plan = plans.get(signature)
        if plan is None:
            plan = _object_plan(group[0], model)
            if len(plans) < PLANS_PER_MODEL:
                plans[signature] = plan
        for step in plan:
            what = step[0]
            if what == _OBJECT:
                key = step[1]
                inner = list(map(itemgetter(key), group))
                if _batch_objects(inner, step[2], _join(path, key), found):
                    return True
            elif what == _ARRAY:
                key = step[1]
                items = [item for obj in group for item in obj[key]]
                if items and _batch_values(items, step[2], f"{_join(path, key)}[]", step[3], found):
                    return True
            elif _batch_emit(step, path, found):
                return True
    return False
