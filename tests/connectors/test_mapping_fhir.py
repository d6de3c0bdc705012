"""Connector (FHIR R4) wire models and mappers against a live emulated tenant and its truth.

A small tenant (one practice, 40 patients) runs in process, its ASGI app behind httpx (no
sockets, the real routes). A SMART backend client gets
a token with a PyJWT assertion, every resource type is searched page by page, parsed with the
light wire models, mapped, and compared with the sandbox's tables (joined to the Connector's
logical ids through ``fhir_ids``). The portal is read too, to show that one person, one
encounter, one problem ... get one carebridge id on both surfaces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from tests.connectors.harness import of
from tests.support.sandbox import (
    LiveTenant,
    portal_login,
    portal_persona,
)

from carebridge.connectors.carecloud.mapping import fhir as f
from carebridge.connectors.carecloud.mapping import portal as p
from carebridge.connectors.carecloud.mapping.common import Context
from carebridge.connectors.carecloud.paging import portal_next
from carebridge.connectors.carecloud.wire import fhir as w
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.domain import (
    AllergyId,
    CoverageId,
    DocumentId,
    EncounterId,
    ImmunizationId,
    LabResultId,
    LocationId,
    MedicationId,
    PatientId,
    PayerId,
    ProblemId,
    ProviderId,
    VitalsId,
)
from carebridge.errors import UnexpectedPayload
from carecloud_sandbox import personas

TENANT = "tnt_fhir"
TZ = ZoneInfo(personas.PRACTICE_TZ)
T = TypeVar("T", bound=pw.TracedModel)


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def portal(live: LiveTenant) -> Iterator[httpx.Client]:
    with live.client() as c:
        portal_login(live, c, portal_persona(live))
        yield c


def ctx(live: LiveTenant, endpoint: str, surface: str = "fhir") -> Context:
    return Context(
        tenant=TENANT,
        surface=surface,  # type: ignore[arg-type]
        endpoint=endpoint,
        fetched_at=live.clock.now(),
    )


def portal_list(client: httpx.Client, path: str, item: type[T]) -> list[T]:
    items: list[T] = []
    page: int | None = 1
    while page is not None:
        body = client.get(path, params={"page": page, "pageSize": 100}).json()
        items.extend(pw.Page[item].model_validate(body).items)  # type: ignore[valid-type]
        page = portal_next(body)
    return items


def rows(live: LiveTenant, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return [dict(r) for r in live.tenant.db.all(sql, params)]


def logical_ids(live: LiveTenant, resource_type: str) -> dict[str, str]:
    """Entity key -> the Connector's logical id (the ground-truth crosswalk)."""
    return {
        r["entity_id"]: r["fhir_id"]
        for r in rows(
            live,
            "SELECT entity_id, fhir_id FROM fhir_ids WHERE resource_type = ?",
            (resource_type,),
        )
    }


def key(kind: str, upstream: object) -> str:
    return f"{TENANT}:{kind}:{upstream}"


def instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def charts(live: LiveTenant) -> dict[str, str]:
    return {r["id"]: r["chart_number"] for r in rows(live, "SELECT id, chart_number FROM patients")}


def provider_keys(live: LiveTenant, resources: dict[str, list[w.Resource]]) -> f.ReferenceKeys:
    """Practitioners and Locations keyed by NPI, payers by payer code, against CareCloud's ids
    (what the v2 provider, location and payer lists give a real client)."""
    providers = {r["npi"]: str(r["id"]) for r in rows(live, "SELECT id, npi FROM providers")}
    locations = {r["npi"]: str(r["id"]) for r in rows(live, "SELECT id, npi FROM locations")}
    payers = {
        r["payer_code"]: str(r["id"]) for r in rows(live, "SELECT id, payer_code FROM payers")
    }
    return f.ReferenceKeys(
        practitioners=f.keys_by_identifier(of(resources, w.Practitioner), f.NPI_SYSTEM, providers),
        locations=f.keys_by_identifier(of(resources, w.Location), f.NPI_SYSTEM, locations),
        organizations=f.keys_by_identifier(of(resources, w.Organization), "payer-id", payers),
    )


