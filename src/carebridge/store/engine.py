"""Async engines for the store: SQLite (WAL, the embedded default) or PostgreSQL (psycopg 3).

The pool holds as many connections as the server serves requests at once
(``CAREBRIDGE_DB_POOL``, 32 by default), so a burst of concurrent requests never opens
connections of its own. :class:`Generations` reads the counters that in-process caches compare
before trusting themselves (migration 0008), on SQLite through a plain ``sqlite3`` connection to
the same file, in the event loop's thread: a primary-key read there costs microseconds, where a
round trip through the async driver's thread costs a hundred. :class:`Transactions` runs a
write's transaction on a SQLite file the same way: its whole body in one call to a worker
thread, over a plain connection, where the async driver would cross threads about four times
per statement.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar, TypeVarTuple, cast

import anyio.to_thread
import orjson
from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    Row,
    event,
    make_url,
    select,
)
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.selectable import TypedReturnsRows

from carebridge.store.schema import counters

POOL_ENV = "CAREBRIDGE_DB_POOL"
POOL_SIZE = 32
"""Connections per process by default: the API's concurrency (32 connections in the bench)."""

_Columns = TypeVarTuple("_Columns")
_T = TypeVar("_T")


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

    def plain(self) -> sqlite3.Connection | None:
        """This thread's plain connection to the SQLite file (None: not a SQLite file), in
        autocommit: for primary-key reads that cost less in place than a trip to the driver's
        thread."""
        return None if self._file is None else self._connection()

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


class _Plain:
    """A plain (sync) connection with the awaitable methods a transaction's body calls on an
    ``AsyncConnection``: each returns at once, so the body never suspends (see
    :class:`Transactions`)."""

    def __init__(self, conn: Connection) -> None:
        self.sync_connection = conn
        self.dialect = conn.dialect

    async def execute(
        self, statement: Executable, parameters: Any = None, **options: Any
    ) -> CursorResult[Any]:
        return self.sync_connection.execute(statement, parameters, **options)

    async def scalar(self, statement: Executable, parameters: Any = None, **options: Any) -> Any:
        return self.sync_connection.scalar(statement, parameters, **options)

    async def scalars(self, statement: Executable, parameters: Any = None, **options: Any) -> Any:
        return self.sync_connection.scalars(statement, parameters, **options)


def _drive(body: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine that never suspends to its end, in the calling thread."""
    try:
        body.send(None)
    except StopIteration as done:
        return cast(_T, done.value)
    body.close()
    raise RuntimeError("a transaction's body awaited something other than its connection")


_SYNCHRONOUS = "carebridge.synchronous"
"""A plain connection's mark (in its ``info``): whether its commits are flushed (FULL)."""


class _Returned:
    """A connection's pool record as the store's pool listeners see it: its ``info`` marks."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info


Body = Callable[[AsyncConnection], Awaitable[_T]]
"""A transaction's body: statements on the connection it is given, nothing else awaited."""

_TRANSACTIONS: weakref.WeakKeyDictionary[AsyncEngine, Transactions] = weakref.WeakKeyDictionary()


class Transactions:
    """Runs a transaction's body in one trip where the driver allows it.

    On a SQLite file the body runs in one call to a worker thread, over a plain ``sqlite3``
    connection to the same file from a sync engine of its own (orjson JSON, foreign keys, WAL,
    the busy timeout, and ``BEGIN IMMEDIATE``: the transaction holds the write lock from its
    first statement, so its reads see what it then writes over). The body is the same async
    code that runs on the async engine: it awaits only its connection's ``execute``,
    ``scalar`` and ``scalars``, which a plain connection answers at once, so it runs to its end
    without suspending (anything else it awaited would raise :class:`RuntimeError`). The marks a
    body leaves on its connection's ``info`` (the deliveries it queued: ``store.events``) are
    handed to the async engine's pool listeners once the transaction has ended, in the event
    loop's thread, as if the connection came back to that pool: the delivery loop wakes as it
    does after any other commit. Elsewhere (PostgreSQL, an in-memory SQLite), the body runs in
    ``engine.begin()``.

    One per async engine (:meth:`of`); :meth:`dispose` closes its connections.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sync: Engine | None = None
        found = _sqlite_file(engine.url.render_as_string(hide_password=False))
        if isinstance(found, str):
            size = pool_size()
            self.sync = create_sync_engine(
                f"sqlite:///{found}",
                json_serializer=_to_json,
                json_deserializer=orjson.loads,
                pool_size=size,
                max_overflow=size // 2,
                connect_args={"check_same_thread": False},
            )
            event.listen(self.sync, "connect", _plain_pragmas)
            event.listen(self.sync, "begin", _begin_immediate)

    @classmethod
    def of(cls, engine: AsyncEngine) -> Transactions:
        """The runner of ``engine`` (made on first use, shared by every adapter over it)."""
        found = _TRANSACTIONS.get(engine)
        if found is None:
            found = _TRANSACTIONS[engine] = cls(engine)
        return found

    async def run(self, body: Body[_T], *, durable: bool = True) -> _T:
        """Run ``body`` in one transaction: committed when it returns, rolled back when it
        raises.

        ``durable=False`` (SQLite): the commit is not flushed to disk on its own (WAL with
        ``synchronous=NORMAL``): it is visible to every connection at once and survives the
        process being killed, and it becomes durable with the next durable commit of any
        connection (every audit entry is one) or checkpoint; only an operating system crash or
        a power loss in between loses it, whole. For what the store can rebuild or recover
        that way: a write's closing transaction (a lost one is a write that died before it
        closed: its key's lease runs out and the retry resumes it), records read from the
        upstream (read again by the next sync)."""
        if self.sync is None:
            async with self.engine.begin() as conn:
                return await body(conn)
        marks: dict[str, Any] = {}
        try:
            return await anyio.to_thread.run_sync(self._in_thread, body, marks, durable)
        finally:
            if marks:
                self.engine.sync_engine.pool.dispatch.checkin(None, _Returned(marks))

    def _in_thread(self, body: Body[_T], marks: dict[str, Any], durable: bool) -> _T:
        assert self.sync is not None  # noqa: S101 - only called with a sync engine
        with self.sync.connect() as conn:
            info = conn.info
            before = set(info)
            if info.get(_SYNCHRONOUS) != durable:  # outside the transaction, as SQLite wants
                plain = conn.connection.dbapi_connection
                assert plain is not None  # noqa: S101 - a checked-out connection
                plain.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                info[_SYNCHRONOUS] = durable
                before.add(_SYNCHRONOUS)
            try:
                with conn.begin():
                    return _drive(cast(Coroutine[Any, Any, _T], body(cast(Any, _Plain(conn)))))
            finally:
                marks.update({name: info.pop(name) for name in list(info) if name not in before})

    def dispose(self) -> None:
        """Close the pooled plain connections."""
        if self.sync is not None:
            self.sync.dispose()


def _plain_pragmas(dbapi_connection: Any, record: Any) -> None:
    del record
    dbapi_connection.isolation_level = None  # the driver begins nothing; _begin_immediate does
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


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
