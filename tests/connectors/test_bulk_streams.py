"""Labs, immunizations and documents through the Connector's Bulk ``$export``: the export names
the patients with records of the kind that changed, and only their own lists are read.

- a fresh sync of each stream through Bulk stores exactly what a per-patient sync stores (same
  records, ids and content), reading only the lists of the patients who have any record;
- a change upstream (a write, the activity clock) is picked up by the next export ``_since``
  the last one's ``transactionTime``, which reads only the changed patient's list;
- on a tenant where most patients have no record of the kind, the Bulk path makes fewer
  requests than the per-patient reads;
- a tenant without the Connector, or an export that fails, reads per patient.

The three kinds are read through per patient and have no sync stream in the registry of
kinds; these tests register a per-patient stream of each (as ``domain/kinds.py`` would with
``stream=``), so the sync engine runs them as it runs the encounters stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.support.api import TENANTS, Live, running
from tests.support.clock import FakeTime
from tests.support.sync import PRACTICE, TENANT, control

from carebridge.connectors.carecloud.facade import CareCloudTenant
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.store.schema import entities
from carebridge.store.sync_state import SqlSyncStore
from carebridge.store.vault import KeyRing
from carebridge.sync import engine
from carebridge.sync.engine import Stream, SyncReport, sync
from carebridge.wiring.api import Deployment, open_deployment
from carebridge.wiring.carecloud import from_sandbox
from carecloud_sandbox.control import credentials

pytestmark = pytest.mark.anyio

KICKOFF = "/Patient/$export"
KINDS = {
    # stream: (kind, the per-patient list's path tail, the sandbox's table)
    "labs": ("lab", "/labs", "lab_results"),
    "immunizations": ("immunization", "/immunizations", "immunizations"),
    "documents": ("document", "/v2/documents", "documents"),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """A per-patient sync stream of each kind (the registry has none)."""
    for name, (kind, _, _) in KINDS.items():
        monkeypatch.setitem(engine.STREAMS, name, Stream(name, kind, "per_patient", name))


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db"), patients=30) as running_live:
        yield running_live


async def _facade(deployment: Deployment, live: Live) -> CareCloudTenant:
    upstream = await deployment.upstreams.of(TENANT)

    async def advance(seconds: float) -> None:  # a poll's Retry-After on the tenant's clock
        live.clock.advance(timedelta(seconds=seconds))

    upstream.bulk_sleep = advance
    return upstream


async def _sync(deployment: Deployment, live: Live, upstream: Any, *names: str) -> SyncReport:
    report = await sync(
        SqlSyncStore(deployment.engine), upstream, TENANT, list(names), clock=live.clock.now
    )
    assert report.ok, report.as_json()
    return report


@asynccontextmanager
async def _per_patient_store(live: Live, tmp_path: Path) -> AsyncIterator[Deployment]:
    """A second deployment over a fresh store, reaching the same sandbox without the Connector
    (so its streams read per patient)."""
    live.clock.advance(timedelta(seconds=31))  # a fresh TOTP step for its own sign-in
    fake = FakeTime()
    deployment = await open_deployment(
        f"sqlite:///{tmp_path / 'per_patient.db'}",
        KeyRing.generate(),
        clock=live.clock.now,
        transport=live.upstream,
        throttle=lambda: AimdThrottle(
            ThrottleConfig(start_rate=200, max_rate=500), clock=fake.clock, sleep=fake.sleep
        ),
    )
    settings, secrets = from_sandbox(credentials(live.sandbox), practice=0)
    await deployment.onboard(
        tenant_id=TENANTS[0], name="per patient", upstream="carecloud", settings=settings,
        secrets=secrets,
    )  # fmt: skip
    try:
        yield deployment
    finally:
        await deployment.aclose()


def _count(live: Live, part: str, method: str = "GET") -> int:
    return sum(n for k, n in live.upstream.seen.items() if k.startswith(method + " ") and part in k)


def _lists(live: Live, stream: str) -> int:
    """Per-patient list requests of ``stream``'s kind."""
    tail = KINDS[stream][1]
    if stream == "documents":
        return _count(live, tail)
    return sum(
        n
        for k, n in live.upstream.seen.items()
        if k.startswith("GET /portal/api/patients/") and k.endswith(tail)
    )


def _total(live: Live) -> int:
    return sum(live.upstream.seen.values())


