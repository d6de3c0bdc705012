"""What the writes share (``DESIGN.md`` §3, ADR 0008): the :class:`WriteContext` (connection,
the tenant's mapping context, the drift report), its :class:`IdIndex` from carebridge ids to
upstream ids, and the helpers that compare what was asked with what a read-back found.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from carebridge.connectors.carecloud.client import SurfaceClient, WriteUnconfirmed
from carebridge.connectors.carecloud.drift import DriftReport, check, check_list
from carebridge.connectors.carecloud.mapping import v2 as vm
from carebridge.connectors.carecloud.mapping.common import Context
from carebridge.connectors.carecloud.portal_errors import (
    _capture_errors,
    _portal_error,
    _portal_failure,
)
from carebridge.connectors.carecloud.surfaces import Connection
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.domain.provenance import Surface
from carebridge.domain.values import (
    AppointmentId,
    ChargeId,
    EncounterId,
    LocationId,
    PatientId,
    ProviderId,
    ResourceId,
    VisitReasonId,
)
from carebridge.errors import AuthError, ConfigError, UnknownId, UpstreamStatusError
from carebridge.ports.upstream import Confirmation, WriteResult

M = TypeVar("M", bound=BaseModel)
K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


MAX_SENDS = 3
"""Sends of one write at most; each one after the first follows a read-back that found none."""


# --- ids and context ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientKeys:
    """A patient's upstream ids: the v2 GUID and the chart number (the portal's key)."""

    guid: str
    chart_number: str


@dataclass
class IdIndex:
    """carebridge ids -> upstream ids, filled by the caller (or :func:`index_practice`) and by
    the writes themselves (what they create)."""

    patients: dict[PatientId, PatientKeys] = field(default_factory=dict)
    providers: dict[ProviderId, int] = field(default_factory=dict)
    locations: dict[LocationId, int] = field(default_factory=dict)
    resources: dict[ResourceId, int] = field(default_factory=dict)
    visit_reasons: dict[VisitReasonId, int] = field(default_factory=dict)
    appointments: dict[AppointmentId, str] = field(default_factory=dict)
    encounters: dict[EncounterId, int] = field(default_factory=dict)
    charges: dict[ChargeId, int] = field(default_factory=dict)

    def add_patient(self, ctx: Context, guid: str, chart_number: str) -> PatientId:
        """Index one patient by its chart number (the key every surface shares)."""
        pid = vm.patient_id(ctx, chart_number)
        self.patients[pid] = PatientKeys(guid.lower(), chart_number)
        return pid

    def patient(self, pid: PatientId) -> PatientKeys:
        return _need(self.patients, pid, "patient")

    def provider_of(self, ctx: Context, upstream: int) -> ProviderId:
        pid = ProviderId.new(ctx.key("provider", str(upstream)))
        self.providers[pid] = upstream
        return pid

    def location_of(self, ctx: Context, upstream: int) -> LocationId:
        lid = LocationId.new(ctx.key("location", str(upstream)))
        self.locations[lid] = upstream
        return lid

    def resource_of(self, ctx: Context, upstream: int) -> ResourceId:
        rid = ResourceId.new(ctx.key("resource", str(upstream)))
        self.resources[rid] = upstream
        return rid

    def visit_reason_of(self, ctx: Context, upstream: int) -> VisitReasonId:
        vid = VisitReasonId.new(ctx.key("visit_reason", str(upstream)))
        self.visit_reasons[vid] = upstream
        return vid


def _need(table: Mapping[K, V], key: K, kind: str) -> V:
    try:
        return table[key]
    except KeyError:
        raise UnknownId(f"no upstream id for {kind} {key}") from None


async def _no_sleep(seconds: float) -> None:
    del seconds
    await asyncio.sleep(0)


@dataclass
class WriteContext:
    """What the writes need.

    Args:
        conn: the tenant's connection (``v2`` for scheduling, charges and eligibility;
            ``portal`` for encounters and claims, and the charges' read-back when present).
        tenant: carebridge's tenant id (the mappers derive ids from it).
        v2_url: the v2 base, ``https://api.carecloud.com/v2``.
        portal_url: the portal API base, ``.../portal/api``.
        clock: the current instant (the read-backs' ``fetched_at``).
        sleep: waits between eligibility polls (tests move a manual clock instead).
    """

    conn: Connection
    tenant: str
    v2_url: str
    portal_url: str = ""
    index: IdIndex = field(default_factory=IdIndex)
    drift: DriftReport = field(default_factory=DriftReport)
    clock: Callable[[], datetime] = field(default=datetime.now)
    sleep: Callable[[float], Awaitable[None]] = _no_sleep
    poll_interval: float = 1.0
    poll_attempts: int = 30

    def ctx(self, surface: Surface, endpoint: str) -> Context:
        return Context(
            tenant=self.tenant, surface=surface, endpoint=endpoint, fetched_at=self.clock()
        )

    @property
    def v2(self) -> SurfaceClient[Any]:
        if self.conn.v2 is None:
            raise ConfigError("this connection has no v2 surface")
        return self.conn.v2

    @property
    def portal(self) -> SurfaceClient[Any]:
        if self.conn.portal is None or not self.portal_url:
            raise ConfigError("this connection has no portal surface")
        _capture_errors(self.conn.portal.http)
        return self.conn.portal


async def index_practice(wctx: WriteContext) -> IdIndex:
    """Fill the index with the practice's providers, locations, resources and visit reasons."""
    ctx = wctx.ctx("v2", "lists")
    v2 = wctx.v2
    providers = check(
        (await v2.request("GET", f"{wctx.v2_url}/providers")).json(),
        vw.ProvidersResponse,
        "GET /v2/providers",
        wctx.drift,
    )
    for p in providers.providers:
        wctx.index.provider_of(ctx, p.id)
    locations = check(
        (await v2.request("GET", f"{wctx.v2_url}/locations")).json(),
        vw.LocationsResponse,
        "GET /v2/locations",
        wctx.drift,
    )
    for loc in locations.locations:
        wctx.index.location_of(ctx, loc.id)
    async for page in v2.v2_pages(f"{wctx.v2_url}/appointment_resources"):
        for r in check_list(page.json(), vw.ResourceEnvelope, "GET /v2/appointment_resources"):
            wctx.index.resource_of(ctx, r.resource.id)
    reasons = check_list(
        (await v2.request("GET", f"{wctx.v2_url}/visit_reasons")).json(),
        vw.VisitReasonPayload,
        "GET /v2/visit_reasons",
        wctx.drift,
    )
    for v in reasons:
        wctx.index.visit_reason_of(ctx, v.id)
    return wctx.index


# --- helpers --------------------------------------------------------------------------------------


def _parse(response: httpx.Response, model: type[M], endpoint: str, wctx: WriteContext) -> M:
    return check(response.json(), model, endpoint, wctx.drift)


def _diff(pairs: Iterable[tuple[str, Any, Any]]) -> tuple[str, ...]:
    return tuple(name for name, asked, got in pairs if asked is not None and asked != got)


def _verdict(diverged: tuple[str, ...]) -> Confirmation:
    return "diverged" if diverged else "confirmed"


def _read_back(value: T, diverged: tuple[str, ...], sends: int) -> WriteResult[T]:
    """A write's record as read back, confirmed unless a field ``diverged``."""
    return WriteResult(
        value=value, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
    )


# --- sending a write once ---------------------------------------------------------------------------


async def _resend(
    send: Callable[[], Awaitable[T]], find: Callable[[], Awaitable[T | None]]
) -> tuple[T, int]:
    """Send a write until it is answered, at most :data:`MAX_SENDS` times: when an answer is
    lost (:class:`WriteUnconfirmed`), ``find`` looks for what the send made, and the write is
    sent again only when it finds nothing. What the write made (answered or found) and the
    sends it took."""
    sends = 0
    while True:
        sends += 1
        try:
            return await send(), sends
        except WriteUnconfirmed:
            found = await find()
            if found is not None:
                return found, sends
            if sends >= MAX_SENDS:
                raise


async def _resend_verb(
    send: Callable[[], Awaitable[object]], took: Callable[[], Awaitable[bool]]
) -> int:
    """:func:`_resend` for a verb that makes no record: ``took`` says whether a send whose
    answer was lost took effect. The sends it took."""

    async def sent() -> bool:
        await send()
        return True

    async def found() -> bool | None:
        return True if await took() else None

    _, sends = await _resend(sent, found)
    return sends


async def _nothing() -> None:
    """What a lost send made, for a write that may simply be sent again."""
    return None


def _on_portal(
    send: Callable[[], Awaitable[T]],
    what: str,
    refusals: tuple[type[UpstreamStatusError | AuthError], ...] = (UpstreamStatusError,),
) -> Callable[[], Awaitable[T]]:
    """``send`` as one send of a portal write: its error body is captured afresh, and a refusal
    is raised as its typed error (:func:`_portal_failure`)."""

    async def once() -> T:
        _portal_error.set(None)
        try:
            return await send()
        except refusals as err:
            raise _portal_failure(err, what) from None

    return once
