"""Scheduling: availability (real time), appointments (read through by window), and the
appointment writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from carebridge.api import bodies
from carebridge.api.routes.common import (
    CacheControl,
    Caller,
    Cursor,
    From,
    IdemKey,
    Limit,
    MaxAge,
    StartOrder,
    Until,
    envelope,
    list_response,
    listed,
    live_page,
    live_response,
    one_of,
    one_route,
    write_response,
    written,
)
from carebridge.contract.examples import EXAMPLES
from carebridge.contract.records import Slot
from carebridge.domain.values import (
    LocationId,
    PatientId,
    ProviderId,
    RequestDay,
    ResourceId,
    VisitReasonId,
)
from carebridge.services.reads import Reads, given
from carebridge.services.writes import Writes


def router(reads: Reads) -> APIRouter:
    """The scheduling reads."""
    routes = APIRouter(tags=["scheduling"])

    @routes.get("/availability", summary="Find free slots", **live_page(Slot, EXAMPLES["slot"]))
    async def availability(
        principal: Caller,
        visit_reason_id: VisitReasonId,
        start: RequestDay,
        end: RequestDay,
        location_id: Annotated[list[LocationId] | None, Query()] = None,
        resource_id: Annotated[list[ResourceId] | None, Query()] = None,
    ) -> Response:
        """Free slots for a visit reason, read in real time (at most 31 days)."""
        slots = await reads.availability(
            principal,
            visit_reason_id,
            start,
            end,
            location_ids=location_id or (),
            resource_ids=resource_id or (),
        )
        return live_response(reads, principal, envelope([s.model_dump(mode="json") for s in slots]))

    @routes.get("/appointments", summary="List appointments", **listed("appointment"))
    async def list_appointments(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        max_age: MaxAge = None,
        start: From = None,
        end: Until = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
        patient_id: PatientId | None = None,
        provider_id: ProviderId | None = None,
        location_id: LocationId | None = None,
        order: StartOrder = "start",
    ) -> Response:
        """Appointments in a window of start times (default: a week back to 30 days ahead),
        by patient, provider, location or status; by start time (then id) unless ``order``
        says otherwise."""
        filters = given(
            status=status, patient_id=patient_id, provider_id=provider_id, location_id=location_id
        )
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(
            reads,
            principal,
            "appointment",
            "/appointments",
            paging,
            filters,
            start=start,
            end=end,
            order=order,
        )

    routes.add_api_route(
        "/appointments/{id}",
        one_route(reads, "appointment", "/appointments"),
        methods=["GET"],
        summary="Get an appointment",
        **one_of("appointment"),
    )
    return routes


def write_router(writes: Writes) -> APIRouter:
    """The appointment writes."""
    routes = APIRouter(tags=["scheduling"])
    reads = writes.reads

    @routes.post(
        "/create_appointment", summary="Book an appointment", **written("appointment", creates=True)
    )
    async def create_appointment(
        principal: Caller, body: bodies.CreateAppointment, key: IdemKey = None
    ) -> Response:
        """Book a visit in a free slot (``GET /availability``); 409 when the slot is taken."""
        write = writes.create_appointment(principal, body.command(), key=key, request=body.sent())
        return await write_response(reads, principal, write, "appointment")

    @routes.post(
        "/reschedule_appointment", summary="Reschedule an appointment", **written("appointment")
    )
    async def reschedule_appointment(
        principal: Caller, body: bodies.Reschedule, key: IdemKey = None
    ) -> Response:
        """Move an appointment to another free slot."""
        write = writes.reschedule_appointment(
            principal, body.appointment_id, body.command(), key=key, request=body.sent()
        )
        return await write_response(reads, principal, write, "appointment")

    @routes.post("/cancel_appointment", summary="Cancel an appointment", **written("appointment"))
    async def cancel_appointment(
        principal: Caller, body: bodies.Cancel, key: IdemKey = None
    ) -> Response:
        """Cancel an appointment, with a cancellation reason code (default: the practice's)."""
        write = writes.cancel_appointment(
            principal,
            body.appointment_id,
            reason_code=body.reason_code,
            comments=body.comments,
            key=key,
            request=body.sent(),
        )
        return await write_response(reads, principal, write, "appointment")

    @routes.post("/check_in", summary="Check a patient in", **written("appointment"))
    async def check_in(
        principal: Caller, body: bodies.AppointmentRef, key: IdemKey = None
    ) -> Response:
        """Mark the patient arrived."""
        write = writes.check_in(principal, body.appointment_id, key=key, request=body.sent())
        return await write_response(reads, principal, write, "appointment")

    @routes.post("/check_out", summary="Check a patient out", **written("appointment"))
    async def check_out(
        principal: Caller, body: bodies.AppointmentRef, key: IdemKey = None
    ) -> Response:
        """Mark the visit done (the upstream opens its encounter)."""
        write = writes.check_out(principal, body.appointment_id, key=key, request=body.sent())
        return await write_response(reads, principal, write, "appointment")

    return routes
