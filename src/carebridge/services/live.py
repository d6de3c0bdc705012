"""Use cases that reach the upstream: fetch-through reads, real-time reads, and safe writes.

**Freshness.** Each slice of the store (a kind, for the whole tenant or for one patient) carries
the instant it was last read from the upstream. A read names the oldest data it accepts
(``max_age``); when the slice is older, or was never read, the read goes through the connector
first, keeps what it got, and then answers from the store. Tenant-wide slices refresh
incrementally (``updated_since`` the last refresh, less a lag), so a fresh read costs only the
changes. Refreshes of one slice are single-flight: concurrent readers wait for one fetch.

**Writes.** Every write runs under an optional ``Idempotency-Key`` with Stripe's semantics, is
entered in the write ledger before it is sent, and is closed there with the read-back's verdict
(``confirmed``, ``diverged``, ``pending``). The record written is kept in the store, so the next
read sees it. A rejection by the upstream (a taken slot, a scrubber error) is an answer too: it
is stored for replays. A request that died without an answer (the upstream unreachable) releases
its key, so a retry may run it; the connector's writes find an earlier success before repeating.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import anyio

from carebridge.domain import EligibilityCheck, EligibilityRequest, Slot
from carebridge.domain.kinds import KINDS, Kind
from carebridge.domain.provenance import DomainModel
from carebridge.domain.values import LocationId, PatientId, ResourceId, VisitReasonId
from carebridge.errors import BadRequest as BadRequest
from carebridge.errors import DomainError, UpstreamError
from carebridge.errors import KeyInFlight as KeyInFlight
from carebridge.errors import KeyReused as KeyReused
from carebridge.errors import NotConfigured as NotConfigured
from carebridge.ports.records import AuditSink, RecordPage, RecordStore
from carebridge.ports.upstream import Upstream, WriteResult
from carebridge.ports.writes import (
    LEASE,
    RESUMING,
    Idempotency,
    InFlight,
    Mismatch,
    RecordWriter,
    Replay,
    Start,
    WriteLedger,
)
from carebridge.services.records import NotFound, Principal
from carebridge.sync.slices import LAG as LAG
from carebridge.sync.slices import read_slice

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


class Upstreams(Protocol):
    """Each tenant's upstream, connected from its vaulted credentials."""

    async def of(self, tenant_id: str) -> Upstream: ...

    def health(self, tenant_id: str) -> dict[str, Any] | None: ...


Fetch = Callable[[Upstream, datetime | None], AsyncIterator[DomainModel]]
"""Reads one slice from the upstream; the instant is ``updated_since`` (None = everything)."""


@dataclass(frozen=True)
class Source:
    """How one kind is read from the upstream: for the whole tenant (``per_patient`` False)
    or one patient at a time; ``incremental`` sources take ``updated_since``."""

    fetch: Callable[[Upstream, PatientId | None, datetime | None], AsyncIterator[Any]]
    per_patient: bool = False
    incremental: bool = False
    max_age: timedelta | None = None


def _fetcher(
    kind: Kind,
) -> Callable[[Upstream, PatientId | None, datetime | None], AsyncIterator[Any]]:
    """Reads one slice of ``kind`` through its upstream method (see :mod:`domain.kinds`)."""

    def fetch(
        u: Upstream, patient_id: PatientId | None, since: datetime | None
    ) -> AsyncIterator[Any]:
        return read_slice(u, kind, patient_id=patient_id, since=since)

    return fetch


SOURCES: dict[str, Source] = {
    k.name: Source(
        _fetcher(k), per_patient=k.reach == "patient", incremental=k.incremental, max_age=k.max_age
    )
    for k in KINDS.values()
    if k.stored and k.reach != "window"
}
"""Every kind the store serves by reading through (the registry's stored kinds; appointments are
read by window), and how a stale slice of it is refreshed."""

PHI_KINDS = frozenset(k.name for k in KINDS.values() if k.phi)
"""Kinds whose reads are PHI access, audited with the patients they name."""


def read_scope(kind: str) -> str:
    """The scope a read of ``kind`` needs."""
    return KINDS[kind].read_scope


@dataclass(frozen=True)
class Freshness:
    """How old an answer may be: ``max_age`` (None = the kind's default)."""

    max_age: timedelta | None = None


