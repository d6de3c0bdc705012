"""Drift detection: compare what the upstream sent with the wire model that should describe it.

::

    check(payload, Model, endpoint, report)          one JSON object  -> Model
    check_as(payload, Model, ReadAs, endpoint, ...)  one JSON object  -> ReadAs (compared as Model)
    check_list(payload, Model, endpoint, report)     a JSON array     -> list[Model]
      │
      ├─ compare(payload, Model) -> [Finding]        pure: each object against its model, once
      │                                              per shape (keys and value types; ADR 0020)
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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar, cast

from pydantic import BaseModel, TypeAdapter, ValidationError

from carebridge.connectors.carecloud.drift_compare import (
    ROOT,
    FieldSpec,
    Finding,
    FindingKind,
    JsonType,
    ModelSpec,
    Shape,
    _join,
    compare,
    json_type,
    model_spec,
    shape_of,
)
from carebridge.errors import UnexpectedPayload

M = TypeVar("M", bound=BaseModel)


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
        entry = self._endpoints.get(endpoint)
        if entry is None:
            entry = self._endpoints[endpoint] = EndpointDrift(endpoint)
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


def check_as(
    payload: Any,
    model: type[BaseModel],
    read_as: type[M],
    endpoint: str,
    report: DriftReport | None = None,
) -> M:
    """``payload`` compared with ``model`` (drift: every element ``model`` describes) and read as
    ``read_as``, a narrower model of only what the caller uses: the comparison covers the whole
    payload, the validation only what is read (a value the caller never reads is not parsed).

    Raises:
        UnexpectedPayload: as ``check``; a value read that does not validate is ``invalid``.
    """
    return cast(M, _check(payload, model, endpoint, report, many=False, adapter=None, read=read_as))


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
    read: type[BaseModel] | None = None,
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
            else (read or model).model_validate(payload)
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
    "check_as",
    "check_list",
    "compare",
    "json_type",
    "loc_path",
    "model_spec",
    "shape_of",
]
