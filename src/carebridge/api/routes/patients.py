"""Patients: the list and one patient (read through), eligibility and balances (real time)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from carebridge.api.routes.common import (
    DATE,
    CacheControl,
    Caller,
    Cursor,
    Limit,
    MaxAge,
    Order,
    Since,
    envelope,
    freshness,
    list_response,
    listed,
    live_page,
    live_response,
    one_of,
    one_response,
)
from carebridge.contract.examples import EXAMPLES
from carebridge.contract.records import Balance, record_model, with_currency
from carebridge.domain.values import LocationId, PatientId, ProviderId, RequestDay
from carebridge.errors import BadRequest
from carebridge.services.reads import Reads, patient_filters


def _one_of(current: tuple[str, object], deprecated: tuple[str, object]) -> None:
    """Refuse a filter given under its name and its deprecated old name at once (400)."""
    if current[1] is not None and deprecated[1] is not None:
        raise BadRequest(
            f"give {current[0]} or its old name {deprecated[0]}, not both", field=deprecated[0]
        )


def router(reads: Reads) -> APIRouter:
    """The patient routes (``/balances`` is the billing tag's, served beside them)."""
    routes = APIRouter()

    @routes.get("/patients", tags=["patients"], summary="List patients", **listed("patient"))
    async def list_patients(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        order: Order = "id",  # noqa: ARG001 - the one order offered
        max_age: MaxAge = None,
        name: Annotated[str | None, Query(max_length=200, description="Last, First")] = None,
        birth_date: Annotated[
            str | None, Query(pattern=DATE, description="Date of birth (YYYY-MM-DD).")
        ] = None,
        dob: Annotated[
            str | None,
            Query(pattern=DATE, deprecated=True, description="Deprecated: use `birth_date`."),
        ] = None,
        primary_provider_id: Annotated[
            ProviderId | None, Query(description="The patient's primary provider.")
        ] = None,
        primary_location_id: Annotated[
            LocationId | None, Query(description="The patient's primary location.")
        ] = None,
        active: Annotated[
            bool | None, Query(description="Active (`true`) or inactive (`false`) patients.")
        ] = None,
        provider_id: Annotated[
            ProviderId | None,
            Query(deprecated=True, description="Deprecated: use `primary_provider_id`."),
        ] = None,
        location_id: Annotated[
            LocationId | None,
            Query(deprecated=True, description="Deprecated: use `primary_location_id`."),
        ] = None,
        status: Annotated[
            str | None,
            Query(
                pattern="^(active|inactive)$",
                deprecated=True,
                description="Deprecated: use `active` (`status=active` is `active=true`).",
            ),
        ] = None,
        updated_since: Since = None,
    ) -> Response:
        """Patients with their demographics, insurance (coverages with their eligibility) and
        balances, in id order. Filter by name (`Last, First`), `birth_date`,
        `primary_provider_id`, `primary_location_id`, `active`, or what changed since an
        instant."""
        _one_of(("birth_date", birth_date), ("dob", dob))
        _one_of(("primary_provider_id", primary_provider_id), ("provider_id", provider_id))
        _one_of(("primary_location_id", primary_location_id), ("location_id", location_id))
        _one_of(("active", active), ("status", status))
        given = "dob" if dob is not None else "birth_date"  # a refusal names the one sent
        try:
            filters = patient_filters(
                name=name,
                dob=birth_date or dob,
                primary_provider_id=primary_provider_id or provider_id,
                primary_location_id=primary_location_id or location_id,
                active=active if status is None else status == "active",
            )
        except BadRequest as refused:
            if refused.field != "dob":
                raise
            raise BadRequest(f"{given} is not a calendar date", field=given) from None
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(
            reads, principal, "patient", "/patients", paging, filters, updated_since=updated_since
        )

    @routes.get(
        "/patients/{patient_id}", tags=["patients"], summary="Get a patient", **one_of("patient")
    )
    async def get_patient(
        principal: Caller,
        patient_id: PatientId,
        max_age: MaxAge = None,
        cache_control: CacheControl = None,
    ) -> Response:
        """One patient by id (`pat_...`); another tenant's id is a 404."""
        fresh = freshness(max_age, cache_control)
        return await one_response(
            reads, principal, "patient", "GET /patients/{id}", patient_id, fresh
        )

    @routes.get(
        "/eligibility",
        tags=["patients"],
        summary="Check a patient's insurance eligibility",
        response_model=record_model("eligibility"),
        responses={200: {"content": {"application/json": {"example": EXAMPLES["eligibility"]}}}},
    )
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
        return live_response(
            reads, principal, with_currency(check.model_dump(mode="json"), "eligibility")
        )

    @routes.get(
        "/balances",
        tags=["billing"],
        summary="A patient's balances",
        **live_page(Balance, EXAMPLES["balance"]),
    )
    async def balances(principal: Caller, patient_id: PatientId) -> Response:
        """A patient's balances (patient and insurance responsibility), read in real time."""
        rows = await reads.balances(principal, "GET /balances", patient_id)
        data = [{"currency": "USD", **r.model_dump(mode="json")} for r in rows]
        return live_response(reads, principal, envelope(data))

    return routes
