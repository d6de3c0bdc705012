"""Providers, locations, resources, visit reasons, slots and appointments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.support.factories import (
    T0,
    VISIT_REASON,
    appointment,
    assert_invalid,
    assert_round_trips,
    changed,
    location,
    phone,
    provider,
    resource,
    slot,
    visit_reason,
)

from carebridge.domain import AppointmentStatus


def test_a_provider_round_trips() -> None:
    record = provider()
    assert record.npi == "1234567893"
    assert record.taxonomy == "207Q00000X"
    assert_round_trips(record)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("npi", {"npi": "1234567890"}),
        ("taxonomy", {"taxonomy": None}),
        ("taxonomy", {"taxonomy": "207Q"}),
        ("email", {"email": "nope"}),
    ],
)
def test_provider_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(provider(), field, **changes)


def test_a_location_round_trips() -> None:
    record = location()
    assert record.place_of_service == "11"
    assert_round_trips(record)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("place_of_service", {"place_of_service": "1"}),
        ("time_zone", {"time_zone": "Mountain Time"}),
        ("phones", {"phones": (phone(), phone())}),
        ("name", {"name": ""}),
    ],
)
def test_location_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(location(), field, **changes)


def test_a_resource_round_trips() -> None:
    record = resource()
    assert record.visit_reason_ids == (VISIT_REASON,)
    assert_round_trips(record)


def test_a_resource_lists_each_visit_reason_once() -> None:
    assert_invalid(resource(), "visit_reason_ids", visit_reason_ids=[VISIT_REASON, VISIT_REASON])


def test_a_visit_reason_round_trips() -> None:
    record = visit_reason()
    assert record.duration_minutes == 30
    assert_round_trips(record)


@pytest.mark.parametrize(
    ("field", "changes"),
    [("duration_minutes", {"duration_minutes": 0}), ("procedure_code", {"procedure_code": "9"})],
)
def test_visit_reason_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(visit_reason(), field, **changes)


def test_a_slot_round_trips_and_must_end_after_it_starts() -> None:
    record = slot()
    assert_round_trips(record)
    assert_invalid(record, "end", end=T0)


# --- appointments --------------------------------------------------------------------------------


def test_an_appointment_round_trips_in_utc() -> None:
    record = appointment()
    assert record.start == T0
    assert record.duration_minutes == 30
    assert record.status is AppointmentStatus.CHECKED_OUT
    assert record.overlaps(T0 + timedelta(minutes=29), T0 + timedelta(hours=1))
    assert not record.overlaps(T0 + timedelta(minutes=30), T0 + timedelta(hours=1))
    assert_round_trips(record)
    assert '"status":"checked_out"' in record.model_dump_json()


def test_a_cancelled_appointment_carries_its_cancellation() -> None:
    record = changed(
        appointment(),
        status="cancelled",
        arrived_at=None,
        departed_at=None,
        cancellation={"reason_code": "PT", "reason_name": "Patient request"},
    )
    assert record.cancellation is not None
    assert_round_trips(record)


APPOINTMENT_INVARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("end", {"end": T0}),
    ("end", {"end": T0 - timedelta(minutes=1)}),
    ("start", {"start": "2025-07-10T12:00:00"}),
    ("status", {"status": "P"}),
    ("is_confirmed", {"status": "confirmed", "is_confirmed": False}),
    ("cancellation", {"cancellation": {"reason_code": "PT"}}),
    ("departed_at", {"arrived_at": None}),
    ("departed_at", {"departed_at": T0 - timedelta(minutes=10)}),
    ("arrived_at", {"status": "arrived", "arrived_at": None, "departed_at": None}),
    ("departed_at", {"departed_at": None}),
    ("updated_at", {"updated_at": T0 - timedelta(days=8)}),
    ("preferred_confirmation_method", {"preferred_confirmation_method": "pigeon"}),
    ("confirmations", {"confirmations": [{"method": "phone", "outcome": "maybe"}]}),
]


@pytest.mark.parametrize(("field", "changes"), APPOINTMENT_INVARIANTS)
def test_appointment_invariants(field: str, changes: dict[str, Any]) -> None:
    assert_invalid(appointment(), field, **changes)
