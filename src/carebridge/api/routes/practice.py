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
    Page,
    list_response,
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
            response_model=Page,
            summary=f"List {path[1:]}",
        )
    return routes


def _practice_route(reads: Reads, kind: str, path: str) -> Any:
    async def route(
        principal: Caller,
        cache_control: CacheControl = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        max_age: MaxAge = None,
    ) -> Response:
        paging = (limit, cursor, max_age, cache_control)
        return await list_response(reads, principal, kind, path, paging)

    route.__doc__ = f"The practice's {path[1:]} (refreshed daily unless ``max_age`` says less)."
    return route
