"""Controlled vocabularies of the normalized model, and the claim lifecycle as data.

One vocabulary per concept across surfaces: the v2 API's ``P/I/O/C/R`` appointment codes, the
portal's own status words and FHIR's codes are all mapped (by the connectors) onto the values
here. Values are lower snake_case words unless a standard's codes are the clearer name (X12
adjustment groups, 835 ``CLP02``, HL7 tables).

Claim lifecycle (X12 semantics, ``upstream/carecloud.md`` §6.2); the happy path is::

    draft -> scrubbed -> submitted -> accepted -> pending -> paid -> closed

with side exits: ``rejected`` (back to ``draft`` for correction), ``partially_paid`` and
``denied`` (both ``appealed`` or ``closed``), and ``appealed`` back into adjudication.
``CLAIM_TRANSITIONS`` is the exact table; ``check_claim_transition`` enforces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from carebridge.errors import InvalidTransition

# --- scheduling ----------------------------------------------------------------------------------


class AppointmentStatus(StrEnum):
    """Where an appointment is in its day, the same on every surface.

    ``confirmed`` is ``scheduled`` plus a confirmation (the v2 ``is_confirmed`` flag); ``arrived``
    is the v2 check-in (``I``), ``checked_out`` the check-out (``O``).
    """

    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    ARRIVED = "arrived"
    CHECKED_OUT = "checked_out"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    RESCHEDULED = "rescheduled"


ConfirmationMethod = Literal["phone", "email", "text_message", "fax", "other", "none"]
"""How a patient prefers to be (or was) contacted; ``none``: not at all."""

ConfirmationOutcome = Literal[
    "terminated",
    "undeliverable",
    "error",
    "responded",
    "processing",
    "message_sent",
    "left_message_to_reschedule",
    "incorrect_number",
    "confirmed",
    "line_busy",
    "no_answer",
    "left_message",
    "disconnected",
]

# --- people --------------------------------------------------------------------------------------

AdministrativeGender = Literal["male", "female", "other", "unknown"]
"""FHIR AdministrativeGender (required binding)."""

MaritalStatus = Literal[
    "annulled",
    "divorced",
    "interlocutory",
    "legally_separated",
    "married",
    "polygamous",
    "never_married",
    "domestic_partner",
    "widowed",
    "unknown",
]
"""The FHIR DSTU1 marital statuses CareCloud uses, as words."""

Ethnicity = Literal["hispanic_or_latino", "not_hispanic_or_latino", "unknown"]

EmploymentStatusCode = Literal["E", "D", "R", "P", "U", "S", "N"]
"""CareCloud's ``employment_status_code``, verbatim (its meanings are not documented)."""

StudentStatusCode = Literal["F", "P", "N", "U"]
"""CareCloud's ``student_status_code``: full-time, part-time, not a student, unknown."""

Relationship = Literal[
    "self",
    "spouse",
    "child",
    "mother",
    "father",
    "employee",
    "life_partner",
    "domestic_partner",
    "grandparent",
    "grandchild",
    "stepchild",
    "foster_child",
    "ward",
    "guardian",
    "sibling",
    "niece_nephew",
    "dependent",
    "emancipated_minor",
    "other",
    "unknown",
]
"""Relationship of a person (insured, responsible party) to the patient: CareCloud's words; a
word CareCloud adds later maps to ``other``."""

PhoneKind = Literal[
    "mobile", "home", "work", "main", "fax", "toll_free", "voip", "pager", "sms", "other"
]
AddressUse = Literal["home", "work", "billing", "mailing", "other"]

IdentifierKind = Literal[
    "chart_number",
    "account_number",
    "legacy_patient_id",
    "mrn",
    "v2_id",
    "fhir_id",
    "rcm_account",
    "other",
]
"""Kinds of upstream identifiers a patient carries (the crosswalk's, as seen by clients)."""

# --- insurance -----------------------------------------------------------------------------------

PayerKind = Literal[
    "commercial",
    "medicare",
    "medicaid",
    "bcbs",
    "tricare",
    "workers_comp",
    "auto",
    "self",
    "other",
]

