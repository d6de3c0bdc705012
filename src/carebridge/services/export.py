"""Export the normalized store to a warehouse, incrementally: SQLite, PostgreSQL or Parquet.

**Tables.** One table per kind (:data:`KIND_TABLES`: ``patient`` → ``patients``, ``lab`` →
``labs`` ...) plus ``events``. An entity table's columns are ``tenant_id``, ``id``, then the
kind's domain-model fields in sorted order, then ``fetched_at`` and ``deleted``. The column set
comes from the domain model (its serialization JSON schema), not from the rows, so it is the same
on every run and for every tenant, and a field that is null everywhere still has its column.
Strings, dates and instants (ISO text, as ``model_dump(mode="json")`` writes them) are text;
integers, numbers and booleans keep their type; nested objects and lists (and unions of
different types) are one JSON text column (compact, keys sorted). ``fetched_at`` is a UTC
timestamp. A field that would clash with ``tenant_id``, ``fetched_at`` or ``deleted`` is named
``record_<field>``. When a model gains a field, a SQL target gets the column added
(``ALTER TABLE ... ADD COLUMN``); older Parquet parts simply lack it.

**Incremental.** Each (target, tenant, table) keeps a watermark: for entities the high-water
``(fetched_at, id)`` of the rows exported, for events the last ``seq``. A run exports the rows
after the watermark, in that order, and advances it with each batch (:func:`run`). How a target
keeps its rows and watermarks (SQL upserts with the watermark in the same transaction, Parquet
part files with a state file) is the sink's: see ``store.export``.

"Changed" means the row was written since: the store stamps ``fetched_at`` on every upsert
(also of an unchanged record), and whoever marks a row deleted must stamp it too. Rows a
concurrent sync commits later with an earlier ``fetched_at`` than an exported watermark are not
seen until they are written again; run the export between syncs. Two exports must not write to
the same target at the same time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

import orjson
from pydantic import BaseModel

from carebridge.domain.kinds import EXPORT_ORDER, KINDS
from carebridge.errors import ExportError as ExportError
from carebridge.ports.export import (
    ColumnType,
    ExportColumn,
    ExportSink,
    ExportSource,
    Mark,
    TableSpec,
)

__all__ = [
    "BATCH",
    "EVENTS_TABLE",
    "EVENT_COLUMNS",
    "KIND_TABLES",
    "MODELS",
    "ColumnType",
    "ExportColumn",
    "ExportError",
    "ExportResult",
    "Mark",
    "Progress",
    "TableSpec",
    "columns",
    "entity_row",
    "event_row",
    "run",
    "table_columns",
    "tables",
]

KIND_TABLES: Mapping[str, str] = {
    name: table for name in EXPORT_ORDER if (table := KINDS[name].table) is not None
}
"""Each exported kind and its target table, in export order."""

_KINDS: Mapping[str, str] = {table: kind for kind, table in KIND_TABLES.items()}

MODELS: Mapping[str, type[BaseModel]] = {name: KINDS[name].model for name in KIND_TABLES}
"""The domain model whose JSON each kind's ``data`` holds: the source of its columns."""

EVENTS_TABLE = "events"
BATCH = 500
RESERVED = frozenset({"tenant_id", "id", "fetched_at", "deleted"})


@dataclass
class ExportResult:
    """Rows written per table in one run."""

    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class Progress(Protocol):
    """Where the export reports its progress (the CLI draws a bar per table)."""

    def start(self, table: str, total: int) -> None: ...

    def advance(self, table: str, rows: int) -> None: ...


class _Quiet:
    def start(self, table: str, total: int) -> None:
        del table, total

    def advance(self, table: str, rows: int) -> None:
        del table, rows


# --- columns ------------------------------------------------------------------------------------

_JSON_TYPES: Mapping[str, ColumnType] = {
    "string": "text",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
}


def _column_type(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> ColumnType:
    ref = prop.get("$ref")
    if isinstance(ref, str):
        return _column_type(defs[ref.rsplit("/", 1)[-1]], defs)
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = prop.get(combinator)
        if isinstance(options, list):
            kinds = {_column_type(o, defs) for o in options if o.get("type") != "null"}
            return kinds.pop() if len(kinds) == 1 else "json"
    kind = prop.get("type")
    return _JSON_TYPES.get(kind, "json") if isinstance(kind, str) else "json"


@cache
def columns(kind: str) -> tuple[ExportColumn, ...]:
    """The columns of a kind's table: keys, the model's fields (sorted), ``fetched_at``,
    ``deleted``."""
    schema = MODELS[kind].model_json_schema(mode="serialization")
    defs = schema.get("$defs", {})
    fields = [
        ExportColumn(f"record_{name}" if name in RESERVED else name, _column_type(prop, defs), name)
        for name, prop in sorted(schema["properties"].items())
        if name != "id"
    ]
    return (
        ExportColumn("tenant_id", "text"),
        ExportColumn("id", "text"),
        *fields,
        ExportColumn("fetched_at", "instant"),
        ExportColumn("deleted", "boolean"),
    )


EVENT_COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("tenant_id", "text"),
    ExportColumn("seq", "integer"),
    ExportColumn("type", "text"),
    ExportColumn("kind", "text"),
    ExportColumn("entity_id", "text"),
    ExportColumn("patient_id", "text"),
    ExportColumn("diff", "json"),
    ExportColumn("occurred_at", "instant"),
    ExportColumn("detected_at", "instant"),
)
"""The columns of the ``events`` table."""


