"""Provenance and the behaviour every record shares: frozen, no extra keys, no PHI in errors."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from pydantic import ValidationError
from tests.support.factories import T0, assert_invalid, assert_round_trips, patient, source

from carebridge.domain import Patient, Provenance


def test_provenance_round_trips_and_is_utc() -> None:
    read = Provenance.model_validate(
        {
            "surface": "fhir",
            "endpoint": "GET /api/fhir/R4/{practice}/Patient/{id}",
            "upstream_id": "abc",
            "fetched_at": "2025-07-10T12:00:00-06:00",
        }
    )
    assert read.fetched_at == T0
    assert read.fetched_at.tzinfo is UTC
    assert_round_trips(read)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("surface", "email"),
        ("endpoint", " "),
        ("upstream_id", ""),
        ("fetched_at", "2025-07-10T12:00:00"),
    ],
)
def test_provenance_fields_are_validated(field: str, value: str) -> None:
    assert_invalid(source(), field, **{field: value})


def test_a_record_needs_at_least_one_source() -> None:
    assert_invalid(patient(), "sources", sources=[])


def test_a_record_lists_each_upstream_read_once() -> None:
    assert_invalid(patient(), "sources", sources=[source(), source()])


def test_fetched_at_is_the_freshest_source() -> None:
    later = source("portal", "chart-1").model_copy(update={"fetched_at": T0 + timedelta(hours=1)})
    record = patient().model_copy(update={"sources": (source(), later)})
    assert record.fetched_at == T0 + timedelta(hours=1)


def test_records_are_frozen() -> None:
    record = patient()
    with pytest.raises(ValidationError):
        record.active = False  # type: ignore[misc]  # the point: frozen models refuse assignment


def test_unknown_fields_are_refused() -> None:
    data = patient().model_dump()
    data["favourite_colour"] = "blue"
    with pytest.raises(ValidationError) as caught:
        Patient.model_validate(data)
    assert caught.value.errors()[0]["loc"] == ("favourite_colour",)


def test_validation_errors_and_reprs_do_not_carry_phi() -> None:
    data = patient().model_dump()
    data["ssn"] = "not-an-ssn-SECRET"
    data["name"]["first"] = ""
    with pytest.raises(ValidationError) as caught:
        Patient.model_validate(data)
    text = str(caught.value)
    assert "SECRET" not in text
    assert {e["loc"][0] for e in caught.value.errors()} == {"ssn", "name"}
    shown = repr(patient())
    for phi in (
        "Testy",
        "Placeholder",
        "1980",
        "900-00-0001",
        "sandbox.example",
        "+1303555",
        "TC000001",
    ):
        assert phi not in shown


def test_records_compare_and_hash_by_value() -> None:
    assert patient() == patient()
    assert hash(patient()) == hash(patient())
    assert patient() != patient().model_copy(update={"active": False})
