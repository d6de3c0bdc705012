"""``GET /events``: the tenant's ordered change log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from carebridge.api.routes.common import (
    After,
    AuditPage,
    Caller,
    Limit,
    json_response,
    rate_headers,
)
from carebridge.domain.event_scopes import visible
from carebridge.domain.events import EVENT_TYPES
from carebridge.errors import BadRequest
from carebridge.ports.records import EventReader
from carebridge.services.live import Live


def router(events: EventReader, service: Live) -> APIRouter:
    """The change log's read route (``service`` audits the patients it shows)."""
    routes = APIRouter()
    log = events

    @routes.get("/events", tags=["events"], response_model=AuditPage)
    async def list_events(
        principal: Caller,
        after: After = 0,
        types: Annotated[
            list[str] | None,
            Query(description="Event types, or `kind.*` (repeatable; default: all)."),
        ] = None,
        limit: Limit = 100,
    ) -> Response:
        """The tenant's ordered change log (scope ``event.read``): each event's seq, type,
        entity, before/after diff, and when it happened and was detected. ``after`` is the
        replay position: pass the last ``seq`` you processed. An event about a kind of
        record the key may not read keeps its place without its entity, patient and ``diff``
        (``redacted``: true)."""
        principal.require("event.read")
        wanted = [t for t in types or [] if t]
        unknown = [t for t in wanted if t not in EVENT_TYPES and not t.endswith(".*")]
        if unknown:
            raise BadRequest("unknown event types: " + ", ".join(unknown), field="types")
        found = [
            visible(event, principal.scopes)
            for event in await log.events(
                principal.tenant_id, after=after, types=wanted, limit=limit
            )
        ]
        patients = sorted({e["patient_id"] for e in found if e.get("patient_id")})
        await service.audit.record(
            principal.tenant_id, principal.id, "GET /events", patients, service.clock()
        )
        more = len(found) == limit
        return json_response(
            {"data": found, "next_after": found[-1]["seq"] if found and more else None},
            headers=rate_headers(service, principal),
        )

    return routes
