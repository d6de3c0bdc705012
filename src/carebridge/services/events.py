"""The event log's use cases: reading it back (``GET /events``), reading the audit log
(``GET /audit_events``), and announcing operational events.

A record's change is logged by the store in the transaction that stores it. What carebridge
notices about its own state (a failing stream, an upstream that starts to break, a webhook
disabled: ``domain.kinds.OPERATIONAL_EVENTS``) is announced here, through the
:class:`~carebridge.ports.events.Announcer` port.

Reading the log takes ``event.read``. An event about a kind of record the caller may not read
keeps its place without its entity, patient and diff (``domain.event_scopes.visible``), and the
patients the page names are audited as PHI access before it is answered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from carebridge.domain.event_scopes import visible
from carebridge.domain.events import EVENT_TYPES
from carebridge.errors import BadRequest
from carebridge.ports.events import Announcement, Announcer, EventLog
from carebridge.ports.records import AuditReader, AuditSink
from carebridge.services.records import Principal

__all__ = [
    "Announcement",
    "Announcer",
    "AuditReader",
    "EventLog",
    "Events",
    "LogPage",
    "LogQuery",
    "announce",
    "check_types",
    "read_audit",
]

ROUTE = "GET /events"
"""How the audit log names a read of the event log."""


@dataclass(frozen=True)
class LogQuery:
    """A page of a log: the entries after seq ``after``, at most ``limit``; for the event log,
    only ``types`` (event types or ``kind.*``; all for none)."""

    after: int = 0
    limit: int = 100
    types: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogPage:
    """A page of a log, and the ``after`` of the next page (None when this one is the last)."""

    data: list[dict[str, Any]]
    next_after: int | None

    def as_json(self) -> dict[str, Any]:
        return {"data": self.data, "next_after": self.next_after}


def _page(entries: list[dict[str, Any]], limit: int) -> LogPage:
    more = len(entries) == limit
    return LogPage(entries, entries[-1]["seq"] if entries and more else None)


def check_types(types: Iterable[str]) -> list[str]:
    """The event types asked for (blanks dropped), each a known type or ``kind.*``.

    Raises:
        BadRequest: an unknown type (``field`` ``types``).
    """
    wanted = [t for t in types if t]
    unknown = [t for t in wanted if t not in EVENT_TYPES and not t.endswith(".*")]
    if unknown:
        raise BadRequest("unknown event types: " + ", ".join(unknown), field="types")
    return wanted


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Events:
    """The event log's use cases over its ports."""

    log: EventLog
    audit: AuditSink
    clock: Callable[[], datetime] = _now

    async def read(self, principal: Principal, query: LogQuery) -> LogPage:
        """The caller's tenant's events after ``query.after`` in seq order (``event.read``),
        redacted to the caller's scopes; the patients they name are audited first.

        Raises:
            Forbidden: the caller lacks ``event.read``.
            BadRequest: an unknown event type.
        """
        principal.require("event.read")
        wanted = check_types(query.types)
        found = [
            visible(event, principal.scopes)
            for event in await self.log.events(
                principal.tenant_id, after=query.after, types=wanted, limit=query.limit
            )
        ]
        patients = sorted({e["patient_id"] for e in found if e.get("patient_id")})
        await self.audit.record(principal.tenant_id, principal.id, ROUTE, patients, self.clock())
        return _page(found, query.limit)


async def read_audit(reader: AuditReader, principal: Principal, query: LogQuery) -> LogPage:
    """Who accessed which patients' data, after ``query.after`` (``audit.read``).

    Raises:
        Forbidden: the caller lacks ``audit.read``.
    """
    principal.require("audit.read")
    return _page(
        await reader.events(principal.tenant_id, after=query.after, limit=query.limit),
        query.limit,
    )


async def announce(
    announcer: Announcer, tenant_id: str, found: Sequence[Announcement], *, at: datetime
) -> list[int]:
    """Log operational events (of ``domain.kinds.OPERATIONAL_EVENTS``: a record's events come
    from its change, never from here) at ``at``, in one transaction; returns their seqs. The
    same announcement twice (type, entity, instant and details) is logged once."""
    return await announcer.announce(tenant_id, found, at=at)
