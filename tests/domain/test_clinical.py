"""Encounters, vitals and the chart lists."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from tests.support.factories import (
    PROVIDER,
    T0,
    allergy,
    assert_invalid,
    assert_round_trips,
    changed,
    document,
    encounter,
    immunization,
    lab_result,
    medication,
    problem,
    vitals,
)

from carebridge.domain import VitalsId


def test_a_signed_encounter_round_trips_with_notes_diagnoses_procedures_and_vitals() -> None:
    record = encounter()
    assert record.status == "signed"
    assert record.signed_by == PROVIDER
    assert record.primary_diagnosis is not None
    assert record.primary_diagnosis.code == "I10"
    assert record.diagnoses[1].code == "E11.9"
    assert record.vitals[0].systolic_mmhg == 120
    assert_round_trips(record)


def test_an_open_encounter_has_no_signature() -> None:
    record = changed(encounter(), status="open", signed_at=None, signed_by=None, addenda=())
    assert record.signed_at is None
    assert_round_trips(record)


ENCOUNTER_INVARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("signed_by", {"signed_by": None}),
    ("signed_at", {"status": "open", "signed_at": None, "addenda": ()}),
    ("status", {"status": "open"}),
    ("status", {"signed_at": None, "signed_by": None, "addenda": ()}),
    ("end", {"end": T0 - timedelta(minutes=1)}),
    ("signed_at", {"signed_at": T0 - timedelta(minutes=1)}),
    (
        "addenda",
        {
            "addenda": [
                {"author_id": PROVIDER, "text": "late", "created_at": T0 + timedelta(minutes=30)}
            ]
        },
    ),
    ("diagnoses", {"diagnoses": [{"rank": 1, "code": "I10"}, {"rank": 3, "code": "E11.9"}]}),
    ("diagnoses", {"diagnoses": [{"rank": 1, "code": "I10"}, {"rank": 1, "code": "E11.9"}]}),
    ("diagnoses", {"diagnoses": [{"rank": 1, "code": "I10"}, {"rank": 2, "code": "i10"}]}),
    ("code", {"diagnoses": [{"rank": 1, "code": "hypertension"}]}),
    ("vitals", {"vitals": [changed(vitals(), encounter_id="enc_someotherone")]}),
    ("type", {"type": "house_call"}),
    ("units", {"procedures": [{"code": "99213", "units": 0}]}),
]


@pytest.mark.parametrize(("field", "changes"), ENCOUNTER_INVARIANTS)
def test_encounter_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(encounter(), field, **changes)


def test_vitals_round_trip() -> None:
    record = vitals()
    assert isinstance(record.id, VitalsId)
    assert_round_trips(record)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("diastolic_mmhg", {"diastolic_mmhg": None}),
        ("systolic_mmhg", {"systolic_mmhg": 80, "diastolic_mmhg": 90}),
        ("spo2_percent", {"spo2_percent": 101}),
        ("temperature_c", {"temperature_c": 98.6}),
        ("weight_kg", {"weight_kg": 0}),
    ],
)
def test_vitals_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(vitals(), field, **changes)


def test_chart_entries_round_trip() -> None:
    for record in (problem(), medication(), allergy(), lab_result(), immunization(), document()):
        assert_round_trips(record)
    assert lab_result().interpretation == "H"
    assert allergy().allergen.system == "rxnorm"
    assert document().type_loinc == "11506-3"


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("resolved_date", {"status": "active"}),
        ("resolved_date", {"resolved_date": date(2019, 1, 1)}),
        ("code", {"code": "not-icd"}),
        ("status", {"status": "cured"}),
    ],
)
def test_problem_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(problem(), field, **changes)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("end_date", {"end_date": date(2019, 12, 31)}),
        ("rxnorm_code", {"rxnorm_code": "RX1"}),
        ("status", {"status": "paused"}),
    ],
)
def test_medication_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(medication(), field, **changes)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("allergen", {"allergen": {"system": "snomed", "code": "91935009", "name": "peanut"}}),
        ("code", {"allergen": {"system": "rxnorm", "code": "abc", "name": "penicillin"}}),
        ("severity", {"severity": "fatal"}),
        ("category", {"category": "emotional"}),
    ],
)
def test_allergy_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(allergy(), field, **changes)


def test_a_food_allergy_is_coded_in_snomed() -> None:
    record = changed(
        allergy(),
        category="food",
        allergen={"system": "snomed", "code": "91935009", "name": "peanut"},
    )
    assert record.allergen.code == "91935009"
    assert_round_trips(record)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("reference_high", {"reference_low": 6.0, "reference_high": 5.0}),
        ("resulted_at", {"resulted_at": T0 - timedelta(seconds=1)}),
        ("value_number", {"value_number": None, "unit": None}),
        ("unit", {"value_number": None, "value_text": "positive"}),
        ("loinc_code", {"loinc_code": "4548"}),
        ("interpretation", {"interpretation": "X"}),
    ],
)
def test_lab_result_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(lab_result(), field, **changes)


def test_a_preliminary_lab_result_may_have_no_value_yet() -> None:
    record = changed(lab_result(), status="preliminary", value_number=None, unit=None)
    assert record.value_number is None


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("cvx_code", {"cvx_code": "1234"}),
        ("site", {"site": "NOSE"}),
        ("route", {"route": "XX"}),
        ("status", {"status": "entered-in-error"}),
    ],
)
def test_immunization_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(immunization(), field, **changes)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("content_type", {"content_type": "pdf"}),
        ("size_bytes", {"size_bytes": -1}),
        ("type_loinc", {"type_loinc": "progress"}),
        ("name", {"name": ""}),
    ],
)
def test_document_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(document(), field, **changes)