# --- bundles, errors, Bulk Data -----------------------------------------------------------------


def test_a_searchset_bundle_parses_with_its_total_and_next_link(
    fhir: httpx.Client, live: LiveTenant
) -> None:
    r = fhir.get("/Encounter", params={"_count": 50})
    bundle = w.Bundle.model_validate(r.json())
    assert bundle.total == live.tenant.db.scalar("SELECT COUNT(*) FROM encounters")
    assert len(bundle.entry) == 50
    assert bundle.next_url() is not None
    assert bundle.next_url().startswith("http")  # type: ignore[union-attr]
    assert all(isinstance(w.parse_resource(e.resource or {}), w.Encounter) for e in bundle.entry)


def test_an_error_is_an_operation_outcome(fhir: httpx.Client) -> None:
    r = fhir.get("/Patient/no-such-patient")
    assert r.status_code == 404
    outcome = w.OperationOutcome.model_validate(r.json())
    assert outcome.issue[0].code == "not-found"
    with pytest.raises(ValueError, match="resource type"):
        w.parse_resource(r.json())


def test_a_bulk_export_manifest_and_its_ndjson_parse_and_map(
    fhir: httpx.Client,
    live: LiveTenant,
    resources: dict[str, list[w.Resource]],
    index: f.PatientIndex,
) -> None:
    kickoff = fhir.get(
        "/Patient/$export", params={"_type": "Condition"}, headers={"Prefer": "respond-async"}
    )
    assert kickoff.status_code == 202
    assert w.OperationOutcome.model_validate(kickoff.json()).issue[0].severity == "information"
    live.clock.advance(timedelta(seconds=live.tenant.config.bulk_export_seconds))
    status = fhir.get(kickoff.headers["content-location"])
    assert status.status_code == 200
    manifest = w.BulkManifest.model_validate(status.json())
    assert manifest.requires_access_token
    (output,) = manifest.output
    ndjson = fhir.get(output.url)
    exported = [w.parse_resource(orjson.loads(line)) for line in ndjson.content.splitlines()]
    assert len(exported) == output.count
    c = ctx(live, "GET {base}/bulkfiles/{job}/Condition.ndjson")
    searched = {
        m.value.id: m.value
        for m in (f.problem_from_fhir(x, c, index) for x in of(resources, w.Condition))
    }
    for resource in exported:
        assert isinstance(resource, w.Condition)
        problem = f.problem_from_fhir(resource, c, index).value
        assert problem.model_dump(exclude={"sources"}) == searched[problem.id].model_dump(
            exclude={"sources"}
        )


# --- patients -----------------------------------------------------------------------------------


def test_patients_map_by_chart_number_to_the_truth(
    live: LiveTenant, resources: dict[str, list[w.Resource]]
) -> None:
    truth = {r["id"]: r for r in rows(live, "SELECT * FROM patients")}
    fids = logical_ids(live, "Patient")
    practitioners = logical_ids(live, "Practitioner")
    keys = provider_keys(live, resources)
    patients = of(resources, w.Patient)
    assert len(patients) == len(truth)
    by_fid = {fid: guid for guid, fid in fids.items()}
    for resource in patients:
        mapped = f.patient_from_fhir(resource, ctx(live, "GET {base}/Patient"), keys)
        patient, row = mapped.value, truth[by_fid[resource.id]]
        data = json.loads(row["data_json"])
        assert patient.id == PatientId.new(key("patient", row["chart_number"]))
        assert patient.identifier("chart_number") == row["chart_number"]
        assert patient.identifier("account_number") == row["account_number"]
        assert patient.identifier("fhir_id") == resource.id
        assert (patient.name.first, patient.name.last, patient.name.middle) == (
            row["first_name"],
            row["last_name"],
            row["middle_initial"],
        )
        assert patient.birth_date == day(row["dob"])
        assert patient.gender == {"M": "male", "F": "female"}.get(row["gender_code"], "unknown")
        assert patient.email == (row["email"] or None)
        assert [ph.number for ph in patient.phones] == [
            "+1" + ph["phone_number"].replace("-", "") for ph in data["phones"]
        ]
        assert [(a.line1, a.city, a.state, a.zip_code) for a in patient.addresses] == [
            (a["line1"], a["city"], a["state_code"], a["zip_code"]) for a in data["addresses"]
        ]
        assert patient.language == data["language_code"]
        assert patient.race == (data["race_code"] or None)
        assert patient.ethnicity == {
            "H": "hispanic_or_latino",
            "N": "not_hispanic_or_latino",
        }.get(data["ethnicity_code"])
        assert patient.marital_status == {
            "M": "married",
            "S": "never_married",
            "D": "divorced",
            "W": "widowed",
            "L": "legally_separated",
            "A": "annulled",
        }.get(data["marital_status_code"])
        assert patient.primary_provider_id == ProviderId.new(
            key("provider", row["primary_provider_id"])
        )
        assert practitioners[str(row["primary_provider_id"])] in {
            x.reference.split("/")[-1]  # type: ignore[union-attr]
            for x in resource.general_practitioner
        }
        assert patient.updated_at == instant(row["updated_at"])
        # Computed dropped: US Core birth sex and the profile are not carried; names are.
        assert "meta.profile[]" in mapped.dropped
        assert ("extension[].valueCode" in mapped.dropped) is (row["gender_code"] in ("M", "F"))
        assert not any(
            path.startswith(("name", "birthDate", "gender", "address", "identifier[].value"))
            for path in mapped.dropped
        )


