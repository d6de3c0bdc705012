"""Read and search on the Connector, driven by real third-party FHIR clients and plain httpx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fhirclient.models.observation import (  # type: ignore[import-untyped]
    Observation as FcObservation,
)
from fhirclient.models.patient import Patient as FcPatient  # type: ignore[import-untyped]
from fhirclient.server import FHIRServer  # type: ignore[import-untyped]
from fhirpy import SyncFHIRClient
from tests.support.sandbox import LiveTenant, fhir_base, smart_token

from carecloud_sandbox import personas
from carecloud_sandbox.fhir.ids import derived_id


@pytest.fixture(scope="module")
def live(fhir_live: LiveTenant) -> LiveTenant:
    """The Connector modules share one tenant (see ``fhir_live``)."""
    return fhir_live


JORDAN = personas.JORDAN.id


@pytest.fixture(scope="module")
def token(live: LiveTenant, fhir_http: httpx.Client) -> str:
    return smart_token(live, http=fhir_http)


@pytest.fixture
def fhir(live: LiveTenant, token: str, fhir_http: httpx.Client) -> Iterator[httpx.Client]:
    """The module's client, authenticated, with the practice-1 base as base URL."""
    fhir_http.headers["Authorization"] = f"Bearer {token}"
    fhir_http.base_url = httpx.URL(fhir_base(live) + "/")
    yield fhir_http
    fhir_http.headers.pop("Authorization", None)
    fhir_http.base_url = httpx.URL("")


