"""What every v2 mapper shares: the recorder of consumed fields, validated reads, ids and the
patient reference of per-patient payloads."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar, cast

from pydantic import TypeAdapter, ValidationError

from carebridge.connectors.carecloud.mapping.common import Context
from carebridge.connectors.carecloud.wire.v2 import (
    AppointmentPatientPayload,
    PatientPayload,
    PatientSearchItem,
    V2Model,
    preferred_spelling,
    upstream_keys,
)
from carebridge.domain import (
    NPI,
    SSN,
    Email,
    LocationId,
    PatientId,
    PayerId,
    PhoneE164,
    ProviderId,
    ResourceId,
    ServiceTypeCode,
    Taxonomy,
    USState,
    VisitReasonId,
    ZipCode,
    to_money,
)
from carebridge.domain.values import LOINC, CountryCode, LanguageCode, PrefixedId, RaceCode
from carebridge.errors import UnexpectedPayload

T = TypeVar("T")
W = TypeVar("W", bound=V2Model)
R = TypeVar("R")

# --- the consumption recorder ------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Run:
    """What one mapping consumed and rejected, as upstream field paths."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.rejected: set[str] = set()

    def reject(self, obj: Any, name: str) -> None:
        """Mark field ``name`` of the tracked ``obj`` as read but left out (invalid)."""
        self.rejected.add(_field_path(obj, name))

    def reject_path(self, path: str) -> None:
        self.rejected.add(path)


class _Tracked:
    """A read-only view of a wire model that records the path of every field read through it.

    ``_Tracked(model, path, run)`` makes the view of ``model``'s own class (:func:`_view_class`):
    each field of the model is a property of that class that reads the field and records its
    path, so a read costs one small Python frame (an overridden ``__getattribute__`` made every
    read, slots included, go through Python several times: ~6x the cost). Any other name (an
    extra field, a method, a misspelt field) goes to :meth:`__getattr__`, which reads it the
    same way.
    """

    __slots__ = ("_cb_model", "_cb_path", "_cb_prefix", "_cb_run", "_cb_used", "_cb_values")

    _cb_model: V2Model
    _cb_values: dict[str, Any]
    """The model's ``__dict__`` (its fields' values), read without a lookup on the model."""
    _cb_prefix: str
    """The view's path followed by a dot (empty at the root): a field's path is this + its key."""
    _cb_path: str
    _cb_used: set[str]
    _cb_run: _Run

    def __new__(cls, model: V2Model, path: str, run: _Run) -> _Tracked:
        return _view(model, path, run)

    def __getattr__(self, name: str) -> Any:
        # Only names that are not fields of the model's class come here (extras, methods).
        model = self._cb_model
        value = getattr(model, name)
        path = self._cb_prefix + _key(model, name)
        if type(value) in _LEAVES:
            self._cb_used.add(path)
            return value
        return _wrap(value, path, self._cb_run)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("wire models are read-only")


_set = object.__setattr__

_LEAVES: frozenset[type] = frozenset({str, int, float, bool, type(None), Decimal, date, datetime})
"""Value types that are never a wire model nor hold one (read as they are)."""

_VIEWS: dict[type[V2Model], type[_Tracked]] = {}
"""Wire model class -> the class of its views."""


def _view(model: V2Model, path: str, run: _Run) -> _Tracked:
    """The view of ``model`` at ``path`` recording into ``run``."""
    cls = _VIEWS.get(type(model)) or _view_class(type(model))
    view: _Tracked = object.__new__(cls)
    _set(view, "_cb_model", model)
    _set(view, "_cb_values", model.__dict__)
    _set(view, "_cb_path", path)
    _set(view, "_cb_prefix", f"{path}." if path else "")
    _set(view, "_cb_used", run.used)
    _set(view, "_cb_run", run)
    return view


def _view_class(model: type[V2Model]) -> type[_Tracked]:
    """The view class of wire ``model``: a recording property per field."""
    fields = {name: _reader(model, name) for name in model.__pydantic_fields__}
    cls = type(f"_Tracked{model.__name__}", (_Tracked,), {"__slots__": (), **fields})
    _VIEWS[model] = cls
    return cls