InsurancePolicyType = Literal[
    "commercial_insurance",
    "ppo",
    "hmo",
    "pos",
    "epo",
    "indemnity",
    "medicare_a",
    "medicare_b",
    "medicare_hmo",
    "medicare_ppo",
    "medicare_advantage",
    "medicare_supplement",
    "medicaid",
    "medicaid_hmo",
    "blue_cross_blue_shield",
    "workers_compensation",
    "auto_insurance",
    "champus",
    "champ_va",
    "self_pay",
    "other",
]
"""CareCloud's ``insurance_policy_type`` (its documented values, Medicare Advantage (Part C) and
self-pay; the rest map to ``other``)."""

ResponsibleParty = Literal["patient", "insurance"]
"""Who owes an open balance (CareCloud's ``balance_type``)."""

# --- clinical ------------------------------------------------------------------------------------

EncounterStatus = Literal["open", "signed"]
EncounterType = Literal["office_visit", "nurse_visit", "telephone", "telehealth", "other"]
ProblemStatus = Literal["active", "inactive", "resolved"]
MedicationStatus = Literal["active", "stopped", "completed", "on_hold", "entered_in_error"]
AllergyCategory = Literal["medication", "food", "environment", "biologic"]
AllergySeverity = Literal["mild", "moderate", "severe"]
AllergyStatus = Literal["active", "inactive", "resolved"]
AllergenSystem = Literal["rxnorm", "snomed"]
LabResultStatus = Literal[
    "preliminary", "final", "amended", "corrected", "cancelled", "entered_in_error"
]
LabInterpretation = Literal["N", "H", "L", "A", "HH", "LL", "AA"]
"""HL7 v3 ObservationInterpretation: normal, high, low, abnormal, and the critical forms."""

ImmunizationStatus = Literal["completed", "not_done", "entered_in_error"]
ImmunizationSite = Literal[
    "LA", "RA", "LD", "RD", "LT", "RT", "LVL", "RVL", "LG", "RG", "LUA", "RUA", "BN", "LN", "RN"
]
"""HL7 table 0163 body sites used for vaccines (arm, deltoid, thigh, vastus lateralis, gluteus,
upper arm, nares)."""

ImmunizationRoute = Literal["IM", "SC", "ID", "IN", "NS", "PO", "IV", "OTH"]
"""HL7 table 0162 routes used for vaccines."""

# --- billing -------------------------------------------------------------------------------------

TransactionStatus = Literal["posted", "not_posted", "closed"]

ChargeKind = Literal["charge", "simple_charge"]

LedgerEntryKind = Literal[
    "charge_reversal",
    "simple_charge_reversal",
    "insurance_payment",
    "insurance_payment_reversal",
    "insurance_payment_refund",
    "insurance_payment_refund_reversal",
    "insurance_adjustment",
    "insurance_adjustment_reversal",
    "insurance_adjustment_refund",
    "insurance_adjustment_refund_reversal",
    "patient_payment",
    "patient_payment_reversal",
    "patient_payment_refund",
    "patient_payment_refund_reversal",
    "patient_adjustment",
    "patient_adjustment_reversal",
    "returned_insurance_check",
    "returned_insurance_check_reversal",
    "returned_patient_check",
    "returned_patient_check_reversal",
    "withhold",
    "withhold_reversal",
    "withhold_refund",
    "withhold_refund_reversal",
]
"""Every CareCloud ledger ``transaction_type`` that is not a charge (those are ``ChargeKind``)."""

AdjustmentGroup = Literal["CO", "PR", "OA", "PI", "CR"]
"""X12 CAS01 claim adjustment group: contractual obligation, patient responsibility, other,
payer initiated, correction/reversal (legacy)."""

RemittanceClaimStatus = Literal["1", "2", "3", "4", "19", "20", "21", "22", "23", "25"]
"""835 ``CLP02``: processed as primary/secondary/tertiary, denied, processed and forwarded,
reversal, not our claim, predetermination."""