def test_the_same_patient_on_the_portal_and_the_connector_gets_one_id(
    portal: httpx.Client, live: LiveTenant, resources: dict[str, list[w.Resource]]
) -> None:
    from_portal = {
        m.value.id: m.value
        for m in (
            p.patient_from_portal(item, ctx(live, "GET /portal/api/patients", "portal"))
            for item in portal_list(portal, "/portal/api/patients", pw.PatientItemPayload)
        )
    }
    from_fhir = {
        m.value.id: m.value
        for m in (
            f.patient_from_fhir(x, ctx(live, "GET {base}/Patient"))
            for x in of(resources, w.Patient)
        )
    }
    assert from_portal.keys() == from_fhir.keys()
    assert len(from_portal) == live.tenant.db.scalar("SELECT COUNT(*) FROM patients")
    for pid, a in from_portal.items():
        b = from_fhir[pid]
        assert (a.name.first, a.name.last, a.birth_date, a.gender) == (
            b.name.first,
            b.name.last,
            b.birth_date,
            b.gender,
        )
        assert a.identifier("chart_number") == b.identifier("chart_number")
        assert (a.sources[0].surface, b.sources[0].surface) == ("portal", "fhir")


# --- practitioners, locations, coverages --------------------------------------------------------


def test_practitioners_and_locations_map_and_key_like_carecloud_by_npi(
    live: LiveTenant, resources: dict[str, list[w.Resource]]
) -> None:
    keys = provider_keys(live, resources)
    providers = {r["npi"]: r for r in rows(live, "SELECT * FROM providers")}
    practitioners = of(resources, w.Practitioner)
    assert len(practitioners) == len(providers)
    for resource in practitioners:
        mapped = f.provider_from_fhir(resource, ctx(live, "GET {base}/Practitioner"), keys)
        provider = mapped.value
        row = providers[provider.npi]
        assert provider.id == ProviderId.new(key("provider", row["id"]))
        assert (provider.name.first, provider.name.last, provider.credentials) == (
            row["first_name"],
            row["last_name"],
            row["credentials"],
        )
        assert (provider.taxonomy, provider.specialty_name) == (
            row["taxonomy"],
            row["specialty_name"],
        )
        assert provider.email == row["email"]
        assert provider.phone is not None
        assert provider.phone.number == "+1" + row["phone_number"].replace("-", "")
        assert provider.active is (row["status"] == "A")
        # (a Provider has no updated_at; the taxonomy's text repeats its display)
        assert set(mapped.dropped) <= {
            "meta.profile[]",
            "meta.lastUpdated",
            "name[].use",
            "telecom[].use",
            "qualification[].code.text",
        }
    unkeyed = f.provider_from_fhir(practitioners[0], ctx(live, "GET {base}/Practitioner")).value
    assert unkeyed.id == ProviderId.new(key("provider", practitioners[0].id))

    locations = {r["npi"]: r for r in rows(live, "SELECT * FROM locations")}
    for loc_resource in of(resources, w.Location):
        location = f.location_from_fhir(loc_resource, ctx(live, "GET {base}/Location"), keys).value
        assert location.npi is not None
        row = locations[location.npi]
        address = json.loads(row["address_json"])
        assert location.id == LocationId.new(key("location", row["id"]))
        assert (location.name, location.mnemonic, location.place_of_service) == (
            row["name"],
            row["mnemonic"],
            row["place_of_service_code"],
        )
        assert location.address is not None
        assert (location.address.line1, location.address.zip_code, location.address.county) == (
            address["line1"],
            address["zip_code"],
            address["county_name"],
        )
        assert location.address.latitude == float(address["latitude"])
        assert [(ph.kind, ph.is_primary) for ph in location.phones] == [
            ("fax" if ph["phone_type"] == "F" else "work", ph["is_primary"])
            for ph in json.loads(row["phones_json"])
        ]


