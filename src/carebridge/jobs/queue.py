"""Jobs: level-triggered nudges that run the sync and the webhook delivery.

A job carries no work of its own: the truth is in the sync cursors and the delivery outbox, so
a lost or repeated job loses nothing and repeats nothing. A job only says "look now".

- At scale, the jobs go through **procrastinate** on PostgreSQL: ``carebridge worker`` runs N
  processes. Each (tenant, stream) has a queueing lock (one waiting job at most) and a run lock
  (never two at once), so two workers sharing a tenant never sync one stream twice at a time
  nor deliver the same webhook twice (delivery rounds hold one lock).
- Embedded (SQLite), :class:`InProcessRunner` calls the same handlers on a timer inside the API
  process.

A worker killed mid-job (``kill -9``, an OOM kill, a lost host) leaves its jobs ``doing``, and
their run locks would block every later job of the same (tenant, stream) for good. Workers send
procrastinate heartbeats; a job whose worker has not sent one for ``stalled_after`` seconds is
**stalled**: :func:`recover_stalled` (run at each worker's start-up and by a periodic task)
retries it through procrastinate's own ``get_stalled_jobs`` and ``retry_job`` (or fails it, once
it has been tried ``MAX_STALLS`` times), which frees its lock; a nudge of the same queueing
lock waiting meanwhile is cancelled in its favour. A retried sync job takes its dead attempt's
sync lease over at once (its holder names the job).

The handlers (what a job does) are injected: :class:`Handlers` comes from ``wiring``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import procrastinate
from procrastinate import JobContext
from procrastinate import exceptions as pexc
from procrastinate.jobs import Job, Status
from procrastinate.manager import JobManager

log = logging.getLogger("carebridge.jobs")

SYNC = "carebridge.sync_stream"
DELIVER = "carebridge.deliver"
RECOVER = "carebridge.recover"
STALLED_AFTER = 30.0
"""Seconds without a heartbeat after which a worker counts as dead (it beats every third)."""
MAX_STALLS = 5
"""A stalled job tried this often (it kills its worker, say) is failed, not retried."""


class SyncHandler(Protocol):
    """Sync one stream of a tenant; a job passes its sync lease's holder name and the prefix
    of its earlier attempts' (which it may take over)."""

    def __call__(
        self,
        tenant: str,
        stream: str,
        *,
        holder: str | None = None,
        supersedes: str | None = None,
    ) -> Awaitable[Any]: ...


@dataclass(frozen=True)
class Handlers:
    """What jobs run: sync one stream of a tenant; one delivery round of every due webhook
    (it returns how many it attempted); list the tenants and streams a schedule covers."""

    sync: SyncHandler
    deliver: Callable[[], Awaitable[int]]
    tenants: Callable[[], Awaitable[Sequence[str]]]
    streams: Sequence[str]


def _every(seconds: float) -> str:
    """A cron (with procrastinate's seconds field) that fires about every ``seconds``."""
    step = max(1, min(59, int(seconds)))
    return f"* * * * * */{step}"


def build_app(
    conninfo: str, handlers: Handlers | None = None, *, stalled_after: float = STALLED_AFTER
) -> procrastinate.App:
    """The procrastinate app on PostgreSQL; workers pass ``handlers`` (deferring needs none).
    Jobs whose worker sent no heartbeat for ``stalled_after`` seconds are retried."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    def _handlers() -> Handlers:
        if handlers is None:
            raise RuntimeError("this app defers jobs only; a worker passes handlers")
        return handlers

    @app.task(
        name=SYNC,
        queue="sync",
        retry=procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2),
        pass_context=True,
    )
    async def sync_stream(context: JobContext, tenant: str, stream: str) -> None:
        job = context.job
        await _handlers().sync(
            tenant, stream, holder=f"job:{job.id}:{job.attempts}", supersedes=f"job:{job.id}:"
        )

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

    @app.periodic(cron=_every(stalled_after / 2), periodic_id=RECOVER)
    @app.task(name=RECOVER, queue="schedule", queueing_lock=RECOVER)
    async def recover(timestamp: int) -> None:
        del timestamp
        await recover_stalled(app, stalled_after=stalled_after)

    return app


async def recover_stalled(app: procrastinate.App, *, stalled_after: float = STALLED_AFTER) -> int:
    """Retry (or, past ``MAX_STALLS``, fail) every job whose worker sent no heartbeat for
    ``stalled_after`` seconds, so its lock frees; returns how many jobs it released."""
    manager = app.job_manager
    released = 0
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
        try:
            if job.attempts + 1 >= MAX_STALLS:
                await manager.finish_job(job, status=Status.FAILED, delete_job=False)
            else:
                await _retry(manager, job)
        except pexc.ConnectorException:  # another worker released it first
            continue
        released += 1
        log.warning("released stalled job %s (%s)", job.id, job.task_name)
    return released


async def _retry(manager: JobManager, job: Job) -> None:
    """Put a stalled job back in its queue. A later nudge with the same queueing lock may be
    waiting (one may wait per lock): it asks for the same work, so it is cancelled in favour of
    the stalled job, whose retry can take over its dead attempt's sync lease at once."""
    for _ in range(3):
        try:
            await manager.retry_job(job)
            return
        except pexc.UniqueViolation:
            if job.queueing_lock is None:
                raise
            for waiting in await manager.list_jobs_async(
                queueing_lock=job.queueing_lock, status=Status.TODO.value
            ):
                if waiting.id is not None:
                    await manager.cancel_job_by_id_async(waiting.id)
    await manager.retry_job(job)


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
    app: procrastinate.App,
    *,
    concurrency: int = 4,
    name: str | None = None,
    stalled_after: float = STALLED_AFTER,
) -> None:
    """Run a worker until cancelled (``carebridge worker`` runs one per process): first release
    the jobs of workers found dead, then work, with a heartbeat every third of
    ``stalled_after``."""
    async with app.open_async():
        await recover_stalled(app, stalled_after=stalled_after)
        await app.run_worker_async(
            queues=["sync", "webhooks", "schedule"],
            concurrency=concurrency,
            name=name or "carebridge",
            install_signal_handlers=True,
            update_heartbeat_interval=stalled_after / 3,
            stalled_worker_timeout=stalled_after,
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
