"""Scheduling writes to v2: book, cancel, reschedule, check in and out, each read back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carebridge.connectors.carecloud.drift import check_list
from carebridge.connectors.carecloud.mapping import v2 as vm
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.connectors.carecloud.write_context import (
    PatientKeys,
    WriteContext,
    _diff,
    _need,
    _parse,
    _read_back,
    _resend,
    _resend_verb,
)
from carebridge.domain import Appointment, AppointmentStatus
from carebridge.domain.values import AppointmentId
from carebridge.errors import InvalidTransition, SlotTaken, UnknownId, UpstreamStatusError
from carebridge.ports.upstream import NewAppointment, WriteResult
from carebridge.ports.writes import RESUMING


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

    async def send() -> str:
        try:
            r = await wctx.v2.request(
                "POST", f"{wctx.v2_url}/appointments", json={"appointment": body}
            )
        except UpstreamStatusError as err:
            if err.status == 409:
                raise SlotTaken(
                    "the upstream refused the slot", resource=b.resource, start=b.start
                ) from None
            raise
        return _parse(r, vw.AppointmentCreatedResponse, "POST /v2/appointments", wctx).appointment

    async def find() -> str | None:
        return await _find_booking(wctx, b)  # did the attempt land?

    guid, sends = await _resend(send, find)
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
    return _read_back(appointment, diverged, sends)


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

    async def send() -> object:
        try:
            return await wctx.v2.request(
                "PUT",
                f"{wctx.v2_url}/appointments/{guid}/{verb}",
                json=body or {},
                endpoint=endpoint,
            )
        except UpstreamStatusError as err:
            if err.status in (409, 422):
                raise InvalidTransition(f"{verb}: not allowed in the appointment's state") from None
            raise

    async def took() -> bool:
        return (await _show_appointment(wctx, guid)).status == target

    sends = await _resend_verb(send, took)
    appointment = await _show_appointment(wctx, guid)
    diverged = () if appointment.status == target else ("status",)
    return _read_back(appointment, diverged, sends)


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
