"""Writes to CareCloud, each confirmed by reading back (``DESIGN.md`` §3, ADR 0008).

Upstream has no idempotency keys (``upstream/carecloud.md`` §7), so a write is never retried
blind: when its effect is unknown (:class:`WriteUnconfirmed`: a timeout, a dropped connection,
a 5xx after sending) the function first looks for what the first attempt would have made
(appointments by patient, resource and start; charges, encounters and addenda by what was new
since the write began) and sends again only when nothing landed. Every write then reads its
record back through the wire models and mappers and compares what was asked with what the
upstream holds: ``confirmed``, or ``diverged`` with the differing fields.

A :class:`WriteContext` carries the connection, the tenant's mapping context, the drift
report and an :class:`IdIndex` from carebridge ids to upstream ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from carebridge.connectors.carecloud.client import SurfaceClient, WriteUnconfirmed
from carebridge.connectors.carecloud.drift import DriftReport, check, check_list
from carebridge.connectors.carecloud.mapping import portal as pm
from carebridge.connectors.carecloud.mapping import v2 as vm
from carebridge.connectors.carecloud.mapping.common import Context
from carebridge.connectors.carecloud.surfaces import Connection
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.domain import (
    Appointment,
    AppointmentStatus,
    Charge,
    Claim,
    EligibilityCheck,
    EligibilityRequest,
    Encounter,
)
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
from carebridge.errors import (
    AuthError,
    ConfigError,
    InvalidTransition,
    UpstreamStatusError,
)
from carebridge.errors import ClaimRejected as ClaimRejected
from carebridge.errors import EncounterLocked as EncounterLocked
from carebridge.errors import SlotTaken as SlotTaken
from carebridge.errors import UnknownId as UnknownId
from carebridge.ports.upstream import (
    Confirmation,
    NewAppointment,
    NewCharge,
    NewClaim,
    NewEncounter,
    WriteResult,
)
from carebridge.ports.writes import RESUMING

M = TypeVar("M", bound=BaseModel)
K = TypeVar("K")
V = TypeVar("V")

MAX_SENDS = 3
"""Sends of one write at most; each one after the first follows a read-back that found none."""


# --- errors ---------------------------------------------------------------------------------------


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


# --- portal error bodies --------------------------------------------------------------------------

# ``SurfaceClient`` raises typed errors without the body; the portal's error envelope (the
# scrubber's field list, ``encounter_locked``) is kept here by a response hook, per task.
_portal_error: ContextVar[pw.ErrorPayload | None] = ContextVar("portal_error", default=None)


async def _keep_error(response: httpx.Response) -> None:
    if response.status_code not in (409, 422, 423) or "/portal/" not in response.url.path:
        return
    await response.aread()
    try:
        envelope = pw.ErrorEnvelope.model_validate(response.json())
    except ValueError:
        return
    _portal_error.set(envelope.error)


def _capture_errors(http: httpx.AsyncClient) -> None:
    hooks = http.event_hooks.get("response", [])
    if _keep_error not in hooks:
        http.event_hooks = {**http.event_hooks, "response": [*hooks, _keep_error]}


def _portal_failure(err: UpstreamStatusError | AuthError, what: str) -> Exception:
    """The typed error of a refused portal write (the body kept by the hook)."""
    error = _portal_error.get()
    code = error.code if error is not None else str(err)
    if "encounter_locked" in code:
        return EncounterLocked(f"{what}: the encounter is signed")
    if "invalid_transition" in code:
        return InvalidTransition(f"{what}: not allowed in the record's state")
    if error is not None and error.code == "validation_failed":
        fields = tuple(e.field for e in error.errors or ()) or (
            (error.field,) if error.field else ()
        )
        return ClaimRejected(f"{what}: refused ({', '.join(fields)})", fields=fields)
    return err


# --- helpers --------------------------------------------------------------------------------------


def _parse(response: httpx.Response, model: type[M], endpoint: str, wctx: WriteContext) -> M:
    return check(response.json(), model, endpoint, wctx.drift)


def _diff(pairs: Iterable[tuple[str, Any, Any]]) -> tuple[str, ...]:
    return tuple(name for name, asked, got in pairs if asked is not None and asked != got)


def _verdict(diverged: tuple[str, ...]) -> Confirmation:
    return "diverged" if diverged else "confirmed"


async def _show_appointment(wctx: WriteContext, guid: str) -> Appointment:
    endpoint = "GET /v2/appointments/{id}"
    r = await wctx.v2.request("GET", f"{wctx.v2_url}/appointments/{guid}", endpoint=endpoint)
    wire = _parse(r, vw.AppointmentDetailResponse, endpoint, wctx).appointment
    reasons = await _cancellation_reasons(wctx)
    appointment = vm.map_appointment(
        wire, wctx.ctx("v2", endpoint), cancellation_reasons={r.id: r for r in reasons}
    ).value
    wctx.index.appointments[appointment.id] = wire.id
    return appointment


async def _cancellation_reasons(wctx: WriteContext) -> list[vw.CancellationReasonPayload]:
    endpoint = "GET /v2/appointment_cancellation_reasons"
    r = await wctx.v2.request("GET", f"{wctx.v2_url}/appointment_cancellation_reasons")
    return [
        e.appointment_cancellation_reason
        for e in check_list(r.json(), vw.CancellationReasonEnvelope, endpoint, wctx.drift)
    ]


def _same_instant(a: datetime, b: datetime) -> bool:
    return a == b


# --- scheduling -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Booking:
    patient: PatientKeys
    resource: int
    location: int
    visit_reason: int
    provider: int | None
    start: datetime
    end: datetime | None


def _booking(wctx: WriteContext, command: NewAppointment) -> _Booking:
    index = wctx.index
    return _Booking(
        patient=index.patient(command.patient_id),
        resource=_need(index.resources, command.resource_id, "resource"),
        location=_need(index.locations, command.location_id, "location"),
        visit_reason=_need(index.visit_reasons, command.visit_reason_id, "visit reason"),
        provider=None
        if command.provider_id is None
        else _need(index.providers, command.provider_id, "provider"),
        start=command.start,
        end=command.end,
    )


async def _default_provider(wctx: WriteContext, resource: int) -> int:
    endpoint = "GET /v2/appointment_resources/{id}"
    r = await wctx.v2.request(
        "GET", f"{wctx.v2_url}/appointment_resources/{resource}", endpoint=endpoint
    )
    detail = _parse(r, vw.ResourceDetailResponse, endpoint, wctx).resource
    if detail.default_provider is None or detail.default_provider.id is None:
        raise UnknownId(f"resource {resource} has no default provider: name one")
    return int(detail.default_provider.id)


def _window(start: datetime) -> tuple[str, str]:
    """Dates around ``start`` that contain its practice-local date in any US time zone."""
    return (
        (start - timedelta(hours=14)).date().isoformat(),
        (start + timedelta(hours=14)).date().isoformat(),
    )


async def _slot_free(wctx: WriteContext, b: _Booking) -> bool:
    endpoint = "GET /v2/appointment_availability"
    lo, hi = _window(b.start)
    params: dict[str, Any] = {
        "start_date": lo,
        "end_date": hi,
        "visit_reason_id": b.visit_reason,
        "location_ids": b.location,
        "resource_ids": b.resource,
        "dow": "1111111",
    }
    if b.end is not None:
        params["duration"] = int((b.end - b.start).total_seconds() // 60)
    r = await wctx.v2.request("GET", f"{wctx.v2_url}/appointment_availability", params=params)
    groups = check_list(r.json(), vw.AvailabilityGroupPayload, endpoint, wctx.drift)
    return any(
        _same_instant(slot.start_time, b.start)
        for g in groups
        if g.resource.id == b.resource
        for slot in g.slots
    )


async def _find_booking(wctx: WriteContext, b: _Booking) -> str | None:
    """The GUID of a live appointment of this patient on this resource at this start."""
    lo, hi = _window(b.start)
    params: dict[str, Any] = {
        "patient_ids": b.patient.guid,
        "start_date": lo,
        "end_date": hi,
        "resource_id": b.resource,
    }
    endpoint = "GET /v2/appointments"
    async for page in wctx.v2.v2_pages(f"{wctx.v2_url}/appointments", params):
        for item in check_list(page.json(), vw.AppointmentEnvelope, endpoint, wctx.drift):
            a = item.appointment
            if (
                a.resource_id == b.resource
                and _same_instant(a.start_time, b.start)
                and a.appointment_status.code not in ("C", "R")
            ):
                return a.id
    return None


async def create_appointment(
    wctx: WriteContext, command: NewAppointment
) -> WriteResult[Appointment]:
    """Book ``command`` in a free slot, confirmed by reading it back.

    Raises:
        SlotTaken: availability does not offer the slot, or the upstream answered 409.
        WriteUnconfirmed: the effect stayed unknown after ``MAX_SENDS`` sends.
    """
    b = _booking(wctx, command)
    if RESUMING.get() and (landed := await _find_booking(wctx, b)) is not None:
        # an earlier attempt under this key died after sending: it booked this very slot
        return await _booked(wctx, command, landed, sends=1)  # the dead attempt's send
    provider = b.provider if b.provider is not None else await _default_provider(wctx, b.resource)
    if not await _slot_free(wctx, b):
        raise SlotTaken("the requested slot is not available", resource=b.resource, start=b.start)
    body: dict[str, Any] = {
        "start_time": b.start.isoformat(),
        "location_id": b.location,
        "provider_id": provider,
        "visit_reason_id": b.visit_reason,
        "resource_id": b.resource,
        "chief_complaint": command.chief_complaint,
        "comments": command.comments,
        "patient": {"id": b.patient.guid},
    }
    if b.end is not None:
        body["end_time"] = b.end.isoformat()
    guid: str | None = None
    sends = 0
    while guid is None:
        sends += 1
        try:
            r = await wctx.v2.request(
                "POST", f"{wctx.v2_url}/appointments", json={"appointment": body}
            )
            guid = _parse(
                r, vw.AppointmentCreatedResponse, "POST /v2/appointments", wctx
            ).appointment
        except UpstreamStatusError as err:
            if err.status == 409:
                raise SlotTaken(
                    "the upstream refused the slot", resource=b.resource, start=b.start
                ) from None
            raise
        except WriteUnconfirmed:
            guid = await _find_booking(wctx, b)  # did the attempt land?
            if guid is None and sends >= MAX_SENDS:
                raise
    return await _booked(wctx, command, guid, sends=sends)


async def _booked(
    wctx: WriteContext, command: NewAppointment, guid: str, *, sends: int
) -> WriteResult[Appointment]:
    """Read a booking back and compare it with what was asked."""
    appointment = await _show_appointment(wctx, guid)
    diverged = _diff(
        [
            ("patient_id", command.patient_id, appointment.patient_id),
            ("resource_id", command.resource_id, appointment.resource_id),
            ("location_id", command.location_id, appointment.location_id),
            ("visit_reason_id", command.visit_reason_id, appointment.visit_reason_id),
            ("provider_id", command.provider_id, appointment.provider_id),
            ("start", command.start, appointment.start),
            ("end", command.end, appointment.end),
            ("chief_complaint", command.chief_complaint, appointment.chief_complaint),
            ("comments", command.comments, appointment.comments),
        ]
    )
    return WriteResult(
        value=appointment, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
    )


async def _verb(
    wctx: WriteContext,
    appointment_id: AppointmentId,
    verb: str,
    target: AppointmentStatus,
    body: dict[str, Any] | None = None,
) -> WriteResult[Appointment]:
    """One state verb (``cancel``, ``check_in``, ``check_out``), read back."""
    guid = _need(wctx.index.appointments, appointment_id, "appointment")
    endpoint = f"PUT /v2/appointments/{{id}}/{verb}"
    sends = 0
    while True:
        sends += 1
        try:
            await wctx.v2.request(
                "PUT",
                f"{wctx.v2_url}/appointments/{guid}/{verb}",
                json=body or {},
                endpoint=endpoint,
            )
            break
        except UpstreamStatusError as err:
            if err.status in (409, 422):
                raise InvalidTransition(f"{verb}: not allowed in the appointment's state") from None
            raise
        except WriteUnconfirmed:
            current = await _show_appointment(wctx, guid)
            if current.status == target or sends >= MAX_SENDS:
                if current.status != target:
                    raise
                break
    appointment = await _show_appointment(wctx, guid)
    diverged = () if appointment.status == target else ("status",)
    return WriteResult(
        value=appointment, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
    )


async def _reason_id(wctx: WriteContext, code: str | None) -> int:
    reasons = await _cancellation_reasons(wctx)
    for r in reasons:
        if code is None and r.is_default:
            return r.id
        if code is not None and (r.code or "").upper() == code.upper():
            return r.id
    raise UnknownId(f"no cancellation reason {code or '(default)'}")


async def cancel_appointment(
    wctx: WriteContext,
    appointment_id: AppointmentId,
    *,
    reason_code: str | None = None,
    comments: str = "",
) -> WriteResult[Appointment]:
    """Cancel with a reason (by code; the practice default when None).

    Raises:
        InvalidTransition: the appointment is not pending or checked in.
    """
    body = {
        "appointment_cancellation_reason_id": await _reason_id(wctx, reason_code),
        "cancellation_comments": comments,
    }
    return await _verb(wctx, appointment_id, "cancel", AppointmentStatus.CANCELLED, body)


RESCHEDULED_REASON = "RS"


async def reschedule_appointment(
    wctx: WriteContext, appointment_id: AppointmentId, command: NewAppointment
) -> WriteResult[Appointment]:
    """Book the new slot, then cancel the old appointment with the ``Rescheduled`` reason.

    The new booking goes first so a taken slot leaves the old appointment in place.

    Raises:
        SlotTaken, InvalidTransition: as ``create_appointment`` and ``cancel_appointment``.
    """
    _need(wctx.index.appointments, appointment_id, "appointment")
    created = await create_appointment(wctx, command)
    await cancel_appointment(
        wctx, appointment_id, reason_code=RESCHEDULED_REASON, comments="rescheduled"
    )
    return created


async def check_in(wctx: WriteContext, appointment_id: AppointmentId) -> WriteResult[Appointment]:
    """Pending -> arrived. Raises :class:`InvalidTransition` from another state."""
    return await _verb(wctx, appointment_id, "check_in", AppointmentStatus.ARRIVED)


async def check_out(wctx: WriteContext, appointment_id: AppointmentId) -> WriteResult[Appointment]:
    """Arrived -> checked out. Raises :class:`InvalidTransition` from another state."""
    return await _verb(wctx, appointment_id, "check_out", AppointmentStatus.CHECKED_OUT)


# --- charges ----------------------------------------------------------------------------------------


async def _charges(wctx: WriteContext, keys: PatientKeys) -> list[tuple[int, Any]]:
    """The patient's charges as (id, wire), through the portal when there is one."""
    if wctx.conn.portal is not None and wctx.portal_url:
        out: list[tuple[int, Any]] = []
        async for body in wctx.portal.portal_pages(
            f"{wctx.portal_url}/charges", {"patient": keys.chart_number, "pageSize": 100}
        ):
            page = check(body, pw.Page[pw.ChargePayload], "GET /portal/api/charges", wctx.drift)
            out.extend((c.id, c) for c in page.items)
        return out
    items: list[tuple[int, Any]] = []
    endpoint = "GET /v2/patients/{id}/charges"
    async for response in wctx.v2.v2_pages(f"{wctx.v2_url}/patients/{keys.guid}/charges"):
        items.extend(
            (t.id, t)
            for t in check_list(response.json(), vw.TransactionPayload, endpoint, wctx.drift)
        )
    return items


