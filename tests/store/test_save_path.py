"""A sync's page saved in one trip to the store's worker thread (``Transactions``, a SQLite file)
leaves exactly the rows the same page leaves through the async engine: records, events (ids,
seqs, diffs), deliveries, the event counter, the cursor, the marks and the lease."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support import factories

from carebridge.domain import Patient, PatientId
from carebridge.domain.provenance import DomainModel
from carebridge.ports.sync import Hold, LeaseLost
from carebridge.store import migrate
from carebridge.store.engine import create_engine
from carebridge.store.schema import tenants, webhooks
from carebridge.store.sync_state import SqlSyncStore

AT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
TENANT = "ten_a"
HOLD = Hold("run:a", timedelta(minutes=5))
TABLES = (
    "entities",
    "events",
    "deliveries",
    "counters",
    "freshness",
    "sync_leases",
    "sync_marks",
)


def _patients(n: int, *, middle: str = "", upstream: str = "1") -> list[Patient]:
    """``n`` patients; ``middle`` their middle name (``R`` also ends their coverage: an
    eligibility change), ``upstream`` their provenance (a change that is no change)."""
    base = factories.patient()
    out = []
    for i in range(n):
        pid = PatientId.new(f"p{i}")
        ends = date(2026, 12, 31) if middle == "R" else None
        out.append(
            factories.changed(
                base,
                id=pid,
                name=factories.changed(base.name, middle=middle),
                sources=[factories.source(upstream_id=f"{upstream}-{i}")],
                coverages=[
                    factories.changed(c, patient_id=pid, effective_to=ends) for c in base.coverages
                ],
                balances=[factories.changed(b, patient_id=pid) for b in base.balances],
            )
        )
    return out


def _pages(steps: list[tuple[int, str, str]]) -> list[list[DomainModel]]:
    """Pages of patients: each step's count, middle name and provenance."""
    return [list(_patients(n, middle=middle, upstream=up)) for n, middle, up in steps]


async def _run(path: Path, pages: list[list[DomainModel]], *, one_trip: bool) -> dict[str, Any]:
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                tenants.insert().values(
                    id=TENANT, name=TENANT, upstream="carecloud", settings={}, created_at=AT
                )
            )
            await conn.execute(
                webhooks.insert().values(
                    id="wh_1",
                    tenant_id=TENANT,
                    url="https://example.test/hook",
                    event_types=["patient.*"],
                    state="enabled",
                    created_at=AT,
                )
            )
        store = SqlSyncStore(engine)
        if not one_trip:
            store.transactions.sync = None  # every page in ``engine.begin()``
        assert (await store.acquire(TENANT, "patients", HOLD.holder, now=AT, ttl=HOLD.ttl)).granted
        changed = []
        for number, page in enumerate(pages):
            at = AT + timedelta(minutes=number)
            assert await store.renew(TENANT, "patients", HOLD, now=at)
            changed.append(
                await store.save_page(
                    TENANT,
                    "patient",
                    page,
                    stream="patients",
                    cursor={"page": number},
                    fetched_at=at,
                    hold=HOLD,
                    marks={str(r.__dict__["id"]): at for r in page[:2]},
                )
            )
    finally:
        await engine.dispose()
    tables: dict[str, Any] = {"changed": changed}
    with sqlite3.connect(path) as db:
        for table in TABLES:
            tables[table] = sorted(map(repr, db.execute(f"SELECT * FROM {table}")))
    return tables


_step = st.tuples(st.integers(0, 6), st.sampled_from(["", "Q", "R"]), st.sampled_from(["1", "2"]))


@settings(derandomize=True, max_examples=15, deadline=None)
@given(st.lists(_step, min_size=1, max_size=5))
def test_a_page_in_one_trip_leaves_the_rows_the_async_engine_leaves(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, str, str]]
) -> None:
    import anyio

    folder = tmp_path_factory.mktemp("pages")
    pages = [page for page in _pages(steps) if page]
    one = anyio.run(lambda: _run(folder / "one.db", pages, one_trip=True))
    other = anyio.run(lambda: _run(folder / "async.db", pages, one_trip=False))
    assert one == other


@pytest.mark.anyio
async def test_pages_new_same_and_changed_agree_on_both_paths(tmp_path: Path) -> None:
    pages = _pages([(5, "", "1"), (5, "", "2"), (3, "Q", "2"), (4, "Q", "1")])
    one = await _run(tmp_path / "one.db", pages, one_trip=True)
    other = await _run(tmp_path / "async.db", pages, one_trip=False)
    assert one == other
    assert one["changed"] == [5, 0, 3, 1]  # provenance alone is no change
    assert len(one["events"]) == 5 + 3 + 1
    assert len(one["deliveries"]) == 5 + 3 + 1


@pytest.mark.anyio
async def test_a_page_whose_lease_was_taken_saves_nothing_in_one_trip(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                tenants.insert().values(
                    id=TENANT, name=TENANT, upstream="carecloud", settings={}, created_at=AT
                )
            )
        store = SqlSyncStore(engine)
        assert (await store.acquire(TENANT, "patients", HOLD.holder, now=AT, ttl=HOLD.ttl)).granted
        with sqlite3.connect(path) as db:
            db.execute("UPDATE sync_leases SET holder = 'run:thief'")
        with pytest.raises(LeaseLost):
            await store.save_page(
                TENANT,
                "patient",
                _patients(2),
                stream="patients",
                cursor={"page": 0},
                fetched_at=AT,
                hold=HOLD,
            )
        assert not await store.renew(TENANT, "patients", HOLD, now=AT)
        assert await store.ids(TENANT, "patient") == set()
        assert await store.cursor(TENANT, "patients") is None
    finally:
        await engine.dispose()
