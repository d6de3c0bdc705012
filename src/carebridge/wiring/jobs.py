"""The jobs over one deployment: the handlers a job runs (sync a stream, deliver webhooks, list
tenants), ``carebridge worker``'s procrastinate workers on PostgreSQL, and the loops that run
beside them (:func:`background`): the change feed, the delivery loop woken by new deliveries,
and on PostgreSQL the ``LISTEN`` that wakes it."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from typing import Any

import psycopg

from carebridge.jobs.queue import STALLED_AFTER as STALLED_AFTER
from carebridge.jobs.queue import Handlers, InProcessRunner, build_app, ensure_schema, run_worker
from carebridge.services.sync import DEFAULT_STREAMS
from carebridge.store.engine import async_url
from carebridge.store.events import listen
from carebridge.store.vault import KeyRing
from carebridge.wiring.api import Deployment, open_deployment

log = logging.getLogger("carebridge.jobs")

RELISTEN_SECONDS = 1.0
"""How long the ``LISTEN`` waits before reconnecting after losing its connection."""


def handlers(deployment: Deployment) -> Handlers:
    """What a worker (or the in-process runner) does, over ``deployment``."""
    syncs = deployment.syncs

    async def sync(
        tenant: str, stream: str, *, holder: str | None = None, supersedes: str | None = None
    ) -> None:
        await syncs.run(tenant, [stream], holder=holder, supersedes=supersedes)

    return Handlers(
        sync=sync,
        deliver=deployment.deliverer.run_once,
        tenants=syncs.tenants,
        streams=list(DEFAULT_STREAMS),
    )


def in_process_runner(deployment: Deployment, every: float) -> InProcessRunner:
    """The schedule an API process on SQLite runs itself: every stream every ``every`` s."""
    return InProcessRunner(handlers(deployment), every=every)


async def listen_for_deliveries(url: str, deployment: Deployment) -> None:
    """Wake the deployment's delivery loop on each ``NOTIFY`` of queued deliveries (PostgreSQL),
    reconnecting after a lost connection until cancelled; the loop's fallback poll covers the
    gap."""
    info = conninfo(url)
    while True:
        try:
            await listen(info, deployment.deliverer.wake.set)
        except (psycopg.Error, OSError) as err:
            log.warning("listening for deliveries failed: %s", type(err).__name__)
        await asyncio.sleep(RELISTEN_SECONDS)


def background(
    deployment: Deployment, *, sync_every: float, url: str | None = None
) -> list[Coroutine[Any, Any, None]]:
    """The loops a process runs beside its server or worker: the in-process schedule (every
    stream every ``sync_every`` s, the first after one interval; 0: none), the change feed
    (unless ``CAREBRIDGE_FEED_INTERVAL`` is 0), the delivery loop (woken by new deliveries, with
    its slow fallback poll) and, on PostgreSQL (``url``), the ``LISTEN`` that wakes it."""
    loops: list[Coroutine[Any, Any, None]] = []
    if sync_every > 0:
        loops.append(_later(sync_every, in_process_runner(deployment, sync_every).run()))
    if deployment.feed is not None:
        loops.append(deployment.feed.serve(deployment.syncs.tenants))
    loops.append(deployment.deliverer.serve())
    if url is not None and deployment.engine.dialect.name == "postgresql":
        loops.append(listen_for_deliveries(url, deployment))
    return loops


async def _later(delay: float, work: Coroutine[Any, Any, None]) -> None:
    """Start ``work`` after ``delay`` seconds."""
    try:
        await asyncio.sleep(delay)
    except asyncio.CancelledError:
        work.close()
        raise
    await work


def conninfo(url: str) -> str:
    """A libpq connection string from a store URL (``postgresql+psycopg://`` or plain).

    Raises:
        ValueError: not a PostgreSQL URL (the worker runs on PostgreSQL only).
    """
    plain = async_url(url).replace("postgresql+psycopg://", "postgresql://", 1)
    if not plain.startswith("postgresql://"):
        raise ValueError("the worker runs on PostgreSQL (CAREBRIDGE_DATABASE_URL=postgresql://…)")
    return plain


async def prepare_queue(url: str) -> None:
    """Create the job queue's tables in the store at ``url`` (once)."""
    await ensure_schema(build_app(conninfo(url)))


async def work(
    url: str, ring: KeyRing, *, concurrency: int, schema: bool, stalled_after: float
) -> None:
    """Run one worker process over the deployment at ``url`` until cancelled."""
    deployment = await open_deployment(url, ring)
    try:
        app = build_app(conninfo(url), handlers(deployment), stalled_after=stalled_after)
        if schema:
            await ensure_schema(app)
        loops = [
            asyncio.ensure_future(loop) for loop in background(deployment, sync_every=0, url=url)
        ]
        try:
            await run_worker(
                app,
                concurrency=concurrency,
                name=f"carebridge-{os.getpid()}",
                stalled_after=stalled_after,
            )
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
    finally:
        await deployment.aclose()