def table_columns(table: str) -> tuple[ExportColumn, ...]:
    """The columns of a target table, by its name."""
    if table == EVENTS_TABLE:
        return EVENT_COLUMNS
    return columns(_KINDS[table])


def tables() -> tuple[TableSpec, ...]:
    """Every target table, in export order: a table per exported kind, then the events."""
    return (
        *(
            TableSpec(table, columns(kind), ("tenant_id", "id"), kind)
            for kind, table in KIND_TABLES.items()
        ),
        TableSpec(EVENTS_TABLE, EVENT_COLUMNS, ("tenant_id", "seq")),
    )


# --- rows ---------------------------------------------------------------------------------------


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _cell(kind: ColumnType, value: Any) -> Any:
    if value is None:
        return None
    if kind == "json" or isinstance(value, dict | list):
        return _json_text(value)
    if kind == "text":
        return value if isinstance(value, str) else _json_text(value)
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return bool(value)
    return _utc(value)


def _loads(data: Any) -> dict[str, Any]:
    parsed = orjson.loads(data) if isinstance(data, str | bytes) else data
    return parsed if isinstance(parsed, dict) else {}


def entity_row(
    tenant_id: str, kind: str, entity_id: str, data: Any, fetched_at: datetime, deleted: bool
) -> dict[str, Any]:
    """One entity as a row of its kind's table."""
    record = _loads(data)
    row: dict[str, Any] = {"tenant_id": tenant_id, "id": entity_id}
    for column in columns(kind):
        if column.source is not None:
            row[column.name] = _cell(column.type, record.get(column.source))
    row["fetched_at"] = _utc(fetched_at)
    row["deleted"] = bool(deleted)
    return row


def event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """One logged event as a row of the ``events`` table."""
    return {c.name: _cell(c.type, event[c.name]) for c in EVENT_COLUMNS}


def _rows(
    spec: TableSpec, tenant_id: str, batch: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], Mark]:
    if spec.kind is None:
        return [event_row(r) for r in batch], Mark(seq=int(batch[-1]["seq"]))
    kind = spec.kind
    rows = [
        entity_row(tenant_id, kind, r["id"], r["data"], r["fetched_at"], r["deleted"])
        for r in batch
    ]
    last = batch[-1]
    return rows, Mark(_utc(last["fetched_at"]), last["id"])


# --- the run ------------------------------------------------------------------------------------


async def run(
    source: ExportSource,
    sink: ExportSink,
    *,
    tenant: str | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> ExportResult:
    """Export what changed in ``source`` since the last export to ``sink`` (every tenant, or
    only ``tenant``); returns the rows written per table. The sink is closed at the end (a
    failed run's half-written part is dropped); the source is the caller's.

    Raises:
        ExportError: no such tenant, or the source or the target cannot be used.
    """
    report = progress or _Quiet()
    result = ExportResult()
    planned = tables()
    try:
        tenant_ids = await source.tenants(tenant)
        await sink.open(planned)
        for spec in planned:
            result.rows[spec.name] = await _export_table(
                source, sink, spec, tenant_ids, report, batch_size
            )
    finally:
        await sink.close()
    return result


async def _export_table(
    source: ExportSource,
    sink: ExportSink,
    spec: TableSpec,
    tenant_ids: Sequence[str],
    progress: Progress,
    batch_size: int,
) -> int:
    marks = {t: await sink.mark(t, spec.name) for t in tenant_ids}
    total = 0
    for tenant_id, mark in marks.items():
        total += await source.count(tenant_id, spec.kind, mark)
    progress.start(spec.name, total)
    written = 0
    for tenant_id, mark in marks.items():
        async with aclosing(source.batches(tenant_id, spec.kind, mark, batch_size)) as batches:
            async for batch in batches:
                rows, new_mark = _rows(spec, tenant_id, batch)
                await sink.write(tenant_id, spec.name, rows, new_mark)
                written += len(rows)
                progress.advance(spec.name, len(rows))
    await sink.done(spec.name)
    return written
