"""The store as the sync engine sees it: pages written with their checkpoint, and tombstones.

A sync stream reads the upstream a page at a time. Each page is upserted, its changes become
events, and the stream's cursor advances, all in **one transaction** (:meth:`SyncStore.save_page`),
so a crash at any point leaves either the page with its cursor or neither. Records that vanished
from a full scan become tombstones (:meth:`SyncStore.tombstone`), with the stream's final cursor
in the same transaction.

One sync per (tenant, stream) runs at a time across processes: a sync first takes the stream's
**lease** (:meth:`SyncStore.acquire`), renews it with every page it saves (a page whose lease
another sync has taken is rolled back: :class:`LeaseLost`) and releases it at the end. A holder
killed with ``kill -9`` stops renewing, and its lease lapses after its time to live.

A per-patient stream keeps one **mark** per patient (:meth:`SyncStore.marks`), saved with the
page that holds the patient's records: the stream's cursor moves only past what it read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from carebridge.domain.provenance import DomainModel
from carebridge.errors import LeaseLost as LeaseLost
from carebridge.ports.upstream import Upstream

BeforeCommit = Callable[[], None]
"""Called inside the page's transaction, just before it commits (a test's fault hook: raising
rolls the page and its cursor back together)."""


@dataclass(frozen=True)
class Hold:
    """A lease as its holder keeps it: who holds it, and how long each renewal extends it."""

    holder: str
    ttl: timedelta


@dataclass(frozen=True)
class Claim:
    """The outcome of :meth:`SyncStore.acquire`: whether the lease is the caller's, and who
    holds it until when."""

    granted: bool
    holder: str
    expires_at: datetime


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
        hold: Hold | None = None,
        marks: Mapping[str, datetime] | None = None,
    ) -> int:
        """Upsert ``records`` of ``kind``, append the events of their changes (and the webhook
        deliveries they owe), store the stream's ``cursor`` and the per-patient ``marks``, and
        renew the stream's lease (``hold``: :class:`LeaseLost` when another sync took it), in one
        transaction; returns how many records changed."""
        ...

    async def marks(self, tenant_id: str, stream: str) -> dict[str, datetime]:
        """A per-patient stream's mark of each patient it has read (none for the others)."""
        ...

    async def acquire(
        self,
        tenant_id: str,
        stream: str,
        holder: str,
        *,
        now: datetime,
        ttl: timedelta,
        supersedes: str | None = None,
    ) -> Claim:
        """Take the stream's lease for ``ttl`` unless another holder's is still live; a holder
        whose name starts with ``supersedes`` (an earlier attempt of the same job, found dead)
        is taken over at once."""
        ...

    async def renew(self, tenant_id: str, stream: str, hold: Hold, *, now: datetime) -> bool:
        """Extend the lease to ``now + ttl``; False when another sync has taken it."""
        ...

    async def release(self, tenant_id: str, stream: str, holder: str) -> None:
        """Give the lease up (nothing when another sync has taken it)."""
        ...

    async def ids(
        self,
        tenant_id: str,
        kind: str,
        *,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
        patient_ids: Collection[str] | None = None,
    ) -> set[str]:
        """The ids of the live (not tombstoned) records of ``kind``, optionally only those that
        start in ``[starts_from, starts_before)``, and only those of ``patient_ids``."""
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
        hold: Hold | None = None,
    ) -> int:
        """Mark records deleted (and store the stream's cursor, when given, and renew its lease,
        like :meth:`save_page`) in one transaction; returns how many live records became
        tombstones. No event is recorded: the event vocabulary has no ``*.deleted`` type yet."""
        ...

    async def forget_marks(self, tenant_id: str, stream: str) -> None:
        """Drop every mark of ``stream`` (a window stream's pass starts with none)."""
        ...

    async def sweep(
        self,
        tenant_id: str,
        kind: str,
        *,
        stream: str,
        starts_from: datetime,
        starts_before: datetime,
        at: datetime,
        cursor: dict[str, Any],
        hold: Hold | None = None,
    ) -> int:
        """Tombstone, inside the store, every live record of ``kind`` starting in
        ``[starts_from, starts_before)`` that ``stream`` has no mark of (a window stream marks
        what its pass read), then drop the stream's marks and store its cursor, in one
        transaction (renewing the lease, like :meth:`save_page`); returns how many became
        tombstones. Nothing of the window is held in memory, whatever its size."""
        ...


class DriftView(Protocol):
    """What an upstream connection has seen of its upstream's drift, per endpoint."""

    def as_dict(self) -> dict[str, Any]:
        """``{"drifted": bool, "endpoints": {endpoint: {"breaking": n, "missing": n,
        "retyped": n, ...}}}``."""
        ...


class SyncedUpstream(Upstream, Protocol):
    """A tenant's upstream as a sync reads it: the records, and the drift seen so far."""

    @property
    def drift(self) -> DriftView: ...


class SyncUpstreams(Protocol):
    """Each tenant's upstream connection."""

    async def of(self, tenant_id: str) -> SyncedUpstream: ...

    async def keep_learned(self, tenant_id: str) -> None:
        """Keep what the tenant's connection learned of its upstream (its throttle's budget)
        for the next process to start from."""
        ...


class FreshnessMarks(Protocol):
    """The read path's freshness of each slice (a kind, for the tenant or one patient)."""

    async def mark_refreshed(self, tenant_id: str, kind: str, scope: str, at: datetime) -> None:
        """The slice ``(kind, scope)`` (``*`` for the whole tenant) holds what the upstream
        had at ``at``."""
        ...


TenantIds = Callable[[], Awaitable[list[str]]]
"""Every onboarded tenant's id (what a sync of every tenant covers)."""
