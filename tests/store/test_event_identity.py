"""Each event has a deterministic identity, its webhook-id: the same change recorded twice (two
syncs that read it, a stale writer, an announcement repeated) is one event with one delivery,
also when two transactions record it at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.store import events as event_log
from carebridge.store.entities import Change
from carebridge.store.schema import deliveries, events, webhooks

pytestmark = pytest.mark.anyio

T = "ten_a"
AT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
V0 = {"id": "apt_1", "patient_id": "pat_1", "status": "booked", "updated_at": "2026-11-25T14:00Z"}
V1 = V0 | {"status": "cancelled", "updated_at": "2026-11-25T14:30:00Z"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _subscribe(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            webhooks.insert().values(
                id="whk_1",
                tenant_id=T,
                url="https://receiver.test/hook",
                event_types=["appointment.*", "stream.*", "integration.*"],
                state="enabled",
                consecutive_failures=0,
                created_at=AT,
            )
        )


async def _append(engine: AsyncEngine, *changes: Change) -> list[int]:
    async with engine.begin() as conn:
        return await event_log.append(conn, T, changes, detected_at=AT)


async def _logged(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list(
            await conn.execute(
                select(events.c.seq, events.c.type, events.c.message_id).order_by(events.c.seq)
            )
        )


async def _delivery_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list(await conn.scalars(select(deliveries.c.message_id).order_by(deliveries.c.id)))


async def test_a_change_recorded_twice_is_one_event_and_one_delivery(
    seeded: AsyncEngine,
) -> None:
    await _subscribe(seeded)
    created = Change("appointment", "apt_1", None, V0)
    assert await _append(seeded, created) == [1]
    assert await _append(seeded, created) == []  # a second sync that read it as new
    cancelled = Change("appointment", "apt_1", V0, V1)
    assert await _append(seeded, cancelled, cancelled) == [2]  # twice in one page, too
    assert await _append(seeded, cancelled) == []  # a stale writer's re-announcement
    logged = await _logged(seeded)
    assert [(seq, kind) for seq, kind, _ in logged] == [
        (1, "appointment.created"),
        (2, "appointment.cancelled"),
    ]
    ids = [message for _, _, message in logged]
    assert ids == [
        event_log.message_id(T, "appointment.created", "appointment", "apt_1", ""),
        event_log.message_id(
            T,
            "appointment.cancelled",
            "appointment",
            "apt_1",
            event_log.change_version("appointment.cancelled", V1),
        ),
    ]
    assert await _delivery_ids(seeded) == ids
    async with seeded.connect() as conn:
        rows = (await conn.execute(select(events))).all()
    assert [event_log.as_json(r)["id"] for r in rows] == ids


async def test_the_webhook_id_names_the_change_not_the_writer(
    seeded: AsyncEngine,
) -> None:
    """The identity depends on the tenant, the type, the entity and its content, never on the
    seq a writer happened to get, nor on provenance."""
    stamped = V1 | {"sources": [{"surface": "v2", "fetched_at": "2026-11-25T14:31:00Z"}]}
    same = event_log.change_version("appointment.cancelled", V1)
    assert event_log.change_version("appointment.cancelled", stamped) == same
    later = V1 | {"updated_at": "2026-11-26T09:00:00Z"}
    assert event_log.change_version("appointment.cancelled", later) != same
    one = event_log.message_id(T, "appointment.cancelled", "appointment", "apt_1", same)
    assert one != event_log.message_id(
        "ten_b", "appointment.cancelled", "appointment", "apt_1", same
    )
    assert one.startswith("evt_")
    assert len(one) <= 96
    await _append(seeded, Change("appointment", "apt_2", None, V0 | {"id": "apt_2"}))
    await _append(seeded, Change("appointment", "apt_1", V0, stamped))
    await _append(seeded, Change("appointment", "apt_1", V0, V1))
    assert [m for _, _, m in await _logged(seeded)][1:] == [one]


async def test_an_announcement_repeated_is_one_event(seeded: AsyncEngine) -> None:
    await _subscribe(seeded)
    details = {"stream": "claims", "error": "UpstreamStatusError"}
    seqs = []
    for _ in range(2):
        async with seeded.begin() as conn:
            seqs.append(
                await event_log.announce(
                    conn,
                    T,
                    "integration.degraded",
                    kind="stream",
                    entity_id="claims",
                    details=details,
                    at=AT,
                )
            )
    async with seeded.begin() as conn:
        later = await event_log.announce(
            conn,
            T,
            "integration.degraded",
            kind="stream",
            entity_id="claims",
            details=details,
            at=AT + timedelta(minutes=1),
        )
    assert seqs == [1, 1]
    assert later == 2
    assert len(await _delivery_ids(seeded)) == 2


async def test_two_transactions_recording_one_change_at_once_make_one_event(
    seeded: AsyncEngine,
) -> None:
    """The second writer waits for the tenant's counter, then sees the first one's event."""
    await _subscribe(seeded)
    created = Change("appointment", "apt_1", None, V0)
    second: list[int] = []
    first_wrote = anyio.Event()

    async with seeded.connect() as first:
        await first.begin()
        assert await event_log.append(first, T, [created], detected_at=AT) == [1]

        async def other() -> None:
            first_wrote.set()
            second.extend(await _append(seeded, created))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(other)
            await first_wrote.wait()
            await anyio.wait_all_tasks_blocked()
            await first.commit()
    assert second == []
    async with seeded.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(events))
    assert count == 1
    assert len(await _delivery_ids(seeded)) == 1
