"""Vocabularies and the claim lifecycle table."""

from __future__ import annotations

import itertools
from typing import get_args

import pytest

from carebridge.domain import (
    CLAIM_STATUS_CATEGORY,
    CLAIM_TRANSITIONS,
    TERMINAL_CLAIM_STATUSES,
    AdjustmentGroup,
    AdministrativeGender,
    AppointmentStatus,
    ClaimStatus,
    EncounterStatus,
    can_transition_claim,
    check_claim_transition,
)
from carebridge.errors import DomainError, InvalidTransition

ALLOWED = {
    ("draft", "scrubbed"),
    ("draft", "closed"),
    ("scrubbed", "submitted"),
    ("scrubbed", "draft"),
    ("submitted", "accepted"),
    ("submitted", "rejected"),
    ("accepted", "pending"),
    ("accepted", "paid"),
    ("accepted", "partially_paid"),
    ("accepted", "denied"),
    ("rejected", "draft"),
    ("rejected", "closed"),
    ("pending", "paid"),
    ("pending", "partially_paid"),
    ("pending", "denied"),
    ("paid", "closed"),
    ("partially_paid", "appealed"),
    ("partially_paid", "closed"),
    ("denied", "appealed"),
    ("denied", "closed"),
    ("appealed", "pending"),
    ("appealed", "paid"),
    ("appealed", "partially_paid"),
    ("appealed", "denied"),
    ("appealed", "closed"),
}


def test_appointment_statuses_are_the_one_shared_vocabulary() -> None:
    assert [s.value for s in AppointmentStatus] == [
        "scheduled",
        "confirmed",
        "arrived",
        "checked_out",
        "cancelled",
        "no_show",
        "rescheduled",
    ]
    assert AppointmentStatus("no_show") is AppointmentStatus.NO_SHOW


def test_claim_statuses_are_the_eleven_of_the_lifecycle() -> None:
    assert [s.value for s in ClaimStatus] == [
        "draft",
        "scrubbed",
        "submitted",
        "accepted",
        "rejected",
        "pending",
        "paid",
        "partially_paid",
        "denied",
        "appealed",
        "closed",
    ]
    assert set(CLAIM_TRANSITIONS) == set(ClaimStatus)
    assert set(CLAIM_STATUS_CATEGORY) == set(ClaimStatus)


def test_the_transition_table_is_exactly_the_lifecycle() -> None:
    table = {(a.value, b.value) for a, targets in CLAIM_TRANSITIONS.items() for b in targets}
    assert table == ALLOWED


@pytest.mark.parametrize(
    ("current", "target"), list(itertools.product(list(ClaimStatus), list(ClaimStatus)))
)
def test_check_claim_transition_follows_the_table_for_every_pair(
    current: ClaimStatus, target: ClaimStatus
) -> None:
    allowed = (current.value, target.value) in ALLOWED
    assert can_transition_claim(current, target) is allowed
    if allowed:
        assert check_claim_transition(current.value, target.value) is target
    else:
        with pytest.raises(InvalidTransition):
            check_claim_transition(current, target)


def test_closed_is_the_only_terminal_status_and_no_status_loops_to_itself() -> None:
    assert {ClaimStatus.CLOSED} == TERMINAL_CLAIM_STATUSES
    assert all(s not in CLAIM_TRANSITIONS[s] for s in ClaimStatus)


def test_every_status_is_reachable_from_draft() -> None:
    seen = {ClaimStatus.DRAFT}
    frontier = [ClaimStatus.DRAFT]
    while frontier:
        for nxt in CLAIM_TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(ClaimStatus)


def test_unknown_statuses_are_an_invalid_transition_without_echoing_input() -> None:
    with pytest.raises(InvalidTransition) as caught:
        check_claim_transition("draft", "teleported")
    assert isinstance(caught.value, DomainError)
    assert caught.value.failure_type == "domain"
    assert "teleported" not in str(caught.value)
    with pytest.raises(ValueError):
        can_transition_claim("nowhere", "draft")


def test_the_domain_table_matches_the_emulated_tenant() -> None:
    from carecloud_sandbox import billing

    emulated = {(a, b) for a, targets in billing.TRANSITIONS.items() for b in targets}
    assert emulated == ALLOWED
    assert {k.value: v for k, v in CLAIM_STATUS_CATEGORY.items()} == billing.CATEGORY


def test_required_code_bindings_are_closed_lists() -> None:
    assert set(get_args(AdjustmentGroup)) == {"CO", "PR", "OA", "PI", "CR"}
    assert set(get_args(AdministrativeGender)) == {"male", "female", "other", "unknown"}
    assert set(get_args(EncounterStatus)) == {"open", "signed"}
