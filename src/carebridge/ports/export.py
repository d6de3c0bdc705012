"""Ports of the export: the store it reads (:class:`ExportSource`) and the warehouse it writes
(:class:`ExportSink`: a SQL database or a directory of Parquet files).

The export use case (``services.export``) plans the tables (:class:`TableSpec`, from the registry
of kinds and the models' JSON schema), turns records into rows and keeps each table's watermark
(:class:`Mark`) moving; the adapters (``store.export``) read and write.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

ColumnType = Literal["text", "integer", "number", "boolean", "json", "instant"]
"""A target column's type: text (also dates and instants as ISO text), integer, number,
boolean, JSON text, or a UTC timestamp (``instant``)."""


@dataclass(frozen=True)
class ExportColumn:
    """One column of a target table; ``source`` is the key in the record's JSON (if any)."""

    name: str
    type: ColumnType
    source: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """A target table: its name, its columns in order, and its key (``(tenant_id, id)`` for a
    kind's table, ``(tenant_id, seq)`` for events)."""

    name: str
    columns: tuple[ExportColumn, ...]
    key: tuple[str, ...]
    kind: str | None = None
    """The kind whose records fill it (None: the event log)."""


@dataclass(frozen=True)
class Mark:
    """A watermark: the last exported ``(fetched_at, id)`` of a table, or ``seq`` of events."""

    fetched_at: datetime | None = None
    id: str = ""
    seq: int = 0


class ExportSource(Protocol):
    """The store an export reads: tenants, and each kind's records or the event log after a
    watermark, in watermark order."""

    async def tenants(self, only: str | None) -> list[str]:
        """Every tenant's id, sorted, or only ``only``.

        Raises:
            ExportError: the store cannot be read, or has no tenant ``only``.
        """
        ...

    async def count(self, tenant_id: str, kind: str | None, after: Mark) -> int:
        """How many records of ``kind`` (None: events) come after ``after``."""
        ...

    def batches(
        self, tenant_id: str, kind: str | None, after: Mark, size: int
    ) -> AsyncGenerator[Sequence[Mapping[str, Any]], None]:
        """The records of ``kind`` after ``after`` (``id``, ``data``, ``fetched_at``,
        ``deleted``), ordered by ``(fetched_at, id)``, or (``kind`` None) the events after its
        ``seq`` (the event log's columns), ordered by seq; ``size`` at a time. Close the
        iterator when done (a server-side cursor must not outlive the run)."""
        ...

    async def close(self) -> None: ...


class ExportSink(Protocol):
    """The warehouse an export writes: the tables, and a watermark per (tenant, table)."""

    async def open(self, tables: Sequence[TableSpec]) -> None:
        """Make ``tables`` ready (created, or given the columns they lack).

        Raises:
            ExportError: the target cannot be opened or holds a table that is not an export's.
        """
        ...

    async def mark(self, tenant_id: str, table: str) -> Mark:
        """The watermark of the tenant's rows of ``table`` (an empty one before the first)."""
        ...

    async def write(
        self, tenant_id: str, table: str, rows: Sequence[dict[str, Any]], mark: Mark
    ) -> None:
        """Write a batch of rows and move the watermark to ``mark`` (together, or the
        watermark later: a crash re-exports, never skips)."""
        ...

    async def done(self, table: str) -> None:
        """Every tenant's rows of ``table`` are written."""
        ...

    async def close(self) -> None:
        """Release the target (and drop what an unfinished run left half-written)."""
        ...
