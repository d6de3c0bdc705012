"""The carebridge API (the read routes served from the store so far).

Every route authenticates an API key, checks its scope, scopes the query to the key's tenant
(another tenant's ids are 404), audits PHI reads before answering, and answers errors as RFC
9457 problems.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from pydantic import BaseModel

from carebridge.api import problems
from carebridge.ports.records import AuditReader, KeyStore
from carebridge.services.records import Principal, Records, authenticate

MAX_LIMIT = 500


class Page(BaseModel):
    """A page of records and the cursor of the next one (None on the last page)."""

    data: list[dict[str, Any]]
    next_cursor: str | None


class AuditPage(BaseModel):
    """Audit entries in sequence order; ``next_after`` continues the read (the replay cursor)."""

    data: list[dict[str, Any]]
    next_after: int | None


class Health(BaseModel):
    """Liveness."""

    status: str


async def _principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    keys: KeyStore = request.app.state.keys
    return await authenticate(keys, authorization)


def _given(**values: str | None) -> dict[str, str]:
    """The filters the caller gave (empty ones are not filters)."""
    return {key: value for key, value in values.items() if value}


Caller = Annotated[Principal, Depends(_principal)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def create_app(records: Records, keys: KeyStore, audit: AuditReader | None = None) -> FastAPI:
    """The API over the given use cases."""
    app = FastAPI(title="carebridge", version="0.1.0", openapi_url="/openapi.json")
    problems.install(app)

    app.state.keys = keys

    @app.get("/health")
    async def health() -> Health:
        return Health(status="ok")

    @app.get("/patients")
    async def list_patients(
        caller: Caller,
        limit: Limit = 100,
        cursor: str | None = None,
        name: Annotated[str | None, Query(description="Last, First")] = None,
        dob: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
        provider_id: str | None = None,
        location_id: str | None = None,
        updated_since: datetime | None = None,
    ) -> Page:
        filters = _given(
            name_key=name.lower() if name else None,
            birth_date=dob,
            provider_id=provider_id,
            location_id=location_id,
        )
        page = await records.list(
            caller,
            "patient",
            "GET /patients",
            filters=filters,
            updated_since=updated_since,
            limit=limit,
            cursor=cursor,
        )
        return Page(data=list(page.items), next_cursor=page.next_cursor)

    @app.get("/patients/{patient_id}")
    async def get_patient(caller: Caller, patient_id: str) -> dict[str, Any]:
        return await records.get(caller, "patient", "GET /patients/{id}", patient_id)

    @app.get("/appointments")
    async def list_appointments(
        caller: Caller,
        limit: Limit = 100,
        cursor: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        status: str | None = None,
        patient_id: str | None = None,
        provider_id: str | None = None,
        location_id: str | None = None,
    ) -> Page:
        filters = _given(
            status=status, patient_id=patient_id, provider_id=provider_id, location_id=location_id
        )
        page = await records.list(
            caller,
            "appointment",
            "GET /appointments",
            filters=filters,
            starts_from=start,
            starts_before=end,
            limit=limit,
            cursor=cursor,
        )
        return Page(data=list(page.items), next_cursor=page.next_cursor)

    @app.get("/encounters")
    async def list_encounters(
        caller: Caller,
        limit: Limit = 100,
        cursor: str | None = None,
        patient_id: str | None = None,
        provider_id: str | None = None,
        status: Annotated[str | None, Query(pattern="^(open|signed)$")] = None,
        start: datetime | None = None,
        end: datetime | None = None,
        updated_since: datetime | None = None,
    ) -> Page:
        """Encounters with their note, diagnoses, procedures, vitals, addenda and signature."""
        page = await records.list(
            caller,
            "encounter",
            "GET /encounters",
            filters=_given(patient_id=patient_id, provider_id=provider_id, status=status),
            starts_from=start,
            starts_before=end,
            updated_since=updated_since,
            limit=limit,
            cursor=cursor,
        )
        return Page(data=list(page.items), next_cursor=page.next_cursor)

    @app.get("/claims")
    async def list_claims(
        caller: Caller,
        limit: Limit = 100,
        cursor: str | None = None,
        patient_id: str | None = None,
        status: str | None = None,
        updated_since: datetime | None = None,
    ) -> Page:
        """Claims with their lines and 277 status history."""
        page = await records.list(
            caller,
            "claim",
            "GET /claims",
            filters=_given(patient_id=patient_id, status=status),
            updated_since=updated_since,
            limit=limit,
            cursor=cursor,
        )
        return Page(data=list(page.items), next_cursor=page.next_cursor)

    @app.get("/claims/{claim_id}")
    async def get_claim(caller: Caller, claim_id: str) -> dict[str, Any]:
        return await records.get(caller, "claim", "GET /claims/{id}", claim_id)

    if audit is not None:
        reader = audit

        @app.get("/audit_events")
        async def audit_events(
            caller: Caller,
            after: Annotated[int, Query(ge=0)] = 0,
            limit: Limit = 100,
        ) -> AuditPage:
            """Who accessed which patients' data, through which route, when (scope
            ``audit.read``). The log is hash-chained: ``carebridge audit verify`` checks it."""
            caller.require("audit.read")
            events = await reader.events(caller.tenant_id, after=after, limit=limit)
            more = len(events) == limit
            return AuditPage(data=events, next_after=events[-1]["seq"] if more and events else None)

    return app
