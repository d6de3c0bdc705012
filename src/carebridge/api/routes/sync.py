"""``POST /sync``: run the caller's tenant's sync now and answer its report.

The route takes the ``sync.write`` scope. The body is optional; ``{"streams": [...]}`` names the
streams to run, each one of ``carebridge.sync.engine.STREAMS`` (by default those of
``DEFAULT_STREAMS``: labs, immunizations and documents run only when named). The
use case is :meth:`carebridge.services.sync.Syncs.sync_now`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from carebridge.api.routes.common import Caller, instant_text
from carebridge.contract.resources import SyncReport as SyncAnswerModel
from carebridge.services import sync as syncs
from carebridge.services.records import Principal
from carebridge.services.sync import STREAMS, SyncReport

SyncNow = Callable[[Principal, syncs.SyncRequest], Awaitable[SyncReport]]
"""The use case: sync the caller's tenant now (``Syncs.sync_now``)."""


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


def router(run: SyncNow) -> APIRouter:
    """The sync route over ``run``, which syncs the caller's tenant and answers its report."""
    routes = APIRouter(tags=["sync"])

    @routes.post("/sync", summary="Sync the tenant now", response_model=SyncAnswerModel)
    async def sync_now(principal: Caller, body: SyncRequest | None = None) -> dict[str, Any]:
        """Sync the caller's tenant from its upstream now (``sync.write``): each stream reads a
        page at a time, stores it with its cursor, and turns changes into events. Answers how
        many records each stream read, changed and tombstoned; a stream that failed upstream
        carries its error while the others still ran."""
        streams = body.streams if body is not None else None
        hours = body.reconcile_hours if body is not None else None
        request = syncs.SyncRequest(
            streams=None if streams is None else tuple(streams),
            reconcile=timedelta(hours=hours) if hours else None,
        )
        report = await run(principal, request)
        answer = report.as_json()
        return {**answer, "started_at": instant_text(answer.get("started_at"))}

    return routes
