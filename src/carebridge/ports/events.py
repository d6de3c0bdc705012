"""Ports of the event log as the use cases see it: announcing operational events, reading the log.

A record's change becomes events in the transaction that stores it (the store does that, see
``store.events``); the events about carebridge's own state (``integration.degraded``,
``upstream.drift``, ``webhook.disabled``: ``domain.kinds.OPERATIONAL_EVENTS``) are announced by
the use cases that notice them, through :class:`Announcer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Announcement:
    """One operational event: its type, what it is about (``kind``: ``stream``, ``endpoint``,
    ``webhook``; ``entity_id``: its name) and its details (ids and counts, never PHI)."""

    event_type: str
    kind: str
    entity_id: str
    details: dict[str, Any] = field(default_factory=dict)


class Announcer(Protocol):
    """Where operational events are logged (and their webhook deliveries queued)."""

    async def announce(
        self, tenant_id: str, announcements: Sequence[Announcement], *, at: datetime
    ) -> list[int]:
        """Log ``announcements`` at ``at``, in one transaction; returns their seqs. The same
        announcement twice (same type, entity, instant and details) is one event."""
        ...


class EventLog(Protocol):
    """A tenant's ordered event log, read back."""

    async def events(
        self, tenant_id: str, *, after: int, types: Sequence[str], limit: int
    ) -> list[dict[str, Any]]:
        """The tenant's events after seq ``after`` in seq order, of ``types`` (all for none;
        ``kind.*`` allowed), at most ``limit``."""
        ...
