"""``GET /audit_events``: who accessed which patients' data."""

from __future__ import annotations

from fastapi import APIRouter

from carebridge.api.routes.common import After, AuditPage, Caller, Limit
from carebridge.ports.records import AuditReader


def router(audit: AuditReader) -> APIRouter:
    """The audit log's read route."""
    routes = APIRouter()
    reader = audit

    @routes.get("/audit_events", tags=["admin"])
    async def audit_events(
        principal: Caller,
        after: After = 0,
        limit: Limit = 100,
    ) -> AuditPage:
        """Who accessed which patients' data, through which route, when (scope
        ``audit.read``). The log is hash-chained: ``carebridge audit verify`` checks it."""
        principal.require("audit.read")
        events = await reader.events(principal.tenant_id, after=after, limit=limit)
        more = len(events) == limit
        return AuditPage(data=events, next_after=events[-1]["seq"] if more and events else None)

    return routes
