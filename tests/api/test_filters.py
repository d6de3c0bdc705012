"""Every list filter answers the records the emulator holds for it, not nothing.

A filter's query name is its records' field name (docs/api-conventions.md); where the store
indexes the field under another column (a patient's ``primary_provider_id`` fills
``provider_id``), the kinds registry says so and the filter reads that column. Each check
lists the tenant unfiltered, then filtered, and compares both with the emulator's own rows
(matched through each record's upstream id), so a filter on a column nobody fills (it answered
``[]``) fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.support.api import Live, running

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    db = tmp_path_factory.mktemp("filters") / "store.db"
    async with running(str(db), patients=8) as started:
        with started.sandbox.db.lock:  # one patient of each practice is no longer active
            started.sandbox.db.conn.execute(
                "UPDATE patients SET status = 'I' WHERE id IN "
                "(SELECT max(id) FROM patients GROUP BY practice_id)"
            )
        yield started


def upstream(record: dict[str, Any]) -> str:
    return str(record["sources"][0]["upstream_id"])


async def every(live: Live, path: str, **params: Any) -> list[dict[str, Any]]:
    reply = await live.get(path, limit=500, **params)
    assert reply.status_code == 200, (path, params, reply.text[:300])
    body = reply.json()
    assert body["has_more"] is False, path
    return list(body["data"])


async def ids(live: Live, path: str, **params: Any) -> set[str]:
    return {r["id"] for r in await every(live, path, **params)}


async def practice_of(live: Live) -> int:
    guid = upstream((await every(live, "/patients"))[0])
    return int(
        live.truth("SELECT practice_id FROM patients WHERE id = ?", (guid,))[0]["practice_id"]
    )


async def test_patients_filter_by_primary_provider_location_and_active(live: Live) -> None:
    patients = await every(live, "/patients")
    practice = await practice_of(live)
    truth = {
        row["id"]: row
        for row in live.truth("SELECT * FROM patients WHERE practice_id = ?", (practice,))
    }
    assert {upstream(p) for p in patients} == set(truth)
    by_guid = {upstream(p): p["id"] for p in patients}
    providers = {upstream(p): p["id"] for p in await every(live, "/providers")}
    locations = {upstream(p): p["id"] for p in await every(live, "/locations")}

    for column, field, ours in (
        ("primary_provider_id", "primary_provider_id", providers),
        ("primary_location_id", "primary_location_id", locations),
    ):
        upstream_values = {row[column] for row in truth.values() if row[column] is not None}
        assert upstream_values
        for value in upstream_values:
            expected = {by_guid[g] for g, row in truth.items() if row[column] == value}
            got = await ids(live, "/patients", **{field: ours[str(value)]})
            assert got == expected, (field, value)
            assert got  # not nothing
    active = {by_guid[g] for g, row in truth.items() if row["status"] == "A"}
    inactive = set(by_guid.values()) - active
    assert active
    assert inactive
    assert await ids(live, "/patients", active="true") == active
    assert await ids(live, "/patients", active="false") == inactive


async def test_the_old_patient_filter_names_still_answer_as_deprecated_aliases(live: Live) -> None:
    first = (await every(live, "/patients"))[0]
    pairs = (
        ({"primary_provider_id": first["primary_provider_id"]},
         {"provider_id": first["primary_provider_id"]}),
        ({"primary_location_id": first["primary_location_id"]},
         {"location_id": first["primary_location_id"]}),
        ({"active": "true"}, {"status": "active"}),
        ({"active": "false"}, {"status": "inactive"}),
    )  # fmt: skip
    for current, old in pairs:
        assert await ids(live, "/patients", **old) == await ids(live, "/patients", **current)
    both = await live.get(
        "/patients", provider_id=first["primary_provider_id"],
        primary_provider_id=first["primary_provider_id"],
    )  # fmt: skip
    assert both.status_code == 422
    assert [e["field"] for e in both.json()["errors"]] == ["provider_id"]
    assert (await live.get("/patients", active="maybe")).status_code == 422
    assert (await live.get("/patients", status="gone")).status_code == 422


async def test_payments_filter_by_kind_and_patient(live: Live) -> None:
    payments = await every(live, "/payments")
    practice = await practice_of(live)
    truth = {
        str(row["id"]): row
        for row in live.truth("SELECT * FROM payments WHERE practice_id = ?", (practice,))
    }
    assert {upstream(p) for p in payments} == set(truth)
    by_upstream = {upstream(p): p["id"] for p in payments}
    for kind in ("era", "patient"):
        expected = {by_upstream[i] for i, row in truth.items() if row["kind"] == kind}
        assert await ids(live, "/payments", kind=kind) == expected, kind
    assert await ids(live, "/payments", kind="era")  # the emulated tenant's ERAs
    patient = (await every(live, "/patients"))[0]
    mine = {by_upstream[i] for i, row in truth.items() if row["patient_id"] == upstream(patient)}
    assert await ids(live, "/payments", patient_id=patient["id"]) == mine
    refused = await live.get("/payments", status="posted")  # payments have no status
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["status"]


async def test_remittances_filter_by_patient_and_claim_status_code(live: Live) -> None:
    remittances = await every(live, "/remittances")
    assert remittances
    practice = await practice_of(live)
    truth = {
        f"{row['payment_id']}/{row['claim_number']}": row
        for row in live.truth(
            "SELECT r.payment_id, r.claim_status_code, c.claim_number, c.patient_id "
            "FROM remittances r JOIN claims c ON c.id = r.claim_id WHERE r.practice_id = ?",
            (practice,),
        )
    }
    assert {upstream(r) for r in remittances} == set(truth)
    by_upstream = {upstream(r): r["id"] for r in remittances}
    codes = {row["claim_status_code"] for row in truth.values()}
    assert len(codes) > 1  # paid and denied claims both
    for code in codes:
        expected = {by_upstream[k] for k, row in truth.items() if row["claim_status_code"] == code}
        assert await ids(live, "/remittances", claim_status_code=code) == expected, code
        assert await ids(live, "/remittances", status=code) == expected, code  # the old name
    patients = {upstream(p): p["id"] for p in await every(live, "/patients")}
    seen = 0
    for guid, patient_id in patients.items():
        expected = {by_upstream[k] for k, row in truth.items() if row["patient_id"] == guid}
        got = await ids(live, "/remittances", patient_id=patient_id)
        assert got == expected, patient_id
        seen += len(got)
        assert all(
            r["patient_id"] == patient_id
            for r in await every(live, "/remittances", patient_id=patient_id)
        )
    assert seen == len(remittances)  # every remittance names its claim's patient


async def test_documents_filter_by_active(live: Live) -> None:
    patients = await every(live, "/patients")
    practice = await practice_of(live)
    listed = 0
    for patient in patients:
        docs = await every(live, "/documents", patient_id=patient["id"])
        truth = {
            str(row["id"])
            for row in live.truth(
                "SELECT id FROM documents WHERE patient_id = ? AND practice_id = ? "
                "AND status = 'A'",
                (upstream(patient), practice),
            )
        }
        assert {upstream(d) for d in docs} == truth
        everything = {d["id"] for d in docs}
        assert await ids(live, "/documents", patient_id=patient["id"], active="true") == everything
        old = await ids(live, "/documents", patient_id=patient["id"], status="active")
        assert old == everything
        # the upstream lists a chart's active documents only (docs/api-conventions.md)
        assert await ids(live, "/documents", patient_id=patient["id"], active="false") == set()
        listed += len(everything)
    assert listed
