"""The audit log: group commit, a hash chain per tenant, and tamper detection, on SQLite and
(in CI) PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.store.audit import AuditEntry, AuditLog, verify
from carebridge.store.schema import audit_log
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

pytestmark = pytest.mark.anyio
AT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
VAULT = Vault(KeyRing({"k1": bytes(KEY_BYTES)}, "k1"))


@pytest.fixture
def engine(seeded: AsyncEngine) -> AsyncEngine:
    return seeded


def _entry(tenant: str, n: int) -> AuditEntry:
    return AuditEntry(
        tenant, "key_test", "GET /patients/{id}", (f"pat_{n:04d}",), AT + timedelta(seconds=n)
    )


async def test_concurrent_writers_share_commits_and_every_entry_lands(engine: AsyncEngine) -> None:
    log = AuditLog(engine, VAULT)
    seqs = await asyncio.gather(
        *(log.record(_entry("ten_a" if n % 3 else "ten_b", n)) for n in range(60))
    )
    assert len(set(seqs)) == 60
    assert log.commits < 60  # writers that arrived during a commit rode the next one
    a, b = await verify(engine, VAULT, "ten_a"), await verify(engine, VAULT, "ten_b")
    assert (a.entries, b.entries) == (40, 20)
    assert a.intact
    assert b.intact


async def test_the_chain_continues_across_log_instances(engine: AsyncEngine) -> None:
    await AuditLog(engine, VAULT).record(_entry("ten_a", 1))
    await AuditLog(engine, VAULT).record(_entry("ten_a", 2))
    result = await verify(engine, VAULT, "ten_a")
    assert (result.entries, result.intact) == (2, True)


@pytest.mark.parametrize("change", ["route", "patient_ids", "delete"])
async def test_tampering_is_found_at_the_entry(engine: AsyncEngine, change: str) -> None:
    log = AuditLog(engine, VAULT)
    seqs = [await log.record(_entry("ten_a", n)) for n in range(5)]
    target = seqs[2]
    async with engine.begin() as conn:
        if change == "delete":
            await conn.execute(audit_log.delete().where(audit_log.c.seq == target))
        else:
            value = "GET /claims" if change == "route" else ["pat_9999"]
            await conn.execute(
                update(audit_log).where(audit_log.c.seq == target).values({change: value})
            )
    result = await verify(engine, VAULT, "ten_a")
    assert not result.intact
    assert result.first_broken == (seqs[3] if change == "delete" else target)


async def test_an_empty_log_is_intact(engine: AsyncEngine) -> None:
    result = await verify(engine, VAULT, "ten_b")
    assert (result.entries, result.intact) == (0, True)
