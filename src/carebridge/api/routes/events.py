"""``GET /events``: the tenant's ordered change log (the use case:
:meth:`carebridge.services.events.Events.read`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from carebridge.api.routes.common import (
    After,
    Caller,
    Limit,
    SeqOrder,
    envelope,
    instant_text,
    json_response,
    page_of,
    rate_headers,
)
from carebridge.contract.resources import Event
from carebridge.services.events import EventLog, Events, LogQuery
from carebridge.services.reads import Reads


def router(events: EventLog, service: Reads) -> APIRouter:
    """The change log's read route (``service`` audits the patients it shows, and answers the
    upstream budget's headers)."""
    routes = APIRouter()
    log = Events(events, service.audit, service.clock)

    @routes.get(
        "/events",
        tags=["events"],
        summary="Read the change log",
        response_model=page_of(Event),
        responses={
            200: {
                "content": {
                    "application/json": {
                        "example": envelope(
                            [Event.model_config["json_schema_extra"]["examples"][0]],  # type: ignore[index]
                            "1",
                        )
                    }
                }
            }
        },
    )
    async def list_events(
        principal: Caller,
        after: After = 0,
        types: Annotated[
            list[str] | None,
            Query(description="Event types, or `kind.*` (repeatable; default: all)."),
        ] = None,
        limit: Limit = 100,
        order: SeqOrder = "seq",  # noqa: ARG001 - the one order offered
    ) -> Response:
        """The tenant's ordered change log (scope ``event.read``): each event's seq, type,
        entity, before/after diff, and when it happened and was detected. ``after`` is the
        replay position: pass the last ``seq`` you processed. An event about a kind of
        record the key may not read keeps its place without its entity, patient and ``diff``
        (``redacted``: true)."""
        page = await log.read(principal, LogQuery(after, limit, tuple(types or ())))
        data = [
            {**e, "occurred_at": instant_text(e.get("occurred_at")),
             "detected_at": instant_text(e.get("detected_at"))}
            for e in page.data
        ]  # fmt: skip
        cursor = None if page.next_after is None else str(page.next_after)
        return json_response(envelope(data, cursor), headers=rate_headers(service, principal))

    return routes
