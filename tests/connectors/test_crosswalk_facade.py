"""Two facades over one crosswalk (in process, on the emulated tenant's manual clock): what one
learns, by a read or by a write, the other resolves without reading the upstream's lists; ids
are remembered in batches, not one statement a record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import stamina

from carebridge.connectors.carecloud.facade import CareCloudTenant
from carebridge.connectors.carecloud.mapping.common import Context
from carebridge.connectors.carecloud.mapping.v2 import patient_id
from carebridge.connectors.carecloud.mfa import MemoryMfaSteps
from carebridge.domain.values import EncounterId, PatientId, ProviderId
from carebridge.errors import UnknownId, UpstreamStatusError
from carebridge.ports.crosswalk import Link, MemoryCrosswalk
from carebridge.ports.upstream import NewCharge, NewClaim, NewEncounter
from carebridge.wiring.carecloud import from_sandbox, open_tenant
from carecloud_sandbox import personas
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.control import credentials
from carecloud_sandbox.tenant import Tenant

pytestmark = pytest.mark.anyio

BASE = "http://sandbox.test"
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
TENANT = "ten_walk"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[str] = []
        self.fhir_patients: list[httpx.QueryParams] = []
        """The query of each FHIR Patient search."""
        self.with_cookies: list[str] = []
        """The paths of requests that carried a ``Cookie`` header."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/Patient"):
            self.fhir_patients.append(request.url.params)
        if "cookie" in request.headers:
            self.with_cookies.append(request.url.path)
        return await self.inner.handle_async_request(request)


@dataclass
class Pair:
    clock: ManualClock
    walk: MemoryCrosswalk
    a: CareCloudTenant
    b: CareCloudTenant
    b_sent: list[str]
    b_fhir: list[httpx.QueryParams]
    b_cookies: list[str]
    app: httpx.AsyncBaseTransport
    facade: Callable[[httpx.AsyncBaseTransport], CareCloudTenant]
    """Another facade over the same tenant and crosswalk, through a transport of the test's."""


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    clock = ManualClock(START)
    config = SandboxConfig(
        seed=7, patients=20, practices=1, anchor=date(2026, 11, 24), base_url=BASE
    )
    tenant = Tenant.open(config, clock=clock)
    app = httpx.ASGITransport(app=build_app(tenant))
    settings, secrets = from_sandbox(credentials(tenant))
    walk, steps = MemoryCrosswalk(), MemoryMfaSteps()

    async def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    def facade(transport: httpx.AsyncBaseTransport) -> CareCloudTenant:
        return open_tenant(
            TENANT,
            settings,
            secrets,
            clock=clock.now,
            transport=transport,
            mfa_steps=steps,
            crosswalk=walk,
            sleep=sleep,
        )

    recording = Recording(app)
    made: list[CareCloudTenant] = []

    def another(transport: httpx.AsyncBaseTransport) -> CareCloudTenant:
        made.append(facade(transport))
        return made[-1]

    with stamina.set_testing(True, attempts=8):
        a, b = facade(app), facade(recording)
        yield Pair(
            clock,
            walk,
            a,
            b,
            recording.sent,
            recording.fhir_patients,
            recording.with_cookies,
            app,
            another,
        )
        for opened in (a, b, *made):
            await opened.connection.aclose()
    await app.aclose()
    tenant.db.close()


def ctx() -> Context:
    return Context(tenant=TENANT, surface="v2", endpoint="test", fetched_at=START)


def jordan() -> PatientId:
    return patient_id(ctx(), personas.JORDAN.chart_number)


async def test_a_listing_is_remembered_in_a_few_batches_and_the_other_facade_reads_by_id(
    pair: Pair,
) -> None:
    listed = [p async for p in pair.a.patients()]
    assert len(listed) == 20
    assert pair.walk.batches <= 3  # the FHIR scan, the patient list, the v2 GUIDs: not 20
    chosen = listed[7]
    again = await pair.b.patient(chosen.id)
    assert again.model_dump(exclude={"sources"}) == chosen.model_dump(exclude={"sources"})
    assert pair.b_sent.count("POST /v2/patients/search") == 0
    assert "GET /portal/api/patients" not in pair.b_sent
    assert pair.b.crosswalk()[chosen.id] == pair.a.crosswalk()[chosen.id]