def _map_charge(wctx: WriteContext, wire: Any, keys: PatientKeys, command: NewCharge) -> Charge:
    if isinstance(wire, pw.ChargePayload):
        return pm.charge_from_portal(wire, wctx.ctx("portal", "GET /portal/api/charges")).value
    details = vm.ChargeDetails(
        responsible="insurance",
        service_date=command.service_date,
        procedure_code=command.procedure_code,
        diagnosis_codes=tuple(command.diagnosis_codes),
    )
    ref = vm.PatientRef(keys.guid, keys.chart_number)
    return vm.map_charge(
        wire, wctx.ctx("v2", "GET /v2/patients/{id}/charges"), patient=ref, details=details
    ).value


def _matches_charge(wire: Any, command: NewCharge) -> bool:
    if isinstance(wire, pw.ChargePayload):
        return (
            wire.procedure_code == command.procedure_code
            and wire.service_date == command.service_date
            and wire.units == command.units
        )
    return bool(
        wire.units == command.units and (wire.description or "").endswith(command.procedure_code)
    )


async def create_charge(wctx: WriteContext, command: NewCharge) -> WriteResult[Charge]:
    """Post a CPT/HCPCS charge (``POST /v2/patients/{id}/charge``), read back from the ledger."""
    keys = wctx.index.patient(command.patient_id)
    before = {cid for cid, _ in await _charges(wctx, keys)}
    day = command.service_date.isoformat()
    charge: dict[str, Any] = {
        "start_time": f"{day}T00:00:00",
        "end_time": f"{day}T00:00:00",
        "units": command.units,
        "procedure_code": command.procedure_code,
        **{
            f"diagnosis{n}_code": code
            for n, code in enumerate(command.diagnosis_codes[:8], start=1)
        },
    }
    if command.provider_id is not None:
        charge["provider_id"] = _need(wctx.index.providers, command.provider_id, "provider")
    if command.location_id is not None:
        charge["location_id"] = _need(wctx.index.locations, command.location_id, "location")
    if command.encounter_id is not None:
        charge["encounter_id"] = _need(wctx.index.encounters, command.encounter_id, "encounter")
    created: int | None = None
    sends = 0
    while created is None:
        sends += 1
        try:
            r = await wctx.v2.request(
                "POST",
                f"{wctx.v2_url}/patients/{keys.guid}/charge",
                json={"charge": charge},
                endpoint="POST /v2/patients/{id}/charge",
            )
            (first, *_) = check_list(
                r.json(), vw.ChargeCreatedPayload, "POST /v2/patients/{id}/charge", wctx.drift
            )
            created = first.id
        except WriteUnconfirmed:
            landed = [
                cid
                for cid, wire in await _charges(wctx, keys)
                if cid not in before and _matches_charge(wire, command)
            ]
            created = landed[0] if landed else None
            if created is None and sends >= MAX_SENDS:
                raise
    found = dict(await _charges(wctx, keys))
    if created not in found:
        raise WriteUnconfirmed(f"charge {created} was not found on read-back")
    value = _map_charge(wctx, found[created], keys, command)
    wctx.index.charges[value.id] = created
    diverged = _diff(
        [
            ("procedure_code", command.procedure_code, value.procedure_code),
            ("units", command.units, value.units),
            ("service_date", command.service_date, value.service_date),
            ("diagnosis_codes", tuple(command.diagnosis_codes), tuple(value.diagnosis_codes)),
            ("provider_id", command.provider_id, value.provider_id),
        ]
    )
    return WriteResult(
        value=value, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
    )


