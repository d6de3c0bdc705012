"""The change feed: a tenant's upstream changes stored (and announced) within seconds.

The full sync (:mod:`carebridge.sync.engine`) re-reads every stream, the appointment window
whole, every few minutes. Between two syncs the feed polls each tenant every
:data:`FEED_INTERVAL` seconds and reads only what may have changed since its last poll:

- **incremental kinds** (patients, claims, payments, remittances, statements: the kinds whose
  upstream read takes ``updated_since``, which is strict): ``updated_since`` the feed's own
  high-water mark, the newest ``updated_at`` it has read of the kind, on the upstream's own
  clock (less :data:`FEED_LAG`, none by default). Unlike the sync's mark it is not held back
  to the poll's start: a record stamped ahead of our clock would otherwise be read again at
  every poll, and a poll every few seconds cannot afford that. The price: a change stamped
  before such a record, or in the same instant as the newest one read but committed after the
  read, waits for the full sync, whose mark is held back and re-reads its lag. The first poll
  starts from the sync stream's mark, or from now when the kind was never synced (the full
  sync backfills; the feed is not a backfill).
- **appointments** (v2 lists them by date only, with no ``updated_since``): three narrow lists
  per poll, :func:`appointment_reads`: the practice's days around today in full (arrivals,
  check-outs, no-shows, confirmations), the appointments **created** since yesterday across the
  sync's window (bookings and the new halves of reschedules: v2 ``created_at_from``), and the
  **cancelled or rescheduled** ones across the window ahead (v2 ``status``). A change to an
  appointment further out that is neither (an edit of a visit weeks ahead) waits for the full
  sync's window read.

What a poll reads goes through ``SyncStore.save_page``, the sync's own write path: the store
upserts it, its changes become events with their deterministic identities and the webhook
deliveries they owe, in one transaction. A change the feed stored is no change when the full
sync reads it again, and an event is logged once whoever saw the change first.

The feed's requests go through the tenant's connection like the sync's: the same per-tenant
AIMD throttle and its budget pace them. Records a poll read unchanged from the poll before are
not written again (:class:`ChangeFeed` keeps each kind's last read digests, bounded by what one
poll reads).

One feed polls a tenant at a time, across processes: a poll first takes (or keeps) the
tenant's ``feed`` lease in the store; a process whose lease another holds skips the tenant.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import anyio
import orjson

from carebridge.domain import Appointment
from carebridge.domain.events import content
from carebridge.domain.kinds import Kind, streamed_kinds
from carebridge.domain.provenance import DomainModel
from carebridge.domain.vocab import AppointmentStatus
from carebridge.errors import SyncError, UpstreamError
from carebridge.ports.sync import SyncedUpstream, SyncStore, SyncUpstreams
from carebridge.sync.engine import WINDOW_AHEAD, WINDOW_BACK
from carebridge.sync.slices import read_slice

log = logging.getLogger("carebridge.feed")

FEED_INTERVAL = 2.0
"""Seconds between two polls of a tenant (the default; ``CAREBRIDGE_FEED_INTERVAL``)."""
FEED_LAG = timedelta(0)
"""How much before its mark an incremental poll re-reads. None by default: each record read
there is read again at every poll until a newer one moves the mark (the full sync's
five-minute lag re-reads what the feed's boundary may miss)."""
FEED_LEASE = timedelta(seconds=30)
"""How long a feed's hold on a tenant outlives its last poll."""
LEASE = "feed"
"""The sync-lease name the feed takes per tenant."""
TODAY_BACK = timedelta(days=1)
TODAY_AHEAD = timedelta(days=1)
"""The days around today read whole each poll (UTC days; a day either side covers the
practice's own today and tomorrow whatever its offset)."""
CREATED_BACK = timedelta(days=1)
"""Bookings are listed from the day before today (v2's ``created_at_from`` is a practice day)."""
CANCELLED = (AppointmentStatus.CANCELLED, AppointmentStatus.RESCHEDULED)


def stream_of(kind: Kind) -> str:
    """The name under which the feed keeps a kind's cursor (beside the sync's own)."""
    return f"feed:{kind.stream}"


def feed_kinds() -> tuple[Kind, ...]:
    """The kinds the feed polls: appointments, and every tenant-wide incremental stream."""
    return tuple(
        k for k in streamed_kinds() if k.stream_mode == "incremental" or k.stream_mode == "window"
    )


@runtime_checkable
class AppointmentChanges(Protocol):
    """The narrow appointment lists an upstream offers the feed."""

    def appointment_changes(
        self,
        start: date,
        end: date,
        *,
        created_from: date | None = None,
        statuses: tuple[AppointmentStatus, ...] = (),
    ) -> AsyncIterator[Appointment]: ...


@dataclass(frozen=True)
class Read:
    """One narrow appointment list: its days, and the upstream's filters."""

    start: date
    end: date
    created_from: date | None = None
    statuses: tuple[AppointmentStatus, ...] = ()


def appointment_reads(
    today: date,
    window: tuple[timedelta, timedelta] = (WINDOW_BACK, WINDOW_AHEAD),
) -> list[Read]:
    """The appointment lists one poll reads on UTC day ``today``: the days around it whole,
    what was created since the day before across the sync's window, and what is cancelled or
    rescheduled from today to the window's end."""
    back, ahead = window
    return [
        Read(today - TODAY_BACK, today + TODAY_AHEAD),
        Read(today - back, today + ahead, created_from=today - CREATED_BACK),
        Read(today, today + ahead, statuses=CANCELLED),
    ]


@dataclass
class KindResult:
    """What a poll did for one kind: records read, written (new or different from the last
    poll's read) and changed (each made events)."""

    read: int = 0
    written: int = 0
    changed: int = 0

    def as_json(self) -> dict[str, int]:
        return {"read": self.read, "written": self.written, "changed": self.changed}


@dataclass
class PollResult:
    """One poll of one tenant."""

    tenant_id: str
    kinds: dict[str, KindResult] = field(default_factory=dict)
    skipped: str | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.kinds.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "skipped": self.skipped,
            "errors": dict(self.errors),
            "kinds": {name: r.as_json() for name, r in self.kinds.items()},
        }


