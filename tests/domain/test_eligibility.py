"""Eligibility checks: the request, then benefits by service type."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from tests.support.factories import (
    T0,
    assert_invalid,
    assert_round_trips,
    changed,
    eligibility_check,
)


def test_a_complete_check_round_trips_with_benefits_by_service_type() -> None:
    record = eligibility_check()
    assert record.coverage_status == "active"
    assert record.request.service_types == ("30", "98")
    office = record.benefit("98")
    assert office is not None
    assert office.copay == Decimal("25.00")
    assert office.coinsurance == Decimal("0.20")
    assert office.deductible_remaining == Decimal("125.00")
    assert office.out_of_pocket_remaining == Decimal("2100.00")
    assert record.benefit("AL") is None
    assert_round_trips(record)


def test_a_pending_check_has_only_its_request() -> None:
    record = changed(
        eligibility_check(), status="pending", responded_at=None, coverage_status=None, benefits=()
    )
    assert record.benefits == ()
    assert_round_trips(record)


def test_an_inactive_answer_has_a_reason_and_no_benefits() -> None:
    record = changed(
        eligibility_check(), coverage_status="inactive", benefits=(), reason="no insurance on file"
    )
    assert record.coverage_status == "inactive"


def test_the_in_network_benefit_is_preferred() -> None:
    base = eligibility_check().benefits[0]
    out_of_network = changed(base, in_network=False, copay="60.00")
    record = changed(eligibility_check(), benefits=(out_of_network, base))
    found = record.benefit("30")
    assert found is not None
    assert found.in_network is True


CHECK_INVARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("status", {"status": "pending"}),
    ("responded_at", {"responded_at": None}),
    ("responded_at", {"responded_at": T0 - timedelta(seconds=1)}),
    ("coverage_status", {"coverage_status": None}),
    ("benefits", {"status": "error"}),
    ("benefits", {"benefits": [{"service_type": "30"}, {"service_type": "30"}]}),
    ("service_type", {"benefits": [{"service_type": "29"}]}),
    ("coinsurance", {"benefits": [{"service_type": "30", "coinsurance": "20"}]}),
    (
        "deductible_remaining",
        {
            "benefits": [
                {"service_type": "30", "deductible": "100.00", "deductible_remaining": "100.01"}
            ]
        },
    ),
    (
        "deductible_remaining",
        {"benefits": [{"service_type": "30", "deductible_remaining": "1.00"}]},
    ),
    (
        "out_of_pocket_remaining",
        {
            "benefits": [
                {
                    "service_type": "30",
                    "out_of_pocket_max": "10.00",
                    "out_of_pocket_remaining": "11.00",
                }
            ]
        },
    ),
    ("copay", {"benefits": [{"service_type": "30", "copay": "-5.00"}]}),
    ("service_types", {"request": {"service_date": "2025-07-10", "service_types": []}}),
    ("service_types", {"request": {"service_date": "2025-07-10", "service_types": ["30", "30"]}}),
    ("provider_npi", {"request": {"service_date": "2025-07-10", "provider_npi": "1234567890"}}),
    ("method", {"method": "fax"}),
]


@pytest.mark.parametrize(("field", "changes"), CHECK_INVARIANTS)
def test_eligibility_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(eligibility_check(), field, **changes)
