"""The encounters stream through the Connector's Bulk ``$export``: the store equals what the
per-patient reads store, no per-patient encounter list is read, a second sync exports with
``_since`` the first export's ``transactionTime``, and a tenant without Bulk (or an export that
fails) reads per patient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.support.api import Live, running
from tests.support.sync import TENANT, control, store_ids, truth_ids

from carebridge.connectors.carecloud.facade import CareCloudTenant
from carebridge.domain.values import PatientId
from carebridge.store.schema import entities
from carebridge.store.sync_state import SqlSyncStore
from carebridge.sync.engine import SyncReport, sync

pytestmark = pytest.mark.anyio

LIST = "/encounters"  # GET /portal/api/patients/{chart}/encounters
KICKOFF = "/Patient/$export"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db"), patients=12) as running_live:
        yield running_live


async def _facade(live: Live) -> CareCloudTenant:
    upstream = await live.deployment.upstreams.of(TENANT)

    async def advance(seconds: float) -> None:  # a poll's Retry-After on the tenant's clock
        live.clock.advance(timedelta(seconds=seconds))

    upstream.bulk_sleep = advance
    return upstream


async def _sync(live: Live, upstream: Any) -> SyncReport:
    return await sync(SqlSyncStore(live.deployment.engine), upstream, TENANT, clock=live.clock.now)


def _seen(live: Live, part: str, method: str = "GET") -> int:
    return sum(n for k, n in live.upstream.seen.items() if k.startswith(method + " ") and part in k)


def _patient_lists(live: Live) -> int:
    return sum(
        n
        for k, n in live.upstream.seen.items()
        if k.startswith("GET /portal/api/patients/") and k.endswith(LIST)
    )


def _content(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _content(v) for k, v in value.items() if k not in ("sources", "fetched_at")}
    if isinstance(value, list):
        return [_content(v) for v in value]
    return value


async def _stored(live: Live) -> dict[str, Any]:
    async with live.deployment.engine.connect() as conn:
        rows = await conn.execute(
            select(entities.c.id, entities.c.data).where(
                entities.c.tenant_id == TENANT, entities.c.kind == "encounter"
            )
        )
        return {r.id: _content(r.data) for r in rows}


async def test_encounters_by_bulk_equal_the_per_patient_reads(live: Live) -> None:
    upstream = await _facade(live)
    report = await _sync(live, upstream)
    assert report.ok, report.as_json()
    assert (await store_ids(live))["encounter"] == truth_ids(live)["encounter"]
    assert _seen(live, KICKOFF) == 1
    assert _seen(live, ".ndjson") == 1
    assert _patient_lists(live) == 0  # no per-patient clinical read
    cursor = await SqlSyncStore(live.deployment.engine).cursor(TENANT, "encounters")
    assert cursor is not None
    assert cursor.get("bulk") is True
    stored = await _stored(live)
    assert len(stored) == len(truth_ids(live)["encounter"]) > 0

    # the records are exactly what the per-patient reads give
    per_patient: dict[str, Any] = {}
    for patient in sorted(await SqlSyncStore(live.deployment.engine).ids(TENANT, "patient")):
        async for record in upstream.encounters(patient_id=PatientId(patient)):
            per_patient[str(record.id)] = _content(record.model_dump(mode="json"))
    assert per_patient == stored


async def test_a_second_sync_exports_since_the_first_transaction_time(live: Live) -> None:
    upstream = await _facade(live)
    await control(live, "PUT", "/_sandbox/settings", {"bulk_export_seconds": 30})
    first = await _sync(live, upstream)
    assert first.ok, first.as_json()
    assert _seen(live, "/bulkstatus/", "GET") >= 2  # polled, waited Retry-After, polled
    cursor = await SqlSyncStore(live.deployment.engine).cursor(TENANT, "encounters")
    assert cursor is not None
    since = cursor["bulk_since"]

    kickoffs: list[str] = []
    transport = live.upstream.inner

    class Spy:
        async def handle_async_request(self, request: Any) -> Any:
            if request.url.path.endswith(KICKOFF):
                kickoffs.append(str(request.url.params.get("_since")))
            return await transport.handle_async_request(request)

    live.upstream.inner = Spy()  # type: ignore[assignment]
    try:
        again = await _sync(live, upstream)
    finally:
        live.upstream.inner = transport
    assert again.ok, again.as_json()
    assert kickoffs == [since.replace("+00:00", "Z")]
    assert again.streams["encounters"].changed == 0
    assert _patient_lists(live) == 0


async def test_without_bulk_or_when_it_fails_encounters_are_read_per_patient(
    live: Live,
) -> None:
    upstream = await _facade(live)
    upstream.bulk_wait_limit = 5.0  # the export takes 10 s: it fails, and the sync falls back
    report = await _sync(live, upstream)
    assert report.ok, report.as_json()
    assert _seen(live, KICKOFF) == 1
    assert _seen(live, "/bulkstatus/", "DELETE") == 1  # the abandoned export is cancelled
    assert _patient_lists(live) > 0
    assert (await store_ids(live))["encounter"] == truth_ids(live)["encounter"]

    upstream.fhir_base = None  # a tenant without the Connector
    lists = _patient_lists(live)
    again = await _sync(live, upstream)
    assert again.ok
    assert _seen(live, KICKOFF) == 1
    assert _patient_lists(live) > lists