def test_coverages_map_to_the_policies(
    live: LiveTenant, resources: dict[str, list[w.Resource]], index: f.PatientIndex
) -> None:
    keys = provider_keys(live, resources)
    policies = {r["id"]: r for r in rows(live, "SELECT * FROM insurance_policies")}
    chart_of = charts(live)
    coverages = of(resources, w.Coverage)
    assert len(coverages) == len(policies)
    for resource in coverages:
        mapped = f.coverage_from_fhir(resource, ctx(live, "GET {base}/Coverage"), index, keys)
        coverage = mapped.value
        row = policies[int(f.row_key(resource.id, "cov"))]
        insured = json.loads(row["insured_json"])
        assert coverage.id == CoverageId.new(key("coverage", row["id"]))
        assert coverage.patient_id == PatientId.new(key("patient", chart_of[row["patient_id"]]))
        assert coverage.payer_id == PayerId.new(key("payer", row["payer_id"]))
        assert (coverage.policy_type, coverage.priority, coverage.member_number) == (
            row["insurance_policy_type"],
            row["policy_priority"],
            row["member_number"],
        )
        assert (coverage.group_number, coverage.effective_from, coverage.effective_to) == (
            row["group_number"],
            day(row["effective_from"]),
            day(row["effective_to"]),
        )
        assert coverage.copay == (
            Decimal(row["co_payment_cents"]).scaleb(-2)
            if row["co_payment_cents"] is not None
            else None
        )
        if insured["relation_to_patient"] == "self":
            assert coverage.insured.relationship == "self"
        else:
            assert coverage.insured.name is not None
            assert coverage.insured.name.last == insured["last_name"]
        assert "status" in mapped.dropped


# --- encounters ---------------------------------------------------------------------------------


