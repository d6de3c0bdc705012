"""Addresses, phones and names of v2 payloads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from carebridge.connectors.carecloud.mapping.v2._base import (
    _country,
    _path_of,
    _phone_number,
    _Run,
    _state,
    _text,
    _valid,
    _zip,
)
from carebridge.connectors.carecloud.mapping.v2.codes import phone_kind
from carebridge.connectors.carecloud.wire.v2 import AddressPayload, PhonePayload
from carebridge.domain import Address, PersonName, Phone
from carebridge.domain.vocab import AddressUse, PhoneKind

# --- contacts --------------------------------------------------------------------------------------


def _coordinate(value: float | str | None) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return float(value)


def _address(run: _Run, a: AddressPayload, use: AddressUse) -> Address | None:
    state = _valid(run, a, "state_code", _state)
    if state is not None:
        a.state_name  # noqa: B018 - the same state's name, carried by its code
    country = _valid(run, a, "country", _country)
    latitude = _valid(run, a, "latitude", _coordinate)
    longitude = _valid(run, a, "longitude", _coordinate)
    if (latitude is None) != (longitude is None):
        run.reject(a, "latitude" if latitude is not None else "longitude")
        latitude = longitude = None
    data: dict[str, Any] = {
        "line1": _text(a.line1),
        "line2": _text(a.line2),
        "line3": _text(a.line3),
        "city": _text(a.city),
        "state": state,
        "zip_code": _valid(run, a, "zip_code", _zip),
        "county": _text(a.county_name),
        "latitude": latitude,
        "longitude": longitude,
        "use": use,
        "is_primary": bool(a.is_primary),
    }
    if country is not None:
        data["country"] = country
    try:
        return Address(**data)
    except ValidationError:
        run.reject_path(_path_of(a))
        return None


def _addresses(run: _Run, items: Sequence[AddressPayload], use: AddressUse) -> tuple[Address, ...]:
    found = (_address(run, a, use) for a in items)
    return _one_primary(run, [a for a in found if a is not None], items)


def _phone(run: _Run, p: PhonePayload, default_kind: PhoneKind = "other") -> Phone | None:
    number = _valid(run, p, "phone_number", _phone_number)
    if number is None:
        return None
    kind = phone_kind(p.phone_type) if p.phone_type else default_kind
    extension = _text(p.extension) or None
    try:
        return Phone(number=number, kind=kind, extension=extension, is_primary=bool(p.is_primary))
    except ValidationError:
        run.reject(p, "extension")
        return Phone(number=number, kind=kind, is_primary=bool(p.is_primary))


def _phones(run: _Run, items: Sequence[PhonePayload]) -> tuple[Phone, ...]:
    found = (_phone(run, p) for p in items)
    return _one_primary(run, [p for p in found if p is not None], items)


_Contact = TypeVar("_Contact", Address, Phone)


def _one_primary(run: _Run, items: list[_Contact], sources: Sequence[Any]) -> tuple[_Contact, ...]:
    """At most one primary: a later primary loses the flag (and is reported as dropped)."""
    kept: list[_Contact] = []
    seen = False
    for item in items:
        if item.is_primary and seen:
            run.reject_path(f"{_path_of(sources[0]).removesuffix('[]')}[].is_primary")
            item = item.model_copy(update={"is_primary": False})
        seen = seen or item.is_primary
        kept.append(item)
    return tuple(kept)


def _person_name(
    run: _Run,
    obj: Any,
    first: str | None,
    last: str | None,
    middle: str | None = None,
    *affixes: str,
) -> PersonName | None:
    """The name, when it has a first and a last part; ``affixes``: its prefix and suffix."""
    if not _text(first) or not _text(last):
        return None
    try:
        if affixes:
            prefix, suffix = affixes
            return PersonName(
                first=_text(first),
                last=_text(last),
                middle=_text(middle),
                prefix=prefix,
                suffix=suffix,
            )
        return PersonName(first=_text(first), last=_text(last), middle=_text(middle))
    except ValidationError:  # pragma: no cover - both parts were checked non-empty
        run.reject_path(_path_of(obj))
        return None
