"""``GET /audit_events``: who accessed which patients' data (the use case:
:func:`carebridge.services.events.read_audit`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from carebridge.api.routes.common import (
    After,
    Caller,
    Limit,
    SeqOrder,
    envelope,
    instant_text,
    paged,
)
from carebridge.contract.resources import AuditEntry
from carebridge.services.events import AuditReader, LogQuery, read_audit


def router(audit: AuditReader) -> APIRouter:
    """The audit log's read route."""
    routes = APIRouter()
    reader = audit

    @routes.get(
        "/audit_events",
        tags=["admin"],
        summary="Read the audit log",
        **paged(AuditEntry, "1"),
    )
    async def audit_events(
        principal: Caller,
        after: After = 0,
        limit: Limit = 100,
        order: SeqOrder = "seq",  # noqa: ARG001 - the one order offered
    ) -> dict[str, Any]:
        """Who accessed which patients' data, through which route, when (scope
        ``audit.read``). The log is hash-chained: ``carebridge audit verify`` checks it."""
        page = await read_audit(reader, principal, LogQuery(after, limit))
        data = [{"id": f"aud_{e['seq']}", **e, "at": instant_text(e.get("at"))} for e in page.data]
        return envelope(data, None if page.next_after is None else str(page.next_after))

    return routes
