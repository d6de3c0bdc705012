"""``carebridge export``: write the normalized tables to a warehouse, incrementally.

``--to`` is ``sqlite:///FILE``, ``postgresql://...`` or ``parquet:DIR``; the source is ``--db`` or
``CAREBRIDGE_DATABASE_URL``. Each run writes only what changed since the previous run to the
same target (``carebridge.services.export`` describes the tables and watermarks). Progress is a bar
per table on stderr; the summary goes to stdout. Bad input prints one ``error:`` line and exits 2.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from carebridge.cli.common import fail as _fail
from carebridge.errors import CarebridgeError
from carebridge.wiring import admin, loop
from carebridge.wiring.export import ExportResult, export, parse_target


class _Bars:
    """One Rich progress bar per table, shown from the first table on (an export that fails
    before it starts prints only its ``error:`` line)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def start(self, table: str, total: int) -> None:
        if not self.tasks:
            self.progress.start()
        self.tasks[table] = self.progress.add_task(table, total=total)

    def advance(self, table: str, rows: int) -> None:
        self.progress.advance(self.tasks[table], rows)

    def stop(self) -> None:
        if self.tasks:
            self.progress.stop()


def export_command(
    to: Annotated[
        str,
        typer.Option("--to", help="sqlite:///FILE, postgresql://USER@HOST/DB or parquet:DIR."),
    ],
    tenant: Annotated[
        str | None, typer.Option(help="Export only this tenant (default: every tenant).")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Source store URL (default: CAREBRIDGE_DATABASE_URL)."),
    ] = None,
) -> None:
    """Export the store's tables (a table per kind, and events) to SQLite, PostgreSQL or
    Parquet; only the rows changed since the last export to that target are written."""
    try:
        target = parse_target(to)
    except CarebridgeError as err:
        raise _fail(str(err)) from None
    source = admin.database_url(db)
    progress = Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    bars = _Bars(progress)
    try:
        try:
            result: ExportResult = loop.run(
                lambda: export(source, target, tenant=tenant, progress=bars)
            )
        finally:
            bars.stop()
    except CarebridgeError as err:
        raise _fail(str(err)) from None
    except ValueError as err:  # an unsupported source URL
        raise _fail(str(err)) from None
    changed = ", ".join(f"{table} {n}" for table, n in result.rows.items() if n)
    typer.echo(
        f"exported {result.total} row(s) to {target.describe()}"
        + (f": {changed}" if changed else "")
    )
