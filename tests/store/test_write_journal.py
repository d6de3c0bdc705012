"""A write's bookkeeping in two transactions (``SqlWriteJournal``): the key's claim, the ledger
entry and the audit entry commit together before the upstream call; the record, its event, the
ledger's verdict and the stored answer together after it. Concurrent duplicates claim a key
once; a failure releases it; a claim past its lease is taken over as resumed. On SQLite and
(marked ``postgres``) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support import factories

from carebridge.ports.writes import LEASE, Audited, InFlight, Mismatch, Opened, Replay, Start
from carebridge.store.adapters import SqlAudit, SqlWriteJournal
from carebridge.store.audit import verify
from carebridge.store.engine import Transactions
from carebridge.store.schema import audit_log, entities, events, idempotency, write_ledger
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
WHO = Audited("key_a", "POST /create_appointment", ["pat_1"])


def _vault() -> Vault:
    return Vault(KeyRing({"k1": bytes(KEY_BYTES)}, "k1"))


def _journal(engine: AsyncEngine) -> SqlWriteJournal:
    return SqlWriteJournal(engine, SqlAudit(engine, _vault()))


async def _open(
    journal: SqlWriteJournal, key: str | None, fingerprint: str = "f1", now: datetime = NOW
) -> Opened:
    return await journal.open(
        "ten_a",
        key=key,
        fingerprint=fingerprint,
        operation="create_appointment",
        request={"slot": 1},
        audited=WHO,
        now=now,
    )


async def _close(journal: SqlWriteJournal, key: str | None, entry: int, record: Any) -> None:
    await journal.close(
        "ten_a",
        key=key,
        principal="key_a",
        claimed_at=NOW,
        entry=entry,
        state="confirmed",
        entity_id=str(record.id),
        diverged=(),
        kind="appointment",
        records=[record],
        status_code=201,
        response={"data": {"id": str(record.id)}},
        now=NOW,
    )


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_write_takes_two_transactions_and_replays_its_answer(seeded: AsyncEngine) -> None:
    journal = _journal(seeded)
    commits: list[int] = []
    # on a SQLite file the transactions run on a plain connection in a worker thread
    plain = Transactions.of(seeded).sync
    for engine in (seeded.sync_engine, plain) if plain is not None else (seeded.sync_engine,):
        event.listen(engine, "commit", lambda conn: commits.append(1))
    opened = await _open(journal, "k1")
    assert opened.outcome == Start()
    assert opened.entry is not None
    await _close(journal, "k1", opened.entry, factories.appointment())
    assert len(commits) == 2
    for table, rows in ((write_ledger, 1), (audit_log, 1), (entities, 1), (events, 1)):
        assert await _count(seeded, table) == rows
    async with seeded.connect() as conn:
        ledger = (await conn.execute(select(write_ledger))).one()
        record = (await conn.execute(select(idempotency))).one()
    assert ledger.state == "confirmed"
    assert record.state == "done"
    expires = (
        record.expires_at if record.expires_at.tzinfo else record.expires_at.replace(tzinfo=UTC)
    )
    assert expires == NOW + timedelta(hours=24)

    again = await _open(journal, "k1")
    assert again == Opened(Replay(201, {"data": {"id": str(factories.appointment().id)}}))
    assert await _open(journal, "k1", fingerprint="f2") == Opened(Mismatch())
    assert (await _count(seeded, write_ledger), await _count(seeded, audit_log)) == (1, 1)
    assert (await verify(seeded, _vault(), "ten_a")).intact


async def test_concurrent_duplicates_claim_a_key_once(seeded: AsyncEngine) -> None:
    journals = [_journal(seeded) for _ in range(2)]  # two appenders, as two processes
    outcomes: list[Opened] = []

    async def one(n: int) -> None:
        outcomes.append(await _open(journals[n % 2], "dup"))

    async with anyio.create_task_group() as group:
        for n in range(40):
            group.start_soon(one, n)
    assert sum(isinstance(o.outcome, Start) for o in outcomes) == 1
    assert sum(isinstance(o.outcome, InFlight) for o in outcomes) == 39
    assert (await _count(seeded, write_ledger), await _count(seeded, audit_log)) == (1, 1)
    assert (await verify(seeded, _vault(), "ten_a")).intact


async def test_a_failure_releases_the_key_and_a_dead_claim_is_resumed(seeded: AsyncEngine) -> None:
    journal = _journal(seeded)
    first = await _open(journal, "k1")
    await journal.fail(
        "ten_a", key="k1", principal="key_a", entry=first.entry, state="failed", now=NOW
    )
    async with seeded.connect() as conn:
        assert (await conn.execute(select(write_ledger.c.state))).scalar_one() == "failed"
    second = await _open(journal, "k1")
    assert second.outcome == Start(resumed=False)
    # the second request dies without an answer: a lease later, the key is taken over
    later = await _open(journal, "k1", now=NOW + LEASE + timedelta(seconds=1))
    assert later.outcome == Start(resumed=True)
    assert later.entry is not None
    assert await _count(seeded, write_ledger) == 3