def test_encounters_map_and_merge_with_the_portal(
    portal: httpx.Client,
    live: LiveTenant,
    resources: dict[str, list[w.Resource]],
    index: f.PatientIndex,
) -> None:
    keys = provider_keys(live, resources)
    truth = {r["id"]: r for r in rows(live, "SELECT * FROM encounters")}
    chart_of = charts(live)
    from_fhir = {}
    for resource in of(resources, w.Encounter):
        mapped = f.encounter_from_fhir(
            resource, ctx(live, "GET {base}/Encounter"), index, practice_tz=TZ, keys=keys
        )
        e, row = mapped.value, truth[int(f.encounter_key(resource))]
        from_fhir[e.id] = e
        assert e.id == EncounterId.new(key("encounter", row["id"]))
        assert e.patient_id == PatientId.new(key("patient", chart_of[row["patient_id"]]))
        assert e.provider_id == ProviderId.new(key("provider", row["provider_id"]))
        assert e.location_id == LocationId.new(key("location", row["location_id"]))
        assert (e.start, e.end, e.service_date) == (
            instant(row["start_time"]),
            instant(row["end_time"]),
            day(row["encounter_date"]),
        )
        assert (e.status, e.type, e.chief_complaint) == (
            row["status"],
            row["encounter_type"],
            row["chief_complaint"],
        )
        assert [d.code for d in e.diagnoses] == [
            d["code"] for d in json.loads(row["diagnoses_json"])
        ]
        if row["status"] == "signed":
            assert e.signed_by == ProviderId.new(key("provider", row["signed_by"]))
            assert e.signed_at is not None
            assert e.signed_at >= instant(row["signed_at"])  # type: ignore[operator]
        # The billed CPT in the type and the serving organization are not carried.
        assert {"type[].coding[].code", "serviceProvider.reference"} <= set(mapped.dropped)
    assert len(from_fhir) == len(truth)

    c = ctx(live, "GET /portal/api/patients/{chart}/encounters", "portal")
    for chart in sorted(set(chart_of.values())):
        for item in portal_list(
            portal, f"/portal/api/patients/{chart}/encounters", pw.EncounterItemPayload
        ):
            a = p.encounter_from_portal(item, c).value
            b = from_fhir[a.id]
            assert (a.patient_id, a.provider_id, a.location_id) == (
                b.patient_id,
                b.provider_id,
                b.location_id,
            )
            assert (a.start, a.end, a.service_date, a.status, a.type) == (
                b.start,
                b.end,
                b.service_date,
                b.status,
                b.type,
            )
            assert a.chief_complaint == b.chief_complaint


# --- chart lists --------------------------------------------------------------------------------


def test_conditions_allergies_medications_and_immunizations_map_to_the_portal_keys(
    live: LiveTenant, resources: dict[str, list[w.Resource]], index: f.PatientIndex
) -> None:
    keys = provider_keys(live, resources)
    chart_of = charts(live)
    c = ctx(live, "GET {base}/...")

    problems = {r["id"]: r for r in rows(live, "SELECT * FROM problems")}
    conditions = of(resources, w.Condition)
    assert len(conditions) == len(problems)
    for resource in conditions:
        problem = f.problem_from_fhir(resource, c, index).value
        row = problems[int(f.row_key(resource.id, "prb"))]
        assert problem.id == ProblemId.new(key("problem", row["id"]))
        assert problem.patient_id == PatientId.new(key("patient", chart_of[row["patient_id"]]))
        assert (problem.code, problem.description, problem.status) == (
            row["icd10_code"],
            row["description"],
            row["status"],
        )
        assert (problem.onset_date, problem.resolved_date, problem.created_at) == (
            day(row["onset_date"]),
            day(row["resolved_date"]),
            instant(row["created_at"]),
        )

    allergies = {r["id"]: r for r in rows(live, "SELECT * FROM allergies")}
    intolerances = of(resources, w.AllergyIntolerance)
    assert len(intolerances) == len(allergies)
    for intolerance in intolerances:
        allergy = f.allergy_from_fhir(intolerance, c, index).value
        row = allergies[int(f.row_key(intolerance.id, "alg"))]
        assert allergy.id == AllergyId.new(key("allergy", row["id"]))
        assert (allergy.allergen.system, allergy.allergen.code, allergy.allergen.name) == (
            row["allergen_system"],
            row["allergen_code"],
            row["allergen_name"],
        )
        assert (allergy.category, allergy.reaction, allergy.severity, allergy.status) == (
            row["category"],
            row["reaction"],
            row["severity"],
            row["status"],
        )
        assert allergy.recorded_date == day(row["recorded_date"])

    medications = {r["id"]: r for r in rows(live, "SELECT * FROM medications")}
    requests = of(resources, w.MedicationRequest)
    assert len(requests) == len(medications)
    for request in requests:
        medication = f.medication_from_fhir(request, c, index, keys).value
        row = medications[int(f.row_key(request.id, "med"))]
        assert medication.id == MedicationId.new(key("medication", row["id"]))
        assert (medication.rxnorm_code, medication.name, medication.sig, medication.status) == (
            row["rxnorm_code"],
            row["name"],
            row["sig"],
            row["status"],
        )
        assert (medication.start_date, medication.end_date) == (
            day(row["start_date"]),
            day(row["end_date"]),
        )
        assert medication.prescriber_id == (
            ProviderId.new(key("provider", row["prescriber_id"])) if row["prescriber_id"] else None
        )

    immunizations = {r["id"]: r for r in rows(live, "SELECT * FROM immunizations")}
    given = of(resources, w.Immunization)
    assert len(given) == len(immunizations)
    for shot in given:
        mapped = f.immunization_from_fhir(shot, c, index)
        immunization, row = mapped.value, immunizations[int(f.row_key(shot.id, "imm"))]
        assert immunization.id == ImmunizationId.new(key("immunization", row["id"]))
        assert immunization.encounter_id == EncounterId.new(key("encounter", row["encounter_id"]))
        assert (immunization.cvx_code, immunization.cpt_code, immunization.name) == (
            row["cvx_code"],
            row["cpt_code"],
            row["name"],
        )
        assert (immunization.lot_number, immunization.site, immunization.route) == (
            row["lot_number"],
            row["site"],
            row["route"],
        )
        assert immunization.administered_on == day(row["administered_on"])
        assert "primarySource" in mapped.dropped


