"""One sync per (tenant, stream) across processes: a stream runs under its lease in the store. A
second sync of a running stream skips it and says so; a killed holder's lease lapses; a sync
whose lease another took over saves nothing more; a retried job takes over its dead attempt's
lease at once. Processes syncing appointments at once on one fresh SQLite file make one
``appointment.created`` per appointment, each with its own webhook-id (three of them: before
the fix, their pages' change detection raced and each process announced most appointments)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import select
from tests.support.api import Live, running
from tests.support.sync import TENANT
from tests.sync.test_sync import _sync

from carebridge.events.webhooks import new_secret
from carebridge.store.schema import deliveries, events
from carebridge.store.sync_state import SqlSyncStore
from carebridge.store.vault import KeyRing
from carebridge.sync.engine import LEASE_TTL, Phase, sync
from carebridge.wiring.api import open_deployment
from carebridge.wiring.carecloud import from_sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db")) as running_live:
        yield running_live


async def test_a_second_sync_of_a_running_stream_skips_it_until_the_lease_lapses(
    live: Live,
) -> None:
    store = SqlSyncStore(live.deployment.engine)
    other = await store.acquire(
        TENANT, "appointments", "run:other", now=live.clock.now(), ttl=LEASE_TTL
    )
    assert other.granted
    skipped = await _sync(live, streams=["appointments", "providers"])
    assert skipped.ok  # skipping is not a failure: the other sync reads what there is
    assert skipped.streams["appointments"].skipped is not None
    assert "another sync is running it" in skipped.streams["appointments"].skipped
    assert skipped.streams["appointments"].read == 0
    assert skipped.streams["providers"].skipped is None
    assert skipped.streams["providers"].read > 0
    assert skipped.as_json()["streams"]["appointments"]["skipped"]

    # the other holder was killed: it renews no more, and its lease lapses
    live.clock.advance(LEASE_TTL + timedelta(seconds=1))
    ran = await _sync(live, streams=["appointments"])
    assert ran.streams["appointments"].skipped is None
    assert ran.streams["appointments"].read > 0
    again = await store.acquire(
        TENANT, "appointments", "run:third", now=live.clock.now(), ttl=LEASE_TTL
    )
    assert again.granted  # a finished sync releases its lease


async def test_a_sync_whose_lease_was_taken_over_saves_nothing_more(
    live: Live, tmp_path: Path
) -> None:
    def thief(stream: str, page: int, phase: Phase) -> None:
        if (stream, page, phase) == ("appointments", 1, "after_commit"):
            with sqlite3.connect(tmp_path / "store.db") as db:  # another process takes it
                db.execute("UPDATE sync_leases SET holder = 'run:thief'")

    report = await _sync(live, streams=["appointments"], page_size=5, on_page=thief)
    result = report.streams["appointments"]
    assert result.skipped is not None
    assert "took it over" in result.skipped
    assert result.read == 5  # the first page only: the second was rolled back
    assert len(await SqlSyncStore(live.deployment.engine).ids(TENANT, "appointment")) == 5
    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT holder FROM sync_leases").fetchall() == [("run:thief",)]


async def test_a_retried_job_takes_over_its_dead_attempts_lease(live: Live) -> None:
    store = SqlSyncStore(live.deployment.engine)
    now = live.clock.now()
    assert (await store.acquire(TENANT, "claims", "job:7:0", now=now, ttl=LEASE_TTL)).granted
    stranger = await store.acquire(
        TENANT, "claims", "job:71:0", now=now, ttl=LEASE_TTL, supersedes="job:71:"
    )
    assert not stranger.granted  # job 71 is not job 7
    assert stranger.holder == "job:7:0"
    report = await _sync(live, streams=["claims"], holder="job:7:1", supersedes="job:7:")
    assert report.streams["claims"].skipped is None
    assert report.streams["claims"].read > 0


# --- several processes ----------------------------------------------------------------------------


def _child(url: str, ring: str, go: Any, results: Any) -> None:
    results.put(anyio.run(_child_sync, url, ring, go))


async def _child_sync(url: str, ring: str, go: Any) -> dict[str, Any]:
    deployment = await open_deployment(url, KeyRing.parse(ring))
    try:
        upstream = await deployment.upstreams.of(TENANT)
        await anyio.to_thread.run_sync(go.wait)  # all start at once
        report = await sync(
            SqlSyncStore(deployment.engine), upstream, TENANT, ["appointments"], page_size=50
        )
        return report.streams["appointments"].as_json()
    finally:
        await deployment.aclose()


async def test_processes_syncing_appointments_at_once_announce_each_once(
    tmp_path: Path,
    sandbox: str,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ring = KeyRing.generate()
    deployment = await open_deployment(url, ring)
    try:
        async with httpx.AsyncClient() as client:
            document = (await client.get(f"{sandbox}/_sandbox/credentials")).json()
        settings, secrets = from_sandbox(document)
        await deployment.onboard(
            tenant_id=TENANT, name=TENANT, upstream="carecloud", settings=settings, secrets=secrets
        )
        await deployment.webhooks.create(
            TENANT,
            url="https://receiver.test/hook",
            event_types=("appointment.*",),
            secret=new_secret(),
            now=datetime.now(UTC),
        )
    finally:
        await deployment.aclose()

    spawn = multiprocessing.get_context("spawn")
    go = spawn.Barrier(3)
    results = spawn.Queue()
    children = [
        spawn.Process(target=_child, args=(url, ring.to_text(), go, results)) for _ in range(3)
    ]
    for child in children:
        child.start()
    outcomes = [await anyio.to_thread.run_sync(results.get, True, 240) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0

    ran = [o for o in outcomes if o["skipped"] is None]
    assert ran, outcomes  # one of them synced (the others skipped, or found nothing new)
    assert all(o["error"] is None for o in outcomes), outcomes

    deployment = await open_deployment(url, ring)
    try:
        store = SqlSyncStore(deployment.engine)
        stored = await store.ids(TENANT, "appointment")
        async with deployment.engine.connect() as conn:
            logged = (
                await conn.execute(
                    select(events.c.entity_id, events.c.message_id).where(
                        events.c.type == "appointment.created"
                    )
                )
            ).all()
            outbox = list(await conn.scalars(select(deliveries.c.message_id)))
    finally:
        await deployment.aclose()
    assert len(stored) > 20
    created = Counter(entity for entity, _ in logged)
    assert set(created) == stored
    assert max(created.values()) == 1, created.most_common(3)  # one per appointment
    created_ids = {message for _, message in logged}
    assert len(created_ids) == len(logged)
    assert len(outbox) == len(set(outbox))  # every delivery its own webhook-id
    assert created_ids <= set(outbox)
