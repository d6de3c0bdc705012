"""Charts: encounters and a patient's labs, immunizations and documents (read through), and
the encounter writes."""

from __future__ import annotations

from typing import Annotated, Any

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
    Order,
    Since,
    Until,
    list_response,
    listed,
    one_of,
    one_route,
    with_article,
    write_response,
    written,
)
from carebridge.domain.values import EncounterId, PatientId, ProviderId
from carebridge.errors import BadRequest
from carebridge.services.reads import Reads, field_filters, given
from carebridge.services.writes import Writes

CHART = (
    ("lab", "/labs"),
    ("immunization", "/immunizations"),
    ("document", "/documents"),
)


def router(reads: Reads) -> APIRouter:
    """The chart reads."""
    routes = APIRouter(tags=["charts"])

    @routes.get("/encounters", summary="List encounters", **listed("encounter"))
    async def list_encounters(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        order: Order = "id",  # noqa: ARG001 - the one order offered
        max_age: MaxAge = None,
        patient_id: PatientId | None = None,
        provider_id: ProviderId | None = None,
        status: Annotated[str | None, Query(pattern="^(open|signed)$")] = None,
        start: From = None,
        end: Until = None,
        updated_since: Since = None,
    ) -> Response:
        """Encounters with their note, diagnoses, procedures, vitals, addenda and signature.
        With ``patient_id``, the patient's chart is read through when stale."""
        filters = given(patient_id=patient_id, provider_id=provider_id, status=status)
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(
            reads,
            principal,
            "encounter",
            "/encounters",
            paging,
            filters,
            updated_since=updated_since,
            start=start,
            end=end,
        )

    for kind, path in CHART:
        routes.add_api_route(
            path,
            (_documents_route if kind == "document" else _chart_route)(reads, kind, path),
            methods=["GET"],
            summary=f"List a patient's {path[1:]}",
            **listed(kind),
        )
    for kind, path in (("encounter", "/encounters"), *CHART):
        routes.add_api_route(
            f"{path}/{{id}}",
            one_route(reads, kind, path),
            methods=["GET"],
            summary=f"Get {'a lab result' if kind == 'lab' else with_article(kind)}",
            **one_of(kind),
        )
    return routes


def _chart_route(reads: Reads, kind: str, path: str) -> Any:
    async def route(
        principal: Caller,
        patient_id: PatientId,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        order: Order = "id",  # noqa: ARG001 - the one order offered
        max_age: MaxAge = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
    ) -> Response:
        filters = given(patient_id=patient_id, status=status)
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(reads, principal, kind, path, paging, filters)

    route.__doc__ = f"A patient's {path[1:]}, read through the chart when stale."
    return route


def _documents_route(reads: Reads, kind: str, path: str) -> Any:
    async def route(
        principal: Caller,
        patient_id: PatientId,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        order: Order = "id",  # noqa: ARG001 - the one order offered
        max_age: MaxAge = None,
        active: Annotated[
            bool | None, Query(description="Active (`true`) or inactive (`false`) documents.")
        ] = None,
        status: Annotated[
            str | None,
            Query(
                pattern="^(active|inactive)$",
                deprecated=True,
                description="Deprecated: use `active` (`status=active` is `active=true`).",
            ),
        ] = None,
    ) -> Response:
        if active is not None and status is not None:
            raise BadRequest("give active or its old name status, not both", field="status")
        flag = active if status is None else status == "active"
        filters = field_filters(kind, patient_id=patient_id, active=flag)
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(reads, principal, kind, path, paging, filters)

    route.__doc__ = (
        "A patient's documents (metadata), read through the chart when stale. Filter by `active`."
    )
    return route


def write_router(writes: Writes) -> APIRouter:
    """The encounter writes."""
    routes = APIRouter(tags=["charts"])
    reads = writes.reads

    @routes.post(
        "/create_encounter", summary="Create an encounter", **written("encounter", creates=True)
    )
    async def create_encounter(
        principal: Caller, body: bodies.CreateEncounter, key: IdemKey = None
    ) -> Response:
        """Push an encounter (note, diagnoses, procedures) to the EHR; it starts open."""
        write = writes.create_encounter(principal, body.command(), key=key, request=body.sent())
        return await write_response(reads, principal, write, "encounter")

    @routes.post("/sign_encounter", summary="Sign an encounter", **written("encounter"))
    async def sign_encounter(
        principal: Caller, body: bodies.EncounterRef, key: IdemKey = None
    ) -> Response:
        """Sign an open encounter (it locks; its charges post)."""
        write = writes.sign_encounter(principal, body.encounter_id, key=key, request=body.sent())
        return await write_response(reads, principal, write, "encounter")

    @routes.post(
        "/encounters/{id}/addenda",
        summary="Add an addendum to a signed encounter",
        **written("encounter", creates=True),
    )
    async def add_addendum(
        principal: Caller, id: EncounterId, body: bodies.NewAddendum, key: IdemKey = None
    ) -> Response:
        """Add an addendum to a signed encounter (an open one is a 409: edit its note). The
        answer is the encounter as read back, the addendum last in its ``addenda``; ``Location``
        names the encounter, where the addendum is read."""
        sent = {"encounter_id": id} | body.sent()
        write = writes.add_addendum(principal, id, body.text, key=key, request=sent)
        return await write_response(reads, principal, write, "encounter")

    return routes