def test_labs_take_the_order_code_the_portal_carries(
    portal: httpx.Client,
    live: LiveTenant,
    resources: dict[str, list[w.Resource]],
    index: f.PatientIndex,
) -> None:
    order_codes = {
        str(lab.id): lab.order_code
        for chart in sorted(set(charts(live).values()))
        for lab in portal_list(portal, f"/portal/api/patients/{chart}/labs", pw.LabPayload)
    }
    labs = {r["id"]: r for r in rows(live, "SELECT * FROM lab_results")}
    observations = [o for o in of(resources, w.Observation) if f.is_laboratory(o)]
    assert len(observations) == len(labs)
    c = ctx(live, "GET {base}/Observation")
    for resource in observations:
        lab = f.lab_from_fhir(resource, c, index, order_codes=order_codes).value
        row = labs[int(f.row_key(resource.id, "lab"))]
        assert lab.id == LabResultId.new(key("lab", row["id"]))
        assert (lab.order_code, lab.loinc_code, lab.name) == (
            row["order_code"],
            row["loinc_code"],
            row["name"],
        )
        assert (lab.value_number, lab.value_text) == (row["value_num"], row["value_text"])
        assert lab.unit == (row["unit"] if row["value_num"] is not None else None)
        assert (lab.reference_low, lab.reference_high) == (
            row["reference_low"],
            row["reference_high"],
        )
        assert (lab.interpretation, lab.status) == (row["interpretation"], row["status"])
        assert (lab.collected_at, lab.resulted_at) == (
            instant(row["collected_at"]),
            instant(row["resulted_at"]),
        )
    with pytest.raises(f.UnresolvedReference) as missing:
        f.lab_from_fhir(observations[0], c, index, order_codes={})
    assert missing.value.field_path == "code"


def test_vital_sign_observations_group_into_one_set_per_vitals_row(
    live: LiveTenant, resources: dict[str, list[w.Resource]], index: f.PatientIndex
) -> None:
    truth = {r["id"]: r for r in rows(live, "SELECT * FROM vitals")}
    sets = f.vitals_from_fhir(
        of(resources, w.Observation), ctx(live, "GET {base}/Observation"), index
    )
    assert len(sets) == len(truth)
    fields = (
        ("height_cm", "height_cm"),
        ("weight_kg", "weight_kg"),
        ("bmi", "bmi"),
        ("systolic_mmhg", "systolic_mmhg"),
        ("diastolic_mmhg", "diastolic_mmhg"),
        ("heart_rate_bpm", "heart_rate_bpm"),
        ("respiratory_rate", "respiratory_rate"),
        ("temperature_c", "temperature_c"),
        ("spo2_percent", "spo2_pct"),
    )
    for mapped in sets:
        vitals = mapped.value
        row = truth[int(vitals.sources[0].upstream_id.split("-")[1])]
        assert vitals.id == VitalsId.new(key("vitals", row["id"]))
        assert vitals.encounter_id == EncounterId.new(key("encounter", row["encounter_id"]))
        assert vitals.taken_at == instant(row["taken_at"])
        assert [getattr(vitals, mine) for mine, _ in fields] == [row[col] for _, col in fields]
        assert len(vitals.sources) == 8  # one Observation per sign
        assert "meta.profile[]" in mapped.dropped


