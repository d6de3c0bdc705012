"""The sync engine: one stream per entity, a page at a time, each page checkpointed with its cursor.

Streams run in dependency order (the practice's lists, patients, then what hangs off them). Each
reads the upstream through the ``Upstream`` port and writes through ``SyncStore.save_page``,
which upserts the page, appends the events of its changes and stores the stream's cursor in one
transaction: a crash loses at most the page in flight, and a rerun resumes from the cursor.

Four modes:

- **incremental** (patients, claims, payments, remittances, statements): ``updated_since`` the
  stream's high-water mark (the newest ``updated_at`` seen) less a lag. Re-reading the boundary is
  harmless: the store's change detection ignores a record whose content did not change, so it
  makes no event. A pass interrupted by a crash is resumed with the pass's own ``since``.
- **per patient** (encounters): the same, one patient at a time, each from its own mark (the
  newest ``updated_at`` read of that patient, saved with the page that holds its records); a
  patient without a mark (never read: a fresh store, or a patient the patients stream had not
  stored yet) is read in full. The cursor moves only past what was read and stored. The stream's
  cursor names the last patient whose encounters were saved, so a resumed pass skips those.
  Where the upstream has a Bulk export of the kind (:class:`BulkExporter`), the stream is one
  export instead, ``_since`` the last successful export's ``transactionTime`` (the cursor's
  ``bulk_since``); without Bulk, or when the export fails, it reads per patient as above.
  A kind read in full per patient (labs, immunizations, documents: not incremental) is swept:
  a patient's stored records its read did not return are tombstoned, after each page and, for
  the patients a Bulk export named (``patients_read``), after the pass.
- **window** (appointments): a full read of a date window (30 days back, 60 ahead); an
  appointment the store has in the window's interior that the read did not return is tombstoned.
  The diff is the store's (each page saves its ids as the stream's marks; ``SyncStore.sweep``
  tombstones the unmarked), so a pass holds a page in memory, whatever the window's size.
- **full** (charges, and providers, locations, resources, visit reasons with tombstones): the
  whole list, every pass; with tombstones, what vanished upstream is marked deleted.

Upstream failures (after the connector's own retries) are retried per stream from its cursor,
then reported; the other streams still run.

One sync per (tenant, stream) at a time, across processes: a stream runs only under its lease
in the store, renewed as it reads and with every page it saves. A second sync of a stream that
is running **skips** it (``StreamResult.skipped`` says why) rather than waiting: the one
running reads what there is to read. A sync killed with ``kill -9`` holds its lease until the
lease's time to live lapses (``LEASE_TTL``), unless a retry of the same job takes it over.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

from carebridge.domain.kinds import KINDS, StreamMode, streamed_kinds
from carebridge.domain.provenance import DomainModel
from carebridge.domain.values import PatientId
from carebridge.errors import SyncError, UpstreamError
from carebridge.errors import UnknownStream as UnknownStream
from carebridge.ports.sync import Hold, LeaseLost, SyncStore
from carebridge.ports.upstream import Upstream
from carebridge.sync.slices import LAG as LAG
from carebridge.sync.slices import read_slice

log = logging.getLogger(__name__)

PAGE_SIZE = 200
WINDOW_BACK = timedelta(days=30)
WINDOW_AHEAD = timedelta(days=60)
LEASE_TTL = timedelta(minutes=2)
"""How long a stream's lease outlives its holder's last renewal (a third of it between
renewals while the stream reads)."""

Mode = StreamMode
Phase = Literal["before_commit", "after_commit"]
OnPage = Callable[[str, int, Phase], None]
"""A fault hook for tests: ``(stream, page number, phase)``; ``before_commit`` runs inside the
page's transaction (raising rolls the page and its cursor back), ``after_commit`` right after."""


@dataclass(frozen=True)
class Stream:
    """One stream: the kind it writes, how it reads the upstream, whether it tombstones."""

    name: str
    kind: str
    mode: Mode
    method: str
    """The ``Upstream`` method that reads it."""
    tombstones: bool = False
    default: bool = True
    """Whether a sync that names no streams runs it (the others run only when named)."""


STREAMS: dict[str, Stream] = {
    k.stream: Stream(
        k.stream,
        k.name,
        k.stream_mode,
        k.upstream,
        tombstones=k.tombstones,
        default=k.synced_by_default,
    )
    for k in streamed_kinds()
    if k.stream is not None and k.stream_mode is not None
}
"""Every stream (from the registry of kinds), in the order a full sync runs them."""

