"""Portal Charts: patient search and chart reads, encounter push, edit, sign and addenda."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from tests.support.sandbox import LiveTenant, add_portal_user, portal_login, portal_persona

from carecloud_sandbox import personas

API = "/portal/api"


@pytest.fixture(scope="module")
def portal(live: LiveTenant) -> Iterator[httpx.Client]:
    """The persona front desk, signed in (CSRF header set)."""
    with live.client() as c:
        portal_login(live, c, portal_persona(live))
        yield c


def _error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code, r.text
    return error


def _changes(live: LiveTenant, entity: str) -> list[dict[str, Any]]:
    rows = live.tenant.db.all(
        "SELECT * FROM change_log WHERE entity = ? AND source = 'portal' ORDER BY seq", (entity,)
    )
    return [dict(r) for r in rows]


# --- reads --------------------------------------------------------------------------------------


def test_patients_page_with_totals(portal: httpx.Client, live: LiveTenant) -> None:
    r = portal.get(f"{API}/patients", params={"pageSize": 7, "page": 2})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"items", "page", "pageSize", "totalItems", "totalPages"}
    total = live.tenant.db.scalar("SELECT COUNT(*) FROM patients WHERE practice_id = 1")
    assert body["totalItems"] == total
    assert body["totalPages"] == -(-total // 7)
    assert (body["page"], body["pageSize"], len(body["items"])) == (2, 7, 7)
    first = portal.get(f"{API}/patients", params={"pageSize": 7}).json()["items"]
    assert not {p["chartNumber"] for p in first} & {p["chartNumber"] for p in body["items"]}
    beyond = portal.get(f"{API}/patients", params={"page": 999}).json()
    assert beyond["items"] == []


def test_patients_search_by_chart_number_and_name(portal: httpx.Client) -> None:
    jordan = personas.JORDAN
    by_chart = portal.get(f"{API}/patients", params={"search": jordan.chart_number}).json()
    assert [p["chartNumber"] for p in by_chart["items"]] == [jordan.chart_number]
    by_name = portal.get(f"{API}/patients", params={"search": "sandbox, jor"}).json()
    assert [p["firstName"] for p in by_name["items"]] == ["Jordan"]
    family = portal.get(f"{API}/patients", params={"search": "Sandbox"}).json()
    assert {p["firstName"] for p in family["items"]} >= {"Jordan", "Casey", "Mia"}
    odd = portal.get(f"{API}/patients", params={"search": "%_\\"}).json()
    assert odd["items"] == []


def test_paging_parameters_are_validated(portal: httpx.Client) -> None:
    for params, field in (
        ({"pageSize": 0}, "pageSize"),
        ({"pageSize": 101}, "pageSize"),
        ({"page": "x"}, "page"),
        ({"updatedSince": "yesterday"}, "updatedSince"),
    ):
        error = _error(portal.get(f"{API}/patients", params=params), 422, "validation_failed")
        assert error["field"] == field


def test_patient_summary_has_the_rcm_account_number(portal: httpx.Client, live: LiveTenant) -> None:
    r = portal.get(f"{API}/patients/{personas.JORDAN.chart_number}")
    assert r.status_code == 200
    body = r.json()
    account = live.tenant.db.scalar(
        "SELECT account_number FROM patients WHERE id = ?", (personas.JORDAN.id,)
    )
    assert body["rcmAccountNumber"] == account
    assert body["dateOfBirth"] == personas.JORDAN.dob.isoformat()
    assert body["insurance"][0]["priority"] == 1
    assert set(body["balance"]) == {"patient", "insurance", "total"}
    assert set(body["counts"]) == {
        "activeProblems",
        "activeMedications",
        "activeAllergies",
        "openEncounters",
    }
    _error(portal.get(f"{API}/patients/NOPE-1"), 404, "not_found")


def _busiest_patient(live: LiveTenant, table: str) -> str:
    chart = live.tenant.db.scalar(
        f"SELECT p.chart_number FROM {table} t JOIN patients p ON p.id = t.patient_id "
        "WHERE p.practice_id = 1 GROUP BY p.id ORDER BY COUNT(*) DESC LIMIT 1"
    )
    assert chart is not None
    return str(chart)


@pytest.mark.parametrize(
    ("path", "table", "key"),
    [
        ("encounters", "encounters", "status"),
        ("problems", "problems", "code"),
        ("medications", "medications", "rxnormCode"),
        ("allergies", "allergies", "allergenCode"),
        ("labs", "lab_results", "loincCode"),
        ("immunizations", "immunizations", "cvxCode"),
        ("vitals", "vitals", "systolicMmHg"),
    ],
)
def test_chart_lists(
    portal: httpx.Client, live: LiveTenant, path: str, table: str, key: str
) -> None:
    chart = _busiest_patient(live, table)
    r = portal.get(f"{API}/patients/{chart}/{path}", params={"pageSize": 100})
    assert r.status_code == 200, r.text
    body = r.json()
    patient_id = live.tenant.db.scalar("SELECT id FROM patients WHERE chart_number = ?", (chart,))
    count = live.tenant.db.scalar(
        f"SELECT COUNT(*) FROM {table} WHERE patient_id = ?", (patient_id,)
    )
    assert body["totalItems"] == count > 0
    assert all(key in item and "updatedAt" in item for item in body["items"])
    newest = max(item["updatedAt"] for item in body["items"])
    since = portal.get(f"{API}/patients/{chart}/{path}", params={"updatedSince": newest}).json()
    assert since["totalItems"] == 0


def test_labs_carry_loinc_and_immunizations_cvx(portal: httpx.Client, live: LiveTenant) -> None:
    labs = portal.get(f"{API}/patients/{_busiest_patient(live, 'lab_results')}/labs").json()
    assert all(lab["loincCode"].count("-") == 1 for lab in labs["items"])
    shots = portal.get(
        f"{API}/patients/{_busiest_patient(live, 'immunizations')}/immunizations"
    ).json()
    assert all(s["cvxCode"].isdigit() for s in shots["items"])


def test_encounter_detail(portal: httpx.Client, live: LiveTenant) -> None:
    encounter_id = live.tenant.db.scalar(
        "SELECT id FROM encounters WHERE practice_id = 1 AND status = 'signed' ORDER BY id LIMIT 1"
    )
    r = portal.get(f"{API}/encounters/{encounter_id}")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "signed"
    assert body["signedAt"]
    assert body["signedBy"]["npi"]
    assert set(body["notes"]) == {"subjective", "objective", "assessment", "plan"}
    assert body["diagnoses"][0]["rank"] == 1
    assert body["procedures"]
    assert body["vitals"]
    assert body["addenda"] == []
    _error(portal.get(f"{API}/encounters/999999999"), 404, "not_found")
    _error(portal.get(f"{API}/encounters/abc"), 404, "not_found")
    other = live.tenant.db.scalar("SELECT id FROM encounters WHERE practice_id = 2 LIMIT 1")
    _error(portal.get(f"{API}/encounters/{other}"), 404, "not_found")


# --- writes -------------------------------------------------------------------------------------


def _push(portal: httpx.Client, **extra: Any) -> httpx.Response:
    body = {
        "chartNumber": personas.CASEY.chart_number,
        "providerId": personas.PROVIDER_ID,
        "type": "office_visit",
        "chiefComplaint": "Sore throat",
        "notes": {"subjective": "Sore throat for two days."},
        "diagnoses": [{"code": "J02.9"}],
        "procedures": [{"code": "99213", "units": 1}, {"code": "87880"}],
        **extra,
    }
    return portal.post(f"{API}/encounters", json=body)


def test_push_edit_sign_then_locked(portal: httpx.Client, live: LiveTenant) -> None:
    r = _push(portal)
    assert r.status_code == 201, r.text
    created = r.json()
    encounter_id = created["id"]
    assert created["status"] == "open"
    assert created["diagnoses"][0]["description"] == "Acute pharyngitis, unspecified"
    assert created["notes"]["subjective"] == "Sore throat for two days."
    live.clock.advance(timedelta(seconds=60))
    r = portal.patch(
        f"{API}/encounters/{encounter_id}",
        json={"notes": {"plan": "Fluids, rest."}, "diagnoses": ["J02.0"]},
    )
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["notes"] == {
        "subjective": "Sore throat for two days.",
        "objective": "",
        "assessment": "",
        "plan": "Fluids, rest.",
    }
    assert edited["updatedAt"] > created["updatedAt"]
    r = portal.post(f"{API}/encounters/{encounter_id}/sign", json={})
    assert r.status_code == 200, r.text
    signed = r.json()
    assert signed["status"] == "signed"
    assert signed["signedBy"]["id"] == personas.PROVIDER_ID
    assert len(signed["chargeIds"]) == 2  # the superbill landed on the ledger
    error = _error(
        portal.patch(f"{API}/encounters/{encounter_id}", json={"chiefComplaint": "x"}),
        423,
        "encounter_locked",
    )
    assert "field" not in error
    _error(portal.post(f"{API}/encounters/{encounter_id}/sign"), 409, "invalid_transition")
    actions = [
        c["action"] for c in _changes(live, "encounter") if c["entity_id"] == str(encounter_id)
    ]
    assert actions == ["create", "update", "sign"]
    assert len(_changes(live, "charge")) >= 2
    listed = portal.get(f"{API}/patients/{personas.CASEY.chart_number}/encounters").json()
    assert encounter_id in [e["id"] for e in listed["items"]]


def test_addenda_go_on_signed_encounters_only(portal: httpx.Client, live: LiveTenant) -> None:
    open_id = _push(portal).json()["id"]
    _error(
        portal.post(f"{API}/encounters/{open_id}/addenda", json={"text": "late"}),
        409,
        "invalid_transition",
    )
    signed_id = live.tenant.db.scalar(
        "SELECT id FROM encounters WHERE practice_id = 1 AND status = 'signed' ORDER BY id DESC LIMIT 1"
    )
    r = portal.post(f"{API}/encounters/{signed_id}/addenda", json={"text": "Result reviewed."})
    assert r.status_code == 201, r.text
    addenda = r.json()["addenda"]
    assert addenda[-1]["text"] == "Result reviewed."
    assert addenda[-1]["author"]["id"]
    error = _error(
        portal.post(f"{API}/encounters/{signed_id}/addenda", json={}), 422, "validation_failed"
    )
    assert error["field"] == "text"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"chartNumber": "NOPE"}, "chartNumber"),
        ({"providerId": 1}, "providerId"),
        ({"providerId": "40483"}, "providerId"),
        ({"type": "house_call"}, "type"),
        ({"diagnoses": [{"code": "not-icd"}]}, "diagnoses[0].code"),
        ({"diagnoses": "J02.9"}, "diagnoses"),
        ({"procedures": [{"code": "99213", "units": 0}]}, "procedures[0].units"),
        ({"procedures": [{"code": "ABC"}]}, "procedures[0].code"),
        ({"procedures": [{"code": "99213", "modifiers": ["TOOLONG"]}]}, "procedures[0].modifiers"),
        ({"notes": {"feelings": "x"}}, "notes.feelings"),
        ({"startTime": "not a time"}, "startTime"),
        ({"locationId": 99}, "locationId"),
    ],
)
def test_encounter_push_validation_names_the_field(
    portal: httpx.Client, extra: dict[str, Any], field: str
) -> None:
    error = _error(_push(portal, **extra), 422, "validation_failed")
    assert error["field"] == field


def test_signing_needs_a_diagnosis(portal: httpx.Client) -> None:
    encounter_id = _push(portal, diagnoses=[]).json()["id"]
    error = _error(portal.post(f"{API}/encounters/{encounter_id}/sign"), 422, "validation_failed")
    assert error["field"] == "diagnoses"


def test_patch_refuses_unknown_fields(portal: httpx.Client) -> None:
    encounter_id = _push(portal).json()["id"]
    error = _error(
        portal.patch(f"{API}/encounters/{encounter_id}", json={"status": "signed"}),
        422,
        "validation_failed",
    )
    assert error["field"] == "status"


def test_chart_list_writes(portal: httpx.Client, live: LiveTenant) -> None:
    chart = f"{API}/patients/{personas.MIA.chart_number}"
    r = portal.post(f"{chart}/problems", json={"code": "j45.909", "onsetDate": "2025-02-01"})
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "Unspecified asthma, uncomplicated"
    r = portal.post(
        f"{chart}/medications",
        json={"rxnormCode": "745679", "name": "albuterol inhaler", "sig": "2 puffs as needed"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["startDate"] == "2026-11-24"
    allergy = {
        "allergenCode": "256349002",
        "allergenSystem": "snomed",
        "allergenName": "Peanut",
        "category": "food",
        "reaction": "Hives",
        "severity": "severe",
    }
    r = portal.post(f"{chart}/allergies", json=allergy)
    assert r.status_code == 201, r.text
    _error(portal.post(f"{chart}/allergies", json=allergy), 409, "duplicate")
    problems = portal.get(f"{chart}/problems").json()["items"]
    assert "J45.909" in [p["code"] for p in problems]
    for entity in ("problem", "medication", "allergy"):
        assert _changes(live, entity), entity
    for path, body, field in (
        ("problems", {"code": "bad"}, "code"),
        (
            "problems",
            {"code": "I10", "status": "resolved", "resolvedDate": "2020-13-01"},
            "resolvedDate",
        ),
        ("medications", {"rxnormCode": "abc", "name": "x", "sig": "y"}, "rxnormCode"),
        ("medications", {"rxnormCode": "1", "name": "x"}, "sig"),
        ("allergies", {**allergy, "severity": "deadly"}, "severity"),
        ("allergies", {**allergy, "allergenSystem": "rxnorm"}, "allergenCode"),
    ):
        error = _error(portal.post(f"{chart}/{path}", json=body), 422, "validation_failed")
        assert error["field"] == field, (path, body)


def test_writes_without_csrf_are_refused(live: LiveTenant, portal: httpx.Client) -> None:
    cookies = {"portal_session": portal.cookies.get("portal_session", path="/portal") or ""}
    with live.client(cookies=cookies) as bare:
        _error(bare.post(f"{API}/encounters", json={}), 403, "csrf_failed")
        assert bare.get(f"{API}/patients").status_code == 200


def test_a_user_sees_only_their_own_practice(live: LiveTenant) -> None:
    user = add_portal_user(live, "riverbend", practice_id=2)
    with live.client() as c:
        me = portal_login(live, c, user)["user"]
        assert me["practice"]["id"] == 2
        _error(c.get(f"{API}/patients/{personas.JORDAN.chart_number}"), 404, "not_found")
        charts = [p["chartNumber"] for p in c.get(f"{API}/patients").json()["items"]]
        practice2 = live.tenant.db.all("SELECT chart_number FROM patients WHERE practice_id = 2")
        assert set(charts) <= {r[0] for r in practice2}
        encounter = live.tenant.db.scalar("SELECT id FROM encounters WHERE practice_id = 1 LIMIT 1")
        _error(c.get(f"{API}/encounters/{encounter}"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("POST", "/encounters", b"[]"),
        ("POST", "/encounters", b'{"chartNumber": {"$ne": 1}}'),
        ("POST", "/encounters", b'{"chartNumber": "MG000001", "providerId": 99999999999999999999}'),
        (
            "POST",
            "/encounters",
            b'{"chartNumber": "MG000001", "startTime": "99999-01-01T00:00:00"}',
        ),
        ("PATCH", "/encounters/1", b'{"notes": "text"}'),
        ("PATCH", "/encounters/18446744073709551617", b"{}"),
        ("POST", "/patients/MG000001/problems", b'{"code": null}'),
        ("POST", "/patients/MG000001/medications", b'{"startDate": "2026-02-30"}'),
        ("GET", "/encounters/\u00b3", b""),
        ("GET", "/patients?pageSize=\u00b3", b""),
        ("GET", "/patients?page=" + "9" * 5000, b""),
        ("GET", "/patients/MG000001/labs?updatedSince=2026-99-01T00:00:00Z", b""),
        ("GET", "/patients?search=" + "x" * 200, b""),
    ],
)
def test_junk_writes_never_give_a_500(
    portal: httpx.Client, method: str, path: str, content: bytes
) -> None:
    r = portal.request(method, f"{API}{path}", content=content)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["code"]
