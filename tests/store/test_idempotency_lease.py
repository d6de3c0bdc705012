"""An in-flight key is a lease: a request that dies mid-write (its process killed) frees its key
a lease later, and the retry that takes it over is told the dead attempt may have landed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.store.test_idempotency import NOW, _begin

from carebridge.ports.writes import LEASE, InFlight, Start
from carebridge.store import idempotency as idem

pytestmark = pytest.mark.anyio


async def test_a_dead_requests_key_is_taken_over_a_lease_later_as_resumed(
    engine: AsyncEngine,
) -> None:
    assert await _begin(engine) == Start(resumed=False)
    # the process dies: nobody completes, abandons or renews the key
    assert isinstance(await _begin(engine, now=NOW + LEASE - timedelta(seconds=1)), InFlight)
    assert await _begin(engine, now=NOW + LEASE + timedelta(seconds=1)) == Start(resumed=True)


async def test_a_running_request_that_renews_keeps_its_key(engine: AsyncEngine) -> None:
    assert isinstance(await _begin(engine), Start)
    for minutes in range(1, 6):  # a slow write, renewing its claim
        now = NOW + timedelta(minutes=minutes)
        await idem.renew(engine, tenant_id="ten_a", principal="key_1", key="k-1", now=now)
        assert isinstance(await _begin(engine, now=now + LEASE / 2), InFlight)


async def test_a_completed_key_replays_for_a_day_not_a_lease(engine: AsyncEngine) -> None:
    assert isinstance(await _begin(engine), Start)
    await idem.complete(
        engine, tenant_id="ten_a", principal="key_1", key="k-1", status_code=201, response={"a": 1}
    )
    assert await _begin(engine, now=NOW + timedelta(hours=23)) == idem.Replay(201, {"a": 1})
    assert await _begin(engine, now=NOW + timedelta(hours=24, seconds=1)) == Start(resumed=False)
