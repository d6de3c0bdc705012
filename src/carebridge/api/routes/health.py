"""``GET /health`` and ``GET /health/upstream``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from carebridge.api.routes.common import Caller, declared_query
from carebridge.contract.resources import Health, UpstreamHealth
from carebridge.services.reads import Reads


def router(reads: Reads) -> APIRouter:
    """Liveness, and the caller's tenant's upstream."""
    routes = APIRouter(tags=["health"])

    @routes.get("/health", summary="Is the service up?", dependencies=[Depends(declared_query)])
    async def health() -> Health:
        """Liveness of the service."""
        return Health(status="ok")

    @routes.get(
        "/health/upstream",
        summary="The tenant's upstream connection",
        response_model=UpstreamHealth,
    )
    async def health_upstream(principal: Caller) -> dict[str, Any]:
        """The caller's tenant upstream: throttle budget, drift report, session state per
        surface (no secrets). ``connected`` is false until the first upstream call."""
        found = reads.upstream_health(principal.tenant_id)
        return {"tenant": principal.tenant_id, "connected": found is not None, **(found or {})}

    return routes
