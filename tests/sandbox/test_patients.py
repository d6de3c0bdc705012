"""Patients of the v2 surface, over real HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
from tests.support.sandbox import LiveTenant

from carecloud_sandbox import personas


def test_show_by_guid_and_by_internal_id(api: httpx.Client) -> None:
    by_guid = api.get(f"/v2/patients/{personas.JORDAN.id}")
    by_number = api.get(f"/v2/patients/{personas.JORDAN.internal_id}")
    assert by_guid.status_code == 200
    assert by_guid.json() == by_number.json()
    patient = by_guid.json()["patient"]
    assert patient["first_name"] == personas.JORDAN.first_name
    assert patient["business_entity_id"] == personas.PRACTICE_GUID
    assert patient["insurance_profiles"][0]["insurance_policies"][0]["member_number"] == (
        personas.JORDAN.member_number
    )


def test_bad_guid_and_unknown_patient(api: httpx.Client) -> None:
    bad = api.get("/v2/patients/not-a-guid")
    assert (bad.status_code, bad.json()) == (400, {"error": "Patient ID must be a valid GUID."})
    unknown = api.get("/v2/patients/00000000-0000-4000-8000-000000000000")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Resource not found."})


def test_another_practices_patient_is_not_found(live: LiveTenant) -> None:
    with live.client(live.token(1)) as other:
        r = other.get(f"/v2/patients/{personas.JORDAN.id}")
    assert r.status_code == 404


def test_create_then_show_and_search(api: httpx.Client) -> None:
    created = api.post(
        "/v2/patients",
        json={
            "patient": {
                "first_name": "Taylor",
                "last_name": "Createtest",
                "gender_code": "F",
                "date_of_birth": "1990-05-06",
                "race_code": "bogus",
            },
            "phones": [{"phone_number": "312-555-0101", "is_primary": True}],
        },
    )
    assert created.status_code == 201
    guid = created.json()["patient"]
    shown = api.get(f"/v2/patients/{guid}").json()["patient"]
    assert shown["race_code"] is None, "an invalid code is dropped, not refused"
    found = api.post(
        "/v2/patients/search", json={"fields": {"last_name": "Createtest", "dob": "05/06/1990"}}
    )
    assert [p["id"] for p in found.json()["patients"]] == [guid]


def test_create_refuses_missing_names_and_bad_bodies(api: httpx.Client) -> None:
    missing = api.post("/v2/patients", json={"patient": {"first_name": "A"}})
    assert missing.status_code == 400
    assert missing.json()["error"].startswith("Patient Creation Failed - ")
    malformed = api.post(
        "/v2/patients", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    wrong_type = api.post("/v2/patients", json={"patient": "x"})
    assert wrong_type.status_code == 400
    future = api.post(
        "/v2/patients",
        json={"patient": {"first_name": "A", "last_name": "B", "date_of_birth": "2999-01-01"}},
    )
    assert future.status_code == 400
    huge = api.post(
        "/v2/patients",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413


def test_search_by_terms_matches_member_numbers_and_names(api: httpx.Client) -> None:
    by_member = api.post("/v2/patients/search", json={"terms": [personas.CASEY.member_number]})
    assert [p["id"] for p in by_member.json()["patients"]] == [personas.CASEY.id]
    by_name = api.post("/v2/patients/search", json={"terms": ["sandbox", "06/30/2016"]})
    assert [p["id"] for p in by_name.json()["patients"]] == [personas.MIA.id]


def test_search_refuses_bad_fields(api: httpx.Client) -> None:
    assert api.post("/v2/patients/search", json={"fields": {"shoe_size": "9"}}).status_code == 400
    assert (
        api.post("/v2/patients/search", json={"fields": {"dob": "1990-05-06"}}).status_code == 400
    )
    assert api.post("/v2/patients/search", json={"terms": "x"}).status_code == 400


def test_balance_rows_sum_to_the_ledger(api: httpx.Client, live: LiveTenant) -> None:
    patient = live.tenant.db.one(
        "SELECT patient_id FROM transactions WHERE practice_id = 1 GROUP BY patient_id "
        "HAVING SUM(amount_cents) > 0 LIMIT 1"
    )
    assert patient is not None
    rows = api.get(f"/v2/patients/{patient[0]}/balance").json()
    assert {r["balance_type"] for r in rows} == {"patient", "insurance"}
    total = sum(int(r["total"].replace(".", "")) for r in rows)
    ledger = live.tenant.db.scalar(
        "SELECT SUM(amount_cents) FROM transactions WHERE patient_id = ?", (patient[0],)
    )
    assert total == ledger


def test_transactions_window_and_charges_only(api: httpx.Client, live: LiveTenant) -> None:
    pid = live.tenant.db.scalar(
        "SELECT patient_id FROM transactions WHERE practice_id = 1 AND transaction_type != 'charge' LIMIT 1"
    )
    wide = api.get(
        f"/v2/patients/{pid}/transactions",
        params={"start_date": "2020-01-01", "end_date": "2026-12-31"},
    )
    assert wide.status_code == 200
    assert {t["transaction_type"] for t in wide.json()} > {"charge"}
    only = api.get(
        f"/v2/patients/{pid}/charges", params={"start_date": "2020-01-01", "end_date": "2026-12-31"}
    )
    assert {t["transaction_type"] for t in only.json()} == {"charge"}
    bad = api.get(f"/v2/patients/{pid}/transactions", params={"start_date": "2026-02-30"})
    assert bad.status_code == 400


def test_documents_map_sources_to_loinc_types(api: httpx.Client, live: LiveTenant) -> None:
    pid = live.tenant.db.scalar("SELECT patient_id FROM documents WHERE practice_id = 1 LIMIT 1")
    docs = api.get("/v2/documents", params={"patient_id": pid}).json()["documents"]
    assert docs
    loinc = {
        "Progress note": "11506-3",
        "Procedure Note": "28570-0",
        "History and Physical": "34117-2",
        "Consult note": "11488-4",
        "Discharge summary": "18842-5",
    }
    for doc in docs:
        assert doc["document_type"]["code"] == loinc[doc["document_source_name"]]
    one = api.get(f"/v2/document/{docs[0]['id']}")
    assert one.json()["document"] == docs[0]
    assert api.get("/v2/documents").status_code == 400
    assert (
        api.get("/v2/documents", params={"patient_id": pid, "date": "2026-02-31"}).status_code
        == 400
    )
    assert api.get("/v2/document/abc").status_code == 400


def test_another_practices_document_is_not_found(live: LiveTenant) -> None:
    doc_id = live.tenant.db.scalar("SELECT id FROM documents WHERE practice_id = 1 LIMIT 1")
    with live.client(live.token(1)) as other:
        assert other.get(f"/v2/document/{doc_id}").status_code == 404


def test_create_charge_lands_in_the_ledger_as_unbilled(api: httpx.Client) -> None:
    pid = personas.CASEY.id
    before = api.get(f"/v2/patients/{pid}/balance").json()
    r = api.post(
        f"/v2/patients/{pid}/charge",
        json={
            "charge": {
                "start_time": "2026-11-23T10:00:00",
                "end_time": "2026-11-23T10:20:00",
                "units": 1,
                "procedure_code": "99213",
                "diagnosis1_code": "J069",
                "diagnosis2_code": "R05.9",
            }
        },
    )
    assert r.status_code == 201
    assert set(r.json()[0]) == {"id", "encounter_id"}
    after = api.get(f"/v2/patients/{pid}/balance").json()
    unbilled = {row["balance_type"]: row["unbilled"] for row in after}
    was = {row["balance_type"]: row["unbilled"] for row in before}
    assert float(unbilled["insurance"]) - float(was["insurance"]) == 135.00


def test_charge_required_params_are_reported_together(api: httpx.Client) -> None:
    r = api.post(f"/v2/patients/{personas.CASEY.id}/charge", json={"charge": {"units": 1}})
    assert r.status_code == 400
    assert r.json() == {
        "error": "start_time: Required param. end_time: Required param. "
        "procedure_code: Required param. diagnosis1_code: Required param."
    }


def test_charge_refuses_future_dates_bad_codes_and_writes_nothing(
    api: httpx.Client, live: LiveTenant
) -> None:
    before = live.tenant.db.scalar("SELECT COUNT(*) FROM transactions")
    base = {
        "start_time": "2026-11-23T10:00:00",
        "end_time": "2026-11-23T10:20:00",
        "units": 1,
        "procedure_code": "99213",
        "diagnosis1_code": "I10",
    }
    for change in (
        {"end_time": "2027-01-01T00:00:00"},
        {"diagnosis1_code": "J06"},
        {"procedure_code": "00000"},
        {"units": "many"},
        {"icd_indicator": 11},
    ):
        r = api.post(
            f"/v2/patients/{personas.CASEY.id}/charge", json={"charge": {**base, **change}}
        )
        assert r.status_code == 400, change
    assert live.tenant.db.scalar("SELECT COUNT(*) FROM transactions") == before


def test_eligibility_request_is_pending_then_complete_as_the_clock_moves(
    api: httpx.Client, live: LiveTenant
) -> None:
    created = api.post(f"/v2/patients/{personas.JORDAN.id}/eligibility_request", json={})
    assert created.status_code == 201
    rid = created.json()["eligibility_request"]["id"]
    url = f"/v2/patients/{personas.JORDAN.id}/eligibility_request/{rid}"
    assert api.get(url).json()["eligibility_request"]["status"] == "pending"
    live.clock.advance(timedelta(seconds=6))
    done = api.get(url).json()["eligibility_request"]
    assert done["status"] == "complete"
    assert done["response"]["coverage_status"] == "active"
    assert {b["service_type_code"] for b in done["response"]["benefits"]} == {"30", "98"}


def test_eligibility_is_inactive_outside_the_coverage_dates(
    api: httpx.Client, live: LiveTenant
) -> None:
    created = api.post(
        f"/v2/patients/{personas.MIA.id}/eligibility_request",
        json={"eligibility_date": "1999-01-01"},
    )
    rid = created.json()["eligibility_request"]["id"]
    live.clock.advance(timedelta(seconds=6))
    done = api.get(f"/v2/patients/{personas.MIA.id}/eligibility_request/{rid}").json()
    assert done["eligibility_request"]["response"]["coverage_status"] == "inactive"
    assert (
        api.post(
            f"/v2/patients/{personas.MIA.id}/eligibility_request",
            json={"eligibility_date": "01/01/1999"},
        ).status_code
        == 400
    )
    assert api.get(f"/v2/patients/{personas.MIA.id}/eligibility_request/999999").status_code == 404


def test_update_changes_only_given_fields_and_answers_204(api: httpx.Client) -> None:
    guid = api.post(
        "/v2/patients",
        json={
            "patient": {
                "first_name": "Pat",
                "last_name": "Updatetest",
                "date_of_birth": "1970-01-01",
            }
        },
    ).json()["patient"]
    r = api.put(
        f"/v2/patients/{guid}",
        json={"patient": {"last_name": "Renamed", "ethnicity_code": "bogus"}},
    )
    assert r.status_code == 204
    shown = api.get(f"/v2/patients/{guid}").json()["patient"]
    assert (shown["first_name"], shown["last_name"], shown["dob"]) == (
        "Pat",
        "Renamed",
        "1970-01-01",
    )
    assert api.put(f"/v2/patients/{guid}", json={"patient": {"first_name": ""}}).status_code == 400
    assert (
        api.put(
            f"/v2/patients/{guid}", json={"patient": {"date_of_birth": "3000-01-01"}}
        ).status_code
        == 400
    )
    assert api.get(f"/v2/patients/{guid}").json()["patient"]["last_name"] == "Renamed"


def test_create_insurance_profile_with_two_policies(api: httpx.Client) -> None:
    guid = api.post(
        "/v2/patients", json={"patient": {"first_name": "Ins", "last_name": "Profiletest"}}
    ).json()["patient"]
    r = api.post(
        f"/v2/patients/{guid}/insurances",
        json={
            "insurance_profile": {
                "responsible_party_relationship": "self",
                "is_default": True,
                "primary_insurance_policy": {
                    "insurance_policy_type": "ppo",
                    "member_number": "M123",
                    "payer": {"id": personas.PAYER_ID},
                    "effective_date": "2026-01-01",
                },
                "secondary_insurance_policy": {
                    "insurance_policy_type": "medicare_b",
                    "member_number": "M456",
                    "payer": {"id": 82},
                },
            }
        },
    )
    assert r.status_code == 201
    assert set(r.json()["insurance_profile"]) == {"id", "is_default", "name"}
    profiles = api.get(f"/v2/patients/{guid}/insurances").json()["insurance_profiles"]
    assert [p["member_number"] for p in profiles[0]["insurance_policies"]] == ["M123", "M456"]


def test_create_insurance_refuses_bad_vocabularies_and_writes_nothing(
    api: httpx.Client, live: LiveTenant
) -> None:
    before = live.tenant.db.scalar("SELECT COUNT(*) FROM insurance_profiles")
    url = f"/v2/patients/{personas.MIA.id}/insurances"
    policy = {
        "insurance_policy_type": "ppo",
        "member_number": "X1",
        "payer": {"id": personas.PAYER_ID},
    }
    assert (
        api.post(
            url,
            json={
                "insurance_profile": {
                    "primary_insurance_policy": {**policy, "insurance_policy_type": "magic"}
                }
            },
        ).status_code
        == 422
    )
    assert (
        api.post(
            url,
            json={
                "insurance_profile": {
                    "responsible_party_relationship": "pet",
                    "primary_insurance_policy": policy,
                }
            },
        ).status_code
        == 422
    )
    assert (
        api.post(
            url,
            json={
                "insurance_profile": {"primary_insurance_policy": {**policy, "payer": {"id": 1}}}
            },
        ).status_code
        == 422
    )
    assert api.post(url, json={"insurance_profile": {}}).status_code == 400
    assert live.tenant.db.scalar("SELECT COUNT(*) FROM insurance_profiles") == before
