"""Query parameters validated once per distinct query, not once per request.

FastAPI resolves a route's parameters anew for every request: for each declared parameter it
works out again, from the parameter's annotation, how to read it (its aliases, whether it is a
sequence, whether it is a model), then validates the value sent. A list route declares a dozen
query parameters, so on a cached read this costs more than the read itself (issue 13's profile:
about half of a request's CPU). The outcome depends on nothing but the parameters declared and
the values sent for their names, so :func:`install` memoizes FastAPI's
``request_params_to_args`` for query strings: per list of declared parameters, the values
validated for each distinct combination of the values sent under their names (the query's
other names are another check's business: ``api.app``'s refusal of undeclared parameters).

Only successful validations made only of immutable values are kept (a refusal is worked out
again, so its problem is built as before), within a bound per route (least recently used
first out). Headers that are plain optional text (``Authorization``, ``Cache-Control``,
``Idempotency-Key``) are read as they are, which is what FastAPI's validation answers for
them, and never kept (a credential stays out of the memo); any other header, path parameters
and bodies are resolved as FastAPI does. Installed once per process; a FastAPI without the
helpers it relies on is left as it is.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Optional

from fastapi.dependencies import utils as fastapi_utils
from starlette.datastructures import Headers, QueryParams

QUERIES_PER_ROUTE = 256
"""Distinct queries kept per list of declared parameters (least recently used out first)."""
ROUTES = 1024
"""Lists of declared parameters kept (apps built and dropped in one process: tests)."""

_IMMUTABLE = (str, int, float, bool, bytes, Decimal, datetime, date, time, timedelta, enum.Enum)
_Resolve = Callable[[Sequence[Any], Any], tuple[dict[str, Any], list[Any]]]


class _Declared:
    """One list of declared parameters: the names it reads, and the queries it validated.
    It holds the parameters themselves, so the ids it is found by stay theirs."""

    def __init__(self, fields: Sequence[Any], names: tuple[str, ...] | None) -> None:
        self.fields = tuple(fields)
        self.names = names  # None: not memoizable (a parameter model)
        self.seen: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self.plain = _plain_headers(fields)


_PLAIN = (str, str | None, Optional[str])  # noqa: UP045 - the spelling an annotation may have


def _plain_headers(fields: Sequence[Any]) -> tuple[tuple[str, str, Any], ...] | None:
    """(name, header, default) of each parameter when every one is a plain optional text
    header (``str | None``, no constraint, a default): FastAPI's validation of a header's text
    as ``str`` answers the text itself, so such headers are read as they are, never kept."""
    plain: list[tuple[str, str, Any]] = []
    for field in fields:
        info = field.field_info
        aliases = fastapi_utils._get_param_aliases(field)
        if (
            info.annotation not in _PLAIN
            or info.metadata
            or info.is_required()
            or len(aliases) != 1
            or fastapi_utils._get_param_model(field) is not None
            or not isinstance(field.default, str | None)
        ):
            return None
        plain.append((field.name, aliases[0][1], field.default))
    return tuple(plain)


def _names(fields: Sequence[Any]) -> tuple[str, ...] | None:
    names: list[str] = []
    for field in fields:
        if fastapi_utils._get_param_model(field) is not None:
            return None
        names.extend(alias for _, alias in fastapi_utils._get_param_aliases(field))
    return tuple(names)


def _kept(values: Mapping[str, Any]) -> bool:
    return all(value is None or isinstance(value, _IMMUTABLE) for value in values.values())


def memoized(resolve: _Resolve) -> _Resolve:
    """``resolve`` (FastAPI's ``request_params_to_args``), remembered for query strings."""
    declared: OrderedDict[tuple[int, ...], _Declared] = OrderedDict()

    def request_params_to_args(
        fields: Sequence[Any], received_params: Any
    ) -> tuple[dict[str, Any], list[Any]]:
        kind = type(received_params)
        if not fields or (kind is not QueryParams and kind is not Headers):
            return resolve(fields, received_params)
        ids = tuple(map(id, fields))
        entry = declared.get(ids)
        if entry is None:
            entry = declared[ids] = _Declared(fields, _names(fields))
            if len(declared) > ROUTES:
                declared.popitem(last=False)
        if kind is Headers:
            if entry.plain is None:
                return resolve(fields, received_params)
            get = received_params.get
            return {name: get(header, default) for name, header, default in entry.plain}, []
        if entry.names is None:
            return resolve(fields, received_params)
        sent = tuple(
            tuple(received_params.getlist(name)) if name in received_params else None
            for name in entry.names
        )
        values = entry.seen.get(sent)
        if values is not None:
            entry.seen.move_to_end(sent)
            return dict(values), []
        values, errors = resolve(fields, received_params)
        if not errors and _kept(values):
            entry.seen[sent] = dict(values)
            if len(entry.seen) > QUERIES_PER_ROUTE:
                entry.seen.popitem(last=False)
        return values, errors

    request_params_to_args.__wrapped__ = resolve  # type: ignore[attr-defined]
    return request_params_to_args


def install() -> bool:
    """Memoize FastAPI's query validation in this process (once); False when this FastAPI
    lacks what the memo relies on (it then validates every request, as it always did)."""
    current = getattr(fastapi_utils, "request_params_to_args", None)
    if current is None or getattr(current, "__wrapped__", None) is not None:
        return current is not None
    if not all(
        callable(getattr(fastapi_utils, name, None))
        for name in ("_get_param_model", "_get_param_aliases")
    ):
        return False
    fastapi_utils.request_params_to_args = memoized(current)  # type: ignore[assignment]
    return True