def test_documents_map_with_their_loinc_type(
    live: LiveTenant, resources: dict[str, list[w.Resource]], index: f.PatientIndex
) -> None:
    documents = {r["id"]: r for r in rows(live, "SELECT * FROM documents")}
    references = of(resources, w.DocumentReference)
    assert len(references) == len(documents)
    for resource in references:
        mapped = f.document_from_fhir(resource, ctx(live, "GET {base}/DocumentReference"), index)
        document, row = mapped.value, documents[int(f.row_key(resource.id, "doc"))]
        assert document.id == DocumentId.new(key("document", row["id"]))
        assert (document.name, document.description, document.source_name) == (
            row["name"],
            row["description"],
            row["document_source_name"],
        )
        assert (document.document_date, document.content_type, document.size_bytes) == (
            day(row["document_date"]),
            row["content_type"],
            row["size_bytes"],
        )
        assert document.type_loinc is not None
        assert document.active is (row["status"] == "A")
        assert "content[].attachment.url" in mapped.dropped


# --- references the indexes lack ----------------------------------------------------------------


def test_a_patient_reference_outside_the_index_raises_unresolved_reference(
    live: LiveTenant, resources: dict[str, list[w.Resource]]
) -> None:
    condition = of(resources, w.Condition)[0]
    with pytest.raises(f.UnresolvedReference) as unresolved:
        f.problem_from_fhir(condition, ctx(live, "GET {base}/Condition"), f.PatientIndex({}))
    assert unresolved.value.field_path == "subject"


# --- values the domain cannot take --------------------------------------------------------------


def raw(resource: w.Resource) -> dict[str, Any]:
    """A resource back as JSON (to alter and parse again)."""
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)


def test_patient_values_the_domain_cannot_take_are_dropped(
    live: LiveTenant, resources: dict[str, list[w.Resource]]
) -> None:
    c = ctx(live, "GET {base}/Patient")
    body = raw(of(resources, w.Patient)[0])
    body["address"] = [{"line": ["1 Rue"], "state": "ON", "postalCode": "K1A 0B1", "country": "CA"}]
    body["telecom"] = [{"system": "phone", "value": "12", "rank": 1}]
    body["communication"] = [{"language": {"coding": [{"code": "fr-CA"}]}, "preferred": True}]
    body["maritalStatus"] = {"coding": [{"code": "Q"}]}
    mapped = f.patient_from_fhir(w.Patient.model_validate(body), c)
    (address,) = mapped.value.addresses
    assert (address.state, address.zip_code, address.country) == (None, None, "USA")
    assert (mapped.value.phones, mapped.value.language, mapped.value.marital_status) == (
        (),
        "fra",
        None,
    )
    assert {
        "address[].state",
        "address[].postalCode",
        "address[].country",
        "telecom[].value",
        "maritalStatus.coding[].code",
    } <= set(mapped.dropped)

    # No MR type: the chart-number system still names the chart; no chart at all is refused.
    body["identifier"] = [i for i in body["identifier"] if "type" not in i] + [
        {"system": "https://x.invalid/sid/chart-number", "value": "MG999"}
    ]
    assert f.patient_from_fhir(w.Patient.model_validate(body), c).value.id == PatientId.new(
        key("patient", "MG999")
    )
    body["identifier"] = []
    with pytest.raises(UnexpectedPayload) as missing:
        f.patient_from_fhir(w.Patient.model_validate(body), c)
    assert missing.value.field_path == "identifier"


