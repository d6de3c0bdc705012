"""The read routes: keys and scopes, tenant isolation, paging, problems, and the audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support import factories

from carebridge.api.app import create_app
from carebridge.domain import PatientId
from carebridge.services.keys import mint, parse_scopes
from carebridge.services.reads import Reads
from carebridge.store import entities, migrate
from carebridge.store import tenants as repo
from carebridge.store.adapters import SqlAudit, SqlKeys, SqlRecords
from carebridge.store.audit import verify
from carebridge.store.engine import create_engine
from carebridge.store.schema import tenants
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
VAULT = Vault(KeyRing({"k1": bytes(KEY_BYTES)}, "k1"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Api:
    client: httpx.AsyncClient
    engine: AsyncEngine
    keys: dict[str, str]
    patient_ids: list[str]


async def _key(engine: AsyncEngine, tenant: str, scopes: str, key_id: str) -> str:
    minted = mint()
    await repo.add_key(
        engine,
        key_id=key_id,
        tenant_id=tenant,
        prefix=minted.prefix,
        secret_hash=minted.secret_hash,
        scopes=parse_scopes(scopes),
        label="",
        now=NOW,
    )
    return minted.display


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    base = factories.patient()
    patients = [
        factories.changed(
            base,
            id=PatientId.new(f"p{i}"),
            name=factories.changed(base.name, first=f"Test{i:02d}"),
            coverages=[],
            balances=[],
        )
        for i in range(12)
    ]
    async with engine.begin() as conn:
        for tenant in ("ten_a", "ten_b"):
            await conn.execute(
                tenants.insert().values(
                    id=tenant, name=tenant, upstream="carecloud", settings={}, created_at=NOW
                )
            )
        await entities.upsert(conn, "ten_a", "patient", patients, fetched_at=NOW)
        await entities.upsert(conn, "ten_b", "patient", patients[:1], fetched_at=NOW)
        await entities.upsert(conn, "ten_a", "encounter", [factories.encounter()], fetched_at=NOW)
        await entities.upsert(conn, "ten_a", "claim", [factories.claim()], fetched_at=NOW)
    keys = {
        "reader": await _key(
            engine, "ten_a", "patient.read,appointment.read,encounter.read,claim.read", "key_reader"
        ),
        "scheduler": await _key(engine, "ten_a", "appointment.write", "key_scheduler"),
        "other": await _key(engine, "ten_b", "patient.read,claim.read", "key_other"),
        "auditor": await _key(engine, "ten_a", "audit.read", "key_auditor"),
    }
    audit = SqlAudit(engine, VAULT)
    app = create_app(Reads(SqlRecords(engine), audit, clock=lambda: NOW), SqlKeys(engine), audit)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as client:
        yield Api(client, engine, keys, sorted(str(p.id) for p in patients))
    await engine.dispose()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_patients_page_by_cursor_and_every_read_is_audited(api: Api) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        r = await api.client.get("/patients", params=params, headers=_auth(api.keys["reader"]))
        assert r.status_code == 200
        body = r.json()
        seen.extend(p["id"] for p in body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == api.patient_ids
    chain = await verify(api.engine, VAULT, "ten_a")
    assert (chain.entries, chain.intact) == (3, True)


async def test_filters_by_name_and_birth_date(api: Api) -> None:
    name = f"{factories.patient().name.last}, Test03"
    r = await api.client.get("/patients", params={"name": name}, headers=_auth(api.keys["reader"]))
    assert r.status_code == 200, r.text
    assert [p["name"]["first"] for p in r.json()["data"]] == ["Test03"]
    r = await api.client.get(
        "/patients", params={"dob": "1999-01-01"}, headers=_auth(api.keys["reader"])
    )
    assert r.json()["data"] == []
    r = await api.client.get(
        "/patients", params={"dob": "1980-01-01"}, headers=_auth(api.keys["reader"])
    )
    assert len(r.json()["data"]) == 12


async def test_another_tenants_patient_is_not_found(api: Api) -> None:
    mine = api.patient_ids[5]
    r = await api.client.get(f"/patients/{mine}", headers=_auth(api.keys["other"]))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 404
    ok = await api.client.get(f"/patients/{mine}", headers=_auth(api.keys["reader"]))
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer nonsense"}, 401),
        ({"Authorization": "Bearer cbk_AAAAAAAAAAAA_" + "x" * 43}, 401),
    ],
)
async def test_missing_or_bad_keys_are_401_problems(
    api: Api, headers: dict[str, str], status: int
) -> None:
    r = await api.client.get("/patients", headers=headers)
    assert r.status_code == status
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["title"] == "Unauthorized"


async def test_a_revoked_key_stops_working(api: Api) -> None:
    assert await repo.revoke_key(api.engine, "ten_a", "key_reader", now=NOW)
    r = await api.client.get("/patients", headers=_auth(api.keys["reader"]))
    assert r.status_code == 401


async def test_a_missing_scope_is_403(api: Api) -> None:
    r = await api.client.get("/patients", headers=_auth(api.keys["scheduler"]))
    assert r.status_code == 403
    assert "patient.read" in r.json()["detail"]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"limit": 0}, 422, "limit"),
        ({"limit": "many"}, 422, "limit"),
        ({"dob": "03/14/1984"}, 422, "dob"),
        ({"updated_since": "yesterday"}, 422, "updated_since"),
        ({"cursor": "%%%"}, 400, "cursor"),
    ],
)
async def test_bad_query_parameters_are_problems_naming_the_field(
    api: Api, params: dict[str, str | int], status: int, field: str
) -> None:
    r = await api.client.get("/patients", params=params, headers=_auth(api.keys["reader"]))
    assert r.status_code == status
    body = r.json()
    assert body["status"] == status
    assert field in [e["field"] for e in body["errors"]]


async def test_appointments_read_in_a_window(api: Api) -> None:
    start = (NOW - timedelta(days=1)).isoformat()
    r = await api.client.get(
        "/appointments", params={"start": start}, headers=_auth(api.keys["reader"])
    )
    assert r.status_code == 200
    assert r.json() == {"data": [], "has_more": False, "next_cursor": None}


async def test_health_and_openapi(api: Api) -> None:
    assert (await api.client.get("/health")).json() == {"status": "ok"}
    spec = (await api.client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert "/patients" in spec["paths"]


async def test_audit_events_show_who_read_which_patients(api: Api) -> None:
    mine = api.patient_ids[3]
    assert (
        await api.client.get(f"/patients/{mine}", headers=_auth(api.keys["reader"]))
    ).status_code == 200
    await api.client.get(f"/patients/{mine}", headers=_auth(api.keys["other"]))  # 404: no entry
    r = await api.client.get("/audit_events", headers=_auth(api.keys["auditor"]))
    assert r.status_code == 200
    events = r.json()["data"]
    assert [(e["principal"], e["route"], e["patient_ids"]) for e in events] == [
        ("key_reader", "GET /patients/{id}", [mine])
    ]
    assert (
        await api.client.get("/audit_events", headers=_auth(api.keys["reader"]))
    ).status_code == 403
    assert all(e["id"] == f"aud_{e['seq']}" for e in events)
    paged = await api.client.get(
        "/audit_events", params={"after": events[-1]["seq"]}, headers=_auth(api.keys["auditor"])
    )
    assert paged.json() == {"data": [], "has_more": False, "next_cursor": None}
    previous = await api.client.get(
        "/audit_events",
        params={"after": events[-1]["seq"]},
        headers=_auth(api.keys["auditor"]) | {"Carebridge-Version": "0"},
    )
    assert previous.json() == {"data": [], "next_after": None}  # the shape before v1
    assert previous.headers["carebridge-version"] == "0"


async def test_encounters_and_claims_are_served_with_their_detail(api: Api) -> None:
    encounter, claim = factories.encounter(), factories.claim()
    r = await api.client.get(
        "/encounters", params={"status": "signed"}, headers=_auth(api.keys["reader"])
    )
    assert r.status_code == 200
    assert [e["id"] for e in r.json()["data"]] == (
        [str(encounter.id)] if encounter.status == "signed" else []
    )
    r = await api.client.get("/encounters", headers=_auth(api.keys["reader"]))
    (served,) = r.json()["data"]
    assert served["diagnoses"] == encounter.model_dump(mode="json")["diagnoses"]
    r = await api.client.get(f"/claims/{claim.id}", headers=_auth(api.keys["reader"]))
    assert r.status_code == 200
    assert r.json()["status_history"] == claim.model_dump(mode="json")["status_history"]
    assert (
        await api.client.get(f"/claims/{claim.id}", headers=_auth(api.keys["other"]))
    ).status_code == 404
    bad = await api.client.get(
        "/encounters", params={"status": "deleted"}, headers=_auth(api.keys["reader"])
    )
    assert bad.status_code == 422
