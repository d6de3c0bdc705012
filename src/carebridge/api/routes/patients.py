"""Patients: the list and one patient (read through), eligibility and balances (real time)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from carebridge.api.routes.common import (
    DATE,
    CacheControl,
    Caller,
    Cursor,
    Items,
    Limit,
    MaxAge,
    Page,
    Since,
    freshness,
    list_response,
    live_response,
    one_response,
)
from carebridge.domain.values import LocationId, PatientId, ProviderId, RequestDay
from carebridge.services.reads import Reads, patient_filters


def router(reads: Reads) -> APIRouter:
    """The patient routes (``/balances`` is the billing tag's, served beside them)."""
    routes = APIRouter()

    @routes.get("/patients", tags=["patients"], response_model=Page)
    async def list_patients(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        max_age: MaxAge = None,
        name: Annotated[str | None, Query(max_length=200, description="Last, First")] = None,
        dob: Annotated[str | None, Query(pattern=DATE)] = None,
        provider_id: ProviderId | None = None,
        location_id: LocationId | None = None,
        status: Annotated[str | None, Query(pattern="^(active|inactive)$")] = None,
        updated_since: Since = None,
    ) -> Response:
        """Demographics, insurance (coverages with their eligibility) and balances."""
        filters = patient_filters(
            name=name, dob=dob, provider_id=provider_id, location_id=location_id, status=status
        )
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(
            reads, principal, "patient", "/patients", paging, filters, updated_since=updated_since
        )

    @routes.get("/patients/{patient_id}", tags=["patients"])
    async def get_patient(
        principal: Caller,
        patient_id: PatientId,
        max_age: MaxAge = None,
        cache_control: CacheControl = None,
    ) -> Response:
        """One patient."""
        fresh = freshness(max_age, cache_control)
        return await one_response(
            reads, principal, "patient", "GET /patients/{id}", patient_id, fresh
        )

    @routes.get("/eligibility", tags=["patients"])
    async def eligibility(
        principal: Caller,
        patient_id: PatientId,
        service_date: Annotated[RequestDay | None, Query(description="Default: today.")] = None,
        service_type: Annotated[
            list[str] | None, Query(description="X12 service type codes (default 30).")
        ] = None,
    ) -> Response:
        """A real-time eligibility inquiry (270/271), with normalized benefits."""
        check = await reads.eligibility(
            principal,
            "GET /eligibility",
            patient_id,
            service_date=service_date,
            service_types=service_type or (),
        )
        return live_response(reads, principal, check.model_dump(mode="json"))

    @routes.get("/balances", tags=["billing"], response_model=Items)
    async def balances(principal: Caller, patient_id: PatientId) -> Response:
        """A patient's balances (patient and insurance responsibility), read in real time."""
        rows = await reads.balances(principal, "GET /balances", patient_id)
        return live_response(reads, principal, {"data": [r.model_dump(mode="json") for r in rows]})

    return routes
