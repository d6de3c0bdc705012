"""``POST /sync``: run the caller's tenant's sync now and answer its report.

The route takes the ``sync.write`` scope. The body is optional; ``{"streams": [...]}`` names the
streams to run (all of them by default), each one of ``carebridge.sync.engine.STREAMS``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from carebridge.api.app import Caller
from carebridge.services.live import BadRequest
from carebridge.sync.engine import STREAMS

RunSync = Callable[..., Awaitable[dict[str, Any]]]
"""``run(tenant_id=..., streams=[...] | None, reconcile=timedelta | None)`` -> the report as JSON."""


class SyncRequest(BaseModel):
    """Which streams to sync (all of them when absent)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"streams": ["patients", "appointments"]}]},
    )

    streams: list[str] | None = Field(default=None, min_length=1, max_length=len(STREAMS))
    reconcile_hours: int | None = Field(
        default=None,
        ge=1,
        le=24 * 31,
        description="Sweep this far back on the incremental streams (a reconciliation).",
    )


class StreamReport(BaseModel):
    """What one stream did."""

    read: int
    changed: int
    tombstoned: int
    pages: int
    attempts: int
    seconds: float
    error: str | None


class SyncAnswer(BaseModel):
    """The report of one sync run."""

    tenant_id: str
    started_at: str
    ok: bool
    streams: dict[str, StreamReport]


def router(run: RunSync) -> APIRouter:
    """The sync route over ``run``, which syncs one tenant and answers its report."""
    routes = APIRouter(tags=["sync"])

    @routes.post("/sync")
    async def sync_now(principal: Caller, body: SyncRequest | None = None) -> SyncAnswer:
        """Sync the caller's tenant from its upstream now (``sync.write``): each stream reads a
        page at a time, stores it with its cursor, and turns changes into events. Answers how
        many records each stream read, changed and tombstoned; a stream that failed upstream
        carries its error while the others still ran."""
        principal.require("sync.write")
        streams = body.streams if body is not None else None
        if streams is not None:
            unknown = sorted(set(streams) - STREAMS.keys())
            if unknown:
                raise BadRequest(
                    f"unknown streams: {', '.join(unknown)} (known: {', '.join(STREAMS)})",
                    field="streams",
                )
        hours = body.reconcile_hours if body is not None else None
        report = await run(
            tenant_id=principal.tenant_id,
            streams=streams,
            reconcile=timedelta(hours=hours) if hours else None,
        )
        return SyncAnswer.model_validate(report)

    return routes