DEFAULT_STREAMS: tuple[str, ...] = tuple(name for name, s in STREAMS.items() if s.default)
"""The streams a sync that names none runs (labs, immunizations and documents only when named:
each costs a Bulk export, or a list per patient without the Connector)."""


@dataclass
class StreamResult:
    """What one stream did: records read, changed (each made events), tombstoned; its pages,
    attempts, wall time, and the error that stopped it (after its retries), if any."""

    read: int = 0
    changed: int = 0
    tombstoned: int = 0
    pages: int = 0
    attempts: int = 0
    seconds: float = 0.0
    error: str | None = None
    done: bool = False
    skipped: str | None = None
    """Why the stream did not run (another sync holds its lease), if it did not."""

    def as_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "changed": self.changed,
            "tombstoned": self.tombstoned,
            "pages": self.pages,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "skipped": self.skipped,
        }


@dataclass
class SyncReport:
    """One sync run of one tenant, stream by stream."""

    tenant_id: str
    started_at: datetime
    streams: dict[str, StreamResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every stream finished."""
        return all(r.error is None for r in self.streams.values())

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.streams.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "started_at": self.started_at.isoformat(),
            "ok": self.ok,
            "streams": {name: r.as_json() for name, r in self.streams.items()},
        }


class Exported(Protocol):
    """One finished Bulk export: its snapshot instant and its records (read as they stream)."""

    transaction_time: datetime

    def records(self) -> AsyncIterator[Any]: ...


@runtime_checkable
class BulkExporter(Protocol):
    """An upstream that can export a kind's records changed since an instant (the connector's
    Bulk ``$export``): None when it has no Bulk for the kind; an ``UpstreamError`` when the
    export fails."""

    async def bulk_export(self, kind: str, since: datetime | None) -> Exported | None: ...


class Progress(Protocol):
    """Told of each stream's start, of every page, and of its end (a CLI draws bars)."""

    def __call__(self, stream: str, result: StreamResult) -> None: ...


def resolve(names: Iterable[str] | None) -> list[Stream]:
    """The streams named (the default ones for None), in run order; unknown names raise."""
    if names is None:
        return [s for s in STREAMS.values() if s.default]
    wanted = set(names)
    unknown = sorted(wanted - STREAMS.keys())
    if unknown:
        raise UnknownStream(f"unknown streams: {', '.join(unknown)} (known: {', '.join(STREAMS)})")
    return [s for s in STREAMS.values() if s.name in wanted]


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


def _updated(record: DomainModel) -> datetime | None:
    value = record.__dict__.get("updated_at")
    return value if isinstance(value, datetime) else None


def _latest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def high_water(previous: datetime | None, newest: datetime | None, started: datetime) -> datetime:
    """The next pass's mark: the newest ``updated_at`` read (so an upstream clock behind ours
    loses nothing), never later than the pass's start (an upstream that stamps records in the
    future must not make the next pass skip what changes until then). A pass that read no
    dated record (nothing changed, or the kind carries no ``updated_at``) marks its start."""
    if newest is None:
        return started
    return min(_latest(previous, newest) or newest, started)


