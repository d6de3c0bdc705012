"""The read path's caches: a served page is kept (serialized) until a write of its kind, by any
writer on any connection, moves the kind's generation; a write of another kind or tenant leaves
it; a tombstone moves it too. On SQLite and (marked ``postgres``) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support import factories

from carebridge.domain import Patient, PatientId
from carebridge.ports.records import RecordPage
from carebridge.store import entities
from carebridge.store.adapters import SqlRecords
from carebridge.store.engine import create_engine
from carebridge.store.schema import entities as entity_table

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _patients(n: int, first: str = "Test") -> list[Patient]:
    base = factories.patient()
    return [
        factories.changed(
            base,
            id=PatientId.new(f"p{i}"),
            name=factories.changed(base.name, first=f"{first}{i:02d}"),
            coverages=[],
            balances=[],
        )
        for i in range(n)
    ]


async def _page(records: SqlRecords, tenant: str = "ten_a", limit: int = 10) -> RecordPage:
    return await records.page(
        tenant,
        "patient",
        filters={},
        updated_since=None,
        starts_from=None,
        starts_before=None,
        limit=limit,
        cursor=None,
    )


async def _write(engine: AsyncEngine, tenant: str, kind: str, records: list[Any]) -> None:
    async with engine.begin() as conn:
        await entities.upsert(conn, tenant, kind, records, fetched_at=NOW)


def _firsts(page: RecordPage) -> list[str]:
    return [orjson.loads(text)["name"]["first"] for text in page.raw]


async def test_a_page_is_served_again_until_its_kind_changes_on_another_connection(
    seeded: AsyncEngine,
) -> None:
    await _write(seeded, "ten_a", "patient", _patients(3))
    records = SqlRecords(seeded)
    first = await _page(records)
    again = await _page(records)
    assert again is first  # the same page, its JSON array joined once
    assert again.joined is first.joined
    assert records.misses == 1

    # another writer (its own engine, as another process would be) changes one patient
    other = create_engine(seeded.url.render_as_string(hide_password=False))
    try:
        await _write(other, "ten_a", "patient", _patients(1, first="Changed"))
    finally:
        await other.dispose()
    changed = await _page(records)
    assert records.misses == 2
    assert sorted(_firsts(changed)) == ["Changed00", "Test01", "Test02"]


async def test_writes_of_another_kind_or_tenant_leave_a_page_and_tombstones_move_it(
    seeded: AsyncEngine,
) -> None:
    await _write(seeded, "ten_a", "patient", _patients(3))
    records = SqlRecords(seeded)
    await _page(records)
    await _write(seeded, "ten_b", "patient", _patients(2))
    await _write(seeded, "ten_a", "appointment", [factories.appointment()])
    await _page(records)
    assert records.misses == 1

    async with seeded.begin() as conn:  # a tombstone, as the sync marks a vanished record
        await conn.execute(
            update(entity_table)
            .where(entity_table.c.tenant_id == "ten_a", entity_table.c.id == _patients(1)[0].id)
            .values(deleted=True)
        )
    after = await _page(records)
    assert records.misses == 2
    assert sorted(_firsts(after)) == ["Test01", "Test02"]


async def test_the_page_cache_holds_at_most_its_budget(seeded: AsyncEngine) -> None:
    await _write(seeded, "ten_a", "patient", _patients(4))
    one = len((await _page(SqlRecords(seeded), limit=1)).raw[0])
    records = SqlRecords(seeded, cache_bytes=one * 3 + one // 2)
    await _page(records, limit=1)
    await _page(records, limit=2)  # both fit: three records
    await _page(records, limit=1)
    assert records.misses == 2
    await _page(records, limit=4)  # too big to keep; the others stay
    await _page(records, limit=4)
    await _page(records, limit=1)
    await _page(records, limit=2)
    assert records.misses == 4
    await _page(records, limit=3)  # fits once both others go
    await _page(records, limit=3)
    assert records.misses == 5
    await _page(records, limit=1)  # and goes for the next
    await _page(records, limit=3)
    assert records.misses == 7


async def test_a_record_is_kept_until_its_kind_changes_and_a_missing_one_appears(
    seeded: AsyncEngine,
) -> None:
    patients = _patients(2)
    await _write(seeded, "ten_a", "patient", patients[:1])
    records = SqlRecords(seeded)
    pid = str(patients[0].id)
    first = await records.get("ten_a", "patient", pid)
    assert first is not None
    first["name"] = "changed by the caller"  # a copy: the kept record is not touched
    kept = await records.get("ten_a", "patient", pid)
    assert kept is not None
    assert kept["name"]["first"] == "Test00"
    assert await records.get("ten_b", "patient", pid) is None  # another tenant's: not found
    assert await records.get("ten_a", "patient", str(patients[1].id)) is None

    other = create_engine(seeded.url.render_as_string(hide_password=False))
    try:
        await _write(other, "ten_a", "patient", [patients[1], *_patients(1, first="Changed")])
    finally:
        await other.dispose()
    assert await records.get("ten_a", "patient", str(patients[1].id)) is not None
    changed = await records.get("ten_a", "patient", pid)
    assert changed is not None
    assert changed["name"]["first"] == "Changed00"