def test_clinical_values_outside_the_vocabularies_are_refused_or_dropped(
    live: LiveTenant, resources: dict[str, list[w.Resource]], index: f.PatientIndex
) -> None:
    c = ctx(live, "GET {base}/...")
    coding = {"coding": [{"system": "http://example.org/x", "code": "1"}]}
    cases: list[tuple[type[w.Resource], Any, dict[str, Any], str]] = [
        (w.Encounter, f.encounter_from_fhir, {"status": "cancelled"}, "status"),
        (w.Condition, f.problem_from_fhir, {"code": coding}, "code"),
        (
            w.Condition,
            f.problem_from_fhir,
            {"clinicalStatus": {"coding": [{"code": "x"}]}},
            "clinicalStatus",
        ),
        (w.AllergyIntolerance, f.allergy_from_fhir, {"code": coding}, "code"),
        (
            w.MedicationRequest,
            f.medication_from_fhir,
            {"medicationCodeableConcept": coding},
            "medicationCodeableConcept",
        ),
        (w.MedicationRequest, f.medication_from_fhir, {"status": "draft"}, "status"),
        (w.Immunization, f.immunization_from_fhir, {"vaccineCode": coding}, "vaccineCode"),
    ]
    for model, mapper, change, path in cases:
        altered = model.model_validate({**raw(of(resources, model)[0]), **change})
        kwargs: dict[str, Any] = {"practice_tz": TZ} if model is w.Encounter else {}
        with pytest.raises(UnexpectedPayload) as refused:
            mapper(altered, c, index, **kwargs)
        assert refused.value.field_path == path

    shot = raw(of(resources, w.Immunization)[0])
    mapped = f.immunization_from_fhir(
        w.Immunization.model_validate({**shot, "site": {"coding": [{"code": "XX"}]}}), c, index
    )
    assert mapped.value.site is None
    assert "site.coding[].code" in mapped.dropped

    labs = [o for o in of(resources, w.Observation) if f.is_laboratory(o)]
    lab = raw(labs[0])
    orders = {f.row_key(labs[0].id, "lab"): "80053"}
    for change, path in (({"code": coding}, "code"), ({"status": "registered"}, "status")):
        with pytest.raises(UnexpectedPayload) as refused:
            f.lab_from_fhir(
                w.Observation.model_validate({**lab, **change}), c, index, order_codes=orders
            )
        assert refused.value.field_path == path
    odd = f.lab_from_fhir(
        w.Observation.model_validate({**lab, "interpretation": [{"coding": [{"code": "Z"}]}]}),
        c,
        index,
        order_codes=orders,
    )
    assert odd.value.interpretation is None
    assert "interpretation[].coding[].code" in odd.dropped

    encounter = raw(of(resources, w.Encounter)[0])
    encounter.pop("identifier")
    encounter["type"] = [{"text": "house call"}]
    visit = f.encounter_from_fhir(w.Encounter.model_validate(encounter), c, index, practice_tz=TZ)
    assert visit.value.id == EncounterId.new(key("encounter", f.row_key(encounter["id"], "enc")))
    assert visit.value.type == "office_visit"  # from the ambulatory class
    assert "type[].text" in visit.dropped


def test_vital_signs_in_other_units_are_converted(
    live: LiveTenant, resources: dict[str, list[w.Resource]], index: f.PatientIndex
) -> None:
    signs = [o for o in of(resources, w.Observation) if f.is_vital_sign(o)]
    first = f.vitals_key(signs[0])
    group = [raw(o) for o in signs if f.vitals_key(o) == first]
    imperial = {
        "8310-5": (98.6, "[degF]"),
        "29463-7": (150.0, "[lb_av]"),
        "8302-2": (70.0, "[in_i]"),
    }
    for body in group:
        body["id"] = "x" + body["id"]  # not a vit-<id>-<sign> id: grouped by encounter and time
        code = body["code"]["coding"][0]["code"]
        if code in imperial:
            value, unit = imperial[code]
            body["valueQuantity"] = {"value": value, "unit": unit, "code": unit}
    (mapped,) = f.vitals_from_fhir(
        [w.Observation.model_validate(b) for b in group], ctx(live, "GET {base}/Observation"), index
    )
    vitals = mapped.value
    assert vitals.temperature_c == pytest.approx(37.0)
    assert vitals.weight_kg == pytest.approx(68.04, abs=0.01)
    assert vitals.height_cm == pytest.approx(177.8)
    assert vitals.id == VitalsId.new(
        key("vitals", f"{group[0]['encounter']['reference']}@{group[0]['effectiveDateTime']}")
    )
