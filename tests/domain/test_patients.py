"""Patients, their contacts, guarantors and coverages, and payers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from tests.support.factories import (
    PATIENT,
    address,
    assert_invalid,
    assert_round_trips,
    balance,
    changed,
    coverage,
    name,
    patient,
    payer,
    phone,
)

from carebridge.domain import Address, CoverageId, Guarantor, PersonName, Phone


def test_a_patient_carries_demographics_contacts_identifiers_coverages_and_balances() -> None:
    record = patient()
    assert record.id == PATIENT
    assert record.name.first == "Testy"
    assert record.phones[0].number == "+13035550100"
    assert record.addresses[0].state == "CO"
    assert record.identifier("chart_number") == "TC000001"
    assert record.identifier("mrn") is None
    assert record.coverages[0].copay == Decimal("25.00")
    assert record.account_balance == Decimal("80.00")
    assert [s.surface for s in record.sources] == ["v2", "fhir"]
    assert_round_trips(record)


def test_a_minimal_patient_needs_only_an_id_a_name_and_a_source() -> None:
    record = changed(
        patient(),
        addresses=(),
        phones=(),
        identifiers=(),
        coverages=(),
        balances=(),
        birth_date=None,
        ssn=None,
        email=None,
    )
    assert record.account_balance == Decimal("0.00")
    assert_round_trips(record)


def test_a_guarantor_round_trips_inside_the_patient() -> None:
    record = changed(
        patient(),
        guarantor=Guarantor(
            relationship="mother",
            name=PersonName(first="Parent", last="Placeholder"),
            phones=(phone(),),
        ),
    )
    assert record.guarantor is not None
    assert record.guarantor.relationship == "mother"
    assert_round_trips(record)


OTHER_PATIENT: Any = "pat_otherpatient"

PATIENT_INVARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("death_date", {"birth_date": date(1980, 1, 2), "death_date": date(1980, 1, 1)}),
    ("addresses", {"addresses": (address(), address())}),
    ("phones", {"phones": (phone(), phone())}),
    (
        "identifiers",
        {"identifiers": [{"kind": "mrn", "value": "1"}, {"kind": "mrn", "value": "2"}]},
    ),
    ("coverages", {"coverages": (changed(coverage(), patient_id=OTHER_PATIENT),)}),
    ("coverages", {"coverages": (coverage(), coverage())}),
    ("balances", {"balances": (changed(balance(), patient_id=OTHER_PATIENT),)}),
    ("balances", {"balances": (balance("patient"), balance("patient"))}),
    ("updated_at", {"created_at": "2025-02-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}),
    ("gender", {"gender": "M"}),
    ("email", {"email": "not-an-email"}),
    ("ssn", {"ssn": "12345"}),
    ("race", {"race": "white"}),
    ("language", {"language": "english"}),
    ("referring_physician_npi", {"referring_physician_npi": "1234567890"}),
    ("marital_status", {"marital_status": "M"}),
]


@pytest.mark.parametrize(("field", "changes"), PATIENT_INVARIANTS)
def test_patient_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(patient(), field, **changes)


def test_a_guarantor_is_someone_other_than_the_patient() -> None:
    with pytest.raises(ValidationError) as caught:
        Guarantor(relationship="self", name=name())
    assert "relationship:" in caught.value.errors()[0]["msg"]


def test_addresses_and_phones_normalize_their_parts() -> None:
    home = Address.model_validate(
        {"line1": "1 Example Way", "state": "co", "zip_code": "805401234", "country": "usa"}
    )
    assert (home.state, home.zip_code, home.country) == ("CO", "80540-1234", "USA")
    assert_round_trips(home)
    work = Phone.model_validate({"number": "(303) 555-0101", "kind": "work", "extension": "12"})
    assert work.number == "+13035550101"
    assert_round_trips(work)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("latitude", {"latitude": 91.0, "longitude": 0.0}),
        ("latitude", {"latitude": 40.0}),
        ("state", {"state": "XX"}),
        ("zip_code", {"zip_code": "ABCDE"}),
    ],
)
def test_address_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(address(), field, **changes)


def test_phone_extension_is_digits_only() -> None:
    assert_invalid(phone(), "extension", extension="ext. 12")


# --- coverages and payers ------------------------------------------------------------------------


def test_a_coverage_round_trips_and_knows_when_it_is_in_force() -> None:
    policy = coverage()
    assert policy.priority == 1
    assert policy.deductible == Decimal("500.00")
    assert policy.out_of_pocket_max == Decimal("3000.00")
    assert policy.is_active_on(date(2025, 7, 10))
    assert not policy.is_active_on(date(2024, 12, 31))
    ended = changed(policy, effective_to=date(2025, 6, 30))
    assert not ended.is_active_on(date(2025, 7, 10))
    assert ended.is_active_on(date(2025, 6, 30))
    assert_round_trips(policy)


COVERAGE_INVARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("effective_to", {"effective_from": date(2025, 2, 1), "effective_to": date(2025, 1, 31)}),
    ("priority", {"priority": 5}),
    ("priority", {"priority": 0}),
    ("copay", {"copay": "-1.00"}),
    ("coinsurance_percent", {"coinsurance_percent": 101}),
    ("member_number", {"member_number": ""}),
    ("policy_type", {"policy_type": "platinum"}),
    ("insured", {"insured": {"relationship": "spouse"}}),
    ("id", {"id": "pat_wrongkind"}),
]


@pytest.mark.parametrize(("field", "changes"), COVERAGE_INVARIANTS)
def test_coverage_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(coverage(), field, **changes)


def test_coverage_ids_are_typed() -> None:
    assert isinstance(coverage().id, CoverageId)


def test_a_payer_round_trips() -> None:
    record = payer()
    assert record.payer_code == "EX123"
    assert record.plans[0].policy_type == "ppo"
    assert_round_trips(record)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("payer_code", {"payer_code": "x"}),
        ("kind", {"kind": "crypto"}),
        (
            "plans",
            {"plans": [{"name": "A", "policy_type": "ppo"}, {"name": "A", "policy_type": "hmo"}]},
        ),
        ("phones", {"phones": (phone(), phone())}),
    ],
)
def test_payer_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(payer(), field, **changes)
