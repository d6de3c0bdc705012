"""``carebridge audit verify`` under the vault key: one readable line, and a non-zero exit when
the chain was tampered with (here, its newest entries removed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from carebridge.cli.main import app
from carebridge.store import migrate
from carebridge.store.audit import AuditEntry, AuditLog
from carebridge.store.engine import create_engine
from carebridge.store.schema import audit_log, tenants
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

RING = KeyRing({"k1": bytes(range(KEY_BYTES))}, "k1")
AT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)

    async def seed() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(
                tenants.insert().values(
                    id="ten_maple", name="Maple", upstream="carecloud", settings={}, created_at=AT
                )
            )
        log = AuditLog(engine, Vault(RING))
        for n in range(4):
            await log.record(
                AuditEntry("ten_maple", "key_1", "GET /patients", (f"pat_{n}",), AT + timedelta(n))
            )
        await engine.dispose()

    anyio.run(seed)
    return url


def _verify(url: str, ring: KeyRing | None = RING) -> tuple[int, list[str]]:
    env = {"CAREBRIDGE_DATABASE_URL": url, "CAREBRIDGE_VAULT_KEY": ring.to_text() if ring else ""}
    result = CliRunner().invoke(app, ["audit", "verify", "--tenant", "ten_maple"], env=env)
    assert "Traceback" not in result.output
    return result.exit_code, result.output.splitlines()


def _drop_newest(url: str) -> None:
    async def drop() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            newest = (await conn.execute(select(func.max(audit_log.c.seq)))).scalar_one()
            await conn.execute(delete(audit_log).where(audit_log.c.seq == newest))
        await engine.dispose()

    anyio.run(drop)


def test_an_intact_chain_is_one_line_and_exit_zero(url: str) -> None:
    assert _verify(url) == (0, ["audit chain of ten_maple intact: 4 entries"])


def test_a_truncated_chain_is_one_line_and_exit_one(url: str) -> None:
    _drop_newest(url)
    code, lines = _verify(url)
    assert code == 1  # before the fix: 0, "intact: 3 entries"
    assert len(lines) == 1
    assert lines[0].startswith("audit chain of ten_maple BROKEN at seq 4: ")
    assert "newest entries are missing" in lines[0]


def test_without_the_vault_key_it_is_an_error_line(url: str) -> None:
    code, lines = _verify(url, None)
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    code, lines = _verify(url, KeyRing({"k1": bytes(KEY_BYTES)}, "k1"))  # another key
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
