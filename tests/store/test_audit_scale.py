"""An append's cost does not grow with the log: a warm appender runs the same two statements
(the batch's INSERT, the checkpoint's conditional UPDATE) after 1 entry and after 300, and
never reads the log. Two appenders that take turns (as two processes would) still extend one
chain: the one whose head in memory went stale rolls back and appends again from the
checkpoint. The two-process form is ``test_audit_tamper``'s. On SQLite and (marked
``postgres``) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.store.audit import AuditEntry, AuditLog, verify
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

pytestmark = pytest.mark.anyio
AT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _vault() -> Vault:
    return Vault(KeyRing({"k1": bytes(KEY_BYTES)}, "k1"))


def _entry(n: int, tenant: str = "ten_a") -> AuditEntry:
    return AuditEntry(tenant, "key_test", "GET /patients", (f"pat_{n:04d}",), AT + timedelta(n))


async def _statements(engine: AsyncEngine, log: AuditLog, n: int) -> list[str]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        if not str(args[2]).startswith("BEGIN"):  # the transaction's own start, not a statement
            seen.append(str(args[2]))

    # on a SQLite file the append runs on a plain connection in a worker thread
    runs = log.transactions.sync or engine.sync_engine
    event.listen(runs, "before_cursor_execute", record)
    try:
        await log.record(_entry(n))
    finally:
        event.remove(runs, "before_cursor_execute", record)
    return seen


async def test_a_warm_append_runs_the_same_statements_whatever_the_log_holds(
    seeded: AsyncEngine,
) -> None:
    log = AuditLog(seeded, _vault())
    await log.record(_entry(0))
    early = await _statements(seeded, log, 1)
    async with anyio.create_task_group() as group:  # 300 more, by group commit
        for n in range(2, 302):
            group.start_soon(log.record, _entry(n))
    late = await _statements(seeded, log, 302)
    assert early == late
    assert len(late) == 2
    assert not any("FROM audit_log" in sql for sql in late)
    result = await verify(seeded, _vault(), "ten_a")
    assert (result.entries, result.intact) == (303, True)


async def test_appenders_taking_turns_extend_one_chain(seeded: AsyncEngine) -> None:
    first, second = AuditLog(seeded, _vault()), AuditLog(seeded, _vault())
    for n in range(6):
        await (first if n % 2 else second).record(_entry(n))
    await first.record(_entry(6, tenant="ten_b"))
    assert (first.moved, second.moved) == (2, 2)  # each found the other had appended
    for tenant, count in (("ten_a", 6), ("ten_b", 1)):
        result = await verify(seeded, _vault(), tenant)
        assert (result.entries, result.intact) == (count, True)