def _reader(model: type[V2Model], name: str) -> property:
    """The recording property of field ``name``: its path is the view's prefix and the key the
    upstream sent it under (one key for most fields; the model's spelling says which of
    several)."""
    keys = upstream_keys(model, name)

    if len(keys) == 1:
        key = keys[0]

        def read(self: _Tracked) -> Any:
            try:
                value = self._cb_values[name]
            except KeyError:
                value = getattr(self._cb_model, name)
            if type(value) in _LEAVES:
                self._cb_used.add(self._cb_prefix + key)
                return value
            return _wrap(value, self._cb_prefix + key, self._cb_run)

    else:

        def read(self: _Tracked) -> Any:
            model = self._cb_model
            try:
                value = self._cb_values[name]
            except KeyError:
                value = getattr(model, name)
            path = self._cb_prefix + _key(model, name)
            if type(value) in _LEAVES:
                self._cb_used.add(path)
                return value
            return _wrap(value, path, self._cb_run)

    return property(read)


def _key(model: V2Model, name: str) -> str:
    """``model.upstream_key(name)``, read from the model's spelling without a method call
    (a validated model's spelling names every field)."""
    try:
        return model.__pydantic_private__["_spelling"][name]  # type: ignore[index,no-any-return]
    except (KeyError, TypeError):
        return model.upstream_key(name)


def _wrap(value: Any, path: str, run: _Run) -> Any:
    if isinstance(value, V2Model):
        return _view(value, path, run)
    if (
        isinstance(value, list | tuple)
        and value  # a list of models has one first (the generator below is the rare case)
        and (isinstance(value[0], V2Model) or any(isinstance(v, V2Model) for v in value))
    ):
        return [_wrap(v, f"{path}[]", run) for v in value]
    run.used.add(path)
    return value


def _track(model: W, run: _Run) -> W:
    """``model`` seen through a recorder; typed as the model so mappers stay type-checked."""
    return cast(W, _Tracked(model, "", run))


def _field_path(obj: Any, name: str) -> str:
    if isinstance(obj, _Tracked):
        model: V2Model = object.__getattribute__(obj, "_cb_model")
        return _join(object.__getattribute__(obj, "_cb_path"), model.upstream_key(name))
    return name


def _path_of(obj: Any) -> str:
    return str(object.__getattribute__(obj, "_cb_path")) if isinstance(obj, _Tracked) else ""


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple | dict) and not value)


def present_paths(model: V2Model, path: str = "") -> set[str]:
    """The paths of every field of ``model`` (extras included) that carries a value."""
    found: set[str] = set()
    _collect(model, path, found)
    return found


PATH_PLANS = 4096
"""Distinct (path, spelling) pairs whose field paths :func:`_collect` remembers."""

_Paths = tuple[tuple[tuple[str, str], ...], frozenset[str], dict[str, str]]
"""The (field, path) pairs, the given fields they were made from, and the spelling (kept, so
its ``id`` in the key is not reused meanwhile)."""

_path_plans: dict[tuple[str, int], _Paths] = {}


def _field_paths(
    model: V2Model, path: str, spelling: dict[str, str]
) -> tuple[tuple[str, str], ...]:
    """(field, path) of each field ``model`` was given, under ``path``: the same for every model
    of one spelling and set of given fields (a validated model's spelling is shared per class and
    key set, and the key set decides which fields were given), so worked out once per path and
    spelling, and used when the given fields are those it was made from."""
    given = model.__pydantic_fields_set__
    key = (path, id(spelling))
    known = _path_plans.get(key)
    if known is not None and known[2] is spelling and known[1] == given:
        return known[0]
    prefix = f"{path}." if path else ""
    fields = type(model).__pydantic_fields__
    plan = tuple((name, prefix + spelling[name]) for name in given if name in fields)
    if known is None and len(_path_plans) < PATH_PLANS:
        _path_plans[key] = (plan, frozenset(given), spelling)
    return plan


