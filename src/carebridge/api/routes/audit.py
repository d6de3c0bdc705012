"""``GET /audit_events``: who accessed which patients' data (the use case:
:func:`carebridge.services.events.read_audit`)."""

from __future__ import annotations

from fastapi import APIRouter

from carebridge.api.routes.common import After, AuditPage, Caller, Limit
from carebridge.services.events import AuditReader, LogQuery, read_audit


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
        page = await read_audit(reader, principal, LogQuery(after, limit))
        return AuditPage(data=page.data, next_after=page.next_after)

    return routes
