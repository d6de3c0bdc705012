"""v2 payloads fetched from an in-process sandbox tenant, parsed, mapped, and compared field by
field with the tenant's ground-truth tables."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from tests.connectors.harness import Sandbox, assert_appointment_matches

from carebridge.connectors.carecloud.drift import check, check_list
from carebridge.connectors.carecloud.mapping.common import Context
from carebridge.connectors.carecloud.mapping.v2 import (
    ChargeDetails,
    PatientRef,
    appointment_status,
    is_charge,
    map_appointment,
    map_balance,
    map_charge,
    map_confirmation,
    map_coverage,
    map_coverages,
    map_document,
    map_eligibility,
    map_ledger_entry,
    map_location,
    map_patient,
    map_payer,
    map_provider,
    map_resource,
    map_slot,
    map_slots,
    map_visit_reason,
    payer_kind,
    usual_duration,
)
from carebridge.connectors.carecloud.wire import v2
from carebridge.domain import (
    AppointmentId,
    AppointmentStatus,
    ChargeId,
    CoverageId,
    DocumentId,
    EncounterId,
    LedgerEntryId,
    LocationId,
    PatientId,
    PayerId,
    ProviderId,
    ResourceId,
    VisitReasonId,
)
from carebridge.errors import UnexpectedPayload
from carecloud_sandbox.v2.availability import find_slots

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
ANCHOR = date(2026, 11, 24)
BASE = "http://sandbox.test"
TENANT = "tnt1"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(seed=11)
    yield box
    box.tenant.db.close()


def ctx(endpoint: str) -> Context:
    return Context(tenant=TENANT, surface="v2", endpoint=endpoint, fetched_at=START)


def instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def day(text: str | None) -> date | None:
    return None if not text else date.fromisoformat(text)


def cents(value: int | None) -> Decimal | None:
    return None if value is None else (Decimal(value) / 100).quantize(Decimal("0.01"))


def e164(text: str) -> str:
    return "+1" + re.sub(r"\D", "", text)


def key(kind: str, upstream: object) -> str:
    return f"{TENANT}:{kind}:{upstream}"


GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown"}
MARITAL = {
    "S": "never_married",
    "M": "married",
    "D": "divorced",
    "W": "widowed",
    "L": "legally_separated",
    "T": "domestic_partner",
    "U": "unknown",
}
ETHNICITY = {"H": "hispanic_or_latino", "N": "not_hispanic_or_latino", "U": "unknown"}
PHONE_KIND = {"C": "mobile", "H": "home", "B": "work", "M": "main", "F": "fax", "TF": "toll_free"}
SHOW = "GET /v2/patients/{id}"


def show(sandbox: Sandbox, guid: str) -> v2.PatientPayload:
    payload = sandbox.get(f"/v2/patients/{guid}")
    return check(payload, v2.PatientShowResponse, SHOW).patient


def patients(sandbox: Sandbox) -> list[Any]:
    return sandbox.truth("SELECT * FROM patients WHERE practice_id = 1 ORDER BY internal_id")


# --- patients ---------------------------------------------------------------------------------


def test_a_named_patients_prefix_and_suffix_are_given_fields_of_the_name_even_when_empty(
    sandbox: Sandbox,
) -> None:
    """The name's prefix and suffix are given fields even when empty (as a name made and then
    copied with them had them); a patient without a first name is still refused."""
    guid = patients(sandbox)[0]["id"]
    payload = sandbox.get(f"/v2/patients/{guid}")
    raw = dict(payload["patient"], prefix="", suffix=" Jr ")
    named = map_patient(check({"patient": raw}, v2.PatientShowResponse, SHOW).patient, ctx(SHOW))
    assert (named.value.name.prefix, named.value.name.suffix) == ("", "Jr")
    assert named.value.name.model_fields_set == {"first", "last", "middle", "prefix", "suffix"}
    assert "suffix" not in named.dropped
    nameless = dict(raw, first_name=" ", prefix="Dr")
    with pytest.raises(UnexpectedPayload) as refused:
        map_patient(check({"patient": nameless}, v2.PatientShowResponse, SHOW).patient, ctx(SHOW))
    assert refused.value.field_path == "first_name"


def test_patient_show_carries_every_demographic_of_the_ground_truth(sandbox: Sandbox) -> None:
    guarantors = 0
    for row in patients(sandbox):
        data = json.loads(row["data_json"])
        mapped = map_patient(show(sandbox, row["id"]), ctx(SHOW))
        p = mapped.value
        assert p.id == PatientId.new(key("patient", row["chart_number"]))
        assert p.sources[0].upstream_id == row["id"]
        assert (p.name.first, p.name.last, p.name.middle) == (
            row["first_name"],
            row["last_name"],
            row["middle_initial"],
        )
        assert (p.name.prefix, p.name.suffix) == (data["prefix"], data["suffix"])
        assert p.birth_date == day(row["dob"])
        assert p.death_date == day(data["date_of_death"])
        assert p.gender == GENDER.get(row["gender_code"] or "")
        assert p.ssn == (row["ssn"] or None)
        assert p.email == (row["email"] or None)
        assert p.identifier("chart_number") == row["chart_number"]
        assert p.identifier("account_number") == row["account_number"]
        assert p.identifier("v2_id") == row["id"]
        licence = p.drivers_license
        assert (licence.number if licence else "") == row["drivers_license_number"]
        assert p.marital_status == MARITAL[data["marital_status_code"]]
        assert p.language == data["language_code"]
        assert p.race == (data["race_code"] or None)
        assert p.ethnicity == ETHNICITY[data["ethnicity_code"]]
        assert p.active is (row["status"] == "A")
        assert p.primary_location_id == LocationId.new(key("location", row["primary_location_id"]))
        assert p.primary_provider_id == ProviderId.new(key("provider", row["primary_provider_id"]))
        assert p.last_seen_date == day(row["last_seen_date"])
        assert p.referring_physician_npi == (data["referring_physician_npi"] or None)
        assert [
            (a.line1, a.line2, a.city, a.state, a.zip_code, a.is_primary) for a in p.addresses
        ] == [
            (a["line1"], a["line2"], a["city"], a["state_code"], a["zip_code"], a["is_primary"])
            for a in data["addresses"]
        ]
        assert [(ph.number, ph.kind, ph.is_primary) for ph in p.phones] == [
            (e164(ph["phone_number"]), PHONE_KIND[ph["phone_type_code"]], ph["is_primary"])
            for ph in data["phones"]
        ]
        party = data["responsible_party"]
        if party["relationship"] == "self":
            assert p.guarantor is None
        else:
            guarantors += 1
            g = p.guarantor
            assert g is not None
            assert g.relationship == party["relationship"]
            assert (g.name.first, g.name.last) == (party["first_name"], party["last_name"])
            assert g.birth_date == day(party["dob"])
            assert g.gender == GENDER[party["gender"]]
            assert [ph.number for ph in g.phones] == [
                e164(x["phone_number"]) for x in party["phones"]
            ]
            assert [a.zip_code for a in g.addresses] == [a["zip_code"] for a in party["addresses"]]
        assert_coverages(sandbox, row["id"], p.coverages)
        assert "first_name" not in mapped.dropped
    assert guarantors > 0, "the seed should give some patients another guarantor"


def assert_coverages(sandbox: Sandbox, guid: str, coverages: tuple[Any, ...]) -> None:
    rows = sandbox.truth(
        "SELECT p.*, f.name AS profile_name, f.is_default, y.name AS payer_name, y.plans_json "
        "FROM insurance_policies p JOIN insurance_profiles f ON f.id = p.profile_id "
        "JOIN payers y ON y.id = p.payer_id WHERE p.patient_id = ? "
        "ORDER BY p.profile_id, p.policy_priority",
        (guid,),
    )
    assert len(coverages) == len(rows)
    for c, row in zip(coverages, rows, strict=True):
        plan = next(x for x in json.loads(row["plans_json"]) if x["id"] == row["plan_id"])
        insured = json.loads(row["insured_json"])
        assert c.id == CoverageId.new(key("coverage", row["id"]))
        assert c.patient_id == PatientId.new(
            key(
                "patient",
                sandbox.truth("SELECT chart_number FROM patients WHERE id = ?", (guid,))[0][0],
            )
        )
        assert c.payer_id == PayerId.new(key("payer", row["payer_id"]))
        assert (c.payer_name, c.plan_name) == (row["payer_name"], plan["name"])
        assert c.policy_type == row["insurance_policy_type"]
        assert c.priority == row["policy_priority"]
        assert (c.profile_name, c.is_default_profile) == (
            row["profile_name"],
            bool(row["is_default"]),
        )
        assert c.member_number == row["member_number"]
        assert (c.policy_number, c.group_name) == (row["policy_number"], row["group_name"])
        assert (c.effective_from, c.effective_to) == (
            day(row["effective_from"]),
            day(row["effective_to"]),
        )
        assert c.copay == cents(row["co_payment_cents"])
        assert c.deductible == cents(row["deductible_cents"])
        assert c.requires_authorization is bool(row["requires_authorization"])
        assert c.insured.relationship == insured["relation_to_patient"]
        assert c.insured.birth_date == day(insured.get("date_of_birth"))


def test_a_search_hit_maps_to_the_patient_of_the_same_chart_number(sandbox: Sandbox) -> None:
    row = patients(sandbox)[5]
    payload = sandbox.call(
        "POST", "/v2/patients/search", json={"terms": [row["chart_number"]]}
    ).json()
    hits = check(payload, v2.PatientSearchResponse, "POST /v2/patients/search").patients
    assert [h.id for h in hits] == [row["id"]]
    hit = map_patient(hits[0], ctx("POST /v2/patients/search"))
    full = map_patient(show(sandbox, row["id"]), ctx(SHOW))
    assert hit.value.id == full.value.id
    assert hit.value.name.last == row["last_name"]
    assert hit.value.birth_date == day(row["dob"])
    assert hit.value.primary_location_id == full.value.primary_location_id
    assert hit.dropped == ("account_balance",)


def test_insurances_map_to_the_coverages_the_patient_embeds(sandbox: Sandbox) -> None:
    for row in patients(sandbox)[:10]:
        payload = sandbox.get(f"/v2/patients/{row['id']}/insurances")
        profiles = check(payload, v2.InsurancesResponse, "GET /v2/patients/{id}/insurances")
        wire = show(sandbox, row["id"])
        mapped = map_coverages(profiles.insurance_profiles, ctx(SHOW), patient=PatientRef.of(wire))
        assert mapped.value == map_patient(wire, ctx(SHOW)).value.coverages
        assert all(p.startswith("[]") for p in mapped.dropped)


def test_balances_add_up_to_the_open_charges_per_responsible_party(sandbox: Sandbox) -> None:
    for row in patients(sandbox):
        wire = show(sandbox, row["id"])
        rows = check_list(
            sandbox.get(f"/v2/patients/{row['id']}/balance"),
            v2.BalancePayload,
            "GET /v2/patients/{id}/balance",
        )
        ref = PatientRef.of(wire)
        open_cents = {
            r["balance_type"]: r["open"]
            for r in sandbox.truth(
                "SELECT balance_type, SUM(balance_cents) AS open FROM transactions "
                "WHERE patient_id = ? AND transaction_type IN ('charge', 'simple_charge') "
                "GROUP BY balance_type",
                (row["id"],),
            )
        }
        balances = [map_balance(b, ctx("GET /v2/patients/{id}/balance"), patient=ref) for b in rows]
        for b in balances:
            assert b.dropped == ()
            assert b.value.patient_id == ref.patient_id(ctx(SHOW))
            assert b.value.total == cents(open_cents.get(b.value.responsible, 0))
        with_balances = map_patient(wire, ctx(SHOW), balances=rows).value
        assert with_balances.account_balance == cents(sum(open_cents.values()))


def ledger_window() -> dict[str, str]:
    return {"start_date": "2026-01-01", "end_date": "2026-12-31"}


def test_ledger_transactions_map_to_charges_and_entries_of_the_ground_truth(
    sandbox: Sandbox,
) -> None:
    charges = entries = 0
    for row in patients(sandbox)[:20]:
        ref = PatientRef(v2_id=row["id"], chart_number=row["chart_number"])
        items = check_list(
            sandbox.pages(f"/v2/patients/{row['id']}/transactions", **ledger_window()),
            v2.TransactionPayload,
            "GET /v2/patients/{id}/transactions",
        )
        truth = {
            r["id"]: r
            for r in sandbox.truth("SELECT * FROM transactions WHERE patient_id = ?", (row["id"],))
        }
        assert {t.id for t in items} == set(truth)
        for t in items:
            r = truth[t.id]
            c = ctx("GET /v2/patients/{id}/transactions")
            if is_charge(t):
                charges += 1
                details = ChargeDetails(
                    responsible=r["balance_type"],
                    service_date=day(r["service_date"]),
                    procedure_code=r["procedure_code"],
                    modifiers=tuple(json.loads(r["modifiers_json"])),
                    diagnosis_codes=tuple(json.loads(r["diagnosis_codes_json"])),
                    billed=bool(r["billed"]),
                    encounter_id=r["encounter_id"],
                    appointment_id=r["appointment_id"],
                )
                mc = map_charge(t, c, patient=ref, details=details)
                charge = mc.value
                assert charge.id == ChargeId.new(key("transaction", r["id"]))
                assert (charge.kind, charge.status) == (
                    r["transaction_type"],
                    r["transaction_status"],
                )
                assert charge.amount == cents(r["amount_cents"])
                assert charge.balance == cents(r["balance_cents"])
                assert charge.posting_date == day(r["posting_date"])
                assert charge.service_date == day(r["service_date"])
                assert charge.procedure_code == r["procedure_code"]
                assert list(charge.diagnosis_codes) == json.loads(r["diagnosis_codes_json"])
                assert charge.units == r["units"]
                assert charge.description == r["description"]
                assert charge.responsible == r["balance_type"]
                assert charge.billed is bool(r["billed"])
                assert charge.provider_id == ProviderId.new(key("provider", r["provider_id"]))
                assert charge.attending_provider_id == ProviderId.new(
                    key("provider", r["attending_provider_id"])
                )
                assert charge.location_id == LocationId.new(key("location", r["location_id"]))
                assert charge.encounter_id == EncounterId.new(key("encounter", r["encounter_id"]))
                assert charge.appointment_id == AppointmentId.new(
                    key("appointment", r["appointment_id"])
                )
                assert mc.dropped == ()
            else:
                entries += 1
                me = map_ledger_entry(t, c, patient=ref)
                entry = me.value
                assert entry.id == LedgerEntryId.new(key("transaction", r["id"]))
                assert (entry.kind, entry.status) == (
                    r["transaction_type"],
                    r["transaction_status"],
                )
                assert entry.amount == cents(r["amount_cents"])
                assert entry.unapplied_credit == cents(r["unapplied_credit_cents"])
                assert entry.posting_date == day(r["posting_date"])
                assert entry.description == r["description"]
                assert entry.provider_id == ProviderId.new(key("provider", r["provider_id"]))
                assert entry.location_id == LocationId.new(key("location", r["location_id"]))
                assert me.dropped == ("attending_provider_id",)
    assert charges > 0
    assert entries > 0


def test_the_charges_list_holds_only_charge_kinds(sandbox: Sandbox) -> None:
    row = next(
        r
        for r in patients(sandbox)
        if sandbox.truth(
            "SELECT COUNT(*) FROM transactions WHERE patient_id = ? AND transaction_type != 'charge'",
            (r["id"],),
        )[0][0]
    )
    items = check_list(
        sandbox.pages(f"/v2/patients/{row['id']}/charges", **ledger_window()),
        v2.TransactionPayload,
        "GET /v2/patients/{id}/charges",
    )
    assert items
    assert all(is_charge(t) for t in items)
    with pytest.raises(ValueError):
        map_ledger_entry(items[0], ctx("x"), patient=PatientRef(row["id"], row["chart_number"]))


# --- appointments -------------------------------------------------------------------------------

APPOINTMENTS = "GET /v2/appointments"
CODE_STATUS = {
    "P": AppointmentStatus.SCHEDULED,
    "I": AppointmentStatus.ARRIVED,
    "O": AppointmentStatus.CHECKED_OUT,
    "C": AppointmentStatus.CANCELLED,
    "R": AppointmentStatus.RESCHEDULED,
    "N": AppointmentStatus.NO_SHOW,
}


def all_appointments(sandbox: Sandbox) -> list[v2.AppointmentPayload]:
    items = sandbox.pages("/v2/appointments", start_date="2026-01-01", end_date="2027-12-31")
    return [e.appointment for e in check_list(items, v2.AppointmentEnvelope, APPOINTMENTS)]


def cancellation_reasons(sandbox: Sandbox) -> dict[int, v2.CancellationReasonPayload]:
    envelopes = check_list(
        sandbox.get("/v2/appointment_cancellation_reasons"),
        v2.CancellationReasonEnvelope,
        "GET /v2/appointment_cancellation_reasons",
    )
    return {
        e.appointment_cancellation_reason.id: e.appointment_cancellation_reason for e in envelopes
    }


def test_every_appointment_maps_to_the_ground_truth(sandbox: Sandbox) -> None:
    wires = all_appointments(sandbox)
    truth = {
        r["id"]: r
        for r in sandbox.truth(
            "SELECT a.*, p.chart_number, r.code AS reason_code, r.name AS reason_name "
            "FROM appointments a JOIN patients p ON p.id = a.patient_id "
            "LEFT JOIN cancellation_reasons r ON r.id = a.cancellation_reason_id"
        )
    }
    assert {w.id for w in wires} == set(truth)
    reasons = cancellation_reasons(sandbox)
    seen: set[AppointmentStatus] = set()
    for wire in wires:
        r = truth[wire.id]
        a = map_appointment(wire, ctx(APPOINTMENTS), cancellation_reasons=reasons).value
        expected = CODE_STATUS[r["status_code"]]
        if expected is AppointmentStatus.SCHEDULED and r["is_confirmed"]:
            expected = AppointmentStatus.CONFIRMED
        assert a.status is expected
        seen.add(a.status)
        assert a.id == AppointmentId.new(key("appointment", r["id"]))
        assert_appointment_matches(a, r, key)
    assert {
        AppointmentStatus.SCHEDULED,
        AppointmentStatus.CONFIRMED,
        AppointmentStatus.CHECKED_OUT,
        AppointmentStatus.CANCELLED,
        AppointmentStatus.NO_SHOW,
    } <= seen


def test_appointment_show_adds_the_extended_fields_and_confirmations(sandbox: Sandbox) -> None:
    rows = sandbox.truth(
        "SELECT * FROM appointments WHERE id IN (SELECT appointment_id FROM "
        "appointment_confirmations) ORDER BY internal_id LIMIT 25"
    )
    assert rows
    for r in rows:
        payload = sandbox.get(f"/v2/appointments/{r['id']}")
        wire = check(payload, v2.AppointmentDetailResponse, "GET /v2/appointments/{id}").appointment
        confirmations = [
            e.appointment_confirmation
            for e in check_list(
                sandbox.get(f"/v2/appointments/{r['id']}/confirmations"),
                v2.ConfirmationEnvelope,
                "GET /v2/appointments/{id}/confirmations",
            )
        ]
        mapped = map_appointment(
            wire, ctx("GET /v2/appointments/{id}"), confirmations=confirmations
        )
        a = mapped.value
        assert a.preferred_confirmation_method == r["preferred_confirmation_method"]
        assert a.encounter_id == (
            None
            if r["encounter_id"] is None
            else EncounterId.new(key("encounter", r["encounter_id"]))
        )
        assert a.created_by_application == r["created_by_application"]
        truth = sandbox.truth(
            "SELECT * FROM appointment_confirmations WHERE appointment_id = ? ORDER BY id",
            (r["id"],),
        )
        assert [
            (c.method, c.outcome, c.method_description, c.comments, c.confirmed_at, c.recorded_at)
            for c in a.confirmations
        ] == [
            (
                t["communication_method"],
                t["communication_outcome"],
                t["communication_method_description"] or "",
                t["comments"] or "",
                instant(t["date_confirmed"]),
                instant(t["created_at"]),
            )
            for t in truth
        ]
        assert "confirmations[].id" in mapped.dropped
        one = map_confirmation(confirmations[0], ctx("x"))
        assert one.value == a.confirmations[0]


def test_one_person_gets_one_patient_id_across_v2_endpoints(sandbox: Sandbox) -> None:
    wires = all_appointments(sandbox)[:30]
    for wire in wires:
        appointment = map_appointment(wire, ctx(APPOINTMENTS)).value
        patient = map_patient(show(sandbox, wire.patient.id), ctx(SHOW)).value
        assert appointment.patient_id == patient.id


@pytest.mark.parametrize(
    ("code", "name", "confirmed", "expected"),
    [
        ("P", "Pending", False, "scheduled"),
        ("P", "Pending", True, "confirmed"),
        ("I", "Checked In", True, "arrived"),
        ("O", "Checked Out", False, "checked_out"),
        ("C", "Cancelled", True, "cancelled"),
        ("R", "Rescheduled", False, "rescheduled"),
        ("N", "No Show", False, "no_show"),
        ("X", "No-Show (late)", False, "no_show"),
        ("W", "Waiting Room - Arrived", False, "arrived"),
        ("D", "Departed", False, "checked_out"),
        ("Z", "Cancelled by office", False, "cancelled"),
        ("Q", "Tentative", True, "confirmed"),
    ],
)
def test_upstream_status_letters_and_names_map_to_the_domain_vocabulary(
    code: str, name: str, confirmed: bool, expected: str
) -> None:
    assert appointment_status(code, name, confirmed) == expected


# --- the practice -------------------------------------------------------------------------------


def test_providers_map_with_npi_name_credentials_and_specialty(sandbox: Sandbox) -> None:
    wires = check(sandbox.get("/v2/providers"), v2.ProvidersResponse, "GET /v2/providers").providers
    truth = {
        r["id"]: r
        for r in sandbox.truth("SELECT * FROM providers WHERE practice_id = 1 AND status = 'A'")
    }
    assert {w.id for w in wires} == set(truth)
    for wire in wires:
        r = truth[wire.id]
        mapped = map_provider(wire, ctx("GET /v2/providers"))
        p = mapped.value
        assert p.id == ProviderId.new(key("provider", r["id"]))
        assert p.npi == r["npi"]
        assert (p.name.first, p.name.last, p.credentials) == (
            r["first_name"],
            r["last_name"],
            r["credentials"],
        )
        assert p.email == r["email"]
        assert p.phone is not None
        assert p.phone.number == e164(r["phone_number"])
        assert (p.taxonomy, p.specialty_name) == (r["taxonomy"], r["specialty_name"])
        assert mapped.dropped == ()


def test_locations_map_with_place_of_service_address_and_phones(sandbox: Sandbox) -> None:
    wires = check(sandbox.get("/v2/locations"), v2.LocationsResponse, "GET /v2/locations").locations
    truth = {
        r["id"]: r
        for r in sandbox.truth("SELECT * FROM locations WHERE practice_id = 1 AND status = 'A'")
    }
    assert {w.id for w in wires} == set(truth)
    for wire in wires:
        r = truth[wire.id]
        address = json.loads(r["address_json"])
        mapped = map_location(wire, ctx("GET /v2/locations"))
        loc = mapped.value
        assert loc.id == LocationId.new(key("location", r["id"]))
        assert loc.name == r["name"]
        assert loc.place_of_service == r["place_of_service_code"]
        assert loc.visible_in_scheduler is bool(r["is_visible_appointment_scheduler"])
        assert loc.address is not None
        assert (loc.address.line1, loc.address.city, loc.address.state, loc.address.zip_code) == (
            address["line1"],
            address["city"],
            address["state_code"],
            address["zip_code"],
        )
        assert loc.address.county == address["county_name"]
        assert loc.address.latitude == float(address["latitude"])
        assert [(p.number, p.is_primary) for p in loc.phones] == [
            (e164(p["phone_number"]), p["is_primary"]) for p in json.loads(r["phones_json"])
        ]
        assert [p.kind for p in loc.phones] == ["work", "fax"]
        assert mapped.dropped == ()


def test_resources_map_with_their_default_provider_and_visit_reasons(sandbox: Sandbox) -> None:
    envelopes = check_list(
        sandbox.get("/v2/appointment_resources"),
        v2.ResourceEnvelope,
        "GET /v2/appointment_resources",
    )
    truth = {
        r["id"]: r
        for r in sandbox.truth("SELECT * FROM resources WHERE practice_id = 1 AND status = 'A'")
    }
    assert {e.resource.id for e in envelopes} == set(truth)
    for envelope in envelopes:
        r = truth[envelope.resource.id]
        listed = map_resource(envelope.resource, ctx("GET /v2/appointment_resources")).value
        detail = check(
            sandbox.get(f"/v2/appointment_resources/{r['id']}"),
            v2.ResourceDetailResponse,
            "GET /v2/appointment_resources/{id}",
        ).resource
        reasons = check_list(
            sandbox.get(f"/v2/appointment_resources/{r['id']}/visit_reasons"),
            v2.VisitReasonPayload,
            "GET /v2/appointment_resources/{id}/visit_reasons",
        )
        full = map_resource(
            detail, ctx("GET /v2/appointment_resources/{id}"), visit_reasons=reasons
        )
        res = full.value
        assert res.id == listed.id == ResourceId.new(key("resource", r["id"]))
        assert (res.name, res.code, res.description) == (r["name"], r["code"], r["description"])
        assert res.sort_code == r["sort_code"]
        assert res.bookable_by_request is bool(r["is_for_requests"])
        assert res.confirmation_mode == r["appointment_confirmation"]
        assert res.default_provider_id == ProviderId.new(key("provider", r["default_provider_id"]))
        assert (res.created_at, res.updated_at) == (
            instant(r["created_at"]),
            instant(r["updated_at"]),
        )
        expected = sandbox.truth(
            "SELECT visit_reason_id FROM resource_visit_reasons v JOIN visit_reasons r "
            "ON r.id = v.visit_reason_id WHERE resource_id = ? AND r.status = 'A' ORDER BY 1",
            (r["id"],),
        )
        assert res.visit_reason_ids == tuple(
            VisitReasonId.new(key("visit_reason", x[0])) for x in expected
        )
        assert listed.default_provider_id is None
        assert set(full.dropped) == {
            "business_entity_id",
            "created_by",
            "updated_by",
            "default_provider.name",
        }


def availability(sandbox: Sandbox, reason: int) -> list[v2.AvailabilityGroupPayload]:
    return check_list(
        sandbox.get(
            "/v2/appointment_availability",
            start_date="2026-11-25",
            end_date="2026-12-02",
            visit_reason_id=str(reason),
        ),
        v2.AvailabilityGroupPayload,
        "GET /v2/appointment_availability",
    )


def test_visit_reasons_take_their_duration_from_an_availability_search(sandbox: Sandbox) -> None:
    wires = check_list(
        sandbox.get("/v2/visit_reasons"), v2.VisitReasonPayload, "GET /v2/visit_reasons"
    )
    requestable = {
        w.id
        for w in check_list(
            sandbox.get("/v2/visit_reasons", request_types_only="true"),
            v2.VisitReasonPayload,
            "GET /v2/visit_reasons",
        )
    }
    truth = {
        r["id"]: r
        for r in sandbox.truth("SELECT * FROM visit_reasons WHERE practice_id = 1 AND status = 'A'")
    }
    assert {w.id for w in wires} == set(truth)
    for wire in wires:
        r = truth[wire.id]
        minutes = usual_duration(availability(sandbox, wire.id))
        assert minutes is not None
        mapped = map_visit_reason(
            wire,
            ctx("GET /v2/visit_reasons"),
            duration_minutes=minutes,
            bookable_by_request=wire.id in requestable,
        )
        vr = mapped.value
        assert vr.id == VisitReasonId.new(key("visit_reason", r["id"]))
        assert (vr.name, vr.description) == (r["name"], r["description"])
        assert vr.duration_minutes == r["duration"]
        assert vr.bookable_by_request is bool(r["for_requests"])
        assert mapped.dropped == ()


def test_availability_slots_are_the_tenants_free_slots(sandbox: Sandbox) -> None:
    providers = {
        r["id"]: r["default_provider_id"]
        for r in sandbox.truth("SELECT id, default_provider_id FROM resources")
    }
    for reason in (119104, 119103):
        groups = availability(sandbox, reason)
        mapped = [
            map_slots(g, ctx("GET /v2/appointment_availability"), default_providers=providers)
            for g in groups
        ]
        got = sorted(
            (s.start, s.end, s.location_id, s.resource_id, s.provider_id)
            for m in mapped
            for s in m.value
        )
        expected = sorted(
            (
                s.start,
                s.end,
                LocationId.new(key("location", s.location_id)),
                ResourceId.new(key("resource", s.resource_id)),
                ProviderId.new(key("provider", providers[s.resource_id])),
            )
            for s in find_slots(
                sandbox.tenant,
                1,
                visit_reason_id=reason,
                start=date(2026, 11, 25),
                end=date(2026, 12, 2),
            )
        )
        assert got == expected
        assert all(
            s.visit_reason_id == VisitReasonId.new(key("visit_reason", reason))
            for m in mapped
            for s in m.value
        )
        assert set(mapped[0].dropped) == {"location.name", "resource.name", "visit_reason.name"}
        single = map_slot(groups[0].slots[0], groups[0], ctx("x"))
        assert single.value.start == groups[0].slots[0].start_time
        assert single.dropped == ()


def test_payers_map_with_their_plans_and_an_inferred_kind(sandbox: Sandbox) -> None:
    wires = check(sandbox.get("/v2/payers"), v2.PayersResponse, "GET /v2/payers").payers
    truth = {r["id"]: r for r in sandbox.truth("SELECT * FROM payers WHERE status = 'A'")}
    assert {w.id for w in wires} == set(truth)
    for wire in wires:
        r = truth[wire.id]
        plans = check(
            sandbox.get(f"/v2/payers/{wire.id}/plans"),
            v2.PlansResponse,
            "GET /v2/payers/{id}/plans",
        ).plans
        mapped = map_payer(wire, ctx("GET /v2/payers"), plans=plans)
        payer = mapped.value
        truth_plans = json.loads(r["plans_json"])
        assert payer.id == PayerId.new(key("payer", r["id"]))
        assert (payer.name, payer.payer_code) == (r["name"], r["payer_code"])
        assert [(p.name, p.policy_type, p.upstream_id) for p in payer.plans] == [
            (p["name"], p["insurance_policy_type"], str(p["id"])) for p in truth_plans
        ]
        assert payer.kind == payer_kind(p["insurance_policy_type"] for p in truth_plans)
        if r["kind"] in ("medicaid", "bcbs", "workers_comp"):
            assert payer.kind == r["kind"]
        assert payer.address is not None
        assert payer.address.zip_code == json.loads(r["address_json"])["zip_code"]
        assert [p.kind for p in payer.phones] == ["toll_free"]
        assert mapped.dropped == ()


# --- documents and eligibility ------------------------------------------------------------------


def test_documents_map_with_their_loinc_type(sandbox: Sandbox) -> None:
    loinc = {
        "Progress note": "11506-3",
        "Procedure Note": "28570-0",
        "History and Physical": "34117-2",
        "Discharge summary": "18842-5",
        "Consult note": "11488-4",
    }
    rows = [
        r
        for r in patients(sandbox)
        if sandbox.truth("SELECT COUNT(*) FROM documents WHERE patient_id = ?", (r["id"],))[0][0]
    ][:10]
    assert rows
    for row in rows:
        ref = PatientRef(row["id"], row["chart_number"])
        docs = check(
            sandbox.get("/v2/documents", patient_id=row["id"]),
            v2.DocumentsResponse,
            "GET /v2/documents",
        ).documents
        truth = {
            r["id"]: r
            for r in sandbox.truth(
                "SELECT * FROM documents WHERE patient_id = ? AND status = 'A'", (row["id"],)
            )
        }
        assert {d.id for d in docs} == set(truth)
        for wire in docs:
            r = truth[wire.id]
            mapped = map_document(wire, ctx("GET /v2/documents"), patient=ref)
            d = mapped.value
            assert d.id == DocumentId.new(key("document", r["id"]))
            assert d.patient_id == ref.patient_id(ctx("x"))
            assert (d.name, d.description, d.source_name) == (
                r["name"],
                r["description"],
                r["document_source_name"],
            )
            assert d.type_loinc == loinc.get(r["document_source_name"], "11502-2")
            assert d.document_date == day(r["document_date"])
            assert (d.content_type, d.size_bytes) == (r["content_type"], r["size_bytes"])
            assert mapped.dropped == ()
        other = PatientRef("00000000-0000-4000-8000-000000000000", "X1")
        with pytest.raises(UnexpectedPayload) as err:
            map_document(docs[0], ctx("GET /v2/documents"), patient=other)
        assert err.value.field_path == "patient_id"


def test_an_eligibility_request_is_pending_then_answers_with_the_primary_policy(
    sandbox: Sandbox,
) -> None:
    row = sandbox.truth(
        "SELECT p.* FROM patients p JOIN insurance_policies i ON i.patient_id = p.id "
        "WHERE i.policy_priority = 1 AND i.effective_to IS NULL AND i.out_of_pocket_max_cents "
        "IS NOT NULL ORDER BY p.internal_id LIMIT 1"
    )[0]
    ref = PatientRef(row["id"], row["chart_number"])
    created_at = sandbox.clock.now()
    created = check(
        sandbox.call("POST", f"/v2/patients/{row['id']}/eligibility_request", json={}).json(),
        v2.EligibilityCreatedResponse,
        "POST /v2/patients/{id}/eligibility_request",
    ).eligibility_request
    pending = map_eligibility(created, ctx("POST"), patient=ref, requested_at=created_at).value
    assert (pending.status, pending.benefits, pending.responded_at) == ("pending", (), None)
    later = sandbox.clock.advance(timedelta(seconds=6))
    polled = check(
        sandbox.get(f"/v2/patients/{row['id']}/eligibility_request/{created.id}"),
        v2.EligibilityResponse,
        "GET /v2/patients/{id}/eligibility_request/{request_id}",
    ).eligibility_request
    answered_ctx = Context(tenant=TENANT, surface="v2", endpoint="GET", fetched_at=later)
    mapped = map_eligibility(polled, answered_ctx, patient=ref, requested_at=created_at)
    check_ = mapped.value
    policy = sandbox.truth(
        "SELECT * FROM insurance_policies WHERE patient_id = ? ORDER BY policy_priority LIMIT 1",
        (row["id"],),
    )[0]
    assert check_.id == pending.id
    assert (check_.status, check_.coverage_status) == ("complete", "active")
    assert (check_.requested_at, check_.responded_at) == (created_at, later)
    assert check_.request.service_date == ANCHOR
    assert check_.payer_id == PayerId.new(key("payer", policy["payer_id"]))
    assert check_.member_number == policy["member_number"]
    assert check_.plan_type == policy["insurance_policy_type"]
    assert [b.service_type for b in check_.benefits] == ["30", "98"]
    office = check_.benefit("98")
    assert office is not None
    assert office.copay == cents(policy["co_payment_cents"])
    assert office.coinsurance == Decimal(policy["coinsurance_pct"]) / 100
    assert office.deductible == cents(policy["deductible_cents"])
    assert office.out_of_pocket_max == cents(policy["out_of_pocket_max_cents"])
    assert mapped.dropped == ()


# --- dropped fields and errors ------------------------------------------------------------------


def test_dropped_names_present_fields_the_domain_does_not_carry(sandbox: Sandbox) -> None:
    row = patients(sandbox)[0]
    mapped = map_patient(show(sandbox, row["id"]), ctx(SHOW))
    assert "business_entity_name" in mapped.dropped
    assert "primary_location.mnemonic" in mapped.dropped
    assert "addresses[].country_id" in mapped.dropped
    consumed = {"first_name", "last_name", "dob", "ssn", "chart_number", "addresses[].zip_code"}
    assert not consumed & set(mapped.dropped)
    assert "photo" not in mapped.dropped  # null carries nothing
    assert list(mapped.dropped) == sorted(mapped.dropped)


def test_an_invalid_optional_value_is_dropped_not_fatal(sandbox: Sandbox) -> None:
    row = patients(sandbox)[1]
    payload = sandbox.get(f"/v2/patients/{row['id']}")
    payload["patient"].update(
        {"email_address": "not-an-email", "ssn": "12", "referring_physician_npi": "1234567890"}
    )
    payload["patient"]["phones"][0]["phone_number"] = "555"
    payload["patient"]["favourite_colour"] = "teal"
    wire = check(payload, v2.PatientShowResponse, SHOW).patient
    mapped = map_patient(wire, ctx(SHOW))
    assert (mapped.value.email, mapped.value.ssn, mapped.value.referring_physician_npi) == (
        None,
        None,
        None,
    )
    assert len(mapped.value.phones) == len(payload["patient"]["phones"]) - 1
    assert {
        "email_address",
        "ssn",
        "referring_physician_npi",
        "phones[].phone_number",
        "favourite_colour",
    } <= set(mapped.dropped)


def test_a_payload_that_breaks_a_domain_rule_raises_without_phi(sandbox: Sandbox) -> None:
    payload = sandbox.get("/v2/appointments", start_date="2026-11-20", end_date="2026-11-30")
    item = payload[0]["appointment"]
    item["end_time"], item["start_time"] = item["start_time"], item["end_time"]
    wire = check_list(payload, v2.AppointmentEnvelope, APPOINTMENTS)[0].appointment
    with pytest.raises(UnexpectedPayload) as err:
        map_appointment(wire, ctx(APPOINTMENTS))
    assert err.value.field_path == "end"
    assert err.value.endpoint == APPOINTMENTS
    text = str(err.value)
    assert item["id"] in text
    for phi in (
        item["patient"]["first_name"],
        item["patient"]["last_name"],
        item["patient"]["chart_number"],
    ):
        assert phi not in text


def test_cancellation_details_on_a_pending_appointment_are_dropped(sandbox: Sandbox) -> None:
    payload = sandbox.get("/v2/appointments", start_date="2026-11-25", end_date="2026-12-31")
    item = next(
        i["appointment"] for i in payload if i["appointment"]["appointment_status"]["code"] == "P"
    )
    item["cancellation_details"] = {"id": 1, "detail": "Patient Request", "comments": ""}
    wire = check_list(payload, v2.AppointmentEnvelope, APPOINTMENTS)
    match = next(e.appointment for e in wire if e.appointment.id == item["id"])
    mapped = map_appointment(match, ctx(APPOINTMENTS))
    assert mapped.value.cancellation is None
    assert "cancellation_details" in mapped.dropped


def test_an_unknown_balance_type_or_transaction_type_raises(sandbox: Sandbox) -> None:
    ref = PatientRef("37d480d1-fe7d-4600-bbb1-bd79367e418d", "C1")
    row = dict.fromkeys(("unapplied_credit", "unbilled", "current", "total"), "0.00")
    row.update({f"greater_than_{n}": "0.00" for n in (30, 60, 90, 120)})
    with pytest.raises(UnexpectedPayload) as err:
        map_balance(
            v2.BalancePayload.model_validate({**row, "balance_type": "guarantor"}),
            ctx("b"),
            patient=ref,
        )
    assert err.value.field_path == "balance_type"
    txn = v2.TransactionPayload.model_validate(
        {
            "id": 9,
            "amount": "-5.00",
            "balance": "0.00",
            "unapplied_credit": "0.00",
            "posting_date": "2026-11-01",
            "transaction_type": "bitcoin_payment",
            "transaction_status": "posted",
            "location_id": None,
            "provider_id": None,
            "attending_provider_id": None,
            "units": None,
            "description": "",
        }
    )
    with pytest.raises(UnexpectedPayload) as err:
        map_ledger_entry(txn, ctx("t"), patient=ref)
    assert err.value.field_path == "transaction_type"


# --- robustness, on hand-made payloads ------------------------------------------------------------

REF = PatientRef("37d480d1-fe7d-4600-bbb1-bd79367e418d", "C1")


def policy_payload(**changes: Any) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "id": 9,
        "policy_priority": 1,
        "member_number": "XYZ123",
        "policy_number": "",
        "effective_from": "2024-01-01",
        "effective_to": None,
        "co_payment": "25.0",
        "deductible": "500.0",
        "type": "Commercial",
        "group_name": "ACME",
        "requires_authorization": False,
        "plan": {"id": 3, "name": "PPO"},
        "insured": {
            "first_name": "",
            "last_name": "",
            "middle_initial": "",
            "date_of_birth": "",
            "gender": "M",
            "relation_to_patient": "self",
            "addresses": [],
            "phones": [],
        },
        "payer": {"id": 77, "name": "Aetna", "payer_pending?": False, "phones": [], "address": {}},
    }
    policy.update(changes)
    return policy


def test_the_documented_policy_example_maps_to_a_coverage() -> None:
    profile = v2.InsuranceProfilePayload.model_validate(
        {
            "id": 1,
            "name": "Commercial",
            "self_pay": False,
            "default": True,
            "insurance_policies": [],
        }
    )
    policy = v2.InsurancePolicyPayload.model_validate(policy_payload())
    mapped = map_coverage(
        policy, ctx("GET /v2/patients/{id}/insurances"), patient=REF, profile=profile
    )
    c = mapped.value
    assert (c.policy_type, c.copay, c.deductible) == (
        "commercial_insurance",
        Decimal("25.00"),
        Decimal("500.00"),
    )
    assert (c.insured.relationship, c.insured.name, c.insured.birth_date) == ("self", None, None)
    assert c.payer_id == PayerId.new(key("payer", 77))
    assert mapped.dropped == ("payer.payer_pending?", "plan.id")  # the payer's, not the policy's
    no_member = v2.InsurancePolicyPayload.model_validate(policy_payload(member_number=" "))
    with pytest.raises(UnexpectedPayload) as err:
        map_coverage(no_member, ctx("x"), patient=REF, profile=profile)
    assert err.value.field_path == "member_number"


def _profile() -> v2.InsuranceProfilePayload:
    return v2.InsuranceProfilePayload.model_validate(
        {
            "id": 1,
            "name": "Commercial",
            "self_pay": False,
            "default": True,
            "insurance_policies": [],
        }
    )


def test_a_subscriber_other_than_the_patient_without_a_name_rejects_its_policy() -> None:
    # Another relationship needs a name: the policy is a typed rejection (dropped from the
    # patient), never a bare validation error and never a subscriber made up.
    insured = {**policy_payload()["insured"], "relation_to_patient": "spouse"}
    policy = v2.InsurancePolicyPayload.model_validate(policy_payload(insured=insured))
    with pytest.raises(UnexpectedPayload) as err:
        map_coverage(
            policy, ctx("GET /v2/patients/{id}/insurances"), patient=REF, profile=_profile()
        )
    assert err.value.field_path == "insured.name"
    assert err.value.endpoint == "GET /v2/patients/{id}/insurances"


def test_a_named_subscriber_with_a_bad_part_keeps_its_relationship_and_name() -> None:
    insured = {
        **policy_payload()["insured"],
        "first_name": "Robin",
        "last_name": "Sandbox",
        "relation_to_patient": "spouse",
        "phones": [
            {"phone_number": "217-555-0101", "phone_type_code": "H", "is_primary": True},
            {"phone_number": "217-555-0102", "phone_type_code": "C", "is_primary": True},
        ],
    }
    policy = v2.InsurancePolicyPayload.model_validate(policy_payload(insured=insured))
    mapped = map_coverage(policy, ctx("x"), patient=REF, profile=_profile())
    subscriber = mapped.value.insured
    assert subscriber.relationship == "spouse"
    assert subscriber.name is not None
    assert (subscriber.name.first, subscriber.name.last) == ("Robin", "Sandbox")


def test_a_policy_that_cannot_be_a_coverage_is_dropped_from_the_patient(sandbox: Sandbox) -> None:
    row = next(
        r
        for r in patients(sandbox)
        if sandbox.truth(
            "SELECT COUNT(*) FROM insurance_policies WHERE patient_id = ?", (r["id"],)
        )[0][0]
    )
    payload = sandbox.get(f"/v2/patients/{row['id']}")
    payload["patient"]["insurance_profiles"][0]["insurance_policies"][0]["member_number"] = ""
    payload["patient"]["responsible_party"] = {"relationship": "father"}
    payload["patient"]["phones"] = [
        {"phone_number": "217-555-0101", "phone_type_code": "H", "is_primary": True},
        {"phone_number": "217-555-0102", "phone_type_code": "C", "is_primary": True},
    ]
    mapped = map_patient(check(payload, v2.PatientShowResponse, SHOW).patient, ctx(SHOW))
    total = sum(len(p["insurance_policies"]) for p in payload["patient"]["insurance_profiles"])
    assert len(mapped.value.coverages) == total - 1
    assert mapped.value.guarantor is None
    assert [p.is_primary for p in mapped.value.phones] == [True, False]
    assert {
        "insurance_profiles[].insurance_policies[]",
        "responsible_party",
        "phones[].is_primary",
    } <= set(mapped.dropped)


def test_a_patient_without_a_name_is_refused() -> None:
    payload = {
        "id": REF.v2_id,
        "first_name": "",
        "last_name": "Sandbox",
        "middle_initial": "",
        "name": "",
        "dob": None,
        "account_balance": "0.00",
        "chart_number": "C1",
        "last_seen_date": None,
        "gender": None,
        "gender_code": None,
        "primary_location_id": None,
        "photo": None,
    }
    with pytest.raises(UnexpectedPayload) as err:
        map_patient(v2.PatientSearchItem.model_validate(payload), ctx("search"))
    assert err.value.field_path == "first_name"


def test_provider_and_location_values_that_fail_validation() -> None:
    provider = {
        "id": 5,
        "npi": "1245319599",
        "name": "Avery Quinnfield",
        "email": "nope",
        "phone_number": "12",
        "specialty": {"name": "Family Medicine", "taxonomy": "bogus"},
        "last_name": "Quinnfield",
        "first_name": "Avery",
    }
    mapped = map_provider(v2.ProviderPayload.model_validate(provider), ctx("p"))
    p = mapped.value
    assert (p.credentials, p.email, p.phone, p.taxonomy, p.specialty_name) == (
        "",
        None,
        None,
        None,
        None,
    )
    assert set(mapped.dropped) == {"email", "phone_number", "specialty.name", "specialty.taxonomy"}
    with pytest.raises(UnexpectedPayload) as err:
        map_provider(v2.ProviderPayload.model_validate({**provider, "npi": "1245319598"}), ctx("p"))
    assert err.value.field_path == "npi"
    location = {
        "id": 1,
        "name": "Clinic",
        "is_visible_appointment_scheduler": None,
        "place_of_service_code": "11",
        "address": {"line1": "1 Main", "latitude": "39.7", "state": "Illinois", "zip_code": "627"},
        "phones": [{"phone_number": "217-555-0100", "phone_type": "Business", "phone_ext": "12"}],
    }
    mapped_location = map_location(v2.LocationPayload.model_validate(location), ctx("l"))
    loc = mapped_location.value
    assert loc.address is not None
    assert (loc.address.latitude, loc.address.state, loc.address.zip_code) == (None, None, None)
    assert (loc.phones[0].kind, loc.phones[0].extension) == ("work", "12")
    assert set(mapped_location.dropped) == {
        "address.latitude",
        "address.state",
        "address.zip_code",
    }
    with pytest.raises(UnexpectedPayload) as err:
        map_location(
            v2.LocationPayload.model_validate({**location, "place_of_service_code": "1"}), ctx("l")
        )
    assert err.value.field_path == "place_of_service"


def appointment_payload(sandbox: Sandbox, code: str) -> dict[str, Any]:
    guid = sandbox.truth(
        "SELECT id FROM appointments WHERE status_code = ? ORDER BY internal_id LIMIT 1", (code,)
    )[0][0]
    return dict(sandbox.get(f"/v2/appointments/{guid}")["appointment"])


def test_practice_statuses_and_unknown_codes_on_an_appointment(sandbox: Sandbox) -> None:
    raw = appointment_payload(sandbox, "P")
    raw["appointment_status"] = {"id": 77, "code": "X", "name": "No Show - Late Cancel"}
    raw["preferred_confirmation_method"] = "carrier_pigeon"
    mapped = map_appointment(
        v2.AppointmentDetailPayload.model_validate(raw), ctx("GET /v2/appointments/{id}")
    )
    assert mapped.value.status is AppointmentStatus.NO_SHOW
    assert mapped.value.upstream_status is not None
    assert mapped.value.upstream_status.name == "No Show - Late Cancel"
    assert mapped.value.preferred_confirmation_method is None
    assert "preferred_confirmation_method" in mapped.dropped
    cancelled = appointment_payload(sandbox, "C")
    cancelled["cancellation_details"] = None
    plain = map_appointment(v2.AppointmentDetailPayload.model_validate(cancelled), ctx("x")).value
    assert plain.cancellation is not None
    assert plain.cancellation.reason_name == ""
    confirmation = v2.ConfirmationPayload.model_validate(
        {
            "id": 1,
            "appointment_id": raw["id"],
            "comments": None,
            "communication_method": "telegram",
            "communication_method_description": None,
            "communication_outcome": "maybe",
            "created_at": None,
            "date_confirmed": None,
            "updated_at": None,
        }
    )
    one = map_confirmation(confirmation, ctx("x"))
    assert (one.value.method, one.value.outcome) == ("other", None)
    assert set(one.dropped) == {"communication_method", "communication_outcome", "id"}


def transaction_payload(**changes: Any) -> v2.TransactionPayload:
    data: dict[str, Any] = {
        "id": 9,
        "amount": "100.00",
        "balance": "40.00",
        "unapplied_credit": "0.00",
        "posting_date": "2026-11-01",
        "transaction_type": "simple_charge",
        "transaction_status": "posted",
        "location_id": None,
        "provider_id": None,
        "attending_provider_id": None,
        "units": None,
        "description": "No-show fee",
    }
    data.update(changes)
    return v2.TransactionPayload.model_validate(data)


def test_ledger_edge_cases() -> None:
    details = ChargeDetails(responsible="patient")
    fee = map_charge(
        transaction_payload(unapplied_credit="5.00"), ctx("t"), patient=REF, details=details
    )
    assert (fee.value.kind, fee.value.units, fee.value.procedure_code) == ("simple_charge", 1, None)
    assert fee.value.service_date == date(2026, 11, 1)
    assert fee.dropped == ("unapplied_credit",)
    with pytest.raises(ValueError):
        map_charge(
            transaction_payload(transaction_type="patient_payment"),
            ctx("t"),
            patient=REF,
            details=details,
        )
    with pytest.raises(UnexpectedPayload) as err:
        map_charge(
            transaction_payload(transaction_status="void"), ctx("t"), patient=REF, details=details
        )
    assert err.value.field_path == "transaction_status"
    refund = map_ledger_entry(
        transaction_payload(
            transaction_type="patient_payment_refund", amount="20.00", balance="3.00"
        ),
        ctx("t"),
        patient=REF,
    )
    assert refund.value.amount == Decimal("20.00")
    assert refund.dropped == ("balance",)


def eligibility_payload(status: str, response: Any) -> v2.EligibilityRequestPayload:
    return v2.EligibilityRequestPayload.model_validate(
        {"id": 4, "status": status, "eligibility_date": "2026-11-24", "response": response}
    )


def test_eligibility_answers_errors_and_odd_benefits() -> None:
    answer = {
        "coverage_status": "Active",
        "benefits": [
            {"service_type_code": "98", "co_insurance": "20", "coverage_level": "family"},
            {"service_type_code": "ZZ9"},
            {"service_type_code": "30", "deductible": "100.00", "deductible_remaining": "200.00"},
        ],
        "payer": None,
        "plan_type": "HMO",
        "reason": "",
    }
    mapped = map_eligibility(eligibility_payload("complete", answer), ctx("e"), patient=REF)
    check_ = mapped.value
    assert (check_.coverage_status, check_.plan_type, check_.payer_id) == ("active", "hmo", None)
    assert [(b.service_type, b.coinsurance, b.coverage_level) for b in check_.benefits] == [
        ("98", Decimal("0.2"), "family")
    ]
    assert set(mapped.dropped) == {"response.benefits[]", "response.benefits[].service_type_code"}
    failed = map_eligibility(
        eligibility_payload(
            "error", {"coverage_status": "unknown", "benefits": [], "reason": "AAA 72"}
        ),
        ctx("e"),
        patient=REF,
    ).value
    assert (failed.status, failed.reason, failed.coverage_status) == ("error", "AAA 72", "unknown")
    early = map_eligibility(
        eligibility_payload("pending", {"coverage_status": "active", "benefits": []}),
        ctx("e"),
        patient=REF,
    )
    assert early.value.coverage_status is None
    assert "response" in early.dropped
    with pytest.raises(UnexpectedPayload) as err:
        map_eligibility(eligibility_payload("queued", None), ctx("e"), patient=REF)
    assert err.value.field_path == "status"
    with pytest.raises(UnexpectedPayload):
        map_eligibility(eligibility_payload("complete", None), ctx("e"), patient=REF)


@pytest.mark.parametrize(
    ("plans", "kind"),
    [
        ([], "other"),
        (["medicare_b", "medicare_hmo"], "medicare"),
        (["medicaid", "medicaid_hmo"], "medicaid"),
        (["champus"], "tricare"),
        (["hmo", "blue_cross_blue_shield"], "bcbs"),
        (["workers_compensation"], "workers_comp"),
        (["auto_insurance"], "auto"),
        (["ppo", "medicare_ppo"], "commercial"),
    ],
)
def test_payer_kind_is_inferred_from_plan_types(plans: list[str], kind: str) -> None:
    assert payer_kind(plans) == kind
