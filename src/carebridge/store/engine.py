"""Async engines for the store: SQLite (WAL, the embedded default) or PostgreSQL (psycopg 3).

The pool holds as many connections as the server serves requests at once
(``CAREBRIDGE_DB_POOL``, 32 by default), so a burst of concurrent requests never opens
connections of its own. :class:`Generations` reads the counters that in-process caches compare
before trusting themselves (migration 0008), on SQLite through a plain ``sqlite3`` connection to
the same file, in the event loop's thread: a primary-key read there costs microseconds, where a
round trip through the async driver's thread costs a hundred.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any, TypeVarTuple

import orjson
from sqlalchemy import CursorResult, Executable, Row, event, make_url, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.selectable import TypedReturnsRows

from carebridge.store.schema import counters

POOL_ENV = "CAREBRIDGE_DB_POOL"
POOL_SIZE = 32
"""Connections per process by default: the API's concurrency (32 connections in the bench)."""

_Columns = TypeVarTuple("_Columns")


def async_url(url: str) -> str:
    """The async form of a store URL: ``sqlite+aiosqlite`` or ``postgresql+psycopg``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}.get(backend)
    if driver is None:
        raise ValueError(f"unsupported database {backend!r}")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _to_json(value: Any) -> str:
    """Compact JSON for the JSON columns (orjson: a list page is sent as stored)."""
    return orjson.dumps(value, default=_fallback).decode()


def _fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; SQLite connections get WAL, foreign keys and a busy timeout. JSON
    columns are written compact and read with orjson."""
    kwargs.setdefault("json_serializer", _to_json)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if "poolclass" not in kwargs and _sqlite_file(url) is not False:
        size = pool_size()
        kwargs.setdefault("pool_size", size)
        kwargs.setdefault("max_overflow", size // 2)
    engine = create_async_engine(async_url(url), **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, record: Any) -> None:
            del record
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


def pool_size(environ: dict[str, str] | None = None) -> int:
    """Pooled connections per engine: ``CAREBRIDGE_DB_POOL`` (1 to 1000), else 32."""
    text = (os.environ if environ is None else environ).get(POOL_ENV, "").strip()
    try:
        size = int(text) if text else POOL_SIZE
    except ValueError:
        size = 0
    if not 1 <= size <= 1000:
        raise ValueError(f"{POOL_ENV} must be a whole number from 1 to 1000")
    return size


def _sqlite_file(url: str) -> str | bool | None:
    """The file of a SQLite store (None: not SQLite; False: an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
        return False
    return database


class Generations:
    """Reads a tenant's ``counters`` rows (0 when absent) for caches to compare.

    On a SQLite file, through one plain ``sqlite3`` connection per thread, in autocommit: each
    read sees every transaction committed before it, in any process (WAL readers do not wait
    for writers). Elsewhere, through the engine.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        found = _sqlite_file(engine.url.render_as_string(hide_password=False))
        self._file = found if isinstance(found, str) else None
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._file or "", isolation_level=None)
            conn.execute("PRAGMA busy_timeout=5000")
            self._local.conn = conn
        return conn

    async def value(self, tenant_id: str, name: str) -> int:
        """The counter ``name`` of ``tenant_id`` as committed now."""
        if self._file is not None:
            row = (
                self._connection()
                .execute(
                    "SELECT value FROM counters WHERE tenant_id = ? AND name = ?",
                    (tenant_id, name),
                )
                .fetchone()
            )
        else:
            row = await read_first(
                self.engine,
                select(counters.c.value).where(
                    counters.c.tenant_id == tenant_id, counters.c.name == name
                ),
            )
        return 0 if row is None else int(row[0])


async def read_first(
    engine: AsyncEngine, statement: TypedReturnsRows[*_Columns]
) -> Row[*_Columns] | None:
    """The first row a query answers (None: no row), read on a connection of its own."""
    async with engine.connect() as conn:
        return (await conn.execute(statement)).first()


async def read_all(
    engine: AsyncEngine, statement: TypedReturnsRows[*_Columns]
) -> Sequence[Row[*_Columns]]:
    """Every row a query answers, read on a connection of its own."""
    async with engine.connect() as conn:
        return (await conn.execute(statement)).all()


async def commit_one(engine: AsyncEngine, statement: Executable) -> CursorResult[Any]:
    """Run one statement in a transaction of its own; its (buffered) result, for ``rowcount``."""
    async with engine.begin() as conn:
        return await conn.execute(statement)
