"""The store's MFA ledger: a TOTP step is claimed once across connections and processes, and
failures and lockouts are shared, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from carebridge.ports.upstream import MfaAccountState
from carebridge.store import migrate
from carebridge.store.engine import create_engine
from carebridge.store.mfa_steps import SqlMfaSteps

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNT = "a" * 64


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    found: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    migrate.upgrade(found)
    return found


pytestmark = pytest.mark.anyio


async def test_a_step_is_claimed_once_and_never_an_older_one(url: str) -> None:
    engine = create_engine(url)
    steps = SqlMfaSteps(engine)
    try:
        assert await steps.state(ACCOUNT) == MfaAccountState()
        assert await steps.claim(ACCOUNT, 100, max_failures=2, now=NOW) == "claimed"
        assert await steps.claim(ACCOUNT, 100, max_failures=2, now=NOW) == "used"
        assert await steps.claim(ACCOUNT, 99, max_failures=2, now=NOW) == "used"
        assert await steps.claim("b" * 64, 100, max_failures=2, now=NOW) == "claimed"
        assert await steps.claim(ACCOUNT, 101, max_failures=2, now=NOW) == "claimed"
        assert (await steps.state(ACCOUNT)).last_step == 101
    finally:
        await engine.dispose()


async def test_concurrent_claims_of_one_step_from_separate_engines_have_one_winner(
    url: str,
) -> None:
    engines = [create_engine(url) for _ in range(6)]
    try:
        outcomes = await asyncio.gather(
            *(SqlMfaSteps(e).claim(ACCOUNT, 500, max_failures=2, now=NOW) for e in engines)
        )
        assert sorted(outcomes) == ["claimed"] + ["used"] * 5
    finally:
        for engine in engines:
            await engine.dispose()


async def test_failures_block_claims_until_a_success_or_a_reset(url: str) -> None:
    engine = create_engine(url)
    steps = SqlMfaSteps(engine)
    try:
        assert await steps.failed(ACCOUNT) == 1
        assert await steps.claim(ACCOUNT, 10, max_failures=2, now=NOW) == "claimed"
        assert await steps.failed(ACCOUNT) == 2
        assert await steps.claim(ACCOUNT, 11, max_failures=2, now=NOW) == "blocked"
        await steps.reset(ACCOUNT)
        assert await steps.claim(ACCOUNT, 11, max_failures=2, now=NOW) == "claimed"
        assert await steps.failed(ACCOUNT) == 1
        await steps.succeeded(ACCOUNT)
        assert (await steps.state(ACCOUNT)).failures == 0
    finally:
        await engine.dispose()


async def test_a_lockout_blocks_claims_until_it_ends(url: str) -> None:
    engine = create_engine(url)
    steps = SqlMfaSteps(engine)
    until = NOW + timedelta(minutes=15)
    try:
        await steps.locked(ACCOUNT, until)
        await steps.locked(ACCOUNT, NOW + timedelta(minutes=1))  # an earlier end never shortens it
        state = await steps.state(ACCOUNT)
        assert state.locked_until == until
        assert state.locked(NOW)
        assert await steps.claim(ACCOUNT, 7, max_failures=2, now=NOW) == "blocked"
        assert await steps.claim(ACCOUNT, 7, max_failures=2, now=until) == "claimed"
    finally:
        await engine.dispose()
