"""Tampering with the audit log is found: the newest entries removed, an entry edited and the
chain recomputed without the key, a sub-second timestamp changed, the checkpoint forged or
removed. The chain is keyed by a per-tenant secret sealed in the vault. On SQLite and (marked
``postgres``) PostgreSQL; appenders in two processes extend one chain."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import multiprocessing
import queue
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.store.audit import KEY_SLOT, AuditEntry, AuditLog, verify
from carebridge.store.engine import create_engine
from carebridge.store.schema import audit_heads, audit_log, vault_secrets
from carebridge.store.vault import KEY_BYTES, KeyRing, Sealed, Vault, VaultError

pytestmark = pytest.mark.anyio
AT = datetime(2026, 11, 25, 15, 0, 0, 250000, tzinfo=UTC)
VAULT_KEY = bytes(range(KEY_BYTES))


def _vault() -> Vault:
    return Vault(KeyRing({"k1": VAULT_KEY}, "k1"))


def _entry(n: int, tenant: str = "ten_a") -> AuditEntry:
    return AuditEntry(
        tenant,
        "key_test",
        "GET /patients/{id}",
        (f"pat_{n:04d}",),
        AT + timedelta(seconds=n, microseconds=n),
    )


async def _log(engine: AsyncEngine, count: int = 5) -> list[int]:
    log = AuditLog(engine, _vault())
    return [await log.record(_entry(n)) for n in range(count)]


async def _rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    select(audit_log)
                    .where(audit_log.c.tenant_id == "ten_a")
                    .order_by(audit_log.c.seq)
                )
            ).all()
        )


async def test_an_untouched_chain_with_sub_second_instants_is_intact(seeded: AsyncEngine) -> None:
    seqs = await _log(seeded)
    result = await verify(seeded, _vault(), "ten_a")
    assert (result.entries, result.intact, result.problem) == (5, True, None)
    rows = await _rows(seeded)
    assert [r.seq for r in rows] == seqs
    stored = [(r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)) for r in rows]
    assert stored == [_entry(n).at for n in range(5)]  # to the microsecond, on both databases


@pytest.mark.parametrize("removed", [1, 2, 5])
async def test_removing_the_newest_entries_is_found(seeded: AsyncEngine, removed: int) -> None:
    seqs = await _log(seeded)
    async with seeded.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.seq.in_(seqs[-removed:])))
    result = await verify(seeded, _vault(), "ten_a")
    assert not result.intact  # before the fix: intact
    assert result.first_broken == seqs[-1]
    assert result.problem is not None
    assert "newest entries are missing" in result.problem


async def test_removing_the_log_and_its_checkpoint_is_found(seeded: AsyncEngine) -> None:
    await _log(seeded)
    async with seeded.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.tenant_id == "ten_a"))
        await conn.execute(delete(audit_heads).where(audit_heads.c.tenant_id == "ten_a"))
    result = await verify(seeded, _vault(), "ten_a")
    assert not result.intact
    assert result.problem == "the head checkpoint is missing"
    await AuditLog(seeded, _vault()).record(_entry(9))  # a new start does not hide it
    assert not (await verify(seeded, _vault(), "ten_a")).intact


async def test_a_truncation_with_a_forged_checkpoint_stays_visible_after_more_entries(
    seeded: AsyncEngine,
) -> None:
    seqs = await _log(seeded)
    rows = await _rows(seeded)
    async with seeded.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.seq.in_(seqs[3:])))
        await conn.execute(  # point the checkpoint at the new last entry; its MAC cannot follow
            update(audit_heads)
            .where(audit_heads.c.tenant_id == "ten_a")
            .values(last_seq=seqs[2], entries=3, head=rows[2].hash)
        )
    assert (await verify(seeded, _vault(), "ten_a")).problem == (
        "the head checkpoint does not authenticate"
    )
    await AuditLog(seeded, _vault()).record(_entry(7))  # an appender must not re-sign it
    result = await verify(seeded, _vault(), "ten_a")
    assert not result.intact
    assert result.problem == "the head checkpoint does not authenticate"


def _sha256_chain(previous: str, row: Any) -> str:
    """The chain as it was computed before the key: anyone could recompute it."""
    at = (row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)).astimezone(UTC)
    body = json.dumps(
        [
            row.tenant_id,
            row.principal,
            row.route,
            sorted(row.patient_ids),
            at.replace(microsecond=0).isoformat(),
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{previous}|{body}".encode()).hexdigest()


def _guessed_key_chain(previous: str, row: Any) -> str:
    """The new chain's shape, under a key the attacker made up."""
    at = (row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)).astimezone(UTC)
    fields = [
        "carebridge-audit-entry/v1",
        row.tenant_id,
        row.principal,
        row.route,
        sorted(row.patient_ids),
        at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        previous,
    ]
    body = json.dumps(fields, separators=(",", ":")).encode()
    return hmac.new(b"guess" * 8, body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("recompute", [_sha256_chain, _guessed_key_chain])
async def test_an_edit_with_the_chain_recomputed_without_the_key_is_found(
    seeded: AsyncEngine, recompute: Any
) -> None:
    seqs = await _log(seeded)
    target = seqs[2]
    async with seeded.begin() as conn:
        await conn.execute(
            update(audit_log).where(audit_log.c.seq == target).values(route="GET /claims")
        )
    previous = (await _rows(seeded))[1].hash
    async with seeded.begin() as conn:
        for row in (await _rows(seeded))[2:]:
            digest = recompute(previous, row)
            await conn.execute(
                update(audit_log)
                .where(audit_log.c.seq == row.seq)
                .values(prev_hash=previous, hash=digest)
            )
            previous = digest
        await conn.execute(
            update(audit_heads).where(audit_heads.c.tenant_id == "ten_a").values(head=previous)
        )
    result = await verify(seeded, _vault(), "ten_a")
    assert not result.intact  # before the fix, the SHA-256 recomputation passed
    assert result.first_broken == target


@pytest.mark.parametrize("shift", [timedelta(microseconds=1), timedelta(milliseconds=-250)])
async def test_changing_a_sub_second_timestamp_is_found(
    seeded: AsyncEngine, shift: timedelta
) -> None:
    seqs = await _log(seeded)
    target = (await _rows(seeded))[3]
    at = target.at if target.at.tzinfo else target.at.replace(tzinfo=UTC)
    async with seeded.begin() as conn:
        await conn.execute(
            update(audit_log).where(audit_log.c.seq == seqs[3]).values(at=at + shift)
        )
    result = await verify(seeded, _vault(), "ten_a")
    assert not result.intact  # before the fix: intact (the hash covered whole seconds)
    assert result.first_broken == seqs[3]


@pytest.mark.parametrize(
    "change", [{"principal": "key_other"}, {"patient_ids": ["pat_9999"]}, {"tenant_id": "ten_b"}]
)
async def test_every_field_is_covered(seeded: AsyncEngine, change: dict[str, Any]) -> None:
    seqs = await _log(seeded)
    async with seeded.begin() as conn:
        await conn.execute(update(audit_log).where(audit_log.c.seq == seqs[1]).values(change))
    result = await verify(seeded, _vault(), "ten_a")
    assert not result.intact
    assert result.first_broken == seqs[1 if "tenant_id" not in change else 2]


async def test_a_forged_checkpoint_count_is_found(seeded: AsyncEngine) -> None:
    await _log(seeded)
    async with seeded.begin() as conn:
        await conn.execute(
            update(audit_heads).where(audit_heads.c.tenant_id == "ten_a").values(entries=4)
        )
    result = await verify(seeded, _vault(), "ten_a")
    assert result.problem == "the head checkpoint does not authenticate"


async def test_the_key_is_sealed_per_tenant_in_the_vault_and_never_logged(
    seeded: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _log(seeded, 2)
    await AuditLog(seeded, _vault()).record(_entry(1, "ten_b"))
    async with seeded.connect() as conn:
        sealed = {
            r.tenant_id: r.sealed
            for r in await conn.execute(
                select(vault_secrets).where(vault_secrets.c.name == KEY_SLOT)
            )
        }
    assert set(sealed) == {"ten_a", "ten_b"}
    keys = {t: _vault().open_text(t, KEY_SLOT, Sealed.from_text(s)) for t, s in sealed.items()}
    assert keys["ten_a"] != keys["ten_b"]
    assert len(base64.urlsafe_b64decode(keys["ten_a"])) == 32
    assert not any(k in text for k in keys.values() for text in sealed.values())
    assert not any(k in caplog.text for k in keys.values())
    with pytest.raises(VaultError):  # another vault key cannot open it, nor verify
        await verify(seeded, Vault(KeyRing({"k1": bytes(KEY_BYTES)}, "k1")), "ten_a")


async def test_a_removed_audit_key_is_found(seeded: AsyncEngine) -> None:
    seqs = await _log(seeded, 2)
    async with seeded.begin() as conn:
        await conn.execute(delete(vault_secrets).where(vault_secrets.c.name == KEY_SLOT))
    result = await verify(seeded, _vault(), "ten_a")
    assert (result.intact, result.first_broken) == (False, seqs[0])


def _append_in_process(url: str, worker: int, barrier: Any, results: Any) -> None:
    """Another process: wait for the other, then append 15 entries one by one."""

    async def main() -> int:
        engine = create_engine(url)
        try:
            log = AuditLog(engine, _vault())
            barrier.wait(timeout=60)
            for n in range(15):
                await log.record(_entry(worker * 100 + n))
            return 15
        finally:
            await engine.dispose()

    results.put(anyio.run(main))


async def test_appenders_in_two_processes_extend_one_chain(seeded: AsyncEngine) -> None:
    url = seeded.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_append_in_process, args=(url, n, barrier, results)) for n in (1, 2)
    ]
    for worker in workers:
        worker.start()
    try:
        written = [results.get(timeout=120) for _ in workers]
    except queue.Empty:
        pytest.fail("an appending process did not answer")
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert written == [15, 15]
    result = await verify(seeded, _vault(), "ten_a")
    assert (result.entries, result.intact) == (30, True)