# --- claims and encounters (portal) -----------------------------------------------------------------


async def _claim(wctx: WriteContext, number: str) -> Claim:
    endpoint = "GET /portal/api/claims/{claimNumber}"
    r = await wctx.portal.request("GET", f"{wctx.portal_url}/claims/{number}", endpoint=endpoint)
    return pm.claim_from_portal(
        _parse(r, pw.ClaimDetailPayload, endpoint, wctx), wctx.ctx("portal", endpoint)
    ).value


async def _claim_with(wctx: WriteContext, chart: str, charge_ids: set[int]) -> str | None:
    async for body in wctx.portal.portal_pages(
        f"{wctx.portal_url}/claims", {"patient": chart, "pageSize": 100}
    ):
        page = check(body, pw.Page[pw.ClaimItemPayload], "GET /portal/api/claims", wctx.drift)
        for item in page.items:
            r = await wctx.portal.request("GET", f"{wctx.portal_url}/claims/{item.claim_number}")
            detail = _parse(r, pw.ClaimDetailPayload, "GET /portal/api/claims/{claimNumber}", wctx)
            if {line.charge_id for line in detail.lines} == charge_ids:
                return item.claim_number
    return None


async def submit_claim(wctx: WriteContext, command: NewClaim) -> WriteResult[Claim]:
    """Scrub and submit a claim from unbilled charges (``POST /portal/api/claims``).

    Raises:
        ClaimRejected: the scrubber's 422, naming every field it objected to.
    """
    keys = wctx.index.patient(command.patient_id)
    charge_ids = [_need(wctx.index.charges, c, "charge") for c in command.charge_ids]
    body = {
        "chartNumber": keys.chart_number,
        "chargeIds": charge_ids,
        "attachments": [{"documentId": int(d), "type": t} for d, t in command.attachments],
    }
    number: str | None = None
    sends = 0
    while number is None:
        sends += 1
        _portal_error.set(None)
        try:
            r = await wctx.portal.request("POST", f"{wctx.portal_url}/claims", json=body)
            number = _parse(r, pw.ClaimDetailPayload, "POST /portal/api/claims", wctx).claim_number
        except UpstreamStatusError as err:
            raise _portal_failure(err, "submit claim") from None
        except WriteUnconfirmed:
            number = await _claim_with(wctx, keys.chart_number, set(charge_ids))
            if number is None and sends >= MAX_SENDS:
                raise
    claim = await _claim(wctx, number)
    asked = {wctx.index.charges[c] for c in command.charge_ids}
    got = {wctx.index.charges.get(line.charge_id) for line in claim.lines}
    diverged = () if asked == got else ("lines",)
    return WriteResult(
        value=claim, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
    )