def _content(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _content(v) for k, v in value.items() if k not in ("sources", "fetched_at")}
    if isinstance(value, list):
        return [_content(v) for v in value]
    return value


async def _stored(deployment: Deployment, kind: str) -> dict[str, Any]:
    async with deployment.engine.connect() as conn:
        rows = await conn.execute(
            select(entities.c.id, entities.c.data).where(
                entities.c.tenant_id == TENANT, entities.c.kind == kind
            )
        )
        return {r.id: _content(r.data) for r in rows}


def _having(live: Live, table: str) -> int:
    """Practice 1's patients with at least one row of ``table`` upstream."""
    (row,) = live.truth(
        f"SELECT COUNT(DISTINCT patient_id) AS n FROM {table} WHERE practice_id = ?",
        (PRACTICE,),
    )
    return int(row["n"])


def _rows(live: Live, table: str) -> int:
    (row,) = live.truth(
        f"SELECT COUNT(*) AS n FROM {table} WHERE practice_id = ?",
        (PRACTICE,),
    )
    return int(row["n"])


def _patients(live: Live) -> int:
    (row,) = live.truth("SELECT COUNT(*) AS n FROM patients WHERE practice_id = ?", (PRACTICE,))
    return int(row["n"])


def _keep_only(live: Live, table: str, patients: int) -> None:
    """Leave records of ``table`` upstream to the first ``patients`` patients having any."""
    with live.sandbox.db.transaction() as conn:
        conn.execute(
            f"DELETE FROM {table} WHERE practice_id = ? AND patient_id NOT IN ("
            f"SELECT DISTINCT patient_id FROM {table} WHERE practice_id = ? "
            "ORDER BY patient_id LIMIT ?)",
            (PRACTICE, PRACTICE, patients),
        )


async def _bulk_then_per_patient(
    live: Live, tmp_path: Path, stream: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, int], dict[str, int]]:
    """The stream synced through Bulk (after the patients), then by a per-patient sync into a
    fresh store; each one's records and requests."""
    kind = KINDS[stream][0]
    upstream = await _facade(live.deployment, live)
    await _sync(live.deployment, live, upstream, "patients")
    before = (_total(live), _lists(live, stream), _count(live, KICKOFF))
    await _sync(live.deployment, live, upstream, stream)
    bulk = {
        "requests": _total(live) - before[0],
        "lists": _lists(live, stream) - before[1],
        "kickoffs": _count(live, KICKOFF) - before[2],
    }
    cursor = await SqlSyncStore(live.deployment.engine).cursor(TENANT, stream)
    assert cursor is not None
    assert cursor.get("bulk") is True
    by_bulk = await _stored(live.deployment, kind)

    async with _per_patient_store(live, tmp_path) as other:
        plain = await other.upstreams.of(TENANT)
        plain.fhir_base = None  # a tenant without the Connector
        await _sync(other, live, plain, "patients")
        before = (_total(live), _lists(live, stream), _count(live, KICKOFF))
        await _sync(other, live, plain, stream)
        per = {
            "requests": _total(live) - before[0],
            "lists": _lists(live, stream) - before[1],
            "kickoffs": _count(live, KICKOFF) - before[2],
        }
        cursor = await SqlSyncStore(other.engine).cursor(TENANT, stream)
        assert cursor is not None
        assert "bulk" not in cursor
        by_patient = await _stored(other, kind)
    return by_bulk, by_patient, bulk, per


@pytest.mark.parametrize("stream", list(KINDS))
async def test_a_fresh_sync_through_bulk_stores_what_the_per_patient_sync_stores(
    live: Live, tmp_path: Path, stream: str
) -> None:
    table = KINDS[stream][2]
    by_bulk, by_patient, bulk, per = await _bulk_then_per_patient(live, tmp_path, stream)
    assert len(by_bulk) == _rows(live, table) > 0
    assert by_bulk == by_patient  # the same records, ids and content, whichever path ran
    assert bulk["kickoffs"] == 1
    assert per["kickoffs"] == 0  # without the Connector: per patient
    # Bulk reads the lists of the patients who have records; per patient, every patient's
    assert bulk["lists"] == _having(live, table)
    assert per["lists"] == _patients(live)


