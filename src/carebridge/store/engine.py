"""Async engines for the store: SQLite (WAL, the embedded default) or PostgreSQL (psycopg 3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVarTuple

import orjson
from sqlalchemy import CursorResult, Executable, Row, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.selectable import TypedReturnsRows

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
