"""The API against an emulated CareCloud: fetch-through reads equal the upstream's truth,
freshness is honoured, writes are idempotent, ledgered and read back, 200 concurrent duplicates
make one upstream write, and secrets never reach the store in clear. The flow also runs on
PostgreSQL in CI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from tests.support.api import ADMIN_TOKEN, SANDBOX, Live, book_body, running

from carebridge.store.audit import verify
from carebridge.store.schema import freshness
from carebridge.wiring.carecloud import from_sandbox
from carecloud_sandbox.control import credentials

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db")) as running_live:
        yield running_live


def _upstream_reads(live: Live) -> int:
    return sum(n for k, n in live.upstream.seen.items() if k.startswith("GET"))


async def _all(live: Live, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = await live.get(path, limit=50, **params, **({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        items.extend(r.json()["data"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items


async def test_patients_are_read_through_and_equal_the_upstream(live: Live) -> None:
    patients = await _all(live, "/patients")
    truth = live.truth("SELECT last_name FROM patients WHERE practice_id = 1")
    assert len(patients) == len(truth) > 0
    assert sorted(p["name"]["last"] for p in patients) == sorted(t["last_name"] for t in truth)
    assert len({p["id"] for p in patients}) == len(patients)
    other = await live.get("/patients", key="admin_b", limit=500)
    assert not {p["id"] for p in patients} & {p["id"] for p in other.json()["data"]}


async def test_fresh_reads_come_from_the_store_and_stale_ones_go_through(live: Live) -> None:
    first = await live.get("/patients", limit=5)
    assert first.headers["age"] == "0"
    assert first.headers["cache-control"] == "private, no-store"
    reads = _upstream_reads(live)

    live.clock.advance(timedelta(seconds=90))
    cached = await live.get("/patients", limit=5)
    assert cached.headers["age"] == "90"
    assert _upstream_reads(live) == reads  # served from the store
    assert cached.json() == first.json()

    page_two = await live.get("/patients", limit=5, cursor=first.json()["next_cursor"])
    assert page_two.status_code == 200
    assert _upstream_reads(live) == reads

    live.clock.advance(timedelta(seconds=60))
    bounded = await live.get("/patients", limit=5, max_age=120)
    assert bounded.headers["age"] == "0"
    assert _upstream_reads(live) > reads

    reads = _upstream_reads(live)
    forced = await live.client.get(
        "/patients",
        params={"limit": 5},
        headers=live.auth("admin_a") | {"Cache-Control": "no-cache"},
    )
    assert forced.headers["age"] == "0"
    assert _upstream_reads(live) > reads


async def test_a_refresh_after_upstream_activity_sees_the_changes(live: Live) -> None:
    before = await _all(live, "/patients")
    async with httpx.AsyncClient(transport=live.upstream.inner, base_url=SANDBOX) as sandbox:
        moved = await sandbox.post("/_sandbox/clock/advance", json={"minutes": 3 * 24 * 60})
    assert moved.is_success, moved.text
    after = await _all(live, "/patients", max_age=0)
    truth = live.truth("SELECT COUNT(*) AS n FROM patients WHERE practice_id = 1")[0]["n"]
    assert len(after) == truth >= len(before)
    claims = await _all(live, "/claims", max_age=0)
    claim_truth = live.truth("SELECT COUNT(*) AS n FROM claims WHERE practice_id = 1")[0]["n"]
    assert len(claims) == claim_truth


async def test_every_read_route_answers_the_tenants_data(live: Live) -> None:
    patient = (await live.get("/patients", limit=1)).json()["data"][0]["id"]
    for path in (
        "/providers",
        "/locations",
        "/resources",
        "/visit_reasons",
        "/appointments",
        "/claims",
        "/charges",
        "/payments",
        "/remittances",
        "/statements",
    ):
        r = await live.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.json()["data"], path
    for path in ("/encounters", "/labs", "/immunizations", "/documents", "/balances"):
        r = await live.get(path, patient_id=patient)
        assert r.status_code == 200, (path, r.text)
        assert all(item.get("patient_id", patient) == patient for item in r.json()["data"])
    eligibility = await live.get("/eligibility", patient_id=patient)
    assert eligibility.status_code == 200, eligibility.text
    assert eligibility.json()["patient_id"] == patient
    assert eligibility.json()["status"] in {"complete", "failed", "pending"}
    claims = (await live.get("/claims", limit=1)).json()["data"]
    one = await live.get(f"/claims/{claims[0]['id']}")
    assert one.status_code == 200
    assert one.json()["id"] == claims[0]["id"]
    assert one.json()["status_history"]


async def test_rate_limit_headers_and_upstream_health(live: Live) -> None:
    r = await live.get("/patients", limit=1)
    # the caller's own quota, per key ...
    assert r.headers["ratelimit-policy"] == '"key";q=600;w=60'
    assert r.headers["ratelimit"].startswith('"key";r=')
    # ... and, apart from it, the tenant's upstream budget (requests a second)
    assert int(r.headers["x-upstream-ratelimit-limit"]) > 0
    assert (
        0
        <= int(r.headers["x-upstream-ratelimit-remaining"])
        <= int(r.headers["x-upstream-ratelimit-limit"])
    )
    health = (await live.get("/health/upstream")).json()
    assert health["connected"] is True
    assert set(health["brokers"]) >= {"v2", "portal"}
    assert health["throttle"]["rate"] > 0
    assert "drift" in health
    text = str(health)
    for secret in from_sandbox(credentials(live.sandbox))[1].values():
        assert secret not in text


async def _flow(live: Live) -> None:
    patient = (await live.get("/patients", limit=1)).json()["data"][0]["id"]
    body = await book_body(live, patient)
    writes = live.upstream.writes()

    created = await live.post("/create_appointment", body, idem="book-1")
    assert created.status_code == 201, created.text
    assert created.json()["confirmation"] == "confirmed"
    appointment = created.json()["data"]
    assert appointment["patient_id"] == patient
    assert appointment["status"] == "scheduled"
    assert live.upstream.writes() == writes + 1

    replay = await live.post("/create_appointment", body, idem="book-1")
    assert replay.status_code == 201
    assert replay.json() == created.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert live.upstream.writes() == writes + 1

    reused = await live.post("/create_appointment", body | {"comments": "x"}, idem="book-1")
    assert reused.status_code == 422
    assert reused.json()["type"].endswith("idempotency-key-reused")

    taken = await live.post("/create_appointment", body, idem="book-2")
    assert taken.status_code == 409, taken.text
    assert taken.headers["content-type"] == "application/problem+json"

    listed = await live.get("/appointments", patient_id=patient, max_age=3600)
    assert appointment["id"] in {a["id"] for a in listed.json()["data"]}

    for verb, status in (("/check_in", "arrived"), ("/check_out", "checked_out")):
        r = await live.post(verb, {"appointment_id": appointment["id"]})
        assert r.status_code == 200, (verb, r.text)
        assert r.json()["data"]["status"] == status
        assert r.json()["confirmation"] == "confirmed"

    provider = (await live.get("/providers")).json()["data"][0]["id"]
    encounter = await live.post(
        "/create_encounter",
        {
            "patient_id": patient,
            "provider_id": provider,
            "chief_complaint": "cough",
            "note": {"subjective": "three days of cough", "plan": "rest"},
            "diagnoses": ["J06.9"],
            "procedures": [{"code": "99213", "units": 1}],
        },
    )
    assert encounter.status_code == 201, encounter.text
    assert encounter.json()["data"]["status"] == "open"
    signed = await live.post("/sign_encounter", {"encounter_id": encounter.json()["data"]["id"]})
    assert signed.status_code == 200, signed.text
    assert signed.json()["data"]["status"] == "signed"
    again = await live.post("/sign_encounter", {"encounter_id": encounter.json()["data"]["id"]})
    assert again.status_code == 409, again.text

    charge = await live.post(
        "/create_charge",
        {
            "patient_id": patient,
            "procedure_code": "99213",
            "diagnosis_codes": ["J06.9"],
            "service_date": "2026-11-24",
            "provider_id": provider,
        },
    )
    assert charge.status_code == 201, charge.text
    claim = await live.post(
        "/submit_claim", {"patient_id": patient, "charge_ids": [charge.json()["data"]["id"]]}
    )
    assert claim.status_code == 201, claim.text
    assert claim.json()["data"]["status"] in {"submitted", "accepted", "pending", "scrubbed"}
    assert claim.json()["confirmation"] == "confirmed"

    ledger = await live.deployment.ledger.entries("ten_a")
    assert [(e["operation"], e["state"]) for e in ledger] == [
        ("create_appointment", "confirmed"),
        ("create_appointment", "rejected"),
        ("check_in", "confirmed"),
        ("check_out", "confirmed"),
        ("create_encounter", "confirmed"),
        ("sign_encounter", "confirmed"),
        ("sign_encounter", "rejected"),
        ("create_charge", "confirmed"),
        ("submit_claim", "confirmed"),
    ]
    assert await live.deployment.ledger.entries("ten_b") == []

    audit = (await live.get("/audit_events", limit=500)).json()["data"]
    routes = {e["route"] for e in audit}
    assert {"GET /patients", "POST /create_appointment", "POST /submit_claim"} <= routes
    assert all(patient in e["patient_ids"] for e in audit if e["route"] == "POST /check_in")
    assert (await verify(live.deployment.engine, live.deployment.vault, "ten_a")).intact


async def test_writes_are_idempotent_ledgered_and_read_back(live: Live) -> None:
    await _flow(live)


@pytest.mark.postgres
async def test_the_flow_on_postgresql(pg_url: str) -> None:
    async with running(pg_url) as on_postgres:
        await _flow(on_postgres)


async def test_200_concurrent_duplicates_make_one_upstream_write(live: Live) -> None:
    patient = (await live.get("/patients", limit=1)).json()["data"][0]["id"]
    body = await book_body(live, patient, nth=3)
    before = live.upstream.seen["POST /v2/appointments"]
    answers: list[httpx.Response] = []

    async def one() -> None:
        answers.append(await live.post("/create_appointment", body, idem="same-key"))

    async with anyio.create_task_group() as group:
        for _ in range(200):
            group.start_soon(one)

    assert live.upstream.seen["POST /v2/appointments"] == before + 1
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {201, 409}, set(statuses)
    assert statuses.count(201) >= 1
    created = [a.json() for a in answers if a.status_code == 201]
    assert all(c == created[0] for c in created)
    in_flight = [a.json() for a in answers if a.status_code == 409]
    assert all(p["type"].endswith("idempotency-key-in-flight") for p in in_flight)
    ledger = await live.deployment.ledger.entries("ten_a")
    assert [e["operation"] for e in ledger] == ["create_appointment"]
    later = await live.post("/create_appointment", body, idem="same-key")
    assert later.status_code == 201
    assert later.json() == created[0]


async def test_operators_onboard_tenants_and_secrets_stay_sealed(
    live: Live, tmp_path: Path
) -> None:
    settings, secrets = from_sandbox(credentials(live.sandbox), practice=1)
    operator = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"id": "ten_c", "name": "Clinic C", "settings": settings, "secrets": secrets}

    assert (await live.client.post("/tenants", json=body)).status_code == 401
    wrong = {"Authorization": f"Bearer {live.keys['admin_a']}"}
    assert (await live.client.post("/tenants", json=body, headers=wrong)).status_code == 401
    lacking = body | {"id": "ten_d", "secrets": {"v2.client_id": "x"}}
    refused = await live.client.post("/tenants", json=lacking, headers=operator)
    assert refused.status_code == 422  # well-formed, but a secret is missing
    assert "secrets.v2.refresh_token" in refused.json()["detail"]

    added = await live.client.post("/tenants", json=body, headers=operator)
    assert added.status_code == 201, added.text
    assert added.json()["sealed_secrets"] == sorted(secrets)
    assert not any(value in added.text for value in secrets.values())
    again = await live.client.post("/tenants", json=body, headers=operator)
    assert again.status_code == 409

    await live.key("ten_c", "patient.read", "reader_c")
    read = await live.get("/patients", key="reader_c", limit=2)
    assert read.status_code == 200
    assert read.json()["data"]

    await live.deployment.engine.dispose()  # flush WAL pages into the file we scan
    raw = b"".join(
        path.read_bytes() for path in tmp_path.iterdir() if path.name.startswith("store.db")
    )
    for value in secrets.values():
        for line in value.splitlines():
            if len(line) >= 12:
                assert line.encode() not in raw


async def test_openapi_documents_the_seven_seed_endpoints_with_examples(live: Live) -> None:
    spec = (await live.client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    seven = {
        ("post", "/authenticate"),
        ("get", "/patients"),
        ("get", "/appointments"),
        ("post", "/create_appointment"),
        ("get", "/encounters"),
        ("post", "/submit_claim"),
        ("get", "/eligibility"),
    }
    assert all(method in spec["paths"].get(path, {}) for method, path in seven)
    schemas = spec["components"]["schemas"]
    for name in ("CreateAppointment", "SubmitClaim", "CreateEncounter", "CreateCharge"):
        assert schemas[name]["examples"], name
        assert schemas[name]["additionalProperties"] is False, name
    sign_in = spec["paths"]["/authenticate"]["post"]["requestBody"]["content"]
    assert sign_in["application/json"]["examples"]
    # the documented examples are valid requests
    example = schemas["CreateAppointment"]["examples"][0]
    reply = await live.post("/create_appointment", example)
    assert reply.status_code == 404  # well-formed; its ids are not this tenant's


async def test_every_change_becomes_one_ordered_event(live: Live) -> None:
    await _all(live, "/patients")
    first = (await live.get("/events", limit=500)).json()["data"]
    patients = [e for e in first if e["type"] == "patient.created"]
    truth = live.truth("SELECT COUNT(*) AS n FROM patients WHERE practice_id = 1")[0]["n"]
    assert len(patients) == truth
    assert [e["seq"] for e in first] == list(range(1, len(first) + 1))

    again = await _all(live, "/patients", max_age=0)  # read again, nothing changed upstream
    assert again
    assert (await live.get("/events", after=first[-1]["seq"])).json()["data"] == []

    patient = patients[0]["entity_id"]
    body = await book_body(live, patient, nth=5)
    booked = await live.post("/create_appointment", body, idem="evt-1")
    appointment = booked.json()["data"]["id"]
    await live.post("/check_in", {"appointment_id": appointment})
    mine = (await live.get("/events", after=first[-1]["seq"], types=["appointment.*"])).json()[
        "data"
    ]
    assert [e["type"] for e in mine if e["entity_id"] == appointment] == [
        "appointment.created",
        "appointment.checked_in",
    ]
    assert mine[-1]["diff"]["status"] == ["scheduled", "arrived"]
    assert mine[-1]["patient_id"] == patient
    bad = await live.get("/events", types=["appointment.exploded"])
    assert bad.status_code == 422  # well-formed, but not an event type
    assert [e["field"] for e in bad.json()["errors"]] == ["types"]
    other = (await live.get("/events", key="admin_b")).json()["data"]
    assert not {e["entity_id"] for e in other} & {e["entity_id"] for e in first}


async def _control(live: Live, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(transport=live.upstream.inner, base_url=SANDBOX) as sandbox:
        reply = await sandbox.request(method, path, json=body)
    assert reply.is_success, reply.text
    return reply.json() if reply.content else None


async def test_breaking_drift_and_a_failing_stream_are_announced_as_events(live: Live) -> None:
    synced = await live.post("/sync", {"streams": ["providers", "locations"]})
    assert synced.status_code == 200, synced.text
    before = (await live.get("/events", limit=500)).json()["data"]
    start = before[-1]["seq"] if before else 0

    await _control(
        live,
        "POST",
        "/_sandbox/drift",
        {"endpoint": "GET /v2/providers", "retype": {"providers": "string"}},
    )
    await _control(
        live,
        "POST",
        "/_sandbox/faults",
        {"pattern": "/v2/locations", "status": 500, "error_rate": 1.0},
    )
    report = (await live.post("/sync", {"streams": ["providers", "locations"]})).json()
    assert report["ok"] is False
    announced = (await live.get("/events", after=start, limit=500)).json()["data"]
    kinds = {(e["type"], e["entity_id"]) for e in announced}
    assert ("integration.degraded", "locations") in kinds
    assert ("upstream.drift", "GET /v2/providers") in kinds
    drift = next(e for e in announced if e["type"] == "upstream.drift")
    assert drift["diff"]["breaking"] >= 1

    again = (await live.post("/sync", {"streams": ["providers"]})).json()
    assert again["ok"] is False
    later = (await live.get("/events", after=announced[-1]["seq"], limit=500)).json()["data"]
    assert not [e for e in later if e["type"] == "upstream.drift"]  # announced once


async def test_reads_right_after_a_sync_are_served_from_the_store(live: Live) -> None:
    synced = await live.post("/sync", {"streams": ["patients", "claims"]})
    assert synced.status_code == 200
    assert synced.json()["ok"] is True
    reads = _upstream_reads(live)
    patients = await live.get("/patients", limit=5)
    claims = await live.get("/claims", limit=5)
    assert patients.json()["data"]
    assert claims.json()["data"]
    assert _upstream_reads(live) == reads  # no read-through: the sync made them fresh
    assert patients.headers["age"] == "0"


async def test_a_reconciliation_sweep_finds_what_the_cursor_missed(live: Live) -> None:
    assert (await live.post("/sync", {"streams": ["claims"]})).json()["ok"] is True
    async with httpx.AsyncClient(transport=live.upstream.inner, base_url=SANDBOX) as sandbox:
        moved = await sandbox.post("/_sandbox/clock/advance", json={"minutes": 2 * 24 * 60})
    assert moved.is_success
    # a cursor that ran ahead of the upstream (a clock jump, a lost page): it misses changes
    async with live.deployment.engine.begin() as conn:
        await conn.execute(
            freshness.update()
            .where(freshness.c.tenant_id == "ten_a", freshness.c.scope == "sync:claims")
            .values(cursor={"high_water": (live.clock.now() + timedelta(days=30)).isoformat()})
        )
    missed = (await live.post("/sync", {"streams": ["claims"]})).json()
    assert missed["streams"]["claims"]["changed"] == 0
    swept = (await live.post("/sync", {"streams": ["claims"], "reconcile_hours": 72})).json()
    assert swept["streams"]["claims"]["changed"] > 0
    stored = {c["id"]: c["status"] for c in await _all(live, "/claims", max_age=86_400)}
    truth = live.truth("SELECT status FROM claims WHERE practice_id = 1")
    assert sorted(stored.values()) == sorted(t["status"] for t in truth)
    bad = await live.post("/sync", {"streams": ["claims"], "reconcile_hours": 0})
    assert bad.status_code == 422


async def test_unfiltered_encounters_on_a_fresh_tenant_list_the_tenants_encounters(
    live: Live,
) -> None:
    # nothing read yet: neither a patient's chart nor a sync has filled the store
    listed = await _all(live, "/encounters")
    truth = live.truth("SELECT COUNT(*) AS n FROM encounters WHERE practice_id = 1")[0]["n"]
    assert truth > 0
    assert len(listed) == truth
    assert len({e["id"] for e in listed}) == truth
    assert {e["patient_id"] for e in listed} <= {p["id"] for p in await _all(live, "/patients")}
    reads = _upstream_reads(live)
    assert len(await _all(live, "/encounters")) == truth  # fresh now: from the store
    assert _upstream_reads(live) == reads
    theirs = await _all(live, "/encounters", key="admin_b")
    assert not {e["id"] for e in theirs} & {e["id"] for e in listed}