@pytest.mark.parametrize("stream", list(KINDS))
async def test_bulk_makes_fewer_requests_where_most_patients_have_no_record(
    live: Live, tmp_path: Path, stream: str
) -> None:
    table = KINDS[stream][2]
    _keep_only(live, table, 2)
    assert _having(live, table) == 2 < _patients(live) // 3
    by_bulk, by_patient, bulk, per = await _bulk_then_per_patient(live, tmp_path, stream)
    assert by_bulk == by_patient
    assert len(by_bulk) == _rows(live, table) > 0
    assert bulk["lists"] == 2
    # 1 kick-off + polls + 1 file + 2 lists, against one list per patient
    assert bulk["requests"] < per["requests"], (bulk, per)
    print(f"{stream}: bulk {bulk} per patient {per}")


def _touch(live: Live, table: str) -> None:
    """Change one record of ``table`` upstream (a write: a field its list shows, and its
    ``updated_at``)."""
    (row,) = live.truth(
        f"SELECT id FROM {table} WHERE practice_id = ? ORDER BY id LIMIT 1",
        (PRACTICE,),
    )
    column, value = {
        "lab_results": ("status", "corrected"),
        "immunizations": ("status", "not-done"),
        "documents": ("description", "Amended synthetic note"),
    }[table]
    now = live.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    with live.sandbox.db.transaction() as conn:
        conn.execute(
            f"UPDATE {table} SET {column} = ?, updated_at = ? WHERE id = ?",
            (value, now, row["id"]),
        )


@pytest.mark.parametrize("stream", list(KINDS))
async def test_a_change_upstream_is_read_by_the_next_export_since(live: Live, stream: str) -> None:
    kind, _, table = KINDS[stream]
    upstream = await _facade(live.deployment, live)
    await _sync(live.deployment, live, upstream, "patients", stream)
    store = SqlSyncStore(live.deployment.engine)
    first = await store.cursor(TENANT, stream)
    assert first is not None
    before = await _stored(live.deployment, kind)

    live.clock.advance(timedelta(minutes=5))
    _touch(live, table)
    live.clock.advance(timedelta(minutes=1))
    kickoffs: list[str] = []
    transport = live.upstream.inner

    class Spy:
        async def handle_async_request(self, request: Any) -> Any:
            if request.url.path.endswith(KICKOFF):
                kickoffs.append(str(request.url.params.get("_since")))
            return await transport.handle_async_request(request)

    lists = _lists(live, stream)
    live.upstream.inner = Spy()  # type: ignore[assignment]
    try:
        again = await _sync(live.deployment, live, upstream, stream)
    finally:
        live.upstream.inner = transport
    assert kickoffs == [first["bulk_since"].replace("+00:00", "Z")]
    assert _lists(live, stream) - lists == 1  # only the changed patient's list
    assert again.streams[stream].changed == 1
    after = await _stored(live.deployment, kind)
    assert after.keys() == before.keys()
    assert [k for k in after if after[k] != before[k]] != []

    # nothing changed since: the next export names nobody, and no list is read
    lists = _lists(live, stream)
    quiet = await _sync(live.deployment, live, upstream, stream)
    assert quiet.streams[stream].read == 0
    assert _lists(live, stream) == lists


async def test_the_activity_clocks_new_labs_are_read_by_the_next_export(live: Live) -> None:
    upstream = await _facade(live.deployment, live)
    await _sync(live.deployment, live, upstream, "patients", "labs")
    labs = _rows(live, "lab_results")
    first = await SqlSyncStore(live.deployment.engine).cursor(TENANT, "labs")
    assert first is not None
    since = first["bulk_since"].replace("+00:00", "Z")
    await control(live, "POST", "/_sandbox/clock/advance", {"minutes": 14 * 24 * 60})
    assert _rows(live, "lab_results") > labs  # the practice saw patients and drew labs
    (changed,) = live.truth(
        "SELECT COUNT(DISTINCT patient_id) AS n FROM lab_results "
        "WHERE practice_id = ? AND updated_at > ?",
        (PRACTICE, since),
    )
    lists = _lists(live, "labs")
    again = await _sync(live.deployment, live, upstream, "patients", "labs")
    assert _lists(live, "labs") - lists == changed["n"] > 0  # only those patients' lists
    assert again.streams["labs"].changed >= _rows(live, "lab_results") - labs
    assert len(await _stored(live.deployment, "lab")) == _rows(live, "lab_results")


