"""The read use cases: fetch-through pages and records, real-time reads, and the upstream's
health and budget.

**Freshness.** Each slice of the store (a kind, for the whole tenant or for one patient) carries
the instant it was last read from the upstream. A read names the oldest data it accepts
(``max_age``); when the slice is older, or was never read, the read goes through the connector
first, keeps what it got, and then answers from the store. Tenant-wide slices refresh
incrementally (``updated_since`` the last refresh, less a lag), so a fresh read costs only the
changes. Refreshes of one slice are single-flight: concurrent readers wait for one fetch.

Every read checks the caller's scope, answers only the caller's tenant's records (another
tenant's ids are :class:`NotFound`), and audits the patients a PHI read names before it answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, Protocol

import anyio

from carebridge.domain import EligibilityCheck, EligibilityRequest, Slot
from carebridge.domain.billing import Balance
from carebridge.domain.kinds import KINDS, Kind
from carebridge.domain.provenance import DomainModel
from carebridge.domain.values import LocationId, PatientId, ResourceId, VisitReasonId
from carebridge.errors import BadRequest, NotConfigured
from carebridge.ports.records import AuditSink, RecordPage, RecordStore
from carebridge.ports.upstream import Upstream
from carebridge.ports.writes import Idempotency, RecordWriter, WriteJournal, WriteLedger
from carebridge.services.records import NotFound, Principal
from carebridge.sync.slices import LAG as LAG
from carebridge.sync.slices import read_slice


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


def _whole_tenant(u: Upstream, kind: Kind, since: datetime | None) -> AsyncIterator[Any]:
    """Every patient's records of a kind read per patient whose upstream method also reads the
    whole tenant (encounters: the kinds with a sync stream); ``since`` if it is incremental."""
    method: Callable[..., AsyncIterator[Any]] = getattr(u, kind.upstream)
    return method(updated_since=since) if kind.incremental else method()


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
class ListQuery:
    """A page of one kind's records: the filters (store columns and their values), the
    ``updated_since`` and start window, the page (``limit``, ``cursor``) and how fresh it must
    be. ``route`` names the read in the audit log (``GET /patients``)."""

    kind: str
    route: str
    filters: Mapping[str, str] = field(default_factory=dict)
    updated_since: datetime | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    limit: int = 100
    cursor: str | None = None
    freshness: Freshness = Freshness()
    order: str | None = None
    """One of :func:`list_orders` (None: the kind's default, the first)."""


ORDERS: dict[str, tuple[str, ...]] = {"appointment": ("start", "-start", "id")}
"""The orders a kind's list offers, its default first: appointments by start (then id)."""


def list_orders(kind: str) -> tuple[str, ...]:
    """The orders a list of ``kind`` offers, its default first (by id for most kinds)."""
    return ORDERS.get(kind, ("id",))


def patient_filters(
    *,
    name: str | None = None,
    dob: str | None = None,
    primary_provider_id: str | None = None,
    primary_location_id: str | None = None,
    active: bool | None = None,
) -> dict[str, str]:
    """The store filters of a patient search: ``name`` ("Last, First", any case), ``dob``
    (a calendar date) and the patient's fields; an empty value is no filter.

    Raises:
        BadRequest: ``dob`` is not a calendar date.
    """
    if dob is not None:
        try:
            date.fromisoformat(dob)
        except ValueError:
            raise BadRequest("dob is not a calendar date", field="dob") from None
    return given(name_key=name.lower() if name else None, birth_date=dob) | field_filters(
        "patient",
        primary_provider_id=primary_provider_id,
        primary_location_id=primary_location_id,
        active=active,
    )


def given(**values: str | None) -> dict[str, str]:
    """The filters the caller gave (empty ones are not filters)."""
    return {key: value for key, value in values.items() if value}


def field_filters(of: str, /, **values: str | bool | None) -> dict[str, str]:
    """The store filters of a list of kind ``of`` filtered by its records' fields (``active``,
    ``primary_provider_id``, a payment's ``kind``...): each on the index column the field
    fills (the kinds registry's ``columns``); a flag as ``true``/``false``; an empty value is
    no filter."""
    found = KINDS[of]
    return {
        found.column_of(name): ("true" if value else "false") if isinstance(value, bool) else value
        for name, value in values.items()
        if value is not None and value != ""
    }


@dataclass(frozen=True)
class Served:
    """A page and the age of the data behind it (None when it never came from upstream)."""

    page: RecordPage
    age: timedelta | None


@dataclass(frozen=True)
class Found:
    """One record (its JSON) and the age of the data behind it."""

    record: dict[str, Any]
    age: timedelta | None


class Budget(NamedTuple):
    """A tenant's upstream budget: requests per second, and how many could start now."""

    quota: int
    remaining: int


@dataclass(frozen=True)
class Backend:
    """What reaching the upstream takes: the connections and the write-side tables (and the
    ``journal`` that keeps a write's bookkeeping in two transactions; without one, the writes
    take the ports one step at a time)."""

    upstreams: Upstreams
    writer: RecordWriter
    idempotency: Idempotency
    ledger: WriteLedger
    journal: WriteJournal | None = None


@dataclass
class Reads:
    """Reads that reach the upstream, over the store (see the module docstring)."""

    records: RecordStore
    audit: AuditSink
    backend: Backend | None = None
    """The upstream side; without it, reads are served from the store as synced."""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    default_max_age: timedelta = timedelta(minutes=5)
    _locks: dict[tuple[str, str, str], anyio.Lock] = field(default_factory=dict)
    _marks: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    """The newest refresh instant seen per slice (they only move forward): a read that finds
    its slice fresh here takes no lock and reads no freshness row."""

    # --- the backend ------------------------------------------------------------------------

    def _backend(self) -> Backend:
        if self.backend is None:
            raise NotConfigured("this deployment has no upstream connection")
        return self.backend

    async def upstream(self, tenant_id: str) -> Upstream:
        """The tenant's upstream connection.

        Raises:
            NotConfigured: the deployment has no upstream side.
        """
        return await self._backend().upstreams.of(tenant_id)

    @property
    def writer(self) -> RecordWriter:
        return self._backend().writer

    @property
    def idempotency(self) -> Idempotency:
        return self._backend().idempotency

    @property
    def ledger(self) -> WriteLedger:
        return self._backend().ledger

    # --- freshness --------------------------------------------------------------------------

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
        """Make one slice fresh enough (single-flight); returns its age.

        The slice's last refresh is kept in memory: a fresh slice costs no lock and no read. A
        slice that looks stale here is looked up in the store under the lock first (another
        process may have refreshed it), then refreshed through the upstream if it still is."""
        slot = (tenant_id, kind, scope)
        known = self._marks.get(slot)
        now = self.clock()
        if known is not None and max_age > timedelta(0) and now - known <= max_age:
            return now - known
        lock = self._locks.setdefault(slot, anyio.Lock())
        async with lock:
            last = self._mark(slot, await self.writer.refreshed_at(tenant_id, kind, scope))
            now = self.clock()
            if last is not None and max_age > timedelta(0) and now - last <= max_age:
                return now - last
            upstream = await self.upstream(tenant_id)
            since = last - LAG if incremental and last is not None else None
            batch: list[DomainModel] = []
            async for record in fetch(upstream, since):
                batch.append(record)
                if len(batch) >= 200:
                    await self.writer.put(tenant_id, kind, batch, now)
                    batch = []
            await self.writer.put(tenant_id, kind, batch, now)
            await self.writer.mark_refreshed(tenant_id, kind, scope, now)
            self._mark(slot, now)
            return timedelta(0)

    def _mark(self, slot: tuple[str, str, str], at: datetime | None) -> datetime | None:
        """Keep the newer of ``at`` and the known refresh of ``slot``; returns it."""
        known = self._marks.get(slot)
        if at is not None and (known is None or at > known):
            self._marks[slot] = known = at
        return known

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

        elif source is not None and source.per_patient and patient_id is None:
            whole = KINDS[kind]
            if whole.stream is None or not whole.synced_by_default:
                # read one patient at a time only (its upstream method takes a patient): a
                # tenant-wide list is as stored, which the kind's stream fills when named
                return None
            scope = "*"  # the tenant's every patient's, as the kind's sync stream reads them

            def fetch(u: Upstream, since: datetime | None) -> AsyncIterator[Any]:
                return _whole_tenant(u, whole, since)

        elif source is not None and source.per_patient:
            if patient_id is None or await self.records.get(tenant, "patient", patient_id) is None:
                return None  # an unknown patient's read answers as stored (a 404 upstream)
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
            slot = (tenant, kind, scope)
            last = self._marks.get(slot) or self._mark(
                slot, await self.writer.refreshed_at(tenant, kind, scope)
            )
            return None if last is None else self.clock() - last
        return await self.refresh(tenant, kind, scope, fetch, max_age, incremental=incremental)

    def _default_window(self) -> tuple[date, date]:
        today = self.clock().date()
        return today - timedelta(days=7), today + timedelta(days=30)

    def _window(self, start: datetime | None, end: datetime | None) -> tuple[date, date]:
        default_start, default_end = self._default_window()
        first = start.date() if start else default_start
        last = end.date() if end else (first + (default_end - default_start))
        if last < first:
            raise BadRequest("end must not be before start", field="end")
        if (last - first).days > 366:
            raise BadRequest("an appointment window spans at most 366 days", field="end")
        return first, last

    # --- stored kinds -----------------------------------------------------------------------

    async def page(self, principal: Principal, query: ListQuery) -> Served:
        """A page of the tenant's records of ``query.kind``. The first page refreshes the slice
        through the upstream when it is older than allowed; later pages (``cursor``) read the
        store as it is, so a walk through the pages is consistent."""
        kind, filters = query.kind, dict(query.filters)
        principal.require(read_scope(kind))
        offered = list_orders(kind)
        order = query.order or offered[0]
        if order not in offered:
            raise BadRequest(f"order is one of {', '.join(offered)}", field="order")
        if "patient_id" in filters and kind != "patient":
            await self.patient_known(principal, filters["patient_id"])
        window = None
        if kind == "appointment":
            window = self._window(query.starts_from, query.starts_before)
        age = await self._fresh(
            principal,
            kind,
            query.freshness,
            patient_id=filters.get("patient_id"),
            window=window,
            refresh=query.cursor is None,
        )
        page = await self.records.page(
            principal.tenant_id,
            kind,
            filters=filters,
            updated_since=query.updated_since,
            starts_from=query.starts_from,
            starts_before=query.starts_before,
            limit=query.limit,
            cursor=query.cursor,
            order=order,
        )
        await self._audit_page(principal, kind, query.route, page)
        return Served(page, age)

    async def one(
        self,
        principal: Principal,
        kind: str,
        route: str,
        entity_id: str,
        *,
        freshness: Freshness = Freshness(),
    ) -> Found:
        """One record of the tenant (another tenant's id is not found)."""
        principal.require(read_scope(kind))
        age = await self._fresh(
            principal, kind, freshness, patient_id=None, window=None, refresh=True
        )
        record = await self.records.get(principal.tenant_id, kind, entity_id)
        if record is None:
            raise NotFound(f"no {kind} {entity_id}")
        await self._audit(principal, kind, route, [record])
        return Found(record, age)

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

    async def present(self, tenant_id: str, refs: Sequence[tuple[str, str]]) -> list[bool]:
        """Whether each (kind, id) is stored for the tenant, looked up concurrently (one round
        trip's latency for a write's few ids, not one per id)."""
        found = [False] * len(refs)

        async def look(n: int, kind: str, entity_id: str) -> None:
            found[n] = await self.records.get(tenant_id, kind, entity_id) is not None

        async with anyio.create_task_group() as group:
            for n, (kind, entity_id) in enumerate(refs):
                group.start_soon(look, n, kind, entity_id)
        return found

    async def patient_known(self, principal: Principal, patient_id: str) -> None:
        """Raise :class:`NotFound` unless the patient is the caller's tenant's."""
        if await self.records.get(principal.tenant_id, "patient", patient_id) is None:
            raise NotFound(f"no patient {patient_id}")

    # --- real time --------------------------------------------------------------------------

    async def eligibility(
        self,
        principal: Principal,
        route: str,
        patient_id: str,
        request: EligibilityRequest | None = None,
        *,
        service_date: date | None = None,
        service_types: Sequence[str] = (),
    ) -> EligibilityCheck:
        """A real-time eligibility inquiry (never cached), audited: ``request``, or one for
        ``service_date`` (default: today) and ``service_types`` (default: ``30``).

        Raises:
            BadRequest: a service type that is not an X12 code (``field``: ``service_type``).
        """
        if request is None:
            try:
                request = EligibilityRequest(
                    service_date=service_date or self.clock().date(),
                    service_types=tuple(service_types or ["30"]),
                )
            except ValueError as err:
                raise BadRequest(_first_error(err), field="service_type") from None
        principal.require("eligibility.read")
        await self.patient_known(principal, patient_id)
        upstream = await self.upstream(principal.tenant_id)
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
        upstream = await self.upstream(principal.tenant_id)
        return await upstream.availability(
            VisitReasonId(visit_reason_id),
            start,
            end,
            location_ids=tuple(LocationId(i) for i in location_ids),
            resource_ids=tuple(ResourceId(i) for i in resource_ids),
        )

    async def balances(self, principal: Principal, route: str, patient_id: str) -> list[Balance]:
        """A patient's balances, read in real time."""
        principal.require("payment.read")
        await self.patient_known(principal, patient_id)
        upstream = await self.upstream(principal.tenant_id)
        rows = await upstream.balance(PatientId(patient_id))
        await self.audit.record(
            principal.tenant_id, principal.id, route, [patient_id], self.clock()
        )
        return list(rows)

    # --- health -----------------------------------------------------------------------------

    def upstream_health(self, tenant_id: str) -> dict[str, Any] | None:
        """The tenant's upstream health (None before its first use, or with no backend)."""
        return None if self.backend is None else self.backend.upstreams.health(tenant_id)

    def budget(self, tenant_id: str) -> Budget | None:
        """The tenant's upstream budget (None before its first upstream call)."""
        found = self.upstream_health(tenant_id)
        if not found or "throttle" not in found:
            return None
        gate = found["throttle"]
        remaining = max(
            0, min(int(gate["tokens"]), int(gate["concurrency"]) - int(gate["in_flight"]))
        )
        return Budget(max(1, round(float(gate["rate"]))), remaining)

    # --- audit ------------------------------------------------------------------------------

    async def _audit_page(
        self, principal: Principal, kind: str, route: str, page: RecordPage
    ) -> None:
        if kind not in PHI_KINDS:
            return
        await self.audit.record(
            principal.tenant_id, principal.id, route, page.patients, self.clock()
        )

    async def _audit(self, principal: Principal, kind: str, route: str, items: Any) -> None:
        if kind not in PHI_KINDS:
            return
        patients = sorted(
            {str(item["id"] if kind == "patient" else item.get("patient_id")) for item in items}
            - {"None"}
        )
        await self.audit.record(principal.tenant_id, principal.id, route, patients, self.clock())


def _first_error(err: ValueError) -> str:
    return str(err).splitlines()[-1].strip() if str(err) else "invalid"
