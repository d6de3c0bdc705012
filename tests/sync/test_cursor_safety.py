"""A per-patient stream's cursor moves only past what it read and stored: a pass with no known
patients, or over a partial patient list (the patients stream failed), leaves every unread
patient to be read in full later, so later syncs recover every encounter of the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from tests.support.api import Live, running
from tests.support.sync import TENANT, store_ids, truth_ids
from tests.sync.test_sync import _advance, _sync

from carebridge.errors import UpstreamStatusError
from carebridge.store.sync_state import SqlSyncStore
from carebridge.sync.engine import Phase

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db")) as running_live:
        yield running_live


async def test_encounters_synced_before_any_patient_are_all_read_later(live: Live) -> None:
    first = await _sync(live, streams=["encounters"])  # a fresh store: no patient is known
    assert first.ok
    assert first.streams["encounters"].read == 0
    live.clock.advance(timedelta(hours=2))  # later: the lag no longer covers the first pass

    report = await _sync(live, streams=["patients", "encounters"])
    assert report.ok, report.as_json()
    expected = truth_ids(live)["encounter"]
    assert expected
    assert (await store_ids(live))["encounter"] == expected
    assert report.streams["encounters"].read == len(expected)


async def test_encounters_of_patients_a_failed_pass_missed_are_read_later(live: Live) -> None:
    def patients_break(stream: str, page: int, phase: Phase) -> None:
        if stream == "patients" and page >= 2 and phase == "before_commit":
            raise UpstreamStatusError("injected", status=503, endpoint="/v2/patients")

    broken = await _sync(
        live, streams=["patients", "encounters"], page_size=5, on_page=patients_break
    )
    assert broken.streams["patients"].error is not None  # only the first page was stored
    assert broken.streams["encounters"].error is None
    known = (await store_ids(live))["patient"]
    assert 0 < len(known) < len(truth_ids(live)["patient"])

    await _advance(live, 3)  # the practice works on; the encounter cursor's lag is long past
    healed = await _sync(live, streams=["patients", "encounters"])
    assert healed.ok, healed.as_json()
    assert (await store_ids(live))["encounter"] == truth_ids(live)["encounter"]
    assert (await store_ids(live))["patient"] == truth_ids(live)["patient"]


async def test_a_patient_already_read_is_read_incrementally(live: Live) -> None:
    assert (await _sync(live, streams=["patients", "encounters"])).ok
    live.clock.advance(timedelta(minutes=1))
    again = await _sync(live, streams=["encounters"])
    assert again.ok
    # each patient is read from its own mark less the lag: nothing old comes back
    assert again.streams["encounters"].read < len(truth_ids(live)["encounter"])
    marks = await SqlSyncStore(live.deployment.engine).marks(TENANT, "encounters")
    assert set(marks) == truth_ids(live)["patient"]