def _collect(model: V2Model, path: str, found: set[str]) -> None:
    if model.__pydantic_extra__:
        _collect_walk(model, path, found)
        return
    private = model.__pydantic_private__
    spelling = private.get("_spelling") if private else None
    if not spelling:  # no field of several spellings, or made without validation: every
        spelling = preferred_spelling(type(model))  # key is the field's preferred one
    values = model.__dict__
    for name, where in _field_paths(model, path, spelling):
        value = values[name]
        if value is None:
            continue
        kind = type(value)
        if kind is str:
            if value:
                found.add(where)
        elif kind in _LEAVES:
            found.add(where)
        elif isinstance(value, V2Model):
            _collect(value, where, found)
        else:
            _present(value, where, found)


def _collect_walk(model: V2Model, path: str, found: set[str]) -> None:
    """:func:`_collect` for a model with extras: every field read."""
    fields = type(model).__pydantic_fields__
    values = model.__dict__
    extra = model.__pydantic_extra__
    for name in model.__pydantic_fields_set__:
        if name in fields:
            value = values[name]
            if value is None:
                continue
            key = _key(model, name)
        else:
            value = extra.get(name) if extra else None
            key = name
        kind = type(value)
        if kind is str:
            if value:
                found.add(f"{path}.{key}" if path else key)
        elif kind in _LEAVES:
            if value is not None:
                found.add(f"{path}.{key}" if path else key)
        else:
            _present(value, f"{path}.{key}" if path else key, found)


def _present(value: Any, path: str, found: set[str]) -> None:
    if isinstance(value, V2Model):  # never empty (a model equals no string), asked first: a
        _collect(value, path, found)  # model's ``==`` is pydantic's, in Python
    elif isinstance(value, list | tuple):
        if not value:
            return
        if isinstance(value[0], V2Model) or any(isinstance(v, V2Model) for v in value):
            where = f"{path}[]"
            for item in value:
                if isinstance(item, V2Model):
                    _collect(item, where, found)
                else:
                    _present(item, where, found)
        else:
            found.add(path)
    elif not _empty(value):
        found.add(path)


def _dropped(run: _Run, *wires: V2Model) -> tuple[str, ...]:
    present: set[str] = set()
    for wire in wires:
        present |= present_paths(wire)
    return tuple(sorted((present - run.used) | run.rejected))


