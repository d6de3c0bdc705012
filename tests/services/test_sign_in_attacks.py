"""Sign-in under attack: concurrent guesses cannot outrun the lockout, a TOTP code signs in once
(even from two processes), and an unknown username is indistinguishable from a known one.

Runs on a file SQLite store and (marked ``postgres``) on the PostgreSQL server, with real
concurrency: ``asyncio.gather`` over the use case, and separate processes for the TOTP replay.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.api import problems
from carebridge.api.routes.auth import router
from carebridge.ports.people import verify_password
from carebridge.services import sessions as sessions_module
from carebridge.services.records import Unauthorized
from carebridge.services.sessions import (
    MAX_ATTEMPTS,
    MAX_FAILURES,
    Challenge,
    Issued,
    Locked,
    Sessions,
)
from carebridge.store import migrate
from carebridge.store.engine import create_engine
from carebridge.store.people import SqlPeople, add_user, totp_source
from carebridge.store.schema import auth_challenges, sign_in_attempts, tenants
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

pytestmark = pytest.mark.anyio
START = datetime(2026, 11, 25, 15, 0, 10, tzinfo=UTC)
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
VAULT_KEY = bytes(KEY_BYTES)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _vault() -> Vault:
    return Vault(KeyRing({"k1": VAULT_KEY}, "k1"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@dataclass
class World:
    url: str
    engine: AsyncEngine
    sessions: Sessions
    people: SqlPeople
    checks: list[str]  # one entry per password check (scrypt run), known user or not


@pytest.fixture
async def world(url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    migrate.upgrade(url)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            tenants.insert().values(
                id="ten_a", name="ten_a", upstream="carecloud", settings={}, created_at=START
            )
        )
    vault = _vault()
    await add_user(
        engine,
        vault,
        tenant_id="ten_a",
        username="ana",
        password="ana-pass-1",
        scopes={"patient.read"},
        now=START,
    )
    await add_user(
        engine,
        vault,
        tenant_id="ten_a",
        username="bo",
        password="bo-pass-1",
        scopes={"patient.read"},
        mfa_methods=["totp", "sms"],
        phone="555-010-1234",
        totp_seed=SEED,
        now=START,
    )
    checks: list[str] = []

    def counted(password: str, stored: str) -> bool:
        checks.append("check")
        return verify_password(password, stored)

    monkeypatch.setattr(sessions_module, "verify_password", counted)
    codes = iter(f"{n:06d}" for n in range(100000, 200000))
    people = SqlPeople(engine)
    sessions = Sessions(
        people, totp_source(engine, vault), clock=lambda: START, new_code=lambda: next(codes)
    )
    yield World(url, engine, sessions, people, checks)
    await engine.dispose()


async def _outcome(call: Any) -> object:
    try:
        return await call
    except Unauthorized as err:  # Locked included
        return err


# --- item 7: concurrent guesses ------------------------------------------------------------------


async def test_forty_wrong_passwords_and_the_right_one_at_once_check_at_most_the_limit(
    world: World,
) -> None:
    guesses = [world.sessions.start("ten_a", "ana", f"wrong-{n}") for n in range(40)]
    right = world.sessions.start("ten_a", "ana", "ana-pass-1")
    *wrong, last = await asyncio.gather(*(_outcome(g) for g in [*guesses, right]))
    assert len(world.checks) <= MAX_FAILURES  # before the fix: 31 checked
    refused_unchecked = [o for o in wrong if isinstance(o, Locked)]
    assert len(refused_unchecked) >= 40 - MAX_FAILURES
    if isinstance(last, Issued):  # the right one drew one of the attempts allowed
        assert len(world.checks) <= MAX_FAILURES
    else:  # once locked, the right password is refused unchecked
        assert isinstance(last, Locked)
        assert last.retry_after == 15 * 60
        with pytest.raises(Locked):
            await world.sessions.start("ten_a", "ana", "ana-pass-1")


async def test_once_locked_the_right_password_is_refused_without_a_check(world: World) -> None:
    outcomes = await asyncio.gather(
        *(_outcome(world.sessions.start("ten_a", "ana", f"wrong-{n}")) for n in range(40))
    )
    assert len(world.checks) == MAX_FAILURES
    assert sum(isinstance(o, Locked) for o in outcomes) == 40 - MAX_FAILURES + 1
    before = len(world.checks)
    with pytest.raises(Locked):
        await world.sessions.start("ten_a", "ana", "ana-pass-1")
    assert len(world.checks) == before
    async with world.engine.connect() as conn:
        failures = (await conn.execute(select(sign_in_attempts.c.failures))).scalars().all()
    assert failures == [MAX_FAILURES]


async def test_concurrent_wrong_codes_on_one_challenge_check_at_most_five(world: World) -> None:
    started = await world.sessions.start("ten_a", "bo", "bo-pass-1")
    assert isinstance(started, Challenge)
    await world.sessions.choose(started.challenge_id, "sms")  # code 100000
    wrong = [world.sessions.verify(started.challenge_id, f"{n:06d}") for n in range(40)]
    outcomes = await asyncio.gather(*(_outcome(w) for w in wrong))
    code_refusals = [o for o in outcomes if str(o) == "the code is not valid"]
    assert len(code_refusals) == MAX_ATTEMPTS  # the others were refused unchecked
    async with world.engine.connect() as conn:
        attempts = (
            await conn.execute(
                select(auth_challenges.c.attempts).where(
                    auth_challenges.c.id == started.challenge_id
                )
            )
        ).scalar_one()
    assert attempts == MAX_ATTEMPTS  # before the fix every request was counted: 40
    with pytest.raises(Unauthorized):
        await world.sessions.verify(started.challenge_id, "100000")


# --- item 13: unknown usernames ------------------------------------------------------------------


async def test_an_unknown_username_locks_exactly_like_a_known_one(world: World) -> None:
    async def attempt(tenant: str, username: str) -> tuple[str, str, int | None, int]:
        before = len(world.checks)
        outcome = await _outcome(world.sessions.start(tenant, username, "x"))
        retry = getattr(outcome, "retry_after", None)
        return type(outcome).__name__, str(outcome), retry, len(world.checks) - before

    rounds = range(MAX_FAILURES + 2)
    known = [await attempt("ten_a", "ana") for _ in rounds]
    unknown = [await attempt("ten_a", "zed") for _ in rounds]
    unknown_tenant = [await attempt("ten_zz", "ana") for _ in rounds]
    assert known == unknown == unknown_tenant  # before the fix an unknown name never locked
    assert [k[0] for k in known] == ["Unauthorized"] * 4 + ["Locked"] * 3
    assert [k[3] for k in known] == [1] * 5 + [0] * 2  # one password check per attempt


async def test_an_unknown_username_gets_the_same_problem_over_http(world: World) -> None:
    app = FastAPI()
    problems.install(app)
    app.include_router(router(world.sessions))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        for _ in range(MAX_FAILURES + 1):
            replies = [
                await client.post(
                    "/authenticate", json={"tenant": "ten_a", "username": name, "password": "x"}
                )
                for name in ("ana", "zed")
            ]
            known, unknown = (
                (r.status_code, r.json(), r.headers.get("retry-after")) for r in replies
            )
            assert known == unknown
    assert known[0] == 423


# --- item 8: TOTP replay -------------------------------------------------------------------------


async def _totp_challenge(world: World) -> str:
    started = await world.sessions.start("ten_a", "bo", "bo-pass-1")
    assert isinstance(started, Challenge)
    await world.sessions.choose(started.challenge_id, "totp")
    return started.challenge_id


async def test_a_totp_code_signs_in_once(world: World) -> None:
    code = pyotp.TOTP(SEED).at(START)
    assert isinstance(await world.sessions.verify(await _totp_challenge(world), code), Issued)
    with pytest.raises(Unauthorized):
        await world.sessions.verify(await _totp_challenge(world), code)


async def test_an_older_totp_code_is_refused_after_a_newer_one(world: World) -> None:
    totp = pyotp.TOTP(SEED)
    newer = totp.at(START)
    older = totp.at(START - timedelta(seconds=30))
    assert isinstance(await world.sessions.verify(await _totp_challenge(world), newer), Issued)
    with pytest.raises(Unauthorized):
        await world.sessions.verify(await _totp_challenge(world), older)


async def test_a_totp_code_sent_twice_at_once_signs_in_once(world: World) -> None:
    code = pyotp.TOTP(SEED).at(START)
    challenges = [await _totp_challenge(world) for _ in range(4)]
    outcomes = await asyncio.gather(*(_outcome(world.sessions.verify(c, code)) for c in challenges))
    assert sum(isinstance(o, Issued) for o in outcomes) == 1


def _verify_in_process(url: str, challenge_id: str, code: str, barrier: Any, results: Any) -> None:
    """A second process: wait for the other, then verify the code on its own challenge."""

    async def main() -> str:
        engine = create_engine(url)
        try:
            sessions = Sessions(
                SqlPeople(engine), totp_source(engine, _vault()), clock=lambda: START
            )
            barrier.wait(timeout=60)
            try:
                await sessions.verify(challenge_id, code)
            except Unauthorized:
                return "refused"
            return "issued"
        finally:
            await engine.dispose()

    results.put(anyio.run(main))


async def test_a_totp_code_replayed_from_two_processes_signs_in_once(world: World) -> None:
    code = pyotp.TOTP(SEED).at(START)
    challenges = [await _totp_challenge(world) for _ in range(2)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_verify_in_process, args=(world.url, c, code, barrier, results))
        for c in challenges
    ]
    for worker in workers:
        worker.start()
    outcomes = []
    try:
        for _ in workers:
            outcomes.append(results.get(timeout=120))
    except queue.Empty:
        pytest.fail("a verifying process did not answer")
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert sorted(outcomes) == ["issued", "refused"]
