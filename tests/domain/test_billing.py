"""Charges, ledger entries, claims, payments, remittances, statements and balances."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support.factories import (
    CHARGE_1,
    DAY,
    PROPERTY,
    T0,
    assert_invalid,
    assert_round_trips,
    balance,
    changed,
    charge,
    claim,
    ledger_entry,
    payment,
    remittance,
    statement,
)

from carebridge.domain import (
    Adjustment,
    AgingBuckets,
    ClaimStatus,
    RemittanceLine,
)

# --- balances ------------------------------------------------------------------------------------


def test_a_balance_totals_unbilled_plus_aging_minus_unapplied_credit() -> None:
    record = balance()
    assert record.aging.total == Decimal("50.00")
    assert record.total == Decimal("40.00")
    assert_round_trips(record)
    assert '"total":"40.00"' in record.model_dump_json()


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("total", {"total": "50.00"}),
        ("unapplied_credit", {"unapplied_credit": "-1.00"}),
        ("responsible", {"responsible": "employer"}),
        ("current", {"aging": {"current": "1.005"}}),
    ],
)
def test_balance_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(balance(), field, **changes)


@PROPERTY
@given(st.lists(st.integers(min_value=-(10**8), max_value=10**8), min_size=6, max_size=6))
def test_any_consistent_balance_validates(parts: list[int]) -> None:
    current, over_30, over_60, over_90, over_120, unbilled = (Decimal(p).scaleb(-2) for p in parts)
    aging = AgingBuckets(
        current=current, over_30=over_30, over_60=over_60, over_90=over_90, over_120=over_120
    )
    total = unbilled + aging.total
    record = changed(balance(), aging=aging, unbilled=unbilled, unapplied_credit=0, total=total)
    assert record.total == total
    assert_round_trips(record)


# --- ledger --------------------------------------------------------------------------------------


def test_a_charge_round_trips() -> None:
    record = charge()
    assert record.amount == Decimal("150.00")
    assert record.modifiers == ("25",)
    assert_round_trips(record)


def test_a_simple_charge_needs_no_procedure_code() -> None:
    record = changed(charge(), kind="simple_charge", procedure_code=None, modifiers=())
    assert record.procedure_code is None


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("procedure_code", {"procedure_code": None}),
        ("balance", {"balance": "150.01"}),
        ("posting_date", {"posting_date": DAY - timedelta(days=1)}),
        ("amount", {"amount": "-1.00"}),
        ("units", {"units": 0}),
        ("modifiers", {"modifiers": ["25", "59", "GT", "95", "XS"]}),
        ("diagnosis_codes", {"diagnosis_codes": ["I10"] * 9}),
        ("kind", {"kind": "patient_payment"}),
    ],
)
def test_charge_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(charge(), field, **changes)


def test_a_ledger_entry_round_trips_and_refuses_charge_kinds() -> None:
    record = ledger_entry()
    assert record.amount == Decimal("-25.00")
    assert_round_trips(record)
    assert_invalid(record, "kind", kind="charge")


# --- claims --------------------------------------------------------------------------------------


def test_a_claim_round_trips_with_lines_diagnoses_and_history() -> None:
    record = claim()
    assert record.status is ClaimStatus.PAID
    assert record.billed == Decimal("200.00")
    assert [c.status for c in record.status_history][-1] is ClaimStatus.PAID
    assert record.lines[0].diagnosis_pointers == (1, 2)
    assert_round_trips(record)


def _line(number: int, billed: str, **extra: Any) -> dict[str, Any]:
    return {
        "line_number": number,
        "charge_id": CHARGE_1,
        "procedure_code": "99213",
        "service_date": DAY,
        "billed": billed,
        **extra,
    }


CLAIM_INVARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("billed", {"billed": "199.99"}),
    ("lines", {"lines": [_line(1, "100.00"), _line(3, "100.00")]}),
    ("lines", {"lines": []}),
    ("lines", {"lines": [_line(1, "200.00", service_date=DAY + timedelta(days=1))]}),
    ("lines", {"lines": [_line(1, "200.00", diagnosis_pointers=[3])]}),
    ("diagnosis_pointers", {"lines": [_line(1, "200.00", diagnosis_pointers=[1, 1])]}),
    ("diagnosis_pointers", {"lines": [_line(1, "200.00", diagnosis_pointers=[1, 2, 3, 4, 5])]}),
    ("diagnoses", {"diagnoses": []}),
    ("diagnoses", {"diagnoses": ["I10", "i10"]}),
    ("service_to", {"service_to": DAY - timedelta(days=1)}),
    ("status_history", {"status": "closed"}),
    (
        "status_history",
        {
            "status": "paid",
            "status_history": [
                {"status": "draft", "at": T0},
                {"status": "paid", "at": T0 + timedelta(days=1)},
            ],
        },
    ),
    (
        "status_history",
        {
            "status": "scrubbed",
            "status_history": [
                {"status": "draft", "at": T0},
                {"status": "scrubbed", "at": T0 - timedelta(days=1)},
            ],
        },
    ),
    ("adjudicated_at", {"adjudicated_at": T0}),
    ("status", {"status": "lost"}),
    ("category_code", {"status_history": [{"status": "paid", "at": T0, "category_code": "Z9"}]}),
]


@pytest.mark.parametrize(("field", "changes"), CLAIM_INVARIANTS)
def test_claim_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(claim(), field, **changes)


def test_a_claim_without_history_is_accepted() -> None:
    record = changed(claim(), status_history=())
    assert record.status_history == ()


# --- payments and remittances --------------------------------------------------------------------


def test_a_payment_round_trips() -> None:
    record = payment()
    assert record.amount == Decimal("120.00")
    assert_round_trips(record)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("payer_id", {"payer_id": None}),
        ("payer_id", {"patient_id": "pat_someone"}),
        ("patient_id", {"kind": "patient"}),
        ("method", {"method": "bitcoin"}),
        ("amount", {"amount": "-5.00"}),
    ],
)
def test_payment_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(payment(), field, **changes)


def test_a_remittance_round_trips_and_balances() -> None:
    record = remittance()
    line = record.lines[0]
    assert line.billed == line.paid + sum(a.amount for a in line.adjustments)
    assert line.patient_responsibility == Decimal("25.00")
    assert record.patient_responsibility == Decimal("25.00")
    assert_round_trips(record)


REMITTANCE_INVARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("billed", {"billed": "201.00"}),
    ("paid", {"paid": "119.00"}),
    ("patient_responsibility", {"patient_responsibility": "0.00"}),
    ("lines", {"lines": []}),
    ("claim_status_code", {"claim_status_code": "5"}),
]


@pytest.mark.parametrize(("field", "changes"), REMITTANCE_INVARIANTS)
def test_remittance_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(remittance(), field, **changes)


def test_a_remittance_remits_each_claim_line_once() -> None:
    line = remittance().lines[1]
    assert_invalid(
        remittance(),
        "lines",
        lines=[line, line],
        billed="100.00",
        paid="80.00",
        patient_responsibility="0.00",
    )


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("billed", {"paid": "81.00"}),
        ("billed", {"adjustments": []}),
        ("group", {"adjustments": [{"group": "XX", "carc": "45", "amount": "70.00"}]}),
        ("carc", {"adjustments": [{"group": "CO", "carc": "4500", "amount": "70.00"}]}),
        ("rarc", {"adjustments": [{"group": "CO", "carc": "45", "rarc": "Q1", "amount": "70.00"}]}),
    ],
)
def test_remittance_line_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(remittance().lines[0], field, **changes)


@PROPERTY
@given(
    st.integers(min_value=0, max_value=10**7),
    st.lists(
        st.tuples(st.sampled_from(["CO", "PR", "OA", "PI"]), st.integers(-(10**6), 10**6)),
        max_size=5,
    ),
)
def test_any_balanced_remittance_line_validates(paid: int, parts: list[tuple[str, int]]) -> None:
    adjustments = [
        Adjustment.model_validate({"group": g, "carc": "45", "amount": Decimal(a).scaleb(-2)})
        for g, a in parts
    ]
    billed = Decimal(paid).scaleb(-2) + sum((a.amount for a in adjustments), Decimal(0))
    line = RemittanceLine(
        claim_line_number=1,
        billed=billed,
        allowed=Decimal(paid).scaleb(-2),
        paid=Decimal(paid).scaleb(-2),
        adjustments=tuple(adjustments),
    )
    assert line.patient_responsibility == sum(
        (a.amount for a in adjustments if a.group == "PR"), Decimal("0.00")
    )
    assert_round_trips(line)


# --- statements ----------------------------------------------------------------------------------


def test_a_statement_round_trips() -> None:
    record = statement()
    assert record.balance == record.aging.total == Decimal("25.00")
    assert_round_trips(record)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("due_date", {"due_date": DAY}),
        ("balance", {"balance": "30.00"}),
        ("balance", {"balance": "30.00", "aging": {"current": "30.00"}}),
        ("lines", {"statement_date": DAY - timedelta(days=1), "due_date": DAY}),
        ("status", {"status": "lost"}),
    ],
)
def test_statement_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(statement(), field, **changes)


def test_a_statement_line_cannot_owe_more_than_was_charged() -> None:
    assert_invalid(statement().lines[0], "balance", balance="150.01")