def _valid(run: _Run, obj: Any, name: str, convert: Callable[[Any], R]) -> R | None:
    """Field ``name`` of tracked ``obj`` converted, or None when empty; an invalid value is
    rejected (it goes to ``dropped``) instead of failing the record."""
    value = getattr(obj, name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return convert(value)
    except (ValueError, TypeError):
        run.reject(obj, name)
        return None


def _first(*values: str | None) -> str | None:
    """The first non-empty of ``values``; every one is read (consumed) by the call."""
    return next((v for v in values if v is not None and v.strip()), None)


def _twin(run: _Run, obj: Any, name: str, twin: str, convert: Callable[[Any], R]) -> R | None:
    """Field ``name`` converted, else its ``twin`` (the same value under another key, such as
    ``race_code`` and ``race``); both are consumed, and only the one used can be rejected."""
    value = _valid(run, obj, name, convert)
    if value is not None:
        getattr(obj, twin)
        return value
    return _valid(run, obj, twin, convert)


def _adapter(annotation: Any) -> Callable[[Any], Any]:
    # pydantic-core's validator itself: ``TypeAdapter.validate_python`` only passes it its
    # defaults, through a Python frame of its own (~0.5 µs a value)
    return TypeAdapter(annotation).validator.validate_python


VALUES_KEPT = 4096
"""Distinct strings each remembering check (:func:`_remembered`) keeps the answer of."""


def _remembered(check: Callable[[Any], R]) -> Callable[[Any], R]:
    """``check``, with its answers for strings remembered (up to ``VALUES_KEPT``): codes,
    states, ZIP codes and NPIs recur from patient to patient, and a check's answer depends only
    on the string. Other inputs, and refusals, are checked every time."""
    seen: dict[str, R] = {}

    def checked(value: Any) -> R:
        if type(value) is not str:
            return check(value)
        try:
            return seen[value]
        except KeyError:
            answer = check(value)
            if len(seen) < VALUES_KEPT:
                seen[value] = answer
            return answer

    return checked


_email = _adapter(Email)
_ssn = _adapter(SSN)
_npi = _remembered(_adapter(NPI))
_phone_number = _adapter(PhoneE164)
_state = _remembered(_adapter(USState))
_zip = _remembered(_adapter(ZipCode))
_country = _remembered(_adapter(CountryCode))
_language = _remembered(_adapter(LanguageCode))
_race = _remembered(_adapter(RaceCode))
_taxonomy = _remembered(_adapter(Taxonomy))
_loinc = _remembered(_adapter(LOINC))
_service_type = _remembered(_adapter(ServiceTypeCode))


_RULE_FIELD = re.compile(r"(?:Value error, )?([a-z_][a-z0-9_.]*):")


def _build(factory: Callable[..., T], what: str, upstream_id: str, ctx: Context, **data: Any) -> T:
    """``factory(**data)``, with a domain validation error turned into ``UnexpectedPayload``."""
    try:
        return factory(**data)
    except ValidationError as err:
        first = err.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        if not where:  # a model rule: the domain's messages start with the field they are about
            named = _RULE_FIELD.match(first["msg"])
            where = named.group(1) if named else what
        raise UnexpectedPayload(
            f"v2 {what} {upstream_id} does not make a valid record: {where} ({first['type']})",
            field_path=where,
            endpoint=ctx.endpoint,
        ) from None


def _money(text: str | None) -> Decimal | None:
    return None if text is None or not str(text).strip() else to_money(text)


def _text(value: str | None) -> str:
    return "" if value is None else value.strip()


# --- ids -------------------------------------------------------------------------------------------


def patient_id(ctx: Context, chart_number: str) -> PatientId:
    """The carebridge id of the patient with ``chart_number`` (shared by every surface)."""
    return _patient_id(ctx.key("patient", chart_number.strip()))


@lru_cache(maxsize=8192)
def _patient_id(key: str) -> PatientId:
    """A patient's id from its key (a digest: the listing, the mapping and the crosswalk each
    ask for the same person's several times in a row)."""
    return PatientId.new(key)


_I = TypeVar("_I", bound=PrefixedId)


def _derived_id(kind: type[_I], key: str) -> _I:
    """``kind.new(key)``, memoised: the same key gives the same id, and each costs a SHA-256
    (providers, locations and payers recur on every page)."""
    return cast(_I, _new_id(kind, key))


@lru_cache(maxsize=8192)
def _new_id(kind: type[PrefixedId], key: str) -> PrefixedId:
    return kind.new(key)


def _provider_id(ctx: Context, upstream: int | None) -> ProviderId | None:
    return None if upstream is None else _derived_id(ProviderId, ctx.key("provider", str(upstream)))


def _location_id(ctx: Context, upstream: int | None) -> LocationId | None:
    return None if upstream is None else _derived_id(LocationId, ctx.key("location", str(upstream)))


def _resource_id(ctx: Context, upstream: int | None) -> ResourceId | None:
    return None if upstream is None else _derived_id(ResourceId, ctx.key("resource", str(upstream)))


def _visit_reason_id(ctx: Context, upstream: int | None) -> VisitReasonId | None:
    if upstream is None:
        return None
    return _derived_id(VisitReasonId, ctx.key("visit_reason", str(upstream)))


def _payer_id(ctx: Context, upstream: int) -> PayerId:
    return _derived_id(PayerId, ctx.key("payer", str(upstream)))


@dataclass(frozen=True)
class PatientRef:
    """The patient a per-patient payload belongs to (its route's ``{patient_id}``): ledgers,
    balances, insurances, documents and eligibility requests do not name the chart number."""

    v2_id: str
    chart_number: str

    @classmethod
    def of(cls, wire: PatientPayload | PatientSearchItem | AppointmentPatientPayload) -> PatientRef:
        """The reference of a patient payload."""
        return cls(v2_id=wire.id, chart_number=wire.chart_number)

    def patient_id(self, ctx: Context) -> PatientId:
        """The patient's carebridge id."""
        return patient_id(ctx, self.chart_number)


_SEPARATORS = re.compile(r"[\s-]+")


@lru_cache(maxsize=1024)
def _word(value: str | None) -> str:
    """A code word as the code tables key it (``"Legally Separated"`` -> ``legally_separated``);
    remembered, as the upstream repeats a few words."""
    return _SEPARATORS.sub("_", _text(value).lower())
