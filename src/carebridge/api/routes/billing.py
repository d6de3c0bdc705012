"""The revenue cycle: claims, charges, payments, remittances and statements (read through,
incrementally), and the charge and claim writes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi import Body as BodyParam

from carebridge.api import bodies
from carebridge.api.routes.common import (
    CacheControl,
    Caller,
    Cursor,
    IdemKey,
    Limit,
    MaxAge,
    Order,
    Since,
    freshness,
    list_response,
    listed,
    one_of,
    one_response,
    one_route,
    with_article,
    write_response,
    written,
)
from carebridge.domain.values import ClaimId, PatientId
from carebridge.domain.vocab import PaymentKind, RemittanceClaimStatus
from carebridge.errors import BadRequest
from carebridge.services.reads import Reads, field_filters, given
from carebridge.services.writes import Writes

LEDGER = (
    ("charge", "/charges"),
    ("payment", "/payments"),
    ("remittance", "/remittances"),
    ("statement", "/statements"),
)
PaymentKindFilter = Annotated[
    PaymentKind | None,
    Query(
        alias="kind",
        description="`era` (a payer's remittance) or `patient` (a patient's payment).",
    ),
]
ClaimStatusCode = Annotated[
    RemittanceClaimStatus | None,
    Query(description="835 CLP02: `1` processed as primary, `4` denied, `22` reversal..."),
]


def router(reads: Reads) -> APIRouter:
    """The billing reads."""
    routes = APIRouter(tags=["billing"])

    @routes.get("/claims", summary="List claims", **listed("claim"))
    async def list_claims(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        order: Order = "id",  # noqa: ARG001 - the one order offered
        max_age: MaxAge = None,
        patient_id: PatientId | None = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
        updated_since: Since = None,
    ) -> Response:
        """Claims with their lines and 277 status history."""
        filters = given(patient_id=patient_id, status=status)
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(
            reads, principal, "claim", "/claims", paging, filters, updated_since=updated_since
        )

    @routes.get("/claims/{claim_id}", summary="Get a claim", **one_of("claim"))
    async def get_claim(
        principal: Caller,
        claim_id: ClaimId,
        max_age: MaxAge = None,
        cache_control: CacheControl = None,
    ) -> Response:
        """One claim."""
        fresh = freshness(max_age, cache_control)
        return await one_response(reads, principal, "claim", "GET /claims/{id}", claim_id, fresh)

    routes_of = {"payment": _payments_route, "remittance": _remittances_route}
    for kind, path in LEDGER:
        routes.add_api_route(
            path,
            routes_of.get(kind, _billing_route)(reads, kind, path),
            methods=["GET"],
            summary=f"List {path[1:]}",
            **listed(kind),
        )
        routes.add_api_route(
            f"{path}/{{id}}",
            one_route(reads, kind, path),
            methods=["GET"],
            summary=f"Get {with_article(kind)}",
            **one_of(kind),
        )
    return routes


def _billing_route(reads: Reads, kind: str, path: str) -> Any:
    async def route(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        order: Order = "id",  # noqa: ARG001 - the one order offered
        max_age: MaxAge = None,
        patient_id: PatientId | None = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
        updated_since: Since = None,
    ) -> Response:
        filters = given(patient_id=patient_id, status=status)
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(
            reads, principal, kind, path, paging, filters, updated_since=updated_since
        )

    route.__doc__ = f"The tenant's {path[1:]}, refreshed incrementally when stale."
    return route


def _payments_route(reads: Reads, kind: str, path: str) -> Any:
    async def route(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        order: Order = "id",  # noqa: ARG001 - the one order offered
        max_age: MaxAge = None,
        patient_id: Annotated[
            PatientId | None, Query(description="A patient's own payments.")
        ] = None,
        kind_: PaymentKindFilter = None,
        updated_since: Since = None,
    ) -> Response:
        filters = field_filters(kind, patient_id=patient_id, kind=kind_)
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(
            reads, principal, kind, path, paging, filters, updated_since=updated_since
        )

    route.__doc__ = (
        "The tenant's payments (payers' ERAs and patients' payments), refreshed incrementally "
        "when stale. Filter by `patient_id` or `kind`."
    )
    return route


def _remittances_route(reads: Reads, kind: str, path: str) -> Any:
    async def route(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        order: Order = "id",  # noqa: ARG001 - the one order offered
        max_age: MaxAge = None,
        patient_id: Annotated[
            PatientId | None, Query(description="The remitted claims' patient.")
        ] = None,
        claim_status_code: ClaimStatusCode = None,
        status: Annotated[
            RemittanceClaimStatus | None,
            Query(deprecated=True, description="Deprecated: use `claim_status_code`."),
        ] = None,
        updated_since: Since = None,
    ) -> Response:
        if claim_status_code is not None and status is not None:
            raise BadRequest(
                "give claim_status_code or its old name status, not both", field="status"
            )
        filters = field_filters(
            kind, patient_id=patient_id, claim_status_code=claim_status_code or status
        )
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(
            reads, principal, kind, path, paging, filters, updated_since=updated_since
        )

    route.__doc__ = (
        "The tenant's remittances (each claim as a payer's ERA reports it), refreshed "
        "incrementally when stale. Filter by `patient_id` or `claim_status_code`."
    )
    return route


def write_router(writes: Writes) -> APIRouter:
    """The charge and claim writes."""
    routes = APIRouter(tags=["billing"])
    reads = writes.reads

    @routes.post("/create_charge", summary="Post a charge", **written("charge", creates=True))
    async def create_charge(
        principal: Caller, body: bodies.CreateCharge, key: IdemKey = None
    ) -> Response:
        """Post a CPT/HCPCS charge to the patient's ledger."""
        write = writes.create_charge(principal, body.command(), key=key, request=body.sent())
        return await write_response(reads, principal, write, "charge")

    @routes.post("/submit_claim", summary="Submit a claim", **written("claim", creates=True))
    async def submit_claim(
        principal: Caller,
        body: Annotated[bodies.SubmitClaim, BodyParam()],
        key: IdemKey = None,
    ) -> Response:
        """Scrub and submit a claim from unbilled charges; answers the claim and its status.
        A scrubber rejection is a 422 naming every field."""
        write = writes.submit_claim(principal, body.command(), key=key, request=body.sent())
        return await write_response(reads, principal, write, "claim")

    return routes
