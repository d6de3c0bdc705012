"""The export's adapters: the store it reads and the warehouses it writes (``ports.export``).

Targets (:func:`parse_target`): ``sqlite:///x.db``, ``postgresql://...`` or ``parquet:DIR``. What
is exported (the tables, their columns from the registry of kinds, the rows, the watermarks'
progress) is the use case's: ``services.export``. Here:

- :class:`SqlExportSource` reads the store's tenants, entities and events after a watermark, in
  watermark order, a batch at a time from a server-side cursor.
- :class:`SqlSink` writes a SQLite or PostgreSQL database: entity rows upserted by
  ``(tenant_id, id)``, events inserted by ``(tenant_id, seq)`` (a replayed event is skipped),
  each batch with its new watermark (in a ``_carebridge_export`` table) in one transaction; a
  column a table lacks is added (``ALTER TABLE ... ADD COLUMN``).
- :class:`ParquetSink` writes one new part file per run per table,
  ``DIR/<table>/part-<n>.parquet`` (``n`` zero-padded to 5 digits; only when rows changed), and
  keeps watermarks and part numbers in ``DIR/_state.json``, replaced atomically after the part
  is in place; a reader takes, for each ``(tenant_id, id)``, the row with the latest
  ``fetched_at`` (for events, each ``(tenant_id, seq)`` once). A crash between a part and the
  state only re-exports rows, so that rule still holds.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread
import pyarrow as pa
import pyarrow.parquet as pq
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

from carebridge.errors import ExportError as ExportError
from carebridge.ports.export import ColumnType, ExportSink, Mark, TableSpec
from carebridge.store.engine import create_engine
from carebridge.store.schema import entities, events, tenants

STATE_TABLE = "_carebridge_export"
STATE_FILE = "_state.json"


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


# --- targets ------------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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


def _sql_tables(specs: Sequence[TableSpec]) -> tuple[MetaData, dict[str, Table]]:
    metadata = MetaData()
    made: dict[str, Table] = {}
    for spec in specs:
        key = spec.key
        made[spec.name] = Table(
            spec.name,
            metadata,
            *(
                Column(
                    c.name,
                    String(64) if c.name in ("tenant_id", "id") else _sql_type(c.type),
                    nullable=c.name not in (*key, "deleted", "fetched_at"),
                )
                for c in spec.columns
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


class SqlSink:
    """A SQLite or PostgreSQL database: upserts, with watermarks in ``_carebridge_export``."""

    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = create_engine(url)
        self.metadata, self.tables = _sql_tables(())
        self.keyed: dict[str, TableSpec] = {}

    async def open(self, tables: Sequence[TableSpec]) -> None:
        self.metadata, self.tables = _sql_tables(tables)
        self.keyed = {spec.name: spec for spec in tables}
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
            if self.keyed[table].kind is None:  # the event log: a replayed event is skipped
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


def arrow_schema(spec: TableSpec) -> pa.Schema:
    """The Parquet schema of a target table."""
    return pa.schema(
        [
            pa.field(c.name, _ARROW_TYPES[c.type], nullable=c.name not in ("tenant_id", "id"))
            for c in spec.columns
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


class ParquetSink:
    """A directory of Parquet part files, with watermarks in ``_state.json``."""

    def __init__(self, directory: str) -> None:
        self.root = Path(directory)
        self.state: dict[str, Any] = {"version": 1, "parts": {}, "marks": {}}
        self.writers: dict[str, tuple[Any, Path]] = {}  # table: (ParquetWriter, its .tmp)
        self.pending: dict[str, dict[str, Mark]] = {}
        self.schemas: dict[str, pa.Schema] = {}

    async def open(self, tables: Sequence[TableSpec]) -> None:
        self.schemas = {spec.name: arrow_schema(spec) for spec in tables}
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
        schema = self.schemas[table]
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


def sink(target: Target) -> ExportSink:
    """The sink that writes ``target``."""
    if target.scheme == "parquet":
        return ParquetSink(target.location)
    return SqlSink(target.location)


# --- the source ---------------------------------------------------------------------------------


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


def _query(kind: str | None, tenant_id: str, mark: Mark) -> Select[Any]:
    if kind is None:
        return select(*events.c).where(_events_after(tenant_id, mark)).order_by(events.c.seq)
    return (
        select(entities.c.id, entities.c.data, entities.c.fetched_at, entities.c.deleted)
        .where(_entities_after(tenant_id, kind, mark))
        .order_by(entities.c.fetched_at, entities.c.id)
    )


def _count(kind: str | None, tenant_id: str, mark: Mark) -> Select[Any]:
    if kind is None:
        return select(func.count()).select_from(events).where(_events_after(tenant_id, mark))
    return select(func.count()).select_from(entities).where(_entities_after(tenant_id, kind, mark))


class SqlExportSource:
    """``ExportSource`` over the store at a URL (its own engine, disposed by :meth:`close`)."""

    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = create_engine(url)

    async def tenants(self, only: str | None) -> list[str]:
        query = select(tenants.c.id).order_by(tenants.c.id)
        if only is not None:
            query = query.where(tenants.c.id == only)
        try:
            async with self.engine.connect() as conn:
                found = list((await conn.scalars(query)).all())
        except OperationalError as err:
            raise ExportError(f"cannot read the source store: {_first_line(err)}") from None
        if only is not None and not found:
            raise ExportError(f"no tenant {only!r} in the source store")
        return found

    async def count(self, tenant_id: str, kind: str | None, after: Mark) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.scalar(_count(kind, tenant_id, after))) or 0)

    async def batches(
        self, tenant_id: str, kind: str | None, after: Mark, size: int
    ) -> AsyncGenerator[Sequence[Mapping[str, Any]], None]:
        query = _query(kind, tenant_id, after).execution_options(yield_per=size)
        async with self.engine.connect() as conn:
            stream = await conn.stream(query)
            try:
                async for batch in stream.partitions(size):
                    yield [row._mapping for row in batch]
            finally:  # also on failure: a server-side cursor must not outlive the run
                await stream.close()

    async def close(self) -> None:
        await self.engine.dispose()


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


def check(source_url: str, target: Target) -> None:
    """Refuse an export whose target is the source store itself, or whose source store (a
    SQLite file) does not exist.

    Raises:
        ExportError: either.
    """
    if _same_database(source_url, target):
        raise ExportError("the export target is the source store itself")
    _check_source(source_url)