def _get(c: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    r = c.get(path, params=params) if params else c.get(path)  # params={} would drop a query
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = r.json()
    return body


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def _all(c: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    bundle = _get(c, path, **params)
    out = [e["resource"] for e in bundle.get("entry", [])]
    while nxt := next((x["url"] for x in bundle["link"] if x["relation"] == "next"), None):
        bundle = _get(c, nxt)
        out.extend(e["resource"] for e in bundle.get("entry", []))
    return out


def _truth(live: LiveTenant, sql: str, params: tuple[Any, ...] = ()) -> int:
    return int(live.tenant.db.scalar(sql, params))


def _jordan(live: LiveTenant) -> str:
    fid = live.tenant.db.scalar(
        "SELECT fhir_id FROM fhir_ids WHERE resource_type = 'Patient' AND entity_id = ?",
        (JORDAN,),
    )
    return str(fid or derived_id("Patient", JORDAN))


# --- third-party clients ----------------------------------------------------------------------


def test_fhirpy_pages_a_search_without_duplicates(live: LiveTenant, token: str) -> None:
    client = SyncFHIRClient(fhir_base(live), authorization=f"Bearer {token}")
    patients = client.resources("Patient").limit(7).fetch_all()
    ids = [p["id"] for p in patients]
    expected = _truth(live, "SELECT COUNT(*) FROM patients WHERE practice_id = 1")
    assert len(ids) == expected > 7
    assert len(set(ids)) == len(ids)
    assert client.resources("Patient").count() == expected
    encounters = client.resources("Encounter").search(patient=_jordan(live)).limit(3).fetch_all()
    truth = _truth(live, "SELECT COUNT(*) FROM encounters WHERE patient_id = ?", (JORDAN,))
    assert len({e["id"] for e in encounters}) == len(encounters) == truth > 3


def test_fhirclient_pages_a_search_with_typed_models(live: LiveTenant, token: str) -> None:
    server = FHIRServer(None, base_uri=fhir_base(live))
    server.session.headers["Authorization"] = f"Bearer {token}"
    try:
        patients = list(FcPatient.where(struct={"_count": "9"}).perform_resources_iter(server))
        ids = [p.id for p in patients]
        assert len(ids) == len(set(ids))
        assert len(ids) == _truth(live, "SELECT COUNT(*) FROM patients WHERE practice_id = 1")
        search = FcObservation.where(
            struct={"patient": _jordan(live), "category": "laboratory", "_count": "2"}
        )
        labs = list(search.perform_resources_iter(server))
        truth = _truth(live, "SELECT COUNT(*) FROM lab_results WHERE patient_id = ?", (JORDAN,))
        assert len({o.id for o in labs}) == len(labs) == truth
        assert all(o.category[0].coding[0].code == "laboratory" for o in labs)
    finally:
        server.session.close()


# --- paging -----------------------------------------------------------------------------------


def test_bundle_shape_total_links_and_full_urls(live: LiveTenant, fhir: httpx.Client) -> None:
    base = fhir_base(live)
    bundle = _get(fhir, "Condition", _count=5)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    assert bundle["total"] == _truth(live, "SELECT COUNT(*) FROM problems WHERE practice_id = 1")
    links = {x["relation"]: x["url"] for x in bundle["link"]}
    assert links["self"].startswith(f"{base}/Condition?")
    assert links["next"].startswith(f"{base}/Condition?")
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"{base}/Condition/{entry['resource']['id']}"
        assert entry["search"]["mode"] == "match"
    assert len(bundle["entry"]) == 5


def test_pages_never_overlap_even_when_rows_are_added(live: LiveTenant, fhir: httpx.Client) -> None:
    first = _get(fhir, "MedicationRequest", _count=10)
    nxt = next(x["url"] for x in first["link"] if x["relation"] == "next")
    with live.tenant.db.transaction() as conn:  # a row lands before the page already served
        conn.execute(
            "INSERT INTO medications(id, practice_id, patient_id, rxnorm_code, name, sig, "
            "status, start_date, created_at, updated_at) VALUES (0, 1, ?, '617310', "
            "'atorvastatin 20 MG Oral Tablet', 'daily', 'active', '2026-11-24', "
            "'2026-11-24T15:00:00Z', '2026-11-24T15:00:00Z')",
            (JORDAN,),
        )
    try:
        second = _get(fhir, nxt)
        assert not set(_ids(first)) & set(_ids(second))
        assert second["total"] == first["total"] + 1
    finally:
        with live.tenant.db.transaction() as conn:
            conn.execute("DELETE FROM medications WHERE id = 0")


def test_count_zero_gives_only_the_total(live: LiveTenant, fhir: httpx.Client) -> None:
    bundle = _get(fhir, "Observation", _count=0)
    labs = _truth(live, "SELECT COUNT(*) FROM lab_results WHERE practice_id = 1")
    assert bundle["total"] > labs
    assert "entry" not in bundle
    assert [x["relation"] for x in bundle["link"]] == ["self"]
    assert _get(fhir, "Observation", _summary="count")["total"] == bundle["total"]


def test_count_is_capped(live: LiveTenant, fhir: httpx.Client) -> None:
    bundle = _get(fhir, "Observation", _count=5000)
    assert len(bundle["entry"]) == 1000


# --- parameters -------------------------------------------------------------------------------


def test_patient_parameter_accepts_a_reference_or_a_bare_id(
    live: LiveTenant, fhir: httpx.Client
) -> None:
    jordan = _jordan(live)
    truth = _truth(live, "SELECT COUNT(*) FROM immunizations WHERE patient_id = ?", (JORDAN,))
    for value in (jordan, f"Patient/{jordan}", f"{fhir_base(live)}/Patient/{jordan}"):
        bundle = _get(fhir, "Immunization", patient=value)
        assert bundle["total"] == truth
        for entry in bundle.get("entry", []):
            assert entry["resource"]["patient"]["reference"] == f"Patient/{jordan}"
    assert _get(fhir, "Immunization", patient="no-such-patient")["total"] == 0
    assert _get(fhir, "Coverage", beneficiary=jordan)["total"] == _truth(
        live, "SELECT COUNT(*) FROM insurance_policies WHERE patient_id = ?", (JORDAN,)
    )


def test_last_updated_prefixes(live: LiveTenant, fhir: httpx.Client) -> None:
    def truth(op: str, value: str) -> int:
        return _truth(
            live,
            f"SELECT COUNT(*) FROM encounters WHERE practice_id = 1 AND updated_at {op} ?",
            (value,),
        )

    cut = "2026-10-15T12:00:00Z"
    assert _get(fhir, "Encounter", _count=0, _lastUpdated=f"ge{cut}")["total"] == truth(">=", cut)
    assert _get(fhir, "Encounter", _count=0, _lastUpdated=f"lt{cut}")["total"] == truth("<", cut)
    after = "2026-10-15T12:00:01Z"
    assert _get(fhir, "Encounter", _count=0, _lastUpdated=f"gt{cut}")["total"] == truth(">=", after)
    assert _get(fhir, "Encounter", _count=0, _lastUpdated=f"le{cut}")["total"] == truth("<", after)
    # an offset given with an unencoded '+' still parses
    r = fhir.get("Encounter?_count=0&_lastUpdated=ge2026-10-15T06:00:00+00:00")
    assert r.status_code == 200
    assert r.json()["total"] == truth(">=", "2026-10-15T06:00:00Z")
    both = _get(fhir, "Encounter", _count=0, _lastUpdated=["ge2026-10-01", "lt2026-11-01"])
    in_october = _truth(
        live,
        "SELECT COUNT(*) FROM encounters WHERE practice_id = 1 AND updated_at >= ? "
        "AND updated_at < ?",
        ("2026-10-01T05:00:00Z", "2026-11-01T05:00:00Z"),  # America/Chicago days
    )
    assert both["total"] == in_october > 0


def test_date_parameter_on_instants_and_dates(live: LiveTenant, fhir: httpx.Client) -> None:
    day = "2026-11-02"
    instants = _truth(
        live,
        "SELECT COUNT(*) FROM encounters WHERE practice_id = 1 AND start_time >= ? "
        "AND start_time < ?",
        ("2026-11-02T06:00:00Z", "2026-11-03T06:00:00Z"),  # the CST day
    )
    bundle = _get(fhir, "Encounter", date=day, _count=100)
    assert bundle["total"] == instants > 0
    assert all(
        "2026-11-02T06:00:00Z" <= e["resource"]["period"]["start"] < "2026-11-03T06:00:00Z"
        for e in bundle["entry"]
    )
    dates = _truth(
        live,
        "SELECT COUNT(*) FROM immunizations WHERE practice_id = 1 AND administered_on >= ?",
        ("2026-10",),
    )
    assert _get(fhir, "Immunization", date="ge2026-10", _count=0)["total"] == dates
    month = _truth(
        live,
        "SELECT COUNT(*) FROM immunizations WHERE practice_id = 1 AND administered_on LIKE ?",
        ("2026-10-%",),
    )
    assert _get(fhir, "Immunization", date="2026-10", _count=0)["total"] == month
    assert _get(fhir, "Immunization", date="ne2026-10", _count=0)["total"] == (
        _get(fhir, "Immunization", _count=0)["total"] - month
    )


def test_observation_category_and_code(live: LiveTenant, fhir: httpx.Client) -> None:
    labs = _truth(live, "SELECT COUNT(*) FROM lab_results WHERE practice_id = 1")
    assert _get(fhir, "Observation", category="laboratory", _count=0)["total"] == labs
    system = "http://terminology.hl7.org/CodeSystem/observation-category"
    vitals = _get(fhir, "Observation", category=f"{system}|vital-signs", _count=20)
    rows = _truth(live, "SELECT COUNT(*) FROM vitals WHERE practice_id = 1")
    assert vitals["total"] == rows * 8
    assert {e["resource"]["category"][0]["coding"][0]["code"] for e in vitals["entry"]} == {
        "vital-signs"
    }
    heart = _get(fhir, "Observation", code="http://loinc.org|8867-4", _count=3)
    assert heart["total"] == rows
    resource = heart["entry"][0]["resource"]
    assert resource["valueQuantity"]["unit"] == "/min"
    bp = _get(fhir, "Observation", code="85354-9", _count=1)["entry"][0]["resource"]
    assert [c["code"]["coding"][0]["code"] for c in bp["component"]] == ["8480-6", "8462-4"]
    assert _get(fhir, "Observation", code="http://snomed.info/sct|8867-4")["total"] == 0
    a1c = _truth(
        live, "SELECT COUNT(*) FROM lab_results WHERE practice_id = 1 AND loinc_code = '4548-4'"
    )
    assert _get(fhir, "Observation", code="4548-4,8867-4", _count=0)["total"] == a1c + rows


def test_id_and_read(live: LiveTenant, fhir: httpx.Client) -> None:
    jordan = _jordan(live)
    patient = _get(fhir, f"Patient/{jordan}")
    assert patient["id"] == jordan
    assert patient["name"][0]["family"] == "Sandbox"
    assert patient["meta"]["lastUpdated"].endswith("Z")
    bundle = _get(fhir, "Patient", _id=jordan)
    assert _ids(bundle) == [jordan]
    vital = live.tenant.db.scalar("SELECT MIN(id) FROM vitals WHERE practice_id = 1")
    obs = _get(fhir, f"Observation/vit-{vital}-bmi")
    assert obs["code"]["coding"][0]["code"] == "39156-5"
    both = _get(fhir, "Observation", _id=f"vit-{vital}-bmi,vit-{vital}-hr")
    assert sorted(_ids(both)) == sorted([f"vit-{vital}-bmi", f"vit-{vital}-hr"])


def test_post_search_matches_get(live: LiveTenant, fhir: httpx.Client) -> None:
    r = fhir.post("DocumentReference/_search", data={"patient": _jordan(live), "_count": "2"})
    assert r.status_code == 200
    got = _get(fhir, "DocumentReference", patient=_jordan(live), _count=2)
    assert r.json()["total"] == got["total"]
    assert _ids(r.json()) == _ids(got)


def test_practices_are_isolated(live: LiveTenant, token: str, fhir_http: httpx.Client) -> None:
    other = fhir_base(live, 1)
    headers = {"Authorization": f"Bearer {token}"}
    r = fhir_http.get(f"{other}/Patient/{_jordan(live)}", headers=headers)
    assert r.status_code == 404
    total = fhir_http.get(f"{other}/Patient", params={"_count": 0}, headers=headers).json()
    assert total["total"] == _truth(live, "SELECT COUNT(*) FROM patients WHERE practice_id = 2")


def test_every_type_searches_and_reads(live: LiveTenant, fhir: httpx.Client) -> None:
    for name in (
        "Patient",
        "Practitioner",
        "Organization",
        "Location",
        "Encounter",
        "Condition",
        "AllergyIntolerance",
        "MedicationRequest",
        "Observation",
        "Immunization",
        "DocumentReference",
        "Coverage",
    ):
        bundle = _get(fhir, name, _count=2)
        assert bundle["total"] > 0, name
        first = bundle["entry"][0]["resource"]
        assert first["resourceType"] == name
        assert _get(fhir, f"{name}/{first['id']}") == first


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("Patient?bogus=1", 400),
        ("Patient?_count=-1", 400),
        ("Patient?_count=ten", 400),
        ("Encounter?date=yesterday", 400),
        ("Encounter?date=2026-13-01", 400),
        ("Encounter?date=sa2026-01-01", 400),
        ("Encounter?_lastUpdated=ge2026-02-30T00:00:00Z", 400),
        ("Patient?name:fuzzy=x", 400),
        ("Patient?_sort=family", 400),
        ("Patient?_cursor=abc", 400),
        ("Patient?_format=xml", 406),
        ("Patient?_summary=true", 400),
        ("Observation?patient=", 400),
        ("Procedure", 404),
        ("Patient/does-not-exist", 404),
        ("Observation/vit-1-nothing", 404),
        ("Observation/lab-99999999", 404),
        ("Encounter/enc-x", 404),
        ("Patient/../../etc", 404),
        ("Patient/1/_history", 404),
        ("Group/grp-nope", 404),
        ("Binary/doc-999999", 404),
    ],
)
def test_errors_are_operation_outcomes(fhir: httpx.Client, path: str, status: int) -> None:
    r = fhir.get(path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"


def test_unknown_practice_paths_and_methods(
    live: LiveTenant, token: str, fhir_http: httpx.Client
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    root = f"{live.base_url}/api/fhir"
    for method, url, status in (
        ("GET", f"{root}/R4/NOPE/Patient", 404),
        ("GET", f"{root}/R4", 404),
        ("GET", f"{root}/anything/else", 404),
        ("GET", root, 404),
        ("DELETE", f"{fhir_base(live)}/Patient/x", 405),
        ("PUT", f"{fhir_base(live)}/Patient", 405),
        ("POST", f"{fhir_base(live)}/Patient", 405),
    ):
        r = fhir_http.request(method, url, headers=headers)
        assert r.status_code == status, (method, url)
        assert r.json()["resourceType"] == "OperationOutcome"


def test_binary_of_a_document(live: LiveTenant, fhir: httpx.Client) -> None:
    doc = _get(fhir, "DocumentReference", _count=1)["entry"][0]["resource"]
    url = doc["content"][0]["attachment"]["url"]
    binary = _get(fhir, url)
    assert binary["resourceType"] == "Binary"
    assert binary["contentType"] == "application/pdf"


def test_a_patient_added_later_gets_a_logical_id_lazily(
    live: LiveTenant, fhir: httpx.Client
) -> None:
    new_id = "0f5e0c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"
    columns = [r["name"] for r in live.tenant.db.all("PRAGMA table_info(patients)")]
    copied = ", ".join(
        {"id": "?", "internal_id": "?", "chart_number": "'MG999999'"}.get(c, c) for c in columns
    )
    with live.tenant.db.transaction() as conn:
        conn.execute(
            f"INSERT INTO patients({', '.join(columns)}) SELECT {copied} FROM patients "
            "WHERE id = ?",
            (new_id, 999_999, JORDAN),
        )
    try:
        patient = _get(fhir, f"Patient/{derived_id('Patient', new_id)}")
        assert patient["identifier"][0]["value"] == "MG999999"
    finally:
        with live.tenant.db.transaction() as conn:
            conn.execute("DELETE FROM patients WHERE id = ?", (new_id,))
            conn.execute("DELETE FROM fhir_ids WHERE entity_id = ?", (new_id,))


NASTY = ("", "|", "ge", "2026-02-30", "a,,b", "%_\\", "9" * 30, "Patient/", "\u00e9\u0000")


def test_no_parameter_value_gives_a_500(live: LiveTenant, fhir: httpx.Client) -> None:
    from carecloud_sandbox.fhir.catalog import TYPES

    turn = 0
    for name, spec in TYPES.items():
        for param in [*spec.params, "_count", "_cursor", "_summary"]:
            for _ in range(3):  # three of the nasty values per parameter, in rotation
                value = NASTY[turn % len(NASTY)]
                turn += 1
                r = fhir.get(name, params={param: value})
                assert r.status_code in (200, 400), (name, param, value, r.text)
                if r.status_code == 400:
                    assert r.json()["resourceType"] == "OperationOutcome"
