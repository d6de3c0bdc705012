"""The sync at scale, kept small: patients found without a search each, a window diffed in the
store (not in memory), and v2 lists streamed a few pages ahead."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.support.api import Live, running
from tests.support.sync import TENANT, store_ids, truth_ids

from carebridge.connectors.carecloud.paging import numbered_pages
from carebridge.connectors.carecloud.reads_patients import PREFIX_HITS, search_prefixes
from carebridge.domain import Appointment
from carebridge.domain.provenance import Provenance
from carebridge.domain.values import (
    AppointmentId,
    LocationId,
    PatientId,
    ProviderId,
    ResourceId,
    VisitReasonId,
)
from carebridge.store import migrate, sync_state
from carebridge.store.engine import create_engine
from carebridge.store.schema import entities, sync_marks, tenants
from carebridge.store.sync_state import SqlSyncStore
from carebridge.sync import engine
from carebridge.sync.engine import sync

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db")) as running_live:
        yield running_live


# --- patients without a search each ----------------------------------------------------------


def test_search_prefixes_cover_each_wanted_name_with_few_people() -> None:
    names = ["Smith"] * 60 + ["Smithers"] * 50 + ["Stone"] * 3 + ["Adams"] * 200 + ["Zhu"]
    found = search_prefixes(names, ["Smith", "Smithers", "Stone", "Zhu", "Adams"])
    # every prefix of "smith" names 110 people (the Smithers too), of "adams" 200: those two
    # have none (their people are searched one by one); the others the shortest few share
    assert found == {"smithe", "st", "z"}
    counts = {p: sum(n.lower().startswith(p) for n in names) for p in found}
    assert max(counts.values()) <= PREFIX_HITS


async def test_a_sync_of_patients_searches_a_few_times_not_once_per_patient(live: Live) -> None:
    upstream = await live.deployment.upstreams.of(TENANT)
    report = await sync(
        SqlSyncStore(live.deployment.engine),
        upstream,
        TENANT,
        ["patients"],
        clock=live.clock.now,
    )
    assert report.ok, report.as_json()
    patients = len(truth_ids(live)["patient"])
    assert (await store_ids(live))["patient"] == truth_ids(live)["patient"]
    searches = live.upstream.seen["POST /v2/patients/search"]
    shows = live.upstream.seen["GET /v2/patients/{id}"] or sum(
        n for k, n in live.upstream.seen.items() if k.startswith("GET /v2/patients/")
    )
    assert searches * 5 <= patients, (searches, patients)
    assert shows >= patients
    # a second sync finds every GUID in the crosswalk: not one search
    before = live.upstream.seen["POST /v2/patients/search"]
    again = await sync(
        SqlSyncStore(live.deployment.engine),
        upstream,
        TENANT,
        ["patients"],
        clock=live.clock.now,
        reconcile=timedelta(days=365 * 30),
    )
    assert again.ok
    assert live.upstream.seen["POST /v2/patients/search"] == before


def test_numbered_pages_are_listed_only_when_next_and_last_differ_in_page_alone() -> None:
    nxt = "https://h/v2/appointments?start_date=2026-01-01&page=2"
    last = "https://h/v2/appointments?start_date=2026-01-01&page=4"
    assert numbered_pages(nxt, last) == [
        "https://h/v2/appointments?start_date=2026-01-01&page=2",
        "https://h/v2/appointments?start_date=2026-01-01&page=3",
        "https://h/v2/appointments?start_date=2026-01-01&page=4",
    ]
    assert numbered_pages(nxt, "https://h/v2/appointments?start_date=2026-02-01&page=4") == []
    assert numbered_pages(nxt, None) == []
    assert numbered_pages("https://h/v2/x?cursor=abc", "https://h/v2/x?cursor=def") == []


# --- the window's diff in the store ----------------------------------------------------------


class Window:
    """An upstream whose appointment window is ``count`` appointments, less those in ``gone``."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.gone: set[int] = set()

    async def appointments(self, start: date, end: date, **_: Any) -> AsyncIterator[Appointment]:
        first = datetime.combine(start + timedelta(days=2), datetime.min.time(), UTC)
        for n in range(self.count):
            if n in self.gone:
                continue
            at = first + timedelta(hours=n)
            yield Appointment(
                sources=(
                    Provenance(
                        surface="v2",
                        endpoint="GET /v2/appointments",
                        upstream_id=str(n),
                        fetched_at=NOW,
                    ),
                ),
                id=AppointmentId.new(f"scale:{n}"),
                patient_id=PatientId.new(f"p{n % 7}"),
                provider_id=ProviderId.new("prv"),
                location_id=LocationId.new("loc"),
                resource_id=ResourceId.new("r"),
                visit_reason_id=VisitReasonId.new("vr"),
                start=at,
                end=at + timedelta(minutes=15),
                status="scheduled",
                created_at=NOW,
                updated_at=NOW,
            )


async def test_the_window_is_diffed_in_the_store_on_a_frozen_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_state, "MARKS_CHUNK", 100)  # the marks are dropped in chunks
    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate.upgrade(url)
    db = create_engine(url)
    try:
        async with db.begin() as conn:
            await conn.execute(
                tenants.insert().values(
                    id=TENANT, name="w", upstream="carecloud", settings={}, created_at=NOW
                )
            )
        store, upstream = SqlSyncStore(db), Window(450)

        async def run() -> engine.StreamResult:
            report = await sync(
                store, upstream, TENANT, ["appointments"], clock=lambda: NOW, page_size=100
            )
            return report.streams["appointments"]

        first = await run()
        assert (first.read, first.tombstoned, first.pages) == (450, 0, 5)
        upstream.gone = {3, 200, 449}
        second = await run()  # the same instant: marks, not timestamps, tell what was read
        assert (second.read, second.tombstoned) == (447, 3)
        async with db.connect() as conn:
            dead = set(
                await conn.scalars(
                    select(entities.c.id).where(
                        entities.c.tenant_id == TENANT, entities.c.deleted.is_(True)
                    )
                )
            )
            marks = await conn.scalar(
                select(func.count()).select_from(sync_marks).where(sync_marks.c.tenant_id == TENANT)
            )
        assert dead == {AppointmentId.new(f"scale:{n}") for n in (3, 200, 449)}
        assert marks == 0  # a pass leaves no marks behind
        upstream.gone = set()
        third = await run()
        assert (third.read, third.tombstoned) == (450, 0)
    finally:
        await db.dispose()