async def _encounter(wctx: WriteContext, number: int) -> Encounter:
    endpoint = "GET /portal/api/encounters/{id}"
    r = await wctx.portal.request(
        "GET", f"{wctx.portal_url}/encounters/{number}", endpoint=endpoint
    )
    value = pm.encounter_from_portal(
        _parse(r, pw.EncounterDetailPayload, endpoint, wctx), wctx.ctx("portal", endpoint)
    ).value
    wctx.index.encounters[value.id] = number
    return value


async def _encounter_ids(wctx: WriteContext, chart: str) -> set[int]:
    ids: set[int] = set()
    async for body in wctx.portal.portal_pages(
        f"{wctx.portal_url}/patients/{chart}/encounters", {"pageSize": 100}
    ):
        page = check(
            body,
            pw.Page[pw.EncounterItemPayload],
            "GET /portal/api/patients/{chartNumber}/encounters",
            wctx.drift,
        )
        ids.update(e.id for e in page.items)
    return ids


async def push_encounter(wctx: WriteContext, command: NewEncounter) -> WriteResult[Encounter]:
    """Push an open encounter to the patient's chart (``POST /portal/api/encounters``)."""
    keys = wctx.index.patient(command.patient_id)
    body: dict[str, Any] = {
        "chartNumber": keys.chart_number,
        "chiefComplaint": command.chief_complaint,
        "notes": dict(command.note),
        "diagnoses": list(command.diagnoses),
        "procedures": [{"code": code, "units": units} for code, units in command.procedures],
    }
    if command.provider_id is not None:
        body["providerId"] = _need(wctx.index.providers, command.provider_id, "provider")
    if command.location_id is not None:
        body["locationId"] = _need(wctx.index.locations, command.location_id, "location")
    if command.start is not None:
        body["startTime"] = command.start.isoformat()
    before = await _encounter_ids(wctx, keys.chart_number)
    number: int | None = None
    sends = 0
    while number is None:
        sends += 1
        _portal_error.set(None)
        try:
            r = await wctx.portal.request("POST", f"{wctx.portal_url}/encounters", json=body)
            number = _parse(r, pw.EncounterDetailPayload, "POST /portal/api/encounters", wctx).id
        except UpstreamStatusError as err:
            raise _portal_failure(err, "push encounter") from None
        except WriteUnconfirmed:
            new = sorted((await _encounter_ids(wctx, keys.chart_number)) - before)
            number = new[-1] if new else None
            if number is None and sends >= MAX_SENDS:
                raise
    value = await _encounter(wctx, number)
    note = value.note.model_dump()
    diverged = _diff(
        [
            ("patient_id", command.patient_id, value.patient_id),
            ("provider_id", command.provider_id, value.provider_id),
            ("location_id", command.location_id, value.location_id),
            ("start", command.start, value.start),
            ("chief_complaint", command.chief_complaint, value.chief_complaint),
            *((f"note.{k}", v, note.get(k)) for k, v in command.note.items()),
            ("diagnoses", tuple(command.diagnoses), tuple(d.code for d in value.diagnoses)),
            (
                "procedures",
                tuple(command.procedures),
                tuple((p.code, p.units) for p in value.procedures),
            ),
        ]
    )
    return WriteResult(
        value=value, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
    )