@dataclass
class _Run:
    """One stream's pass: where it writes, how it checkpoints, what it counts."""

    store: SyncStore
    upstream: Upstream
    tenant_id: str
    stream: Stream
    clock: Callable[[], datetime]
    result: StreamResult
    page_size: int
    on_page: OnPage | None
    progress: Progress | None
    reconcile: timedelta | None = None
    hold: Hold | None = None
    renewed: datetime | None = None

    async def keep(self) -> None:
        """Renew the lease when a third of its time to live has passed since the last renewal
        (a long read between pages); :class:`LeaseLost` when another sync has taken it."""
        hold = self.hold
        if hold is None:
            return
        now = self.clock()
        if self.renewed is not None and now - self.renewed < hold.ttl / 3:
            return
        if not await self.store.renew(self.tenant_id, self.stream.name, hold, now=now):
            raise LeaseLost(f"another sync took {self.stream.name} over")
        self.renewed = now

    def since(self, high: datetime | None, lag: timedelta) -> datetime | None:
        """Where a new incremental pass starts: the high-water mark less the lag, or further
        back for a reconciliation sweep (which re-reads its whole window)."""
        since = None if high is None else high - lag
        if since is not None and self.reconcile is not None:
            since = min(since, self.clock() - self.reconcile)
        return since

    def read(
        self, *, patient_id: PatientId | None = None, since: datetime | None = None
    ) -> AsyncIterator[DomainModel]:
        """The stream's kind read from the upstream (:func:`~carebridge.sync.slices.read_slice`,
        as the read path reads it)."""
        return read_slice(
            self.upstream, KINDS[self.stream.kind], patient_id=patient_id, since=since
        )

    async def save(
        self,
        records: Sequence[DomainModel],
        cursor: dict[str, Any],
        marks: dict[str, datetime] | None = None,
    ) -> None:
        self.result.pages += 1
        page = self.result.pages
        hook = self.on_page

        def before_commit() -> None:
            if hook is not None:
                hook(self.stream.name, page, "before_commit")

        fetched_at = self.clock()
        changed = await self.store.save_page(
            self.tenant_id,
            self.stream.kind,
            records,
            stream=self.stream.name,
            cursor=cursor,
            fetched_at=fetched_at,
            before_commit=before_commit,
            hold=self.hold,
            marks=marks,
        )
        self.renewed = fetched_at
        self.result.read += len(records)
        self.result.changed += changed
        if hook is not None:
            hook(self.stream.name, page, "after_commit")
        if self.progress is not None:
            self.progress(self.stream.name, self.result)

    async def pages(
        self,
        records: AsyncIterator[DomainModel],
        cursor: Callable[[], dict[str, Any]],
        seen: Callable[[DomainModel], None],
    ) -> list[DomainModel]:
        """Save full pages as they fill (each with ``cursor()``); returns the remainder."""
        batch: list[DomainModel] = []
        async with _closing(records):
            async for record in records:
                seen(record)
                batch.append(record)
                await self.keep()
                if len(batch) >= self.page_size:
                    await self.save(batch, cursor())
                    batch = []
        return batch

    # --- the modes ------------------------------------------------------------------------

    async def incremental(self, lag: timedelta) -> None:
        previous = await self.store.cursor(self.tenant_id, self.stream.name) or {}
        high = _instant(previous.get("high_water"))
        resumed = previous.get("pass")
        if isinstance(resumed, dict):
            since = _instant(resumed.get("since"))
            newest = _instant(resumed.get("seen"))
        else:
            since = self.since(high, lag)
            newest = None
        started = self.clock()

        def note(record: DomainModel) -> None:
            nonlocal newest
            newest = _latest(newest, _updated(record))

        def in_pass() -> dict[str, Any]:
            return {"high_water": _iso(high), "pass": {"since": _iso(since), "seen": _iso(newest)}}

        rest = await self.pages(self.read(since=since), in_pass, note)
        final = high_water(high, newest, started)
        await self.save(rest, {"high_water": _iso(final), "completed_at": _iso(self.clock())})

    async def per_patient(self, lag: timedelta) -> None:
        """Each known patient from its own mark (in full without one); each page saves the
        marks of the patients whose records it holds, so a patient is marked only once what
        was read of it is stored."""
        previous = await self.store.cursor(self.tenant_id, self.stream.name) or {}
        if isinstance(self.upstream, BulkExporter) and await self.bulk(self.upstream, previous):
            return
        kept = {"bulk_since": previous["bulk_since"]} if "bulk_since" in previous else {}
        resumed = previous.get("pass")
        after: str | None = None
        if isinstance(resumed, dict) and isinstance(resumed.get("after"), str):
            after = resumed["after"]
        started = self.clock()
        marks = await self.store.marks(self.tenant_id, self.stream.name)
        patients = sorted(await self.store.ids(self.tenant_id, "patient"))
        batch: list[DomainModel] = []
        read: dict[str, datetime] = {}
        sweeps = self.sweeps
        for patient in patients:
            if after is not None and patient <= after:
                continue
            mark = marks.get(patient)
            newest: datetime | None = None
            since = self.since(mark, lag)
            records = self.read(patient_id=PatientId(patient), since=since)
            async with _closing(records):
                async for record in records:
                    newest = _latest(newest, _updated(record))
                    batch.append(record)
                    await self.keep()
            await self.keep()
            read[patient] = high_water(mark, newest, started)
            after = patient
            if len(batch) >= self.page_size:
                cursor = {**kept, "pass": {"after": after}}
                await self.save(batch, cursor, read)
                if sweeps:
                    await self.sweep(read.keys(), _ids(batch), cursor)
                batch, read = [], {}
        done = {**kept, "completed_at": _iso(self.clock()), "patients": len(patients)}
        await self.save(batch, done, read)
        if sweeps:
            await self.sweep(read.keys(), _ids(batch), done)

    @property
    def sweeps(self) -> bool:
        """Whether a patient's read is its whole list (a per-patient kind read in full, not
        ``updated_since``), so that its stored records the read did not return are gone."""
        kind = KINDS[self.stream.kind]
        return kind.reach == "patient" and not kind.incremental

    async def sweep(
        self, patients: Collection[str], seen: set[str], cursor: dict[str, Any]
    ) -> None:
        """Tombstone the stored records of ``patients`` (each read in full) not in ``seen``: a
        record the upstream no longer lists (a document made inactive, a lab removed)."""
        if not patients:
            return
        stored = await self.store.ids(self.tenant_id, self.stream.kind, patient_ids=patients)
        if gone := stored - seen:
            await self._tombstone(gone, cursor)

    async def bulk(self, exporter: BulkExporter, previous: dict[str, Any]) -> bool:
        """The stream as one Bulk export since the last one's ``transactionTime``; False (the
        caller reads per patient) when the upstream has no Bulk for the kind or the export
        fails. Pages saved before a failure stay: the per-patient pass re-reads them unchanged."""
        since = _instant(previous.get("bulk_since"))
        in_pass = {"bulk_since": _iso(since), "pass": {"bulk": True}}
        if since is None:
            in_pass.pop("bulk_since")
        try:
            export = await exporter.bulk_export(self.stream.kind, since)
            if export is None:
                return False
            # the patients an export names are read in full (``patients_read``): what they no
            # longer list is swept once the pass is stored
            named: Collection[str] | None = getattr(export, "patients_read", None)
            seen: set[str] = set()
            sweeping = self.sweeps and named is not None

            def note(record: DomainModel) -> None:
                if sweeping:
                    seen.add(str(record.__dict__["id"]))

            rest = await self.pages(export.records(), lambda: in_pass, note)
        except UpstreamError as err:
            log.warning(
                "bulk export failed; reading per patient",
                extra={"stream": self.stream.name, "error": type(err).__name__},
            )
            return False
        final = {
            "bulk_since": _iso(export.transaction_time),
            "completed_at": _iso(self.clock()),
            "bulk": True,
        }
        await self.save(rest, final)
        if sweeping and named is not None:
            await self.sweep(named, seen, final)
        return True

    async def full(self) -> None:
        started = self.clock()
        seen: set[str] = set()

        def note(record: DomainModel) -> None:
            seen.add(str(record.__dict__["id"]))

        def in_pass() -> dict[str, Any]:
            return {"pass": {"started": _iso(started)}}

        rest = await self.pages(self.read(), in_pass, note)
        final = {"completed_at": _iso(self.clock()), "count": len(seen)}
        if not self.stream.tombstones:
            await self.save(rest, final)
            return
        await self.save(rest, in_pass())
        gone = await self.store.ids(self.tenant_id, self.stream.kind) - seen
        await self._tombstone(gone, final)

    async def window(self, back: timedelta, ahead: timedelta) -> None:
        """Read the window page by page; each page saves, as the stream's marks, the ids it
        holds. The diff is the store's: what the store has in the window's interior without a
        mark of this pass is tombstoned (:meth:`SyncStore.sweep`), so the pass holds a page in
        memory, never the window."""
        today = self.clock().astimezone(UTC).date()
        start, end = today - back, today + ahead
        window = {"start": start.isoformat(), "end": end.isoformat()}
        await self.store.forget_marks(self.tenant_id, self.stream.name)
        batch: list[DomainModel] = []
        appointments = self.upstream.appointments(start, end)
        async with _closing(appointments):
            async for record in appointments:
                batch.append(record)
                await self.keep()
                if len(batch) >= self.page_size:
                    await self._save_seen(batch, window)
                    batch = []
        await self._save_seen(batch, window)
        inner_from, inner_before = interior(start, end)
        self.result.tombstoned += await self.store.sweep(
            self.tenant_id,
            self.stream.kind,
            stream=self.stream.name,
            starts_from=inner_from,
            starts_before=inner_before,
            at=self.clock(),
            cursor={"window": window, "completed_at": _iso(self.clock())},
            hold=self.hold,
        )

    async def _save_seen(self, records: Sequence[DomainModel], window: dict[str, str]) -> None:
        """Save a page of a window pass with its ids as the stream's marks."""
        at = self.clock()
        seen = {str(r.__dict__["id"]): at for r in records}
        await self.save(records, {"pass": window}, seen)

    async def _tombstone(self, gone: set[str], cursor: dict[str, Any]) -> None:
        self.result.tombstoned += await self.store.tombstone(
            self.tenant_id,
            self.stream.kind,
            gone,
            at=self.clock(),
            stream=self.stream.name,
            cursor=cursor,
            hold=self.hold,
        )


