"""A write whose process died mid-flight (its Idempotency-Key left in flight, its booking made
upstream) is resumed by the retry that takes the key over a lease later: the retry answers the
booking the dead attempt made, and the upstream holds one appointment, not two."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.support.api import Live, book_body, running

from carebridge.ports.writes import LEASE
from carebridge.store import idempotency as idem
from carebridge.store.schema import idempotency

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db")) as running_live:
        yield running_live


async def test_a_retry_after_a_killed_write_answers_the_booking_it_made(live: Live) -> None:
    patient = (await live.get("/patients", limit=1)).json()["data"][0]["id"]
    body = await book_body(live, patient, nth=4)
    # the "dead" attempt: it booked upstream under another key, then its process was killed
    # while a second request, with the key the client retries, was in flight
    first = await live.post("/create_appointment", body, idem="landed")
    assert first.status_code == 201, first.text
    engine = live.deployment.engine
    async with engine.connect() as conn:  # the API's fingerprint of this very body
        fingerprint = await conn.scalar(
            select(idempotency.c.request_hash).where(idempotency.c.key == "landed")
        )
    claimed = await idem.begin(
        engine,
        tenant_id="ten_a",
        principal="key_admin_a",
        key="retried",
        fingerprint=str(fingerprint),
        now=live.clock.now(),
    )
    assert isinstance(claimed, idem.Start)
    posts = live.upstream.seen["POST /v2/appointments"]

    early = await live.post("/create_appointment", body, idem="retried")
    assert early.status_code == 409, early.text
    assert early.json()["type"].endswith("idempotency-key-in-flight")

    live.clock.advance(LEASE + timedelta(seconds=1))
    resumed = await live.post("/create_appointment", body, idem="retried")
    assert resumed.status_code == 201, resumed.text
    assert resumed.json()["data"]["id"] == first.json()["data"]["id"]
    assert live.upstream.seen["POST /v2/appointments"] == posts  # nothing booked again
