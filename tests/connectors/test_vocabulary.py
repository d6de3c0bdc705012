"""Every coded value the emulated tenant accepts or emits maps to a specific domain value.

The values are read from the emulator itself, never restated here: the constants its v2 and
portal routes validate against (``carecloud_sandbox.v2.patients.POLICY_TYPES``,
``RELATIONSHIPS``, ``UPDATABLE_CODES``, ``v2.appointments.COMMUNICATION_METHODS`` and
``OUTCOMES``, ``portal.charts.ENCOUNTER_TYPES`` and ``SEX``, ``billing.CLAIM_STATUSES``, the code
tables of ``codes`` and ``generator``), and, for the fields whose values only the generator
writes, the distinct values of a generated tenant's own tables (ledger types, payment methods,
phone types, clinical statuses...).

Each value goes through the driver's lookup for its field (``mapping.v2.codes``, the portal
and FHIR mappers' tables) and must land on a specific domain value: never ``None`` (refused),
and never the catch-all ``other`` or ``unknown`` unless the upstream value says so itself (the
word, or its one-letter code ``O`` or ``U``). A value the emulator starts to accept without the
driver knowing it fails here before it reaches a record as ``other``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter
from tests.connectors.harness import START, Sandbox

from carebridge.connectors.carecloud.mapping import fhir as fmap
from carebridge.connectors.carecloud.mapping import portal as pmap
from carebridge.connectors.carecloud.mapping.common import Context
from carebridge.connectors.carecloud.mapping.v2 import codes as vcodes
from carebridge.connectors.carecloud.mapping.v2 import map_eligibility
from carebridge.connectors.carecloud.mapping.v2._base import PatientRef
from carebridge.connectors.carecloud.wire import v2 as wire
from carebridge.domain import AppointmentStatus
from carebridge.domain.values import CARC, RARC, ClaimStatusCategory
from carebridge.domain.vocab import (
    AdjustmentGroup,
    AllergenSystem,
    AllergyCategory,
    AllergySeverity,
    AllergyStatus,
    ChargeKind,
    EncounterStatus,
    ImmunizationRoute,
    ImmunizationSite,
    InsurancePolicyType,
    LabInterpretation,
    LabResultStatus,
    MedicationStatus,
    PaymentKind,
    ProblemStatus,
    RemittanceClaimStatus,
    StatementStatus,
)
from carecloud_sandbox import billing, codes, generator
from carecloud_sandbox.portal import charts
from carecloud_sandbox.v2 import appointments, patients

CATCH_ALL = frozenset({"other", "unknown"})


def says_catch_all(upstream: str) -> bool:
    """True when the upstream value is itself a catch-all (``other``, ``unknown``, ``O``, ``U``)."""
    return upstream.strip().lower() in CATCH_ALL | {"o", "u"}


def assert_specific(mapped: object, upstream: str) -> None:
    """``mapped`` is a domain value, and a catch-all only when ``upstream`` is one."""
    assert mapped is not None, f"{upstream!r} is refused"
    assert mapped not in CATCH_ALL or says_catch_all(upstream), f"{upstream!r} maps to {mapped}"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(seed=23)
    yield box
    box.tenant.db.close()


def distinct(sandbox: Sandbox, table: str, column: str) -> list[str]:
    """The distinct non-empty values of ``table.column`` in the generated tenant (never none)."""
    rows = sandbox.truth(
        f"SELECT DISTINCT {column} AS v FROM {table} WHERE {column} IS NOT NULL "
        f"AND {column} != '' ORDER BY 1"
    )
    values = [str(r["v"]) for r in rows]
    assert values, f"the tenant has no {table}.{column}: the check would be empty"
    return values


def in_literal(literal: Any) -> Callable[[str], str | None]:
    """The pass-through mapping of a field the driver carries verbatim into ``literal``."""
    allowed = frozenset(get_args(literal))
    return lambda value: value if value in allowed else None


def valid(annotation: Any) -> Callable[[str], str | None]:
    """The pass-through mapping of a code the domain validates with ``annotation``."""
    adapter = TypeAdapter(annotation)

    def check(value: str) -> str | None:
        try:
            return str(adapter.validate_python(value))
        except ValueError:
            return None

    return check


# --- v2: insurance ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", sorted(patients.POLICY_TYPES))
def test_every_insurance_policy_type_the_v2_surface_accepts_has_a_domain_type(value: str) -> None:
    mapped = vcodes.policy_type(value)
    assert_specific(mapped, value)
    assert mapped in get_args(InsurancePolicyType)


@pytest.mark.parametrize("value", sorted(patients.POLICY_TYPES - CATCH_ALL))
def test_the_connector_coverage_type_text_of_each_policy_type_is_read(value: str) -> None:
    # the emulated Connector writes the v2 word as Coverage.type.text
    assert value in fmap.POLICY_TYPES


@pytest.mark.parametrize("payer", codes.PAYERS, ids=lambda p: str(p.id))
def test_every_plan_of_the_payer_directory_has_a_domain_type_and_kind(
    payer: codes.PayerSeed,
) -> None:
    types = [plan.insurance_policy_type for plan in payer.plans]
    for value in types:
        assert_specific(vcodes.policy_type(value), value)
    assert vcodes.payer_kind(types) != "other"


def test_every_policy_type_a_generated_tenant_stores_has_a_domain_type(sandbox: Sandbox) -> None:
    for value in distinct(sandbox, "insurance_policies", "insurance_policy_type"):
        assert_specific(vcodes.policy_type(value), value)


@pytest.mark.parametrize("value", sorted(patients.RELATIONSHIPS))
def test_every_relationship_the_v2_surface_accepts_has_a_domain_relationship(value: str) -> None:
    assert_specific(vcodes.relationship(value), value)


def test_every_relationship_a_generated_tenant_stores_has_a_domain_relationship(
    sandbox: Sandbox,
) -> None:
    for value in distinct(sandbox, "insurance_profiles", "responsible_party_relationship"):
        assert_specific(vcodes.relationship(value), value)


# --- v2: demographics ------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "name"), sorted(patients.GENDERS.items()))
def test_every_gender_code_and_name_of_the_v2_surface_is_one_domain_gender(
    code: str, name: str
) -> None:
    assert_specific(vcodes.gender(code), code)
    assert vcodes.gender(code) == vcodes.gender(name)
    assert set(appointments.GENDER_IDS) == set(patients.GENDERS)


DEMOGRAPHIC_LOOKUPS: dict[str, Callable[[str], object]] = {
    "marital_status_code": vcodes.marital_status,
    "ethnicity_code": vcodes.ethnicity,
    "employment_status_code": vcodes.employment_status,
    "student_status_code": vcodes.student_status,
}


def test_every_coded_demographic_field_of_the_v2_surface_has_a_lookup() -> None:
    assert set(patients.UPDATABLE_CODES) == set(DEMOGRAPHIC_LOOKUPS)


@pytest.mark.parametrize(
    ("field", "code"),
    sorted((f, c) for f, accepted in patients.UPDATABLE_CODES.items() for c in accepted),
)
def test_every_demographic_code_the_v2_surface_accepts_has_a_domain_value(
    field: str, code: str
) -> None:
    lookup = DEMOGRAPHIC_LOOKUPS[field]
    assert_specific(lookup(code), code)
    assert lookup(code.lower()) == lookup(code)


def test_every_phone_type_of_a_generated_tenant_has_a_domain_kind(sandbox: Sandbox) -> None:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("phone_type", "phone_type_code") and isinstance(value, str) and value:
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for table, column in (
        ("locations", "phones_json"),
        ("payers", "phones_json"),
        ("patients", "data_json"),
    ):
        for row in sandbox.truth(f"SELECT {column} AS j FROM {table}"):
            walk(json.loads(row["j"]))
    assert found
    for value in sorted(found):
        assert_specific(vcodes.phone_kind(value), value)


# --- v2: scheduling --------------------------------------------------------------------------------


def appointment_status_codes(sandbox: Sandbox) -> list[tuple[str, str]]:
    rows = sandbox.truth("SELECT DISTINCT code, name FROM appointment_statuses ORDER BY code")
    return sorted({*generator.STATUS_CODES, *((r["code"], r["name"]) for r in rows)})


def test_every_appointment_status_reads_the_same_by_code_and_by_name(sandbox: Sandbox) -> None:
    statuses = appointment_status_codes(sandbox)
    assert set(appointments.STATUS_FILTER) <= {code for code, _ in statuses}
    seen: dict[AppointmentStatus, str] = {}
    for code, name in statuses:
        by_code = vcodes.appointment_status(code, name, False)
        # a practice-defined code is read by its name: the name must say what the code says
        assert vcodes.appointment_status("", name, False) == by_code, (code, name)
        assert by_code not in seen or seen[by_code] == code, (code, seen[by_code])
        seen[by_code] = code


@pytest.mark.parametrize("value", appointments.COMMUNICATION_METHODS)
def test_every_confirmation_method_the_v2_surface_accepts_has_a_domain_method(value: str) -> None:
    assert_specific(vcodes.confirmation_method(value), value)


@pytest.mark.parametrize("value", appointments.OUTCOMES)
def test_every_confirmation_outcome_the_v2_surface_accepts_has_a_domain_outcome(
    value: str,
) -> None:
    assert_specific(vcodes.confirmation_outcome(value), value)


def test_every_confirmation_a_generated_tenant_stores_has_a_domain_method(
    sandbox: Sandbox,
) -> None:
    for column in ("communication_method", "communication_outcome"):
        for value in distinct(sandbox, "appointment_confirmations", column):
            lookup = (
                vcodes.confirmation_method
                if column == "communication_method"
                else vcodes.confirmation_outcome
            )
            assert_specific(lookup(value), value)
    for value in distinct(sandbox, "appointments", "preferred_confirmation_method"):
        assert_specific(vcodes.confirmation_method(value), value)


# --- v2: billing -----------------------------------------------------------------------------------


def test_every_ledger_transaction_of_a_generated_tenant_has_a_domain_kind_and_status(
    sandbox: Sandbox,
) -> None:
    for value in distinct(sandbox, "transactions", "transaction_type"):
        assert value in get_args(ChargeKind) or vcodes.ledger_kind(value) is not None, value
    for value in distinct(sandbox, "transactions", "transaction_status"):
        assert_specific(vcodes.transaction_status(value), value)
    for value in distinct(sandbox, "transactions", "balance_type"):
        assert_specific(vcodes.responsible_party(value), value)


def test_an_eligibility_request_s_statuses_and_answer_have_domain_values(
    sandbox: Sandbox,
) -> None:
    row = sandbox.truth(
        "SELECT p.id, p.chart_number FROM patients p JOIN insurance_policies i "
        "ON i.patient_id = p.id WHERE i.policy_priority = 1 AND i.effective_to IS NULL "
        "ORDER BY p.internal_id LIMIT 1"
    )[0]
    ref = PatientRef(row["id"], row["chart_number"])
    path = f"/v2/patients/{row['id']}/eligibility_request"
    created = wire.EligibilityCreatedResponse.model_validate(
        sandbox.call("POST", path, json={}).json()
    ).eligibility_request
    sandbox.clock.advance(patients.ELIGIBILITY_DELAY + timedelta(seconds=1))
    polled = wire.EligibilityResponse.model_validate(
        sandbox.get(f"{path}/{created.id}")
    ).eligibility_request
    ctx = Context(tenant="tnt1", surface="v2", endpoint="GET", fetched_at=sandbox.clock.now())
    for payload in (created, polled):
        assert_specific(vcodes.eligibility_status(payload.status), payload.status)
        check = map_eligibility(payload, ctx, patient=ref)
        assert check.dropped == ()
    answer = polled.response
    assert answer is not None
    assert answer.plan_type is not None
    assert answer.benefits
    mapped = map_eligibility(polled, ctx, patient=ref).value
    assert_specific(mapped.coverage_status, answer.coverage_status or "")
    assert_specific(mapped.plan_type, answer.plan_type)
    assert [b.service_type for b in mapped.benefits] == [
        b.service_type_code for b in answer.benefits
    ]


# --- portal ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", billing.CLAIM_STATUSES)
def test_every_claim_status_of_the_portal_is_a_domain_claim_status(value: str) -> None:
    ctx = Context(tenant="tnt1", surface="portal", endpoint="GET", fetched_at=START)
    assert pmap.claim_status(ctx, value, "status") == value


@pytest.mark.parametrize("value", sorted(c for c in billing.CATEGORY.values() if c))
def test_every_277_category_the_portal_reports_is_a_domain_category(value: str) -> None:
    assert valid(ClaimStatusCategory)(value) == value


@pytest.mark.parametrize("value", charts.ENCOUNTER_TYPES)
def test_every_encounter_type_the_portal_accepts_has_a_domain_type(value: str) -> None:
    assert_specific(pmap.encounter_type(value), value)


@pytest.mark.parametrize(("code", "word"), sorted(charts.SEX.items()))
def test_every_sex_the_portal_emits_is_a_domain_gender(code: str, word: str) -> None:
    assert_specific(pmap.sex(word), code)
    assert pmap.sex(word) == vcodes.gender(code)


@pytest.mark.parametrize("value", sorted(codes.ADJUSTMENT_GROUPS))
def test_every_adjustment_group_of_the_remittances_is_a_domain_group(value: str) -> None:
    assert in_literal(AdjustmentGroup)(value) == value


@pytest.mark.parametrize(
    ("annotation", "value"),
    [(CARC, c) for c in sorted(codes.CARC)]
    + [(RARC, c) for c in sorted(codes.RARC)]
    + [(CARC, carc) for _, carc, _ in codes.DENIALS]
    + [(RARC, rarc) for _, _, rarc in codes.DENIALS if rarc],
    ids=lambda v: "CARC" if v is CARC else "RARC" if v is RARC else str(v),
)
def test_every_adjustment_reason_of_the_remittances_is_a_valid_code(
    annotation: Any, value: str
) -> None:
    assert valid(annotation)(value) == value


PORTAL_COLUMNS: list[tuple[str, str, Callable[[str], object]]] = [
    ("payments", "method", pmap.payment_method),
    ("payments", "kind", in_literal(PaymentKind)),
    ("statements", "status", in_literal(StatementStatus)),
    ("adjustments", "group_code", in_literal(AdjustmentGroup)),
    ("adjustments", "carc", valid(CARC)),
    ("remittances", "claim_status_code", in_literal(RemittanceClaimStatus)),
    ("claim_status_history", "category_code", valid(ClaimStatusCategory)),
    ("encounters", "encounter_type", pmap.encounter_type),
    ("encounters", "status", in_literal(EncounterStatus)),
    ("problems", "status", in_literal(ProblemStatus)),
    ("medications", "status", in_literal(MedicationStatus)),
    ("allergies", "category", in_literal(AllergyCategory)),
    ("allergies", "severity", in_literal(AllergySeverity)),
    ("allergies", "status", in_literal(AllergyStatus)),
    ("allergies", "allergen_system", in_literal(AllergenSystem)),
    ("lab_results", "status", in_literal(LabResultStatus)),
    ("lab_results", "interpretation", in_literal(LabInterpretation)),
    ("immunizations", "status", pmap.immunization_status),
    ("immunizations", "site", in_literal(ImmunizationSite)),
    ("immunizations", "route", in_literal(ImmunizationRoute)),
]


@pytest.mark.parametrize(
    ("table", "column", "lookup"), PORTAL_COLUMNS, ids=[f"{t}.{c}" for t, c, _ in PORTAL_COLUMNS]
)
def test_every_coded_value_a_generated_tenant_serves_on_the_portal_has_a_domain_value(
    sandbox: Sandbox, table: str, column: str, lookup: Callable[[str], object]
) -> None:
    for value in distinct(sandbox, table, column):
        assert_specific(lookup(value), value)