async def add_addendum(
    wctx: WriteContext, encounter_id: EncounterId, text: str
) -> WriteResult[Encounter]:
    """Add an addendum to a signed encounter.

    Raises:
        InvalidTransition: the encounter is still open.
    """
    number = _need(wctx.index.encounters, encounter_id, "encounter")
    before = len((await _encounter(wctx, number)).addenda)
    sends = 0
    while True:
        sends += 1
        _portal_error.set(None)
        try:
            await wctx.portal.request(
                "POST",
                f"{wctx.portal_url}/encounters/{number}/addenda",
                json={"text": text},
                endpoint="POST /portal/api/encounters/{id}/addenda",
            )
            break
        except (UpstreamStatusError, AuthError) as err:
            raise _portal_failure(err, "add addendum") from None
        except WriteUnconfirmed:
            now = await _encounter(wctx, number)
            if any(a.text == text for a in now.addenda[before:]):
                break
            if sends >= MAX_SENDS:
                raise
    value = await _encounter(wctx, number)
    diverged = () if any(a.text == text for a in value.addenda[before:]) else ("addenda",)
    return WriteResult(
        value=value, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
    )


async def sign_encounter(wctx: WriteContext, encounter_id: EncounterId) -> WriteResult[Encounter]:
    """Sign an open encounter (posts its charges upstream).

    Raises:
        InvalidTransition: already signed (409). EncounterLocked: the portal's 423.
    """
    number = _need(wctx.index.encounters, encounter_id, "encounter")
    sends = 0
    while True:
        sends += 1
        _portal_error.set(None)
        try:
            await wctx.portal.request(
                "POST",
                f"{wctx.portal_url}/encounters/{number}/sign",
                endpoint="POST /portal/api/encounters/{id}/sign",
            )
            break
        except (UpstreamStatusError, AuthError) as err:
            raise _portal_failure(err, "sign encounter") from None
        except WriteUnconfirmed:
            if (await _encounter(wctx, number)).signed_at is not None:
                break
            if sends >= MAX_SENDS:
                raise
    value = await _encounter(wctx, number)
    diverged = () if value.signed_at is not None else ("signed_at",)
    return WriteResult(
        value=value, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
    )


