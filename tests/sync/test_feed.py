"""The change feed against an emulated CareCloud: an upstream change is stored by the next poll
with exactly one event, which the full sync does not repeat; a poll with nothing new writes
nothing; one feed polls a tenant at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.support.api import Live, running
from tests.support.sync import TENANT, id_key, zulu

from carebridge.domain import AppointmentId
from carebridge.domain.kinds import KINDS
from carebridge.ports.upstream import NewAppointment
from carebridge.store.schema import events as event_table
from carebridge.store.sync_state import SqlSyncStore
from carebridge.sync.feed import ChangeFeed, appointment_reads, feed_kinds

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db")) as running_live:
        yield running_live


def _feed(live: Live, **kwargs: object) -> ChangeFeed:
    d = live.deployment
    return ChangeFeed(SqlSyncStore(d.engine), d.upstreams, clock=live.clock.now, **kwargs)  # type: ignore[arg-type]


async def _events(live: Live) -> list[tuple[str, str, str]]:
    async with live.deployment.engine.connect() as conn:
        rows = await conn.execute(
            select(event_table.c.type, event_table.c.entity_id, event_table.c.message_id)
            .where(event_table.c.tenant_id == TENANT)
            .order_by(event_table.c.seq)
        )
        return [(r.type, r.entity_id, r.message_id) for r in rows]


async def _count(live: Live) -> int:
    async with live.deployment.engine.connect() as conn:
        return int(
            await conn.scalar(select(func.count()).where(event_table.c.tenant_id == TENANT)) or 0
        )


def _scheduled_ahead(live: Live, days: int) -> str:
    """The v2 GUID of a scheduled appointment of practice 1 within ``days`` ahead."""
    now = live.clock.now()
    rows = live.truth(
        "SELECT id FROM appointments WHERE practice_id = 1 AND status_code = 'P' "
        "AND start_time > ? AND start_time < ? ORDER BY start_time, internal_id",
        (zulu(now + timedelta(days=2)), zulu(now + timedelta(days=days))),
    )
    assert rows, "the sandbox has no scheduled appointment ahead"
    return str(rows[0]["id"])


def _stored_id(guid: str) -> AppointmentId:
    """The carebridge id of the appointment with v2 GUID ``guid``."""
    return AppointmentId.new(id_key("appointment", guid))


def test_the_feed_polls_appointments_and_every_incremental_tenant_wide_kind() -> None:
    names = {k.name for k in feed_kinds()}
    assert "appointment" in names
    assert names - {"appointment"} == {
        k.name for k in KINDS.values() if k.stream is not None and k.stream_mode == "incremental"
    }
    today = date(2026, 11, 24)
    reads = appointment_reads(today)
    assert [(r.start, r.end) for r in reads] == [
        (today - timedelta(days=1), today + timedelta(days=1)),
        (today - timedelta(days=30), today + timedelta(days=60)),
        (today, today + timedelta(days=60)),
    ]
    assert reads[1].created_from == today - timedelta(days=1)
    assert {s.value for s in reads[2].statuses} == {"cancelled", "rescheduled"}


async def test_an_upstream_cancellation_is_stored_by_the_next_poll_with_exactly_one_event(
    live: Live,
) -> None:
    await live.deployment.syncs.run(TENANT)
    guid = _scheduled_ahead(live, 21)
    upstream = await live.deployment.upstreams.of(TENANT)
    appointment = _stored_id(guid)
    before = await _count(live)
    # another client cancels it upstream: the store does not know yet
    await upstream.cancel_appointment(appointment, reason_code=None, comments="")
    assert await _count(live) == before

    feed = _feed(live)
    polled = await feed.poll(TENANT)
    assert polled.skipped is None
    assert polled.errors == {}
    new = (await _events(live))[before:]
    assert [(t, e) for t, e, _ in new] == [("appointment.cancelled", str(appointment))]
    assert polled.kinds["appointment"].changed == 1

    # the full sync reads the same change again: no second event
    logged = await _count(live)
    await live.deployment.syncs.run(TENANT, ["appointments"])
    assert await _count(live) == logged

    # nothing new upstream: the next poll writes nothing and announces nothing
    again = await feed.poll(TENANT)
    assert again.kinds["appointment"].written == 0
    assert again.changed == 0
    assert await _count(live) == logged


async def test_a_booking_weeks_ahead_is_found_by_its_creation_date(live: Live) -> None:
    await live.deployment.syncs.run(TENANT)
    feed = _feed(live)
    await feed.poll(TENANT)  # the feed's first look
    before = await _count(live)
    upstream = await live.deployment.upstreams.of(TENANT)
    today = live.clock.now().astimezone(UTC).date()
    resources = [r async for r in upstream.resources()]
    resource = resources[0]
    reason = resource.visit_reason_ids[0]
    # five weeks out: beyond the days read whole, and not cancelled
    slots = await upstream.availability(
        reason, today + timedelta(days=35), today + timedelta(days=42), resource_ids=(resource.id,)
    )
    assert slots, "no open slot five weeks out"
    slot = slots[0]
    patients = [p async for p in upstream.patients()]
    patient = patients[0]
    booked = await upstream.create_appointment(
        NewAppointment(
            patient_id=patient.id,
            resource_id=slot.resource_id,
            location_id=slot.location_id,
            visit_reason_id=reason,
            start=slot.start,
        )
    )
    assert await _count(live) == before
    polled = await feed.poll(TENANT)
    new = (await _events(live))[before:]
    assert [(t, e) for t, e, _ in new] == [("appointment.created", str(booked.value.id))]
    assert polled.changed == 1


async def test_one_feed_polls_a_tenant_at_a_time(live: Live) -> None:
    first, second = _feed(live), _feed(live)
    assert (await first.poll(TENANT)).skipped is None
    assert (await second.poll(TENANT)).skipped is not None
    await first.release([TENANT])
    assert (await second.poll(TENANT)).skipped is None