async def test_what_one_facade_wrote_the_other_signs_and_bills_without_listing(
    pair: Pair,
) -> None:
    pushed = await pair.a.push_encounter(
        NewEncounter(
            patient_id=jordan(),
            chief_complaint="Follow-up",
            note={"assessment": "Stable."},
            diagnoses=("I10",),
            procedures=(("99213", 1),),
        )
    )
    charge = await pair.a.create_charge(
        NewCharge(
            patient_id=jordan(),
            service_date=date(2026, 11, 24),
            procedure_code="99213",
            diagnosis_codes=("I10",),
            provider_id=ProviderId.new(ctx().key("provider", str(personas.PROVIDER_ID))),
        )
    )
    pair.clock.advance(timedelta(seconds=31))  # B signs in to the portal on a fresh TOTP step
    signed = await pair.b.sign_encounter(pushed.value.id)
    assert signed.confirmation == "confirmed"
    assert signed.value.signed_at is not None
    listings = [s for s in pair.b_sent if s.endswith("/encounters") and s.startswith("GET")]
    assert listings == []
    claim = await pair.b.submit_claim(NewClaim(patient_id=jordan(), charge_ids=(charge.value.id,)))
    assert claim.confirmation == "confirmed"
    assert "GET /portal/api/charges" not in pair.b_sent  # the charge's id came from A's write
    with pytest.raises(UnknownId):  # an id nobody learned stays unknown, as before
        await pair.b.add_addendum(EncounterId("enc_nobodylearnedthis"), "no such")


def fhir_ids(facade: CareCloudTenant) -> dict[PatientId, str | None]:
    return {pid: ids.fhir_id for pid, ids in facade.crosswalk().items()}


async def test_the_fhir_ids_come_from_one_large_scan_then_from_the_crosswalk(pair: Pair) -> None:
    listed = [p async for p in pair.a.patients()]
    learned = fhir_ids(pair.a)
    assert all(learned[p.id] for p in listed)
    # Another process's listing finds every FHIR id in the crosswalk: no scan at all.
    assert len([p async for p in pair.b.patients()]) == 20
    assert pair.b_fhir == []
    assert fhir_ids(pair.b) == {p.id: learned[p.id] for p in listed}


async def test_a_fresh_listing_scans_the_patient_search_once_in_its_largest_pages(
    pair: Pair,
) -> None:
    listed = [p async for p in pair.b.patients()]
    assert [q["_count"] for q in pair.b_fhir] == ["1000"]  # 20 patients: one page
    assert all(fhir_ids(pair.b)[p.id] for p in listed)
    again = [p async for p in pair.b.patients()]
    assert len(again) == 20
    assert len(pair.b_fhir) == 1