PaymentKind = Literal["era", "patient"]
PaymentMethod = Literal["ach", "check", "card", "cash", "other"]
StatementStatus = Literal["sent", "paid", "collections"]

# --- eligibility ---------------------------------------------------------------------------------

EligibilityCheckStatus = Literal["pending", "complete", "error"]
CoverageStatus = Literal["active", "inactive", "unknown"]
"""The answer of a 271 (EB01 ``1`` active, ``6`` inactive; ``unknown`` when it cannot say)."""

CoverageLevel = Literal["individual", "family", "employee_and_spouse", "employee_and_children"]
EligibilityMethod = Literal["electronic", "manual"]

# --- claims --------------------------------------------------------------------------------------


class ClaimStatus(StrEnum):
    """Where a claim is in the revenue cycle."""

    DRAFT = "draft"
    SCRUBBED = "scrubbed"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PENDING = "pending"
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    DENIED = "denied"
    APPEALED = "appealed"
    CLOSED = "closed"


_S = ClaimStatus
CLAIM_TRANSITIONS: Mapping[ClaimStatus, frozenset[ClaimStatus]] = MappingProxyType(
    {
        _S.DRAFT: frozenset({_S.SCRUBBED, _S.CLOSED}),
        _S.SCRUBBED: frozenset({_S.SUBMITTED, _S.DRAFT}),
        _S.SUBMITTED: frozenset({_S.ACCEPTED, _S.REJECTED}),
        _S.ACCEPTED: frozenset({_S.PENDING, _S.PAID, _S.PARTIALLY_PAID, _S.DENIED}),
        _S.REJECTED: frozenset({_S.DRAFT, _S.CLOSED}),
        _S.PENDING: frozenset({_S.PAID, _S.PARTIALLY_PAID, _S.DENIED}),
        _S.PAID: frozenset({_S.CLOSED}),
        _S.PARTIALLY_PAID: frozenset({_S.APPEALED, _S.CLOSED}),
        _S.DENIED: frozenset({_S.APPEALED, _S.CLOSED}),
        _S.APPEALED: frozenset({_S.PENDING, _S.PAID, _S.PARTIALLY_PAID, _S.DENIED, _S.CLOSED}),
        _S.CLOSED: frozenset(),
    }
)
"""The statuses each claim status may move to. ``closed`` is terminal; a status never moves to
itself."""

CLAIM_STATUS_CATEGORY: Mapping[ClaimStatus, str | None] = MappingProxyType(
    {
        _S.DRAFT: None,
        _S.SCRUBBED: None,
        _S.SUBMITTED: "A1",
        _S.ACCEPTED: "A2",
        _S.REJECTED: "A3",
        _S.PENDING: "P1",
        _S.PAID: "F1",
        _S.PARTIALLY_PAID: "F1",
        _S.DENIED: "F2",
        _S.APPEALED: "A1",
        _S.CLOSED: None,
    }
)
"""The X12 277 category a status is usually reported with (None: internal to the practice)."""
del _S

TERMINAL_CLAIM_STATUSES: frozenset[ClaimStatus] = frozenset(
    s for s, nexts in CLAIM_TRANSITIONS.items() if not nexts
)


def can_transition_claim(current: ClaimStatus | str, target: ClaimStatus | str) -> bool:
    """True when the claim lifecycle allows ``current → target``.

    Raises:
        ValueError: either value is not a claim status.
    """
    return ClaimStatus(target) in CLAIM_TRANSITIONS[ClaimStatus(current)]


def check_claim_transition(current: ClaimStatus | str, target: ClaimStatus | str) -> ClaimStatus:
    """``target`` as a ``ClaimStatus`` when ``current → target`` is allowed.

    Raises:
        InvalidTransition: the table does not allow it (including unknown statuses and staying
            in place).
    """
    try:
        source, goal = ClaimStatus(current), ClaimStatus(target)
    except ValueError:
        raise InvalidTransition("unknown claim status") from None
    if goal not in CLAIM_TRANSITIONS[source]:
        raise InvalidTransition(f"a claim cannot go from {source.value} to {goal.value}")
    return goal
