"""Normalized records in the store: upserts report changes, queries filter and page by keyset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support import factories

from carebridge.domain import Appointment, PatientId
from carebridge.store import entities

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture
def engine(seeded: AsyncEngine) -> AsyncEngine:
    return seeded


def _appointments(n: int) -> list[Appointment]:
    base = factories.appointment()
    return [
        factories.changed(
            base,
            id=type(base.id).new(f"a{i}"),
            patient_id=PatientId.new(f"p{i % 3}"),
            start=base.start + timedelta(days=i),
            end=base.end + timedelta(days=i),
            arrived_at=None,
            departed_at=None,
            status="scheduled",
            encounter_id=None,
        )
        for i in range(n)
    ]


async def test_upsert_reports_new_changed_and_unchanged_records(engine: AsyncEngine) -> None:
    records = _appointments(5)
    async with engine.begin() as conn:
        first = await entities.upsert(conn, "ten_a", "appointment", records, fetched_at=NOW)
    assert [c.before for c in first] == [None] * 5
    moved = factories.changed(records[1], status="cancelled")
    async with engine.begin() as conn:
        second = await entities.upsert(
            conn, "ten_a", "appointment", [records[0], moved], fetched_at=NOW
        )
    assert [(c.id, c.before["status"], c.after["status"]) for c in second if c.before] == [
        (str(moved.id), "scheduled", "cancelled")
    ]
    assert len(second) == 1


async def test_query_pages_by_keyset_without_gaps_or_repeats(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await entities.upsert(conn, "ten_a", "appointment", _appointments(23), fetched_at=NOW)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await entities.query(engine, "ten_a", "appointment", limit=5, cursor=cursor)
        seen.extend(item["id"] for item in page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 23
    assert pages == 5


async def test_filters_and_tenant_scoping(engine: AsyncEngine) -> None:
    records = _appointments(9)
    async with engine.begin() as conn:
        await entities.upsert(conn, "ten_a", "appointment", records, fetched_at=NOW)
        await entities.upsert(conn, "ten_b", "appointment", records[:2], fetched_at=NOW)
    patient = str(PatientId.new("p1"))
    by_patient = await entities.query(
        engine, "ten_a", "appointment", filters={"patient_id": patient}
    )
    assert {item["patient_id"] for item in by_patient.items} == {patient}
    assert len(by_patient.items) == 3
    window = await entities.query(
        engine, "ten_a", "appointment", starts_from=records[2].start, starts_before=records[5].start
    )
    assert len(window.items) == 3
    assert len((await entities.query(engine, "ten_b", "appointment")).items) == 2
    assert (await entities.query(engine, "ten_a", "patient")).items == []


async def test_a_patient_is_indexed_by_name_and_birth_date(engine: AsyncEngine) -> None:
    patient = factories.patient()
    async with engine.begin() as conn:
        await entities.upsert(conn, "ten_a", "patient", [patient], fetched_at=NOW)
    key = f"{patient.name.last}, {patient.name.first}".lower()
    found = await entities.query(
        engine, "ten_a", "patient", filters={"name_key": key, "birth_date": "1980-01-01"}
    )
    assert [item["id"] for item in found.items] == [str(patient.id)]


async def test_a_forged_cursor_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(entities.BadCursor):
        await entities.query(engine, "ten_a", "appointment", cursor="%%%")


async def test_an_older_read_never_takes_a_stored_record_back(engine: AsyncEngine) -> None:
    """The change feed and the sync read one record at different moments: whichever answer is
    older than the stored record's upstream updated_at changes nothing and announces nothing."""
    (record,) = _appointments(1)
    stamp = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    newer = factories.changed(record, status="cancelled", updated_at=stamp)
    older = factories.changed(record, status="scheduled", updated_at=stamp - timedelta(minutes=5))
    latest = factories.changed(record, status="no_show", updated_at=stamp + timedelta(hours=1))
    async with engine.begin() as conn:
        await entities.upsert(conn, "ten_a", "appointment", [newer], fetched_at=NOW)
    async with engine.begin() as conn:
        stale = await entities.upsert(conn, "ten_a", "appointment", [older], fetched_at=NOW)
    assert stale == []
    page = await entities.query(engine, "ten_a", "appointment")
    assert [r["status"] for r in page.items] == ["cancelled"]
    async with engine.begin() as conn:
        moved = await entities.upsert(conn, "ten_a", "appointment", [latest], fetched_at=NOW)
    assert [(c.before["status"], c.after["status"]) for c in moved] == [("cancelled", "no_show")]


def test_the_prepared_upsert_writes_every_indexed_column() -> None:
    """The upsert statement is built once: it must name every column ``index_columns`` fills."""
    patient = factories.patient()
    written = set(entities._WRITTEN) - {"data", "fetched_at", "deleted"}
    assert written == set(entities.index_columns("patient", patient))
