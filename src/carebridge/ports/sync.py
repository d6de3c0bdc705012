"""The store as the sync engine sees it: pages written with their checkpoint, and tombstones.

A sync stream reads the upstream a page at a time. Each page is upserted, its changes become
events, and the stream's cursor advances, all in **one transaction** (:meth:`SyncStore.save_page`),
so a crash at any point leaves either the page with its cursor or neither. Records that vanished
from a full scan become tombstones (:meth:`SyncStore.tombstone`), with the stream's final cursor
in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from carebridge.domain.provenance import DomainModel

BeforeCommit = Callable[[], None]
"""Called inside the page's transaction, just before it commits (a test's fault hook: raising
rolls the page and its cursor back together)."""


class SyncStore(Protocol):
    """Cursors, checkpointed pages and tombstones of one deployment's store."""

    async def cursor(self, tenant_id: str, stream: str) -> dict[str, Any] | None:
        """The stream's last committed cursor (None before its first page)."""
        ...

    async def save_page(
        self,
        tenant_id: str,
        kind: str,
        records: Sequence[DomainModel],
        *,
        stream: str,
        cursor: dict[str, Any],
        fetched_at: datetime,
        before_commit: BeforeCommit | None = None,
    ) -> int:
        """Upsert ``records`` of ``kind``, append the events of their changes (and the webhook
        deliveries they owe) and store the stream's ``cursor``, in one transaction; returns how
        many records changed."""
        ...

    async def ids(
        self,
        tenant_id: str,
        kind: str,
        *,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
    ) -> set[str]:
        """The ids of the live (not tombstoned) records of ``kind``, optionally only those that
        start in ``[starts_from, starts_before)``."""
        ...

    async def tombstone(
        self,
        tenant_id: str,
        kind: str,
        ids: Collection[str],
        *,
        at: datetime,
        stream: str | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> int:
        """Mark records deleted (and store the stream's cursor, when given) in one transaction;
        returns how many live records became tombstones. No event is recorded: the event
        vocabulary has no ``*.deleted`` type yet."""
        ...
