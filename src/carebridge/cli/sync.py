"""``carebridge sync``: sync tenants from their upstreams now, with a progress bar per stream.

The store is ``--database`` or ``CAREBRIDGE_DATABASE_URL``; the vault key comes from
``CAREBRIDGE_VAULT_KEY`` or ``CAREBRIDGE_VAULT_KEY_FILE``. Without ``--tenant`` every tenant is
synced. Bad input, or a stream that failed upstream, prints one ``error:`` line and exits 2.
A stream that another sync (another process) is running is skipped, and said so.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from carebridge.cli.common import fail as _fail
from carebridge.errors import CarebridgeError
from carebridge.services.sync import STREAMS, StreamResult, SyncReport, check_streams
from carebridge.wiring import loop
from carebridge.wiring.admin import KeyRing, database_url, key_ring
from carebridge.wiring.api import open_deployment


class _Bars:
    """One Rich bar per stream: records read, pages, and the stream's outcome."""

    def __init__(self, progress: Progress, tenant: str) -> None:
        self.progress = progress
        self.tenant = tenant
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stream: str, result: StreamResult) -> None:
        task = self.tasks.get(stream)
        if task is None:
            task = self.tasks[stream] = self.progress.add_task(
                f"{self.tenant} {stream}", total=None, status=""
            )
        status = f"{result.read} read, {result.changed} changed"
        if result.tombstoned:
            status += f", {result.tombstoned} gone"
        if result.done:
            status += f" (error: {result.error})" if result.error else ""
            status = f"skipped: {result.skipped}" if result.skipped else status
            self.progress.update(task, total=1, completed=1, status=status)
        else:
            self.progress.update(task, status=status)


async def _sync_all(
    url: str,
    ring: KeyRing,
    tenant: str | None,
    streams: list[str] | None,
    quiet: bool,
    reconcile: timedelta | None,
) -> list[SyncReport]:
    deployment = await open_deployment(url, ring)
    try:
        syncs = deployment.syncs
        tenants = await syncs.tenants(tenant)
        reports: list[SyncReport] = []
        columns: list[Any] = [
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=Console(stderr=True), disable=quiet) as progress:
            for tenant_id in tenants:
                bars = _Bars(progress, tenant_id)
                reports.append(
                    await syncs.run(tenant_id, streams, reconcile=reconcile, progress=bars)
                )
        return reports
    finally:
        await deployment.aclose()


def sync_command(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="The tenant to sync (default: every tenant).")
    ] = None,
    stream: Annotated[
        list[str] | None,
        typer.Option("--stream", help=f"A stream to sync, repeatable: {', '.join(STREAMS)}."),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option("--database", help="Store URL (default: CAREBRIDGE_DATABASE_URL)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    reconcile_hours: Annotated[
        int | None,
        typer.Option(min=1, max=744, help="Sweep incremental streams this far back (hours)."),
    ] = None,
) -> None:
    """Sync tenants from their upstreams: each stream a page at a time, checkpointed."""
    try:
        check_streams(stream or None)
        ring = key_ring()
        url = database_url(database)
        sweep = timedelta(hours=reconcile_hours) if reconcile_hours else None
        reports = loop.run(_sync_all, url, ring, tenant, stream or None, quiet, sweep)
    except CarebridgeError as err:
        raise _fail(str(err)) from None
    except ValueError as err:  # an unsupported store URL
        raise _fail(str(err)) from None
    failed = [
        f"{report.tenant_id}/{name}: {result.error}"
        for report in reports
        for name, result in report.streams.items()
        if result.error
    ]
    for report in reports:
        for name, result in report.streams.items():
            if result.skipped:
                typer.echo(f"{report.tenant_id} {name}: skipped, {result.skipped}")
                continue
            typer.echo(
                f"{report.tenant_id} {name}: read {result.read}, changed {result.changed}, "
                f"tombstoned {result.tombstoned} ({result.seconds:.1f} s)"
            )
    if failed:
        raise _fail("sync failed for " + "; ".join(failed))
