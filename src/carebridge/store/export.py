"""Export the normalized store to a warehouse, incrementally: SQLite, PostgreSQL or Parquet.

Targets (:func:`parse_target`): ``sqlite:///x.db``, ``postgresql://...`` or ``parquet:DIR``.

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
after the watermark, in that order, and advances it. SQL targets keep watermarks in a
``_carebridge_export`` table and write each batch's rows and the new watermark in one
transaction; entity rows are upserted by ``(tenant_id, id)``, events inserted by
``(tenant_id, seq)`` (a replayed event is skipped). A Parquet target writes one new part file per
run per table, ``DIR/<table>/part-<n>.parquet`` (``n`` zero-padded to 5 digits; only when rows
changed), and keeps watermarks and part numbers in ``DIR/_state.json``, replaced atomically
after the part is in place; a reader takes, for each ``(tenant_id, id)``, the row with the
latest ``fetched_at`` (for events, each ``(tenant_id, seq)`` once). A crash between a part and
the state only re-exports rows, so that rule still holds.

"Changed" means the row was written since: the store stamps ``fetched_at`` on every upsert
(also of an unchanged record), and whoever marks a row deleted must stamp it too. Rows a
concurrent sync commits later with an earlier ``fetched_at`` than an exported watermark are not
seen until they are written again; run the export between syncs. Two exports must not write to
the same target at the same time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio.to_thread
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    String,
    Table,
    Text,
    and_,
    func,
    inspect,
    make_url,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import TypeEngine

from carebridge.domain.kinds import EXPORT_ORDER, KINDS
from carebridge.errors import ExportError as ExportError
from carebridge.store.engine import create_engine
from carebridge.store.schema import entities, events, tenants

KIND_TABLES: Mapping[str, str] = {
    name: table for name in EXPORT_ORDER if (table := KINDS[name].table) is not None
}
"""Each exported kind and its target table, in export order."""

_KINDS: Mapping[str, str] = {table: kind for kind, table in KIND_TABLES.items()}

MODELS: Mapping[str, type[BaseModel]] = {name: KINDS[name].model for name in KIND_TABLES}
"""The domain model whose JSON each kind's ``data`` holds: the source of its columns."""

EVENTS_TABLE = "events"
STATE_TABLE = "_carebridge_export"
STATE_FILE = "_state.json"
BATCH = 500
RESERVED = frozenset({"tenant_id", "id", "fetched_at", "deleted"})

ColumnType = Literal["text", "integer", "number", "boolean", "json", "instant"]


@dataclass(frozen=True)
class ExportColumn:
    """One column of a target table; ``source`` is the key in the record's JSON (if any)."""

    name: str
    type: ColumnType
    source: str | None = None


@dataclass(frozen=True)
class Mark:
    """A watermark: the last exported ``(fetched_at, id)`` of a table, or ``seq`` of events."""

    fetched_at: datetime | None = None
    id: str = ""
    seq: int = 0


@dataclass(frozen=True)
class Target:
    """A parsed ``--to``: a SQL database URL or a Parquet directory."""

    scheme: Literal["sqlite", "postgresql", "parquet"]
    location: str

    def describe(self) -> str:
        """The target for display, without a password."""
        if self.scheme == "parquet":
            return f"parquet:{self.location}"
        return make_url(self.location).render_as_string(hide_password=True)


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
    kind = _KINDS[table]
    return columns(kind)


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


# --- targets ------------------------------------------------------------------------------------


def parse_target(target: str) -> Target:
    """``sqlite:///x.db``, ``postgresql://...`` or ``parquet:DIR``; anything else is an
    :class:`ExportError`."""
    if target.startswith("parquet:"):
        directory = target.removeprefix("parquet:").removeprefix("//")
        if not directory:
            raise ExportError("parquet target needs a directory: parquet:DIR")
        return Target("parquet", directory)
    try:
        backend = make_url(target).get_backend_name()
    except ArgumentError:
        backend = ""
    if backend == "sqlite":
        return Target("sqlite", target)
    if backend == "postgresql":
        return Target("postgresql", target)
    raise ExportError(
        "unsupported export target; use sqlite:///FILE, postgresql://... or parquet:DIR"
    )


class _Sink(Protocol):
    async def open(self) -> None: ...

    async def mark(self, tenant_id: str, table: str) -> Mark: ...

    async def write(
        self, tenant_id: str, table: str, rows: Sequence[dict[str, Any]], mark: Mark
    ) -> None: ...

    async def done(self, table: str) -> None: ...

    async def close(self) -> None: ...


