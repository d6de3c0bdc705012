"""Idempotency records: Stripe's semantics, per tenant and principal, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.ports.writes import request_hash
from carebridge.store import idempotency as idem

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
BODY = {"patient_id": "pat_1", "start": "2026-11-26T15:00:00Z"}


def fp(body: object = BODY) -> str:
    return request_hash("POST", "/create_appointment", body)


async def _begin(
    engine: AsyncEngine,
    *,
    tenant: str = "ten_a",
    key: str = "k-1",
    body: object = BODY,
    now: datetime = NOW,
) -> idem.Outcome:
    return await idem.begin(
        engine, tenant_id=tenant, principal="key_1", key=key, fingerprint=fp(body), now=now
    )


async def test_same_key_and_body_replays_the_stored_response(engine: AsyncEngine) -> None:
    assert isinstance(await _begin(engine), idem.Start)
    assert isinstance(await _begin(engine), idem.InFlight)  # while the first still runs
    await idem.complete(
        engine,
        tenant_id="ten_a",
        principal="key_1",
        key="k-1",
        status_code=201,
        response={"id": "apt_1"},
    )
    assert await _begin(engine) == idem.Replay(201, {"id": "apt_1"})


async def test_same_key_with_another_body_is_a_mismatch(engine: AsyncEngine) -> None:
    assert isinstance(await _begin(engine), idem.Start)
    await idem.complete(
        engine, tenant_id="ten_a", principal="key_1", key="k-1", status_code=201, response={}
    )
    assert isinstance(
        await _begin(engine, body={**BODY, "start": "2026-11-27T15:00:00Z"}), idem.Mismatch
    )


async def test_keys_are_per_tenant(engine: AsyncEngine) -> None:
    assert isinstance(await _begin(engine, tenant="ten_a"), idem.Start)
    assert isinstance(await _begin(engine, tenant="ten_b"), idem.Start)


async def test_an_abandoned_or_expired_key_starts_afresh(engine: AsyncEngine) -> None:
    assert isinstance(await _begin(engine), idem.Start)
    await idem.abandon(engine, tenant_id="ten_a", principal="key_1", key="k-1")
    assert isinstance(await _begin(engine), idem.Start)
    await idem.complete(
        engine, tenant_id="ten_a", principal="key_1", key="k-1", status_code=201, response={}
    )
    later = NOW + timedelta(hours=24, seconds=1)
    assert isinstance(await _begin(engine, body={"other": 1}, now=later), idem.Start)
    assert await idem.purge(engine, later + timedelta(hours=25)) == 1


async def test_errors_are_stored_and_replayed_too(engine: AsyncEngine) -> None:
    assert isinstance(await _begin(engine, key="k-409"), idem.Start)
    problem = {"type": "about:blank", "title": "Slot taken", "status": 409}
    await idem.complete(
        engine, tenant_id="ten_a", principal="key_1", key="k-409", status_code=409, response=problem
    )
    assert await _begin(engine, key="k-409") == idem.Replay(409, problem)