def _ids(records: Sequence[DomainModel]) -> set[str]:
    return {str(record.__dict__["id"]) for record in records}


@contextlib.asynccontextmanager
async def _closing(records: AsyncIterator[Any]) -> AsyncIterator[None]:
    """Closes an upstream's records (an async generator's ``aclose``) when the pass stops
    reading them, a failed save included: its ``finally`` (cancelling the reads it started
    ahead) runs before the pass goes on, not whenever the generator is collected."""
    try:
        yield
    finally:
        close = getattr(records, "aclose", None)
        if close is not None:
            await close()


def interior(start: date, end: date) -> tuple[datetime, datetime]:
    """The instants a window read of practice days ``start``..``end`` surely covers, whatever
    the practice's UTC offset (within a day): a day in from each end."""
    return (
        datetime.combine(start + timedelta(days=1), datetime.min.time(), UTC),
        datetime.combine(end, datetime.min.time(), UTC),
    )


async def sync(
    store: SyncStore,
    upstream: Upstream,
    tenant_id: str,
    streams: Iterable[str] | None = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: Progress | None = None,
    on_page: OnPage | None = None,
    page_size: int = PAGE_SIZE,
    lag: timedelta = LAG,
    window: tuple[timedelta, timedelta] = (WINDOW_BACK, WINDOW_AHEAD),
    retries: int = 2,
    timer: Callable[[], float] = time.perf_counter,
    reconcile: timedelta | None = None,
    holder: str | None = None,
    supersedes: str | None = None,
    lease_ttl: timedelta = LEASE_TTL,
) -> SyncReport:
    """Sync one tenant's streams (all of them for None) from ``upstream`` into ``store``.

    A stream that fails upstream is retried ``retries`` times, each attempt resuming from its
    committed cursor; then its error is reported and the next stream runs. Anything but an
    upstream failure (a store error, a fault hook's exception) propagates.

    ``reconcile`` makes incremental streams re-read at least that far back (a reconciliation
    sweep): changes the cursor missed are stored, and announced, like any other; unchanged
    records make no event.

    Each stream runs under its lease, held as ``holder`` (a fresh name by default); a stream
    whose lease another sync holds is skipped, and so is the rest of a stream whose lease
    another sync took over. ``supersedes`` names a holder prefix taken over at once (an earlier
    attempt of the same job, which the job queue found dead).
    """
    if page_size < 1:
        raise SyncError("page_size must be at least 1")
    chosen = resolve(streams)
    report = SyncReport(tenant_id, clock())
    hold = Hold(holder or f"run:{secrets.token_hex(8)}", lease_ttl)
    for stream in chosen:
        result = report.streams[stream.name] = StreamResult()
        if progress is not None:
            progress(stream.name, result)
        began = timer()
        claim = await store.acquire(
            tenant_id, stream.name, hold.holder, now=clock(), ttl=lease_ttl, supersedes=supersedes
        )
        if not claim.granted:
            result.skipped = (
                f"another sync is running it (its lease runs to {_iso(claim.expires_at)})"
            )
        else:
            try:
                await _run_stream(
                    _Run(
                        store,
                        upstream,
                        tenant_id,
                        stream,
                        clock,
                        result,
                        page_size,
                        on_page,
                        progress,
                        reconcile,
                        hold,
                        clock(),
                    ),
                    lag,
                    window,
                    retries,
                )
            except LeaseLost:
                result.skipped = "another sync took it over (this one's lease had lapsed)"
            finally:
                await store.release(tenant_id, stream.name, hold.holder)
        result.seconds = timer() - began
        result.done = True
        if progress is not None:
            progress(stream.name, result)
    return report


async def _run_stream(
    run: _Run, lag: timedelta, window: tuple[timedelta, timedelta], retries: int
) -> None:
    """One stream's pass, retried from its cursor after an upstream failure."""
    result, stream = run.result, run.stream
    while True:
        result.attempts += 1
        try:
            if stream.mode == "incremental":
                await run.incremental(lag)
            elif stream.mode == "per_patient":
                await run.per_patient(lag)
            elif stream.mode == "window":
                await run.window(*window)
            else:
                await run.full()
        except UpstreamError as err:
            if result.attempts <= retries:
                continue
            result.error = f"{type(err).__name__}: {err}"
        break