def _sql_type(kind: ColumnType) -> TypeEngine[Any]:
    if kind in ("text", "json"):
        return Text()
    if kind == "integer":
        return BigInteger()
    if kind == "number":
        return Double()
    if kind == "boolean":
        return Boolean()
    return DateTime(timezone=True)


def _sql_tables() -> tuple[MetaData, dict[str, Table]]:
    metadata = MetaData()
    made: dict[str, Table] = {}
    for table in [*KIND_TABLES.values(), EVENTS_TABLE]:
        key = ("tenant_id", "seq") if table == EVENTS_TABLE else ("tenant_id", "id")
        made[table] = Table(
            table,
            metadata,
            *(
                Column(
                    c.name,
                    String(64) if c.name in ("tenant_id", "id") else _sql_type(c.type),
                    nullable=c.name not in (*key, "deleted", "fetched_at"),
                )
                for c in table_columns(table)
            ),
            PrimaryKeyConstraint(*key),
        )
    made[STATE_TABLE] = Table(
        STATE_TABLE,
        metadata,
        Column("tenant_id", String(64), nullable=False),
        Column("table_name", String(64), nullable=False),
        Column("fetched_at", DateTime(timezone=True)),
        Column("last_id", String(64)),
        Column("last_seq", BigInteger),
        Column("exported_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("tenant_id", "table_name"),
    )
    return metadata, made


class _SqlSink:
    """A SQLite or PostgreSQL database: upserts, with watermarks in ``_carebridge_export``."""

    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = create_engine(url)
        self.metadata, self.tables = _sql_tables()

    async def open(self) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(self._prepare)
        except OperationalError as err:
            raise ExportError(f"cannot open the export target: {_first_line(err)}") from None

    def _prepare(self, conn: Connection) -> None:
        inspector = inspect(conn)
        preparer = conn.dialect.identifier_preparer
        for name, table in self.tables.items():
            if not inspector.has_table(name):
                continue
            existing = {c["name"] for c in inspector.get_columns(name)}
            keys = {c.name for c in table.primary_key.columns}
            if not keys <= existing:
                raise ExportError(f"target table {name} exists and is not an export table")
            for column in table.columns:
                if column.name not in existing:
                    ddl = column.type.compile(dialect=conn.dialect)
                    conn.execute(
                        text(
                            f"ALTER TABLE {preparer.quote(name)} "
                            f"ADD COLUMN {preparer.quote(column.name)} {ddl}"
                        )
                    )
        self.metadata.create_all(conn)

    async def mark(self, tenant_id: str, table: str) -> Mark:
        state = self.tables[STATE_TABLE]
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(state.c.fetched_at, state.c.last_id, state.c.last_seq).where(
                        state.c.tenant_id == tenant_id, state.c.table_name == table
                    )
                )
            ).first()
        if row is None:
            return Mark()
        fetched_at = None if row.fetched_at is None else _utc(row.fetched_at)
        return Mark(fetched_at, row.last_id or "", int(row.last_seq or 0))

    def _insert(self, conn: AsyncConnection, table: Table) -> Any:
        return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)

    async def write(
        self, tenant_id: str, table: str, rows: Sequence[dict[str, Any]], mark: Mark
    ) -> None:
        target = self.tables[table]
        state = self.tables[STATE_TABLE]
        async with self.engine.begin() as conn:
            insert = self._insert(conn, target)
            if table == EVENTS_TABLE:
                statement = insert.on_conflict_do_nothing(index_elements=["tenant_id", "seq"])
            else:
                statement = insert.on_conflict_do_update(
                    index_elements=["tenant_id", "id"],
                    set_={
                        c.name: insert.excluded[c.name]
                        for c in target.columns
                        if c.name not in ("tenant_id", "id")
                    },
                )
            await conn.execute(statement, list(rows))
            values = {
                "tenant_id": tenant_id,
                "table_name": table,
                "fetched_at": mark.fetched_at,
                "last_id": mark.id or None,
                "last_seq": mark.seq or None,
                "exported_at": datetime.now(UTC),
            }
            upsert = self._insert(conn, state)
            await conn.execute(
                upsert.values(**values).on_conflict_do_update(
                    index_elements=["tenant_id", "table_name"],
                    set_={k: v for k, v in values.items() if k not in ("tenant_id", "table_name")},
                )
            )

    async def done(self, table: str) -> None:
        del table

    async def close(self) -> None:
        await self.engine.dispose()


_ARROW_TYPES: Mapping[ColumnType, pa.DataType] = {
    "text": pa.string(),
    "json": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "instant": pa.timestamp("us", tz="UTC"),
}