def _digest(record: DomainModel) -> str:
    data = content(record.model_dump(mode="json")) or {}
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


def _updated(record: DomainModel) -> datetime | None:
    value = record.__dict__.get("updated_at")
    return value if isinstance(value, datetime) else None


def _latest(known: datetime | None, other: datetime | None) -> datetime | None:
    if known is None or other is None:
        return known or other
    return max(known, other)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ChangeFeed:
    """The change feed of one deployment: :meth:`poll` one tenant now, :meth:`serve` every
    tenant every ``interval`` seconds."""

    store: SyncStore
    upstreams: SyncUpstreams
    clock: Callable[[], datetime] = _now
    interval: float = FEED_INTERVAL
    lag: timedelta = FEED_LAG
    window: tuple[timedelta, timedelta] = (WINDOW_BACK, WINDOW_AHEAD)
    kinds: tuple[Kind, ...] = field(default_factory=feed_kinds)
    page_size: int = 200
    holder: str = field(default_factory=lambda: f"feed:{secrets.token_hex(8)}")
    _last: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    async def poll(self, tenant_id: str) -> PollResult:
        """Read what changed upstream since the last poll and store it (events and deliveries
        with it); an upstream failure of one kind is reported and the other kinds still run."""
        result = PollResult(tenant_id)
        claim = await self.store.acquire(
            tenant_id, LEASE, self.holder, now=self.clock(), ttl=FEED_LEASE
        )
        if not claim.granted:
            result.skipped = "another feed polls this tenant"
            return result
        upstream = await self.upstreams.of(tenant_id)
        for kind in self.kinds:
            counts = result.kinds[kind.name] = KindResult()
            try:
                if kind.stream_mode == "window":
                    await self._appointments(upstream, tenant_id, kind, counts)
                else:
                    await self._incremental(upstream, tenant_id, kind, counts)
            except UpstreamError as err:
                result.errors[kind.name] = type(err).__name__
        return result

    async def release(self, tenant_ids: Iterable[str]) -> None:
        """Give the tenants' feed leases up (a process stopping)."""
        for tenant_id in tenant_ids:
            await self.store.release(tenant_id, LEASE, self.holder)

    async def _incremental(
        self, upstream: SyncedUpstream, tenant_id: str, kind: Kind, counts: KindResult
    ) -> None:
        stream = stream_of(kind)
        started = self.clock()
        own = _instant((await self.store.cursor(tenant_id, stream) or {}).get("high_water"))
        mark = own
        if mark is None:
            synced = await self.store.cursor(tenant_id, kind.stream or kind.name) or {}
            mark = _instant(synced.get("high_water")) or started
        newest: datetime | None = None
        records: list[DomainModel] = []
        async for record in read_slice(upstream, kind, since=mark - self.lag):
            newest = _latest(newest, _updated(record))
            records.append(record)
        # the upstream's clock, not held back to the poll's start (see the module's docstring)
        final = mark if newest is None else max(mark, newest)
        cursor = {"high_water": final.isoformat()}
        moved = own is None or final != mark
        await self._save(tenant_id, kind, stream, records, cursor, counts, force=moved)

    async def _appointments(
        self, upstream: SyncedUpstream, tenant_id: str, kind: Kind, counts: KindResult
    ) -> None:
        if not isinstance(upstream, AppointmentChanges):
            raise SyncError("the upstream lists no appointment changes")
        narrow = upstream
        polled = self.clock()
        seen: dict[str, DomainModel] = {}
        for read in appointment_reads(polled.astimezone(UTC).date(), self.window):
            async for record in narrow.appointment_changes(
                read.start, read.end, created_from=read.created_from, statuses=read.statuses
            ):
                seen[str(record.__dict__["id"])] = record
        cursor = {"polled_at": polled.isoformat()}
        await self._save(tenant_id, kind, stream_of(kind), list(seen.values()), cursor, counts)

    async def _save(
        self,
        tenant_id: str,
        kind: Kind,
        stream: str,
        records: Sequence[DomainModel],
        cursor: dict[str, Any],
        counts: KindResult,
        *,
        force: bool = False,
    ) -> None:
        """Store the records that differ from the last poll's read of them (each page with the
        kind's cursor); the cursor alone when it moved and nothing else did."""
        counts.read += len(records)
        key = (tenant_id, kind.name)
        last = self._last.get(key, {})
        digests = {str(r.__dict__["id"]): _digest(r) for r in records}
        fresh = [r for r in records if last.get(str(r.__dict__["id"])) != digests[r.__dict__["id"]]]
        if not fresh and not force:
            self._last[key] = digests
            return
        for start in range(0, max(len(fresh), 1), self.page_size):
            page = fresh[start : start + self.page_size]
            counts.changed += await self.store.save_page(
                tenant_id,
                kind.name,
                page,
                stream=stream,
                cursor=cursor,
                fetched_at=self.clock(),
            )
            counts.written += len(page)
        self._last[key] = digests

    async def serve(
        self,
        tenants: Callable[[], Awaitable[Sequence[str]]],
        *,
        stop: anyio.Event | None = None,
    ) -> None:
        """Poll every tenant, wait out the rest of ``interval``, repeat until ``stop`` is set
        (a background task); a poll in progress finishes first."""
        stop = stop or anyio.Event()
        polled: set[str] = set()
        try:
            while not stop.is_set():
                began = anyio.current_time()
                try:
                    for tenant_id in await tenants():
                        found = await self.poll(tenant_id)
                        polled.add(tenant_id)
                        for name, error in found.errors.items():
                            log.warning("feed %s/%s failed: %s", tenant_id, name, error)
                except Exception as err:  # noqa: BLE001 - the loop outlives one bad poll
                    log.error("feed poll failed: %s", type(err).__name__)
                rest = self.interval - (anyio.current_time() - began)
                with anyio.move_on_after(max(rest, 0.0)):
                    await stop.wait()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self.release(polled)
                except Exception as err:  # noqa: BLE001 - best effort: the lease lapses anyway
                    log.warning("feed lease release failed: %s", type(err).__name__)