@dataclass(frozen=True)
class Served:
    """A page and the age of the data behind it (None when it never came from upstream)."""

    page: RecordPage
    age: timedelta | None


@dataclass(frozen=True)
class Answer:
    """A write's HTTP answer: status and JSON body; ``replayed`` for an idempotent replay."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class Backend:
    """What reaching the upstream takes: the connections and the write-side tables."""

    upstreams: Upstreams
    writer: RecordWriter
    idempotency: Idempotency
    ledger: WriteLedger


@dataclass
class Live:
    """Reads and writes that reach the upstream, over the store."""

    records: RecordStore
    audit: AuditSink
    backend: Backend | None = None
    """The upstream side; without it, reads are served from the store as synced."""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    default_max_age: timedelta = timedelta(minutes=5)
    _locks: dict[tuple[str, str, str], anyio.Lock] = field(default_factory=dict)

    # --- reads --------------------------------------------------------------------------------

    async def refresh(
        self,
        tenant_id: str,
        kind: str,
        scope: str,
        fetch: Callable[[Upstream, datetime | None], AsyncIterator[Any]],
        max_age: timedelta,
        *,
        incremental: bool,
    ) -> timedelta:
        """Make one slice fresh enough (single-flight); returns its age."""
        lock = self._locks.setdefault((tenant_id, kind, scope), anyio.Lock())
        async with lock:
            last = await self.writer.refreshed_at(tenant_id, kind, scope)
            now = self.clock()
            if last is not None and max_age > timedelta(0) and now - last <= max_age:
                return now - last
            upstream = await self._upstreams().of(tenant_id)
            since = last - LAG if incremental and last is not None else None
            batch: list[DomainModel] = []
            async for record in fetch(upstream, since):
                batch.append(record)
                if len(batch) >= 200:
                    await self.writer.put(tenant_id, kind, batch, now)
                    batch = []
            await self.writer.put(tenant_id, kind, batch, now)
            await self.writer.mark_refreshed(tenant_id, kind, scope, now)
            return timedelta(0)

    def _backend(self) -> Backend:
        if self.backend is None:
            raise NotConfigured("this deployment has no upstream connection")
        return self.backend

    def _upstreams(self) -> Upstreams:
        return self._backend().upstreams

    @property
    def writer(self) -> RecordWriter:
        return self._backend().writer

    @property
    def idempotency(self) -> Idempotency:
        return self._backend().idempotency

    @property
    def ledger(self) -> WriteLedger:
        return self._backend().ledger

    async def _fresh(
        self,
        principal: Principal,
        kind: str,
        freshness: Freshness,
        *,
        patient_id: str | None,
        window: tuple[date, date] | None,
        refresh: bool,
    ) -> timedelta | None:
        """Refresh the slice a read needs when it is too old; returns the slice's age."""
        source = SOURCES.get(kind)
        if self.backend is None or (source is None and kind != "appointment"):
            return None
        tenant = principal.tenant_id
        default = source.max_age if source and source.max_age else self.default_max_age
        max_age = freshness.max_age if freshness.max_age is not None else default
        incremental = bool(source and source.incremental)
        if kind == "appointment":
            start, end = window or self._default_window()
            scope = f"{start.isoformat()}/{end.isoformat()}"

            def fetch(u: Upstream, since: datetime | None) -> AsyncIterator[Any]:
                del since  # appointments are read by window
                return u.appointments(start, end)

        elif source is not None and source.per_patient:
            if patient_id is None or await self.records.get(tenant, "patient", patient_id) is None:
                return None  # a tenant-wide chart read is served as synced
            scope, pid = f"patient:{patient_id}", PatientId(patient_id)
            chosen = source

            def fetch(u: Upstream, since: datetime | None) -> AsyncIterator[Any]:
                return chosen.fetch(u, pid, since)

        else:
            assert source is not None  # noqa: S101 - checked above
            scope, chosen = "*", source

            def fetch(u: Upstream, since: datetime | None) -> AsyncIterator[Any]:
                return chosen.fetch(u, None, since)

        if not refresh:
            last = await self.writer.refreshed_at(tenant, kind, scope)
            return None if last is None else self.clock() - last
        return await self.refresh(tenant, kind, scope, fetch, max_age, incremental=incremental)

    def _default_window(self) -> tuple[date, date]:
        today = self.clock().date()
        return today - timedelta(days=7), today + timedelta(days=30)

    async def page(
        self,
        principal: Principal,
        kind: str,
        route: str,
        *,
        freshness: Freshness = Freshness(),
        filters: dict[str, str],
        updated_since: datetime | None = None,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Served:
        """A page of the tenant's records of ``kind``. The first page refreshes the slice
        through the upstream when it is older than allowed; later pages (``cursor``) read the
        store as it is, so a walk through the pages is consistent."""
        principal.require(read_scope(kind))
        if "patient_id" in filters and kind != "patient":
            await self.patient_known(principal, filters["patient_id"])
        window = None
        if kind == "appointment":
            window = self._window(starts_from, starts_before)
        age = await self._fresh(
            principal,
            kind,
            freshness,
            patient_id=filters.get("patient_id"),
            window=window,
            refresh=cursor is None,
        )
        page = await self.records.page(
            principal.tenant_id,
            kind,
            filters=filters,
            updated_since=updated_since,
            starts_from=starts_from,
            starts_before=starts_before,
            limit=limit,
            cursor=cursor,
        )
        await self._audit_page(principal, kind, route, page)
        return Served(page, age)

    def _window(self, start: datetime | None, end: datetime | None) -> tuple[date, date]:
        default_start, default_end = self._default_window()
        first = start.date() if start else default_start
        last = end.date() if end else (first + (default_end - default_start))
        if last < first:
            raise BadRequest("end must not be before start", field="end")
        if (last - first).days > 366:
            raise BadRequest("an appointment window spans at most 366 days", field="end")
        return first, last

    async def one(
        self,
        principal: Principal,
        kind: str,
        route: str,
        entity_id: str,
        *,
        freshness: Freshness = Freshness(),
    ) -> tuple[dict[str, Any], timedelta | None]:
        """One record of the tenant (another tenant's id is not found)."""
        principal.require(read_scope(kind))
        age = await self._fresh(
            principal, kind, freshness, patient_id=None, window=None, refresh=True
        )
        record = await self.records.get(principal.tenant_id, kind, entity_id)
        if record is None:
            raise NotFound(f"no {kind} {entity_id}")
        await self._audit(principal, kind, route, [record])
        return record, age

    async def known(
        self,
        principal: Principal,
        refs: Sequence[tuple[str, str]],
        *,
        patient_id: str | None = None,
    ) -> None:
        """Raise :class:`NotFound` unless every (kind, id) is the caller's tenant's. A slice
        that may hold it (the practice's lists, the patient's chart) is refreshed first when
        stale, so a record the store has not seen yet is not refused."""
        for kind, entity_id in refs:
            if await self.records.get(principal.tenant_id, kind, entity_id) is not None:
                continue
            if kind in SOURCES and self.backend is not None:
                await self._fresh(
                    principal,
                    kind,
                    Freshness(),
                    patient_id=patient_id,
                    window=None,
                    refresh=True,
                )
                if await self.records.get(principal.tenant_id, kind, entity_id) is not None:
                    continue
            raise NotFound(f"no {kind.replace('_', ' ')} {entity_id}")

    async def patient_known(self, principal: Principal, patient_id: str) -> None:
        """Raise :class:`NotFound` unless the patient is the caller's tenant's."""
        if await self.records.get(principal.tenant_id, "patient", patient_id) is None:
            raise NotFound(f"no patient {patient_id}")

    async def eligibility(
        self, principal: Principal, route: str, patient_id: str, request: EligibilityRequest
    ) -> EligibilityCheck:
        """A real-time eligibility inquiry (never cached), audited."""
        principal.require("eligibility.read")
        await self.patient_known(principal, patient_id)
        upstream = await self._upstreams().of(principal.tenant_id)
        check = await upstream.check_eligibility(PatientId(patient_id), request)
        await self.audit.record(
            principal.tenant_id, principal.id, route, [patient_id], self.clock()
        )
        return check

    async def availability(
        self,
        principal: Principal,
        visit_reason_id: str,
        start: date,
        end: date,
        *,
        location_ids: Sequence[str] = (),
        resource_ids: Sequence[str] = (),
    ) -> list[Slot]:
        """Free slots, read in real time (availability is never served stale)."""
        principal.require("appointment.read")
        if end < start:
            raise BadRequest("end must not be before start", field="end")
        if (end - start).days > 31:
            raise BadRequest("an availability search spans at most 31 days", field="end")
        upstream = await self._upstreams().of(principal.tenant_id)
        return await upstream.availability(
            VisitReasonId(visit_reason_id),
            start,
            end,
            location_ids=tuple(LocationId(i) for i in location_ids),
            resource_ids=tuple(ResourceId(i) for i in resource_ids),
        )

    async def balances(self, principal: Principal, route: str, patient_id: str) -> list[Any]:
        """A patient's balances, read in real time."""
        principal.require("payment.read")
        await self.patient_known(principal, patient_id)
        upstream = await self._upstreams().of(principal.tenant_id)
        rows = await upstream.balance(PatientId(patient_id))
        await self.audit.record(
            principal.tenant_id, principal.id, route, [patient_id], self.clock()
        )
        return rows

    # --- what the writes need the connector to know --------------------------------------------

    async def prime_appointment(self, principal: Principal, record: dict[str, Any]) -> None:
        """Re-read the appointment's day, so the upstream connection knows its upstream id
        (and the store has its current state) before a verb is sent."""
        if self.backend is None:
            return
        start = datetime.fromisoformat(str(record["start"]))
        day = start.astimezone(UTC).date()
        upstream = await self._upstreams().of(principal.tenant_id)
        found = [
            a async for a in upstream.appointments(day - timedelta(days=1), day + timedelta(days=1))
        ]
        await self.writer.put(principal.tenant_id, "appointment", found, self.clock())

    async def prime_chart(self, principal: Principal, patient_id: str) -> None:
        """Re-read a patient's encounters (before signing one of them)."""
        if self.backend is None:
            return
        await self.refresh(
            principal.tenant_id,
            "encounter",
            f"patient:{patient_id}",
            lambda u, _s: u.encounters(patient_id=PatientId(patient_id)),
            timedelta(0),
            incremental=False,
        )

    async def prime_charges(self, principal: Principal, patient_id: str) -> None:
        """Re-read a patient's ledger charges (before a claim names them)."""
        if self.backend is None:
            return
        await self.patient_known(principal, patient_id)
        upstream = await self._upstreams().of(principal.tenant_id)
        found = [c async for c in upstream.charges(patient_id=PatientId(patient_id))]
        await self.writer.put(principal.tenant_id, "charge", found, self.clock())

    # --- health ---------------------------------------------------------------------------------

    def upstream_health(self, tenant_id: str) -> dict[str, Any] | None:
        """The tenant's upstream health (None before its first use, or with no backend)."""
        return None if self.backend is None else self.backend.upstreams.health(tenant_id)

    def budget(self, tenant_id: str) -> tuple[int, int] | None:
        """The tenant's upstream budget: requests per second, and how many could start now."""
        found = self.upstream_health(tenant_id)
        if not found or "throttle" not in found:
            return None
        gate = found["throttle"]
        remaining = max(
            0, min(int(gate["tokens"]), int(gate["concurrency"]) - int(gate["in_flight"]))
        )
        return max(1, round(float(gate["rate"]))), remaining

    async def _audit_page(
        self, principal: Principal, kind: str, route: str, page: RecordPage
    ) -> None:
        if kind not in PHI_KINDS:
            return
        patients = sorted({p for p in page.patient_ids if p})
        await self.audit.record(principal.tenant_id, principal.id, route, patients, self.clock())

    async def _audit(self, principal: Principal, kind: str, route: str, items: Any) -> None:
        if kind not in PHI_KINDS:
            return
        patients = sorted(
            {str(item["id"] if kind == "patient" else item.get("patient_id")) for item in items}
            - {"None"}
        )
        await self.audit.record(principal.tenant_id, principal.id, route, patients, self.clock())

    # --- writes -------------------------------------------------------------------------------

    async def write(
        self,
        principal: Principal,
        *,
        scope: str,
        operation: str,
        kind: str,
        fingerprint: str,
        request: dict[str, Any],
        idempotency_key: str | None,
        patient_ids: Sequence[str],
        call: Callable[[Upstream], Awaitable[WriteResult[Any]]],
        render: Callable[[Exception], tuple[int, dict[str, Any]]],
        created: bool = False,
        refs: Sequence[tuple[str, str]] = (),
    ) -> Answer:
        """Run one write under its idempotency key, ledger entry, read-back and audit.

        ``patient_ids`` and ``refs`` (kind, id) are every id the request names: each must be
        the caller's tenant's, or the write is refused with 404 before anything is recorded.
        """
        principal.require(scope)
        if idempotency_key is not None and not KEY_PATTERN.match(idempotency_key):
            raise BadRequest(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
                field="Idempotency-Key",
            )
        for patient_id in patient_ids:
            await self.patient_known(principal, patient_id)
        await self.known(principal, refs, patient_id=patient_ids[0] if patient_ids else None)
        tenant, who = principal.tenant_id, principal.id
        resumed = False
        if idempotency_key is not None:
            outcome = await self.idempotency.begin(
                tenant, who, idempotency_key, fingerprint, self.clock()
            )
            if isinstance(outcome, Replay):
                return Answer(outcome.status_code, dict(outcome.response), replayed=True)
            if isinstance(outcome, Mismatch):
                raise KeyReused("this Idempotency-Key was used with another request")
            if isinstance(outcome, InFlight):
                raise KeyInFlight("a request with this Idempotency-Key is still running")
            resumed = isinstance(outcome, Start) and outcome.resumed
        failure: BaseException | None = None
        try:
            async with anyio.create_task_group() as group:
                if idempotency_key is not None:
                    group.start_soon(self._hold, tenant, who, idempotency_key)
                token = RESUMING.set(resumed)
                try:
                    answer = await self._send(
                        principal, operation, kind, request, patient_ids, call, render, created
                    )
                except BaseException as err:  # noqa: BLE001 - raised below, outside the group
                    failure = err
                finally:
                    RESUMING.reset(token)
                    group.cancel_scope.cancel()
            if failure is not None:
                raise failure
        except BaseException:
            if idempotency_key is not None:
                with anyio.CancelScope(shield=True):
                    await self.idempotency.abandon(tenant, who, idempotency_key)
            raise
        if idempotency_key is not None:
            await self.idempotency.complete(
                tenant, who, idempotency_key, answer.status, answer.body
            )
        return answer

    async def _hold(self, tenant: str, who: str, key: str) -> None:
        """Renew a running write's claim on its key until the write ends (cancelled then)."""
        while True:
            await anyio.sleep(LEASE.total_seconds() / 3)
            await self.idempotency.renew(tenant, who, key, self.clock())

    async def _send(
        self,
        principal: Principal,
        operation: str,
        kind: str,
        request: dict[str, Any],
        patient_ids: Sequence[str],
        call: Callable[[Upstream], Awaitable[WriteResult[Any]]],
        render: Callable[[Exception], tuple[int, dict[str, Any]]],
        created: bool,
    ) -> Answer:
        tenant = principal.tenant_id
        entry = await self.ledger.open(tenant, operation, request, self.clock())
        await self.audit.record(
            tenant, principal.id, f"POST /{operation}", list(patient_ids), self.clock()
        )
        try:
            upstream = await self._upstreams().of(tenant)
            result = await call(upstream)
        except DomainError as refused:
            await self.ledger.close(
                entry, state="rejected", entity_id=None, diverged=(), now=self.clock()
            )
            status, body = render(refused)
            return Answer(status, body)
        except (UpstreamError, NotFound):
            await self.ledger.close(
                entry, state="failed", entity_id=None, diverged=(), now=self.clock()
            )
            raise
        value = result.value
        await self.writer.put(tenant, kind, [value], self.clock())
        entity_id = str(value.__dict__["id"])
        await self.ledger.close(
            entry,
            state=result.confirmation,
            entity_id=entity_id,
            diverged=result.diverged,
            now=self.clock(),
        )
        body = {
            "data": value.model_dump(mode="json"),
            "confirmation": result.confirmation,
            "diverged": list(result.diverged),
            "ledger_id": entry,
        }
        return Answer(201 if created else 200, body)