def arrow_schema(table: str) -> pa.Schema:
    """The Parquet schema of a target table."""
    return pa.schema(
        [
            pa.field(c.name, _ARROW_TYPES[c.type], nullable=c.name not in ("tenant_id", "id"))
            for c in table_columns(table)
        ]
    )


def _mark_json(mark: Mark) -> dict[str, Any]:
    if mark.seq:
        return {"seq": mark.seq}
    at = None if mark.fetched_at is None else mark.fetched_at.isoformat()
    return {"fetched_at": at, "id": mark.id}


def _mark_from(value: Mapping[str, Any]) -> Mark:
    at = value.get("fetched_at")
    return Mark(
        _utc(datetime.fromisoformat(at)) if isinstance(at, str) else None,
        str(value.get("id") or ""),
        int(value.get("seq") or 0),
    )


class _ParquetSink:
    """A directory of Parquet part files, with watermarks in ``_state.json``."""

    def __init__(self, directory: str) -> None:
        self.root = Path(directory)
        self.state: dict[str, Any] = {"version": 1, "parts": {}, "marks": {}}
        self.writers: dict[str, tuple[Any, Path]] = {}  # table: (ParquetWriter, its .tmp)
        self.pending: dict[str, dict[str, Mark]] = {}

    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._load)

    def _load(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise ExportError("the parquet target is not a directory")
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / STATE_FILE
        if path.exists():
            try:
                loaded = json.loads(path.read_text())
            except json.JSONDecodeError:
                raise ExportError(f"{STATE_FILE} of the parquet target is not JSON") from None
            if not isinstance(loaded, dict) or loaded.get("version") != 1:
                raise ExportError(f"{STATE_FILE} of the parquet target is not an export state")
            self.state = loaded

    async def mark(self, tenant_id: str, table: str) -> Mark:
        value = self.state["marks"].get(tenant_id, {}).get(table)
        return Mark() if value is None else _mark_from(value)

    def _part(self, table: str) -> Path:
        number = int(self.state["parts"].get(table, 0)) + 1
        return self.root / table / f"part-{number:05d}.parquet"

    def _write(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        schema = arrow_schema(table)
        if table not in self.writers:
            part = self._part(table)
            part.parent.mkdir(parents=True, exist_ok=True)
            temporary = part.with_name(part.name + ".tmp")
            self.writers[table] = (pq.ParquetWriter(temporary, schema), temporary)
        writer, _ = self.writers[table]
        writer.write_table(pa.Table.from_pylist(list(rows), schema=schema))

    async def write(
        self, tenant_id: str, table: str, rows: Sequence[dict[str, Any]], mark: Mark
    ) -> None:
        await anyio.to_thread.run_sync(self._write, table, rows)
        self.pending.setdefault(table, {})[tenant_id] = mark

    def _commit(self, table: str) -> None:
        if table not in self.writers:
            return
        writer, temporary = self.writers.pop(table)
        writer.close()
        os.replace(temporary, self._part(table))
        self.state["parts"][table] = int(self.state["parts"].get(table, 0)) + 1
        for tenant_id, mark in self.pending.pop(table, {}).items():
            self.state["marks"].setdefault(tenant_id, {})[table] = _mark_json(mark)
        state = self.root / (STATE_FILE + ".tmp")
        state.write_text(json.dumps(self.state, indent=2, sort_keys=True))
        os.replace(state, self.root / STATE_FILE)

    async def done(self, table: str) -> None:
        await anyio.to_thread.run_sync(self._commit, table)

    def _discard(self) -> None:
        for writer, temporary in self.writers.values():
            writer.close()
            temporary.unlink(missing_ok=True)
        self.writers.clear()

    async def close(self) -> None:
        """Drop the unfinished part of a failed run (its watermark never moved)."""
        await anyio.to_thread.run_sync(self._discard)


def _sink(target: Target) -> _Sink:
    if target.scheme == "parquet":
        return _ParquetSink(target.location)
    return _SqlSink(target.location)


# --- the use case -------------------------------------------------------------------------------


def _first_line(err: BaseException) -> str:
    origin = getattr(err, "orig", None) or err
    return (str(origin).strip().splitlines() or [type(origin).__name__])[0]


def _entities_after(tenant_id: str, kind: str, mark: Mark) -> Any:
    where = [entities.c.tenant_id == tenant_id, entities.c.kind == kind]
    if mark.fetched_at is not None:
        where.append(
            or_(
                entities.c.fetched_at > mark.fetched_at,
                and_(entities.c.fetched_at == mark.fetched_at, entities.c.id > mark.id),
            )
        )
    return and_(*where)


def _events_after(tenant_id: str, mark: Mark) -> Any:
    return and_(events.c.tenant_id == tenant_id, events.c.seq > mark.seq)


def _query(table: str, tenant_id: str, mark: Mark) -> Select[Any]:
    if table == EVENTS_TABLE:
        return select(*events.c).where(_events_after(tenant_id, mark)).order_by(events.c.seq)
    kind = _KINDS[table]
    return (
        select(entities.c.id, entities.c.data, entities.c.fetched_at, entities.c.deleted)
        .where(_entities_after(tenant_id, kind, mark))
        .order_by(entities.c.fetched_at, entities.c.id)
    )


def _count(table: str, tenant_id: str, mark: Mark) -> Select[Any]:
    if table == EVENTS_TABLE:
        return select(func.count()).select_from(events).where(_events_after(tenant_id, mark))
    kind = _KINDS[table]
    return select(func.count()).select_from(entities).where(_entities_after(tenant_id, kind, mark))


def _rows(table: str, tenant_id: str, batch: Sequence[Any]) -> tuple[list[dict[str, Any]], Mark]:
    if table == EVENTS_TABLE:
        rows = [{c.name: _cell(c.type, getattr(r, c.name)) for c in EVENT_COLUMNS} for r in batch]
        return rows, Mark(seq=int(batch[-1].seq))
    kind = _KINDS[table]
    rows = [entity_row(tenant_id, kind, r.id, r.data, r.fetched_at, r.deleted) for r in batch]
    last = batch[-1]
    return rows, Mark(_utc(last.fetched_at), last.id)


async def _tenants(source: AsyncEngine, only: str | None) -> list[str]:
    query = select(tenants.c.id).order_by(tenants.c.id)
    if only is not None:
        query = query.where(tenants.c.id == only)
    try:
        async with source.connect() as conn:
            found = list((await conn.scalars(query)).all())
    except OperationalError as err:
        raise ExportError(f"cannot read the source store: {_first_line(err)}") from None
    if only is not None and not found:
        raise ExportError(f"no tenant {only!r} in the source store")
    return found


def _same_database(source_url: str, target: Target) -> bool:
    if target.scheme == "parquet":
        return False
    left, right = make_url(source_url), make_url(target.location)
    if left.get_backend_name() != right.get_backend_name():
        return False
    if left.get_backend_name() == "sqlite":
        return bool(left.database and right.database) and (
            Path(left.database or "").resolve() == Path(right.database or "").resolve()
        )
    return (left.host, left.port, left.database) == (right.host, right.port, right.database)


def _check_source(source_url: str) -> None:
    url = make_url(source_url)
    database = url.database or ""
    in_a_file = url.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if in_a_file and not Path(database).exists():
        raise ExportError(f"the source store {database} does not exist")


async def export(
    source_url: str,
    target: str | Target,
    *,
    tenant: str | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> ExportResult:
    """Export what changed in the store at ``source_url`` since the last export to ``target``
    (every tenant, or only ``tenant``); returns the rows written per table."""
    parsed = target if isinstance(target, Target) else parse_target(target)
    if _same_database(source_url, parsed):
        raise ExportError("the export target is the source store itself")
    _check_source(source_url)
    report = progress or _Quiet()
    result = ExportResult()
    source = create_engine(source_url)
    sink = _sink(parsed)
    try:
        tenant_ids = await _tenants(source, tenant)
        await sink.open()
        for table in [*KIND_TABLES.values(), EVENTS_TABLE]:
            result.rows[table] = await _export_table(
                source, sink, table, tenant_ids, report, batch_size
            )
    finally:
        await sink.close()
        await source.dispose()
    return result


async def _export_table(
    source: AsyncEngine,
    sink: _Sink,
    table: str,
    tenant_ids: Sequence[str],
    progress: Progress,
    batch_size: int,
) -> int:
    marks = {t: await sink.mark(t, table) for t in tenant_ids}
    async with source.connect() as conn:
        total = 0
        for tenant_id, mark in marks.items():
            total += int((await conn.scalar(_count(table, tenant_id, mark))) or 0)
    progress.start(table, total)
    written = 0
    for tenant_id, mark in marks.items():
        query = _query(table, tenant_id, mark).execution_options(yield_per=batch_size)
        async with source.connect() as conn:
            stream = await conn.stream(query)
            try:
                async for batch in stream.partitions(batch_size):
                    rows, new_mark = _rows(table, tenant_id, batch)
                    await sink.write(tenant_id, table, rows, new_mark)
                    written += len(rows)
                    progress.advance(table, len(rows))
            finally:  # also on failure: a server-side cursor must not outlive the run
                await stream.close()
    await sink.done(table)
    return written
