"""``carebridge worker``: procrastinate workers on PostgreSQL that sync and deliver webhooks.

``--processes N`` runs N worker processes (this one and N-1 children); they share the queue,
and the jobs' locks keep them from running one (tenant, stream), or a delivery round, twice at
once. A schedule (every minute) nudges every tenant's streams and a delivery round. A worker
that sends no heartbeat for ``--stalled-after`` seconds (killed, say) counts as dead: its jobs
are retried, by any worker's schedule or at the next worker's start-up, so their locks free.
The embedded SQLite mode has no worker: ``carebridge serve`` runs the same handlers in process.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from typing import Annotated

import typer

from carebridge.cli.common import fail as _fail
from carebridge.errors import CarebridgeError
from carebridge.wiring import loop
from carebridge.wiring.admin import database_url, key_ring
from carebridge.wiring.jobs import STALLED_AFTER, conninfo, prepare_queue, work

__all__ = ["conninfo", "worker_command"]


def worker_command(
    processes: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 2,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs at once each.")] = 4,
    db: Annotated[
        str | None, typer.Option("--db", help="PostgreSQL store URL (CAREBRIDGE_DATABASE_URL).")
    ] = None,
    schema: Annotated[
        bool, typer.Option(hidden=True, help="Create the queue's tables first.")
    ] = True,
    stalled_after: Annotated[
        float,
        typer.Option(
            min=3,
            max=3600,
            help="Seconds without a heartbeat after which a worker is dead and its jobs retried.",
        ),
    ] = STALLED_AFTER,
) -> None:
    """Run procrastinate workers that sync tenants and deliver webhooks (PostgreSQL)."""
    url = database_url(db)
    try:
        conninfo(url)
        loop.check()  # an invalid CAREBRIDGE_EVENT_LOOP or _GC fails here, before any process starts
        ring = key_ring()
    except (ValueError, CarebridgeError) as err:
        raise _fail(str(err)) from None
    if schema:
        loop.run(prepare_queue, url)
    children = [
        subprocess.Popen(  # noqa: S603 - this interpreter, our own CLI
            [
                sys.executable,
                "-m",
                "carebridge",
                "worker",
                "--processes=1",
                f"--concurrency={concurrency}",
                "--no-schema",
                f"--stalled-after={stalled_after}",
                f"--db={url}",
            ]
        )
        for _ in range(processes - 1)
    ]
    try:
        loop.run(
            functools.partial(
                work, url, ring, concurrency=concurrency, schema=False, stalled_after=stalled_after
            )
        )
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)
