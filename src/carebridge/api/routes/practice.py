"""The practice's lists: providers, locations, resources and visit reasons."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from carebridge.api.routes.common import (
    CacheControl,
    Caller,
    Cursor,
    Limit,
    MaxAge,
    Order,
    list_response,
    listed,
    one_of,
    one_route,
    with_article,
)
from carebridge.services.reads import Reads

LISTS = (
    ("provider", "/providers"),
    ("location", "/locations"),
    ("resource", "/resources"),
    ("visit_reason", "/visit_reasons"),
)


def router(reads: Reads) -> APIRouter:
    """A list route per practice kind (refreshed daily)."""
    routes = APIRouter()
    for kind, path in LISTS:
        routes.add_api_route(
            path,
            _practice_route(reads, kind, path),
            methods=["GET"],
            tags=["practice"],
            summary=f"List the practice's {path[1:].replace('_', ' ')}",
            **listed(kind),
        )
        routes.add_api_route(
            f"{path}/{{id}}",
            one_route(reads, kind, path),
            methods=["GET"],
            tags=["practice"],
            summary=f"Get {with_article(kind.replace('_', ' '))}",
            **one_of(kind),
        )
    return routes


def _practice_route(reads: Reads, kind: str, path: str) -> Any:
    async def route(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        order: Order = "id",  # noqa: ARG001 - the one order offered
        max_age: MaxAge = None,
    ) -> Response:
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(reads, principal, kind, path, paging)

    route.__doc__ = f"The practice's {path[1:]} (refreshed daily unless ``max_age`` says less)."
    return route
