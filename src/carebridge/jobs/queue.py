"""Jobs: level-triggered nudges that run the sync and the webhook delivery.

A job carries no work of its own: the truth is in the sync cursors and the delivery outbox, so
a lost or repeated job loses nothing and repeats nothing. A job only says "look now".

- At scale, the jobs go through **procrastinate** on PostgreSQL: ``carebridge worker`` runs N
  processes. Each (tenant, stream) has a queueing lock (one waiting job at most) and a run lock
  (never two at once), so two workers sharing a tenant never sync one stream twice at a time
  nor deliver the same webhook twice (delivery rounds hold one lock).
- Embedded (SQLite), :class:`InProcessRunner` calls the same handlers on a timer inside the API
  process.

The handlers (what a job does) are injected: :class:`Handlers` comes from ``wiring``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import procrastinate
from procrastinate import exceptions as pexc

log = logging.getLogger("carebridge.jobs")

SYNC = "carebridge.sync_stream"
DELIVER = "carebridge.deliver"


@dataclass(frozen=True)
class Handlers:
    """What jobs run: sync one stream of a tenant; one delivery round of every due webhook
    (it returns how many it attempted); list the tenants and streams a schedule covers."""

    sync: Callable[[str, str], Awaitable[Any]]
    deliver: Callable[[], Awaitable[int]]
    tenants: Callable[[], Awaitable[Sequence[str]]]
    streams: Sequence[str]


def build_app(conninfo: str, handlers: Handlers | None = None) -> procrastinate.App:
    """The procrastinate app on PostgreSQL; workers pass ``handlers`` (deferring needs none)."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    def _handlers() -> Handlers:
        if handlers is None:
            raise RuntimeError("this app defers jobs only; a worker passes handlers")
        return handlers

    @app.task(
        name=SYNC,
        queue="sync",
        retry=procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2),
    )
    async def sync_stream(tenant: str, stream: str) -> None:
        await _handlers().sync(tenant, stream)

    @app.task(
        name=DELIVER,
        queue="webhooks",
        retry=procrastinate.RetryStrategy(max_attempts=3, exponential_wait=1),
    )
    async def deliver() -> None:
        while await _handlers().deliver():
            pass

    @app.periodic(cron="* * * * *", periodic_id="carebridge.tick")
    @app.task(name="carebridge.tick", queue="schedule", queueing_lock="carebridge.tick")
    async def tick(timestamp: int) -> None:
        del timestamp
        chosen = _handlers()
        for tenant in await chosen.tenants():
            for stream in chosen.streams:
                await nudge_sync(app, tenant, stream)
        await nudge_delivery(app)

    return app


async def nudge_sync(app: procrastinate.App, tenant: str, stream: str) -> bool:
    """Ask for a sync of one stream; False when one is already waiting (nothing to add)."""
    key = f"sync:{tenant}:{stream}"
    try:
        await (
            app.tasks[SYNC]
            .configure(lock=key, queueing_lock=key)
            .defer_async(tenant=tenant, stream=stream)
        )
    except pexc.AlreadyEnqueued:
        return False
    return True


async def nudge_delivery(app: procrastinate.App) -> bool:
    """Ask for a delivery round; False when one is already waiting. Rounds hold one lock, so
    however many workers run, one round delivers at a time and nothing is sent twice."""
    key = "deliver"
    try:
        await app.tasks[DELIVER].configure(lock=key, queueing_lock=key).defer_async()
    except pexc.AlreadyEnqueued:
        return False
    return True


async def ensure_schema(app: procrastinate.App) -> None:
    """Create procrastinate's tables once (its schema is not idempotent)."""
    async with app.open_async():
        rows = await app.connector.execute_query_all_async(
            "SELECT 1 AS present FROM pg_tables WHERE tablename = 'procrastinate_jobs'"
        )
        if not rows:
            await app.schema_manager.apply_schema_async()


async def run_worker(
    app: procrastinate.App, *, concurrency: int = 4, name: str | None = None
) -> None:
    """Run a worker until cancelled (``carebridge worker`` runs one per process)."""
    async with app.open_async():
        await app.run_worker_async(
            queues=["sync", "webhooks", "schedule"],
            concurrency=concurrency,
            name=name or "carebridge",
            install_signal_handlers=True,
        )


class InProcessRunner:
    """The embedded mode's scheduler: every ``every`` seconds, each tenant's streams are
    synced and its webhooks delivered, by the same handlers, one at a time."""

    def __init__(self, handlers: Handlers, *, every: float = 60.0) -> None:
        self.handlers = handlers
        self.every = every

    async def round(self) -> None:
        """One pass over every tenant; a failing stream is logged and skipped."""
        for tenant in await self.handlers.tenants():
            for stream in self.handlers.streams:
                try:
                    await self.handlers.sync(tenant, stream)
                except Exception as err:  # noqa: BLE001 - one stream's failure stops nothing
                    log.warning("sync %s/%s failed: %s", tenant, stream, type(err).__name__)
        with contextlib.suppress(Exception):
            while await self.handlers.deliver():
                pass

    async def run(self) -> None:
        """Rounds until cancelled."""
        while True:
            await self.round()
            await anyio.sleep(self.every)
