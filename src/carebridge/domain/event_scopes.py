"""What of an event a reader may see: change events are filtered by the reader's scopes.

``event.read`` opens the change log, not the records it is about. An event about a record is
shown whole only to a reader that may read that kind of record (a ``patient.updated`` diff holds
addresses; a ``payment.posted`` one, amounts): to any other reader it keeps its place in the log
(``id``, ``seq``, ``type``, ``kind``, the instants) with ``entity_id``, ``patient_id`` and
``diff`` set to null and ``redacted`` true, so a cursor over the log never sees a gap.
Operational events (``upstream.drift``, ``integration.degraded``, ``webhook.disabled``) are
about no record and are shown whole.

A webhook subscription takes only the event types its creating key may read, and its deliveries
are filtered like ``GET /events`` with the scopes the key had when it subscribed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from carebridge.domain.events import EVENT_TYPES
from carebridge.domain.kinds import KINDS

KIND_SCOPES: Final = {k.name: k.read_scope for k in KINDS.values() if k.phi}
"""The scope that guards the records each kind of event is about (the same scope a read of that
kind needs through the API); other kinds (``stream``, ``endpoint``, ``webhook``) are
operational."""

TYPE_KINDS: Final = frozenset(t.split(".", 1)[0] for t in EVENT_TYPES)
"""The kinds that prefix event types (``appointment`` of ``appointment.created``, ...)."""


def allows(scopes: Iterable[str], scope: str) -> bool:
    """Whether ``scopes`` cover ``scope`` (``admin`` covers every scope)."""
    granted = frozenset(scopes)
    return "admin" in granted or scope in granted


def kind_scope(kind: str) -> str | None:
    """The scope an event about a ``kind`` record needs, None for an operational event."""
    return KIND_SCOPES.get(kind)


def type_scope(event_type: str) -> str | None:
    """The scope a subscription to ``event_type`` (or ``kind.*``) needs, None if operational."""
    return kind_scope(event_type.split(".", 1)[0])


def unreadable(scopes: Iterable[str], event_types: Iterable[str]) -> dict[str, str]:
    """The event types (or ``kind.*`` patterns; ``*`` is every type) that ``scopes`` may not
    read, each with the scope it needs."""
    granted = frozenset(scopes)
    missing: dict[str, str] = {}
    for event_type in event_types:
        named = sorted(TYPE_KINDS) if event_type == "*" else [event_type]
        for one in named:
            scope = type_scope(one)
            if scope is not None and not allows(granted, scope):
                missing[event_type] = scope
                break
    return missing


def readable_types(scopes: Iterable[str]) -> tuple[str, ...]:
    """The subscription filter of "every type" for ``scopes``: ``()`` (every type) when they
    may read every kind, else one ``kind.*`` per kind they may read."""
    granted = frozenset(scopes)
    kinds = sorted(TYPE_KINDS)
    readable = [k for k in kinds if (s := kind_scope(k)) is None or allows(granted, s)]
    return () if readable == kinds else tuple(f"{k}.*" for k in readable)


def visible(event: dict[str, Any], scopes: Iterable[str]) -> dict[str, Any]:
    """``event`` (as ``GET /events`` answers it) as a reader with ``scopes`` may see it."""
    scope = kind_scope(str(event.get("kind")))
    if scope is None or allows(scopes, scope):
        return event | {"redacted": False}
    return event | {"entity_id": None, "patient_id": None, "diff": None, "redacted": True}
