"""The jobs over one deployment: the handlers a job runs (sync a stream, deliver webhooks, list
tenants), and ``carebridge worker``'s procrastinate workers on PostgreSQL."""

from __future__ import annotations

import os

from carebridge.jobs.queue import STALLED_AFTER as STALLED_AFTER
from carebridge.jobs.queue import Handlers, InProcessRunner, build_app, ensure_schema, run_worker
from carebridge.services.sync import STREAMS
from carebridge.store.engine import async_url
from carebridge.store.vault import KeyRing
from carebridge.wiring.api import Deployment, open_deployment


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
        streams=list(STREAMS),
    )


def in_process_runner(deployment: Deployment, every: float) -> InProcessRunner:
    """The schedule an API process on SQLite runs itself: every stream every ``every`` s."""
    return InProcessRunner(handlers(deployment), every=every)


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
        await run_worker(
            app,
            concurrency=concurrency,
            name=f"carebridge-{os.getpid()}",
            stalled_after=stalled_after,
        )
    finally:
        await deployment.aclose()
