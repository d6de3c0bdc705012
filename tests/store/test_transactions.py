"""``Transactions``: a transaction's body runs in one call (on a SQLite file, in a worker thread
over a plain connection), commits when it returns and rolls back when it raises; the marks it
leaves (deliveries queued) wake the listeners of the async engine's pool in the event loop's
thread, as the async engine's own connections do; a body that awaits anything but its
connection is refused. On SQLite and (marked ``postgres``) PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.store import migrate
from carebridge.store.engine import Transactions, create_engine
from carebridge.store.events import queued, wake_on_commit
from carebridge.store.schema import tenants, write_ledger

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


class Abort(Exception):
    pass


async def _ledger_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(write_ledger)) or 0)


async def _enter(conn: AsyncConnection) -> int:
    result = await conn.execute(
        write_ledger.insert()
        .values(
            tenant_id="ten_a",
            operation="create_appointment",
            request={"n": 1},
            state="accepted",
            created_at=NOW,
            updated_at=NOW,
        )
        .returning(write_ledger.c.id)
    )
    await queued(conn, "ten_a")
    return int(result.scalar_one())


async def test_a_body_commits_and_its_queued_mark_wakes_the_pools_listeners(
    seeded: AsyncEngine,
) -> None:
    woken: list[str] = []
    wake_on_commit(seeded, lambda: woken.append(threading.current_thread().name))
    runs = Transactions.of(seeded)
    assert Transactions.of(seeded) is runs
    for durable in (True, False):
        entry = await runs.run(_enter, durable=durable)
        assert entry > 0
    assert await _ledger_rows(seeded) == 2
    assert woken == [threading.current_thread().name] * 2  # once per commit, in this thread


async def test_a_body_that_raises_rolls_back_and_only_wakes_a_pass(seeded: AsyncEngine) -> None:
    woken: list[int] = []
    wake_on_commit(seeded, lambda: woken.append(1))

    async def fails(conn: AsyncConnection) -> None:
        await _enter(conn)
        raise Abort

    with pytest.raises(Abort):
        await Transactions.of(seeded).run(fails)
    assert await _ledger_rows(seeded) == 0
    assert woken == [1]  # the mark was left: the loop looks and finds nothing


async def test_a_body_that_awaits_anything_else_is_refused_on_a_plain_connection(
    sqlite_url: str,
) -> None:
    migrate.upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    async with engine.begin() as conn:
        await conn.execute(
            tenants.insert().values(
                id="ten_a", name="ten_a", upstream="carecloud", settings={}, created_at=NOW
            )
        )
    try:

        async def sleeps(conn: AsyncConnection) -> None:
            await _enter(conn)
            await asyncio.sleep(0)  # yields to a loop the worker thread does not run

        runs = Transactions.of(engine)
        assert runs.sync is not None  # a SQLite file: the plain path
        with pytest.raises(RuntimeError, match="awaited something other"):
            await runs.run(sleeps)
        assert await _ledger_rows(engine) == 0
    finally:
        runs.dispose()
        await engine.dispose()
