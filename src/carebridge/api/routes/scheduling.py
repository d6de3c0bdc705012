"""Scheduling: availability (real time), appointments (read through by window), and the
appointment writes."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from carebridge.api import bodies
from carebridge.api.routes.common import (
    CacheControl,
    Caller,
    Cursor,
    From,
    IdemKey,
    Items,
    Limit,
    MaxAge,
    Page,
    Until,
    WriteAnswer,
    freshness,
    json_response,
    page_response,
    rate_headers,
    write_response,
)
from carebridge.domain.values import (
    LocationId,
    PatientId,
    ProviderId,
    RequestDay,
    ResourceId,
    VisitReasonId,
)
from carebridge.services.reads import ListQuery, Reads, given
from carebridge.services.writes import Writes


def router(reads: Reads) -> APIRouter:
    """The scheduling reads."""
    routes = APIRouter(tags=["scheduling"])

    @routes.get("/availability", response_model=Items)
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
        return json_response(
            {"data": [s.model_dump(mode="json") for s in slots]},
            age=timedelta(0),
            headers=rate_headers(reads, principal),
        )

    @routes.get("/appointments", response_model=Page)
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
    ) -> Response:
        """Appointments in a window (default: a week back to 30 days ahead)."""
        query = ListQuery(
            "appointment",
            "GET /appointments",
            given(
                status=status,
                patient_id=patient_id,
                provider_id=provider_id,
                location_id=location_id,
            ),
            starts_from=start,
            starts_before=end,
            limit=limit,
            cursor=cursor,
            freshness=freshness(max_age, cache_control),
        )
        return page_response(await reads.page(principal, query), reads, principal)

    return routes


def write_router(writes: Writes) -> APIRouter:
    """The appointment writes."""
    routes = APIRouter(tags=["scheduling"])
    reads = writes.reads

    @routes.post("/create_appointment", status_code=201, response_model=WriteAnswer)
    async def create_appointment(
        principal: Caller, body: bodies.CreateAppointment, key: IdemKey = None
    ) -> Response:
        """Book a visit in a free slot (``GET /availability``); 409 when the slot is taken."""
        return await write_response(
            reads,
            principal,
            writes.create_appointment(principal, body.command(), key=key, request=body.sent()),
        )

    @routes.post("/reschedule_appointment", response_model=WriteAnswer)
    async def reschedule_appointment(
        principal: Caller, body: bodies.Reschedule, key: IdemKey = None
    ) -> Response:
        """Move an appointment to another free slot."""
        return await write_response(
            reads,
            principal,
            writes.reschedule_appointment(
                principal, body.appointment_id, body.command(), key=key, request=body.sent()
            ),
        )

    @routes.post("/cancel_appointment", response_model=WriteAnswer)
    async def cancel_appointment(
        principal: Caller, body: bodies.Cancel, key: IdemKey = None
    ) -> Response:
        """Cancel an appointment, with a cancellation reason code (default: the practice's)."""
        return await write_response(
            reads,
            principal,
            writes.cancel_appointment(
                principal,
                body.appointment_id,
                reason_code=body.reason_code,
                comments=body.comments,
                key=key,
                request=body.sent(),
            ),
        )

    @routes.post("/check_in", response_model=WriteAnswer)
    async def check_in(
        principal: Caller, body: bodies.AppointmentRef, key: IdemKey = None
    ) -> Response:
        """Mark the patient arrived."""
        return await write_response(
            reads,
            principal,
            writes.check_in(principal, body.appointment_id, key=key, request=body.sent()),
        )

    @routes.post("/check_out", response_model=WriteAnswer)
    async def check_out(
        principal: Caller, body: bodies.AppointmentRef, key: IdemKey = None
    ) -> Response:
        """Mark the visit done (the upstream opens its encounter)."""
        return await write_response(
            reads,
            principal,
            writes.check_out(principal, body.appointment_id, key=key, request=body.sent()),
        )

    return routes