async def test_an_export_that_fails_falls_back_to_per_patient_reads(live: Live) -> None:
    upstream = await _facade(live.deployment, live)
    await _sync(live.deployment, live, upstream, "patients")
    upstream.bulk_wait_limit = 5.0  # the export takes 10 s: it fails, and the sync falls back
    lists = _lists(live, "labs")
    report = await _sync(live.deployment, live, upstream, "labs")
    assert _count(live, "/bulkstatus/", "DELETE") == 1  # the abandoned export is cancelled
    assert _lists(live, "labs") - lists == _patients(live)
    assert report.streams["labs"].read == _rows(live, "lab_results")
    cursor = await SqlSyncStore(live.deployment.engine).cursor(TENANT, "labs")
    assert cursor is not None
    assert "bulk" not in cursor


async def test_a_patient_the_crosswalk_does_not_know_is_read_from_the_connector(
    live: Live,
) -> None:
    # no patients stream first: the crosswalk holds no FHIR id, so each named patient's chart
    # number comes from one Patient read, and the crosswalk remembers the link
    upstream = await _facade(live.deployment, live)
    before = _count(live, "/Patient/")
    report = await _sync(live.deployment, live, upstream, "labs")
    reads = _count(live, "/Patient/") - before - 1  # less the kick-off (.../Patient/$export)
    assert reads == _having(live, "lab_results") > 0
    assert report.streams["labs"].read == _rows(live, "lab_results")
    fhir = {
        r["fhir_id"]
        for r in live.truth(
            "SELECT f.fhir_id FROM fhir_ids f JOIN lab_results l ON l.patient_id = f.entity_id "
            "WHERE f.resource_type = 'Patient' AND l.practice_id = ?",
            (PRACTICE,),
        )
    }
    links = upstream.links
    for fhir_id in fhir:
        assert await links.entity_id(TENANT, "patient", "fhir", fhir_id) is not None


def _inactivate_a_document(live: Live) -> None:
    """One document of the practice made inactive upstream (v2 lists active documents only;
    the Connector exports it as ``entered-in-error``)."""
    (row,) = live.truth(
        "SELECT id FROM documents WHERE practice_id = ? AND status = 'A' ORDER BY id LIMIT 1",
        (PRACTICE,),
    )
    now = live.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    with live.sandbox.db.transaction() as conn:
        conn.execute(
            "UPDATE documents SET status = 'I', updated_at = ? WHERE id = ?", (now, row["id"])
        )


async def test_a_document_made_inactive_upstream_is_tombstoned_through_bulk(live: Live) -> None:
    upstream = await _facade(live.deployment, live)
    await _sync(live.deployment, live, upstream, "patients", "documents")
    store = SqlSyncStore(live.deployment.engine)
    before = await store.ids(TENANT, "document")
    assert len(before) == _rows(live, "documents")

    live.clock.advance(timedelta(minutes=5))
    _inactivate_a_document(live)
    live.clock.advance(timedelta(minutes=1))
    again = await _sync(live.deployment, live, upstream, "documents")
    cursor = await store.cursor(TENANT, "documents")
    assert cursor is not None
    assert cursor.get("bulk") is True
    after = await store.ids(TENANT, "document")
    assert len(before - after) == 1
    assert after < before
    assert again.streams["documents"].tombstoned == 1
    # the others of that patient stay, and a quiet export tombstones nothing more
    quiet = await _sync(live.deployment, live, upstream, "documents")
    assert quiet.streams["documents"].tombstoned == 0
    assert await store.ids(TENANT, "document") == after


async def test_a_document_made_inactive_upstream_is_tombstoned_per_patient(
    live: Live, tmp_path: Path
) -> None:
    async with _per_patient_store(live, tmp_path) as other:
        plain = await other.upstreams.of(TENANT)
        plain.fhir_base = None  # a tenant without the Connector
        await _sync(other, live, plain, "patients", "documents")
        store = SqlSyncStore(other.engine)
        before = await store.ids(TENANT, "document")
        assert len(before) == _rows(live, "documents")
        _inactivate_a_document(live)
        again = await _sync(other, live, plain, "documents")
        after = await store.ids(TENANT, "document")
        assert len(before - after) == 1
        assert after < before
        assert again.streams["documents"].tombstoned == 1
        rerun = await _sync(other, live, plain, "documents")
        assert rerun.streams["documents"].tombstoned == 0