# --- eligibility ------------------------------------------------------------------------------------


async def check_eligibility(
    wctx: WriteContext, patient_id: PatientId, request: EligibilityRequest
) -> WriteResult[EligibilityCheck]:
    """Ask the payer electronically, then poll until answered (``wctx.sleep`` between polls).

    An eligibility inquiry writes nothing the practice keeps, so an unknown outcome is simply
    sent again. Returns ``pending`` when ``poll_attempts`` polls saw no answer.
    """
    keys = wctx.index.patient(patient_id)
    endpoint = "POST /v2/patients/{id}/eligibility_request"
    asked_at = wctx.clock()
    sends = 0
    request_id: int | None = None
    while request_id is None:
        sends += 1
        try:
            r = await wctx.v2.request(
                "POST",
                f"{wctx.v2_url}/patients/{keys.guid}/eligibility_request",
                json={"eligibility_date": request.service_date.isoformat()},
                endpoint=endpoint,
            )
            request_id = _parse(
                r, vw.EligibilityCreatedResponse, endpoint, wctx
            ).eligibility_request.id
        except WriteUnconfirmed:
            if sends >= MAX_SENDS:
                raise
    poll = "GET /v2/patients/{id}/eligibility_request/{request_id}"
    ref = vm.PatientRef(keys.guid, keys.chart_number)
    for n in range(wctx.poll_attempts):
        if n:
            await wctx.sleep(wctx.poll_interval)
        r = await wctx.v2.request(
            "GET",
            f"{wctx.v2_url}/patients/{keys.guid}/eligibility_request/{request_id}",
            endpoint=poll,
        )
        wire = _parse(r, vw.EligibilityResponse, poll, wctx).eligibility_request
        value = vm.map_eligibility(
            wire, wctx.ctx("v2", poll), patient=ref, requested_at=asked_at, request=request
        ).value
        if value.status != "pending":
            diverged = _diff([("service_date", request.service_date, wire.eligibility_date)])
            return WriteResult(
                value=value, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
            )
    return WriteResult(value=value, confirmation="pending", attempts=sends)


__all__ = [
    "MAX_SENDS",
    "ClaimRejected",
    "EncounterLocked",
    "IdIndex",
    "PatientKeys",
    "SlotTaken",
    "UnknownId",
    "WriteContext",
    "add_addendum",
    "cancel_appointment",
    "check_eligibility",
    "check_in",
    "check_out",
    "create_appointment",
    "create_charge",
    "index_practice",
    "push_encounter",
    "reschedule_appointment",
    "sign_encounter",
    "submit_claim",
]