class Refusing(httpx.AsyncBaseTransport):
    """Refuses (a final 400) the Connector's Patient search, or the v2 patient reads (shows and
    searches) while the Patient search hangs; everything else passes."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, shows: bool) -> None:
        self.inner = inner
        self.shows = shows
        self.never = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/Patient"):
            if self.shows:
                await self.never.wait()
            return httpx.Response(400, json={"resourceType": "OperationOutcome", "issue": []})
        if self.shows and path.startswith("/v2/patients/") and path.count("/") == 3:
            return httpx.Response(400, json={"error": "refused"})
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("shows", [False, True], ids=["scan-refused", "shows-refused"])
async def test_a_listing_fails_with_the_scan_or_the_reads_and_leaves_nothing_running(
    pair: Pair, shows: bool
) -> None:
    # The Connector scan runs beside the v2 GUID searches: either one's failure is the
    # listing's, and what is still running (the scan, the searches, the batch read ahead) is
    # cancelled and awaited.
    before = asyncio.all_tasks()
    refused = pair.facade(Refusing(pair.app, shows=shows))
    with pytest.raises(UpstreamStatusError, match="status 400"):
        [p async for p in refused.patients()]
    assert asyncio.all_tasks() - before == set()


async def test_an_incremental_listing_scans_only_what_changed(pair: Pair) -> None:
    since = START - timedelta(days=3650)  # every patient changed since
    listed = [p async for p in pair.b.patients(updated_since=since)]
    assert len(listed) == 20
    assert [(q.get("_lastUpdated"), q["_count"]) for q in pair.b_fhir] == [
        (f"ge{since.isoformat()}", "1000")
    ]
    assert all(fhir_ids(pair.b)[p.id] for p in listed)


async def test_a_narrowed_scan_that_misses_someone_is_followed_by_one_whole_scan(
    pair: Pair,
) -> None:
    person = pair.b._person(personas.JORDAN.chart_number)
    await pair.b._fhir_ids([person], updated_since=START + timedelta(days=1))
    assert [q.get("_lastUpdated") for q in pair.b_fhir] == [
        f"ge{(START + timedelta(days=1)).isoformat()}",
        None,
    ]
    assert person.fhir_id is not None
    stranger = pair.b._person("NOSUCHCHART")  # no FHIR resource: never scanned for again
    await pair.b._fhir_ids([stranger])
    assert len(pair.b_fhir) == 2
    assert stranger.fhir_id is None


async def test_only_the_portal_requests_carry_the_portal_session_cookies(pair: Pair) -> None:
    assert len([p async for p in pair.b.patients()]) == 20
    assert any(path.startswith("/portal/") for path in pair.b_cookies)
    assert [path for path in pair.b_cookies if not path.startswith("/portal/")] == []
    assert any(s.startswith("GET /v2/") for s in pair.b_sent)


class Gated(httpx.AsyncBaseTransport):
    """Holds the Connector's Patient search until ``release`` is set; counts the v2 balance
    reads answered (``balances``), and notes when the Patient search was answered."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.release = asyncio.Event()
        self.scanning = asyncio.Event()
        self.balances = 0
        self.order: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/Patient"):
            self.scanning.set()
            await self.release.wait()
            response = await self.inner.handle_async_request(request)
            self.order.append("scan answered")
            return response
        response = await self.inner.handle_async_request(request)
        if path.endswith("/balance"):
            self.balances += 1
        return response


async def test_the_people_are_read_beside_the_scan_and_the_listing_ends_after_it(
    pair: Pair,
) -> None:
    gated = Gated(pair.app)
    facade = pair.facade(gated)
    listing = facade.patients()
    # the first person comes while the Connector's Patient search is still held
    first = await asyncio.wait_for(anext(listing), timeout=30)
    assert gated.scanning.is_set()
    assert not gated.release.is_set()

    async def rest() -> list[object]:
        out = [p async for p in listing]
        gated.order.append("listing ended")
        return out

    task = asyncio.ensure_future(rest())
    for _ in range(10_000):  # every person read, the scan still held
        if gated.balances == 20:
            break
        await asyncio.sleep(0)
    for _ in range(100):
        await asyncio.sleep(0)
    assert gated.balances == 20
    assert not task.done()  # the listing waits for the scan
    gated.release.set()
    listed = [first, *await task]
    assert len(listed) == 20
    assert gated.order == ["scan answered", "listing ended"]
    learned = fhir_ids(facade)
    assert all(learned[p.id] for p in listed)  # type: ignore[attr-defined]


class SlowWalk(MemoryCrosswalk):
    """A crosswalk whose writes wait for ``done``."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.done = asyncio.Event()

    async def remember(self, tenant: str, links: Sequence[Link]) -> None:
        self.writing.set()
        await self.done.wait()
        await super().remember(tenant, links)


async def test_a_cancelled_flush_waits_for_its_write_to_end(pair: Pair) -> None:
    facade = pair.facade(pair.app)
    walk = SlowWalk()
    facade.links = walk
    facade._learn("patient", "fhir", "f-1", "pat_x")
    flush = asyncio.ensure_future(facade._flush())
    await walk.writing.wait()
    flush.cancel()
    for _ in range(100):
        await asyncio.sleep(0)
    assert not flush.done()  # the write is not cut short
    walk.done.set()
    with pytest.raises(asyncio.CancelledError):
        await flush
    assert await walk.upstream_ids(TENANT, "patient", "fhir", ["pat_x"]) == {"pat_x": "f-1"}
