"""API keys are verified once per process and cached, and a revocation in one process is
honoured by the next request of another: process B serves ``GET /patients`` with a cached key,
process A (this test) revokes the key, and B's next request is 401. On SQLite and (marked
``postgres``) PostgreSQL."""

from __future__ import annotations

import multiprocessing
import queue
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from carebridge.api.app import create_app
from carebridge.services.keys import mint, parse_scopes
from carebridge.services.reads import Reads
from carebridge.store import migrate
from carebridge.store import tenants as repo
from carebridge.store.adapters import SqlAudit, SqlKeys, SqlRecords
from carebridge.store.engine import create_engine
from carebridge.store.schema import tenants
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
TIMEOUT = 120


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _vault() -> Vault:
    return Vault(KeyRing({"k1": bytes(KEY_BYTES)}, "k1"))


def _serve(url: str, key: str, commands: Any, answers: Any) -> None:
    """Process B: the API over the store; one ``GET /patients`` per command, answering the
    status and how many times the key was read from the table so far."""

    async def main() -> None:
        engine = create_engine(url)
        keys = SqlKeys(engine)
        audit = SqlAudit(engine, _vault())
        app = create_app(Reads(SqlRecords(engine), audit), keys, audit)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
                while await anyio.to_thread.run_sync(commands.get, True, TIMEOUT) == "get":
                    r = await client.get("/patients", headers={"Authorization": f"Bearer {key}"})
                    answers.put((r.status_code, keys.lookups))
        finally:
            await engine.dispose()

    anyio.run(main)


async def _store(url: str) -> str:
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                tenants.insert().values(
                    id="ten_a", name="a", upstream="carecloud", settings={}, created_at=NOW
                )
            )
        minted = mint()
        await repo.add_key(
            engine,
            key_id="key_b",
            tenant_id="ten_a",
            prefix=minted.prefix,
            secret_hash=minted.secret_hash,
            scopes=parse_scopes("patient.read"),
            label="",
            now=NOW,
        )
    finally:
        await engine.dispose()
    return minted.display


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.anyio
async def test_a_key_revoked_in_one_process_is_refused_by_the_next_request_of_another(
    url: str,
) -> None:
    key = await _store(url)
    ctx = multiprocessing.get_context("spawn")
    commands, answers = ctx.Queue(), ctx.Queue()
    b = ctx.Process(target=_serve, args=(url, key, commands, answers))
    b.start()

    def ask() -> tuple[int, int]:
        commands.put("get")
        try:
            status, lookups = answers.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail("process B did not answer")
        return int(status), int(lookups)

    try:
        assert ask() == (200, 1)
        assert ask() == (200, 1)  # verified once: the second request did not read the key
        engine = create_engine(url)
        try:
            assert await repo.revoke_key(engine, "ten_a", "key_b", now=NOW)
        finally:
            await engine.dispose()
        assert ask() == (401, 2)  # the generation moved: read again, and refused
        assert ask()[0] == 401
    finally:
        commands.put("stop")
        b.join(timeout=30)
        if b.is_alive():
            b.kill()
