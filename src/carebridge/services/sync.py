"""The sync use cases: run a tenant's sync now, and what follows from its report.

A sync (:func:`carebridge.sync.engine.sync`) pulls a tenant's streams into the store. Around it,
:class:`Syncs` keeps the rules every entry point shares (``POST /sync``, ``carebridge sync``, the
jobs' handlers):

- one sync per tenant at a time in this process (and one per (tenant, stream) across processes:
  the engine's leases);
- **announce** what went wrong: ``integration.degraded`` for each stream that failed, and
  ``upstream.drift`` once per endpoint, when its answers start to break (additive drift is
  tolerated, unannounced): :func:`announcements`;
- **mark the read path fresh**: a tenant-wide stream that completed makes its kind's slice fresh
  as of the sync's start, so reads right after a sync are served from the store:
  :func:`fresh_kinds`.
- **keep what the connection learned** (its throttle's budget) once the sync ends, so the next
  process starts from it (``SyncUpstreams.keep_learned``).

The store, the upstream connections and the event log are reached through ``ports``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from carebridge.domain.kinds import KINDS
from carebridge.errors import BadRequest
from carebridge.ports.events import Announcement, Announcer
from carebridge.ports.sync import FreshnessMarks, SyncStore, SyncUpstreams, TenantIds
from carebridge.services import events
from carebridge.services.records import Principal
from carebridge.sync import engine
from carebridge.sync.engine import (
    DEFAULT_STREAMS,
    LEASE_TTL,
    STREAMS,
    Progress,
    StreamResult,
    SyncReport,
)
from carebridge.sync.slices import tenant_wide

__all__ = [
    "DEFAULT_STREAMS",
    "STREAMS",
    "Progress",
    "StreamResult",
    "SyncReport",
    "SyncRequest",
    "Syncs",
    "announcements",
    "check_streams",
    "fresh_kinds",
]

SCOPE = "sync.write"
"""The scope a caller needs to run its tenant's sync."""


@dataclass(frozen=True)
class SyncRequest:
    """Which streams to sync (all of them for None), and how far back incremental streams sweep
    (a reconciliation; None for none)."""

    streams: tuple[str, ...] | None = None
    reconcile: timedelta | None = None


def check_streams(names: Iterable[str] | None) -> list[str] | None:
    """The streams named (None for all of them), checked.

    Raises:
        BadRequest: a name is not a stream (``field`` ``streams``).
    """
    if names is None:
        return None
    chosen = list(names)
    unknown = sorted(set(chosen) - STREAMS.keys())
    if unknown:
        raise BadRequest(
            f"unknown streams: {', '.join(unknown)} (known: {', '.join(STREAMS)})",
            field="streams",
        )
    return chosen


def fresh_kinds(report: SyncReport) -> list[str]:
    """The kinds whose tenant-wide slice a sync made fresh: those of the streams that ran to
    completion (neither failed nor skipped) and that the read path keeps for the whole tenant."""
    fresh: list[str] = []
    for name, result in report.streams.items():
        kind = KINDS[STREAMS[name].kind]
        if result.error is None and result.skipped is None and tenant_wide(kind):
            fresh.append(kind.name)
    return fresh


def announcements(
    report: SyncReport, drift: Mapping[str, Any], breaking: dict[str, int]
) -> list[Announcement]:
    """What a sync announces: ``integration.degraded`` for each failed stream (its error's class,
    never its message), then ``upstream.drift`` for each endpoint of ``drift`` (the connection's
    ``DriftView.as_dict()``) that answers with breaking drift and is not in ``breaking`` yet
    (the endpoints already announced; those announced now are added to it)."""
    found: list[Announcement] = [
        Announcement(
            "integration.degraded",
            "stream",
            name,
            {"stream": name, "error": result.error.split(":", 1)[0]},
        )
        for name, result in report.streams.items()
        if result.error is not None
    ]
    for endpoint, seen in (drift.get("endpoints") or {}).items():
        count = int(seen.get("breaking") or 0)
        if count and endpoint not in breaking:  # once, when it starts to break
            breaking[endpoint] = count
            found.append(
                Announcement(
                    "upstream.drift",
                    "endpoint",
                    endpoint[:64],
                    {
                        "endpoint": endpoint,
                        "breaking": count,
                        "missing": seen.get("missing", 0),
                        "retyped": seen.get("retyped", 0),
                    },
                )
            )
    return found


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Syncs:
    """The sync use cases of one deployment."""

    store: SyncStore
    upstreams: SyncUpstreams
    freshness: FreshnessMarks
    announcer: Announcer
    tenant_ids: TenantIds
    clock: Callable[[], datetime] = _now
    lease: timedelta = LEASE_TTL
    """How long a stream's lease outlives its holder's last renewal."""
    _locks: dict[str, anyio.Lock] = field(default_factory=dict)
    _breaking: dict[str, dict[str, int]] = field(default_factory=dict)

    async def tenants(self, only: str | None = None) -> list[str]:
        """The tenants a host's sync covers: ``only``, else every onboarded tenant."""
        return [only] if only else await self.tenant_ids()

    async def sync_now(self, principal: Principal, request: SyncRequest) -> SyncReport:
        """Sync the caller's tenant now (``sync.write``; ``POST /sync``).

        Raises:
            Forbidden: the caller lacks ``sync.write``.
            BadRequest: a stream the engine lacks.
        """
        principal.require(SCOPE)
        streams = check_streams(request.streams)
        return await self.run(principal.tenant_id, streams, reconcile=request.reconcile)

    async def run(
        self,
        tenant_id: str,
        streams: list[str] | None = None,
        *,
        reconcile: timedelta | None = None,
        progress: Progress | None = None,
        holder: str | None = None,
        supersedes: str | None = None,
    ) -> SyncReport:
        """Sync a tenant's streams now (as the host: the CLI, a job), one sync per tenant at a
        time in this process and one per (tenant, stream) across processes (a stream another
        sync is running is skipped); announce what failed or drifted, and mark the read path
        fresh. ``reconcile`` sweeps that far back; ``holder`` and ``supersedes`` name the
        streams' leases (a job's)."""
        lock = self._locks.setdefault(tenant_id, anyio.Lock())
        async with lock:
            upstream = await self.upstreams.of(tenant_id)
            report = await engine.sync(
                self.store,
                upstream,
                tenant_id,
                streams,
                clock=self.clock,
                reconcile=reconcile,
                progress=progress,
                holder=holder,
                supersedes=supersedes,
                lease_ttl=self.lease,
            )
            await self.upstreams.keep_learned(tenant_id)
            breaking = self._breaking.setdefault(tenant_id, {})
            found = announcements(report, upstream.drift.as_dict(), breaking)
            await events.announce(self.announcer, tenant_id, found, at=self.clock())
            for kind in fresh_kinds(report):
                await self.freshness.mark_refreshed(tenant_id, kind, "*", report.started_at)
        return report
