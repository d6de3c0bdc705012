"""CareCloud's v2 code lists and words as the domain's vocabularies."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from typing import cast

from carebridge.connectors.carecloud.mapping.v2._base import _text, _word
from carebridge.domain import AppointmentStatus
from carebridge.domain.vocab import (
    AdministrativeGender,
    ConfirmationMethod,
    ConfirmationOutcome,
    CoverageLevel,
    EligibilityCheckStatus,
    EmploymentStatusCode,
    Ethnicity,
    InsurancePolicyType,
    LedgerEntryKind,
    MaritalStatus,
    PayerKind,
    PhoneKind,
    Relationship,
    ResponsibleParty,
    StudentStatusCode,
    TransactionStatus,
)

# --- vocabularies ----------------------------------------------------------------------------------

_GENDERS: dict[str, AdministrativeGender] = {
    "m": "male",
    "male": "male",
    "f": "female",
    "female": "female",
    "o": "other",
    "other": "other",
    "u": "unknown",
    "unknown": "unknown",
}
_MARITAL: dict[str, MaritalStatus] = {
    "a": "annulled",
    "d": "divorced",
    "i": "interlocutory",
    "l": "legally_separated",
    "m": "married",
    "p": "polygamous",
    "s": "never_married",
    "single": "never_married",
    "t": "domestic_partner",
    "w": "widowed",
    "u": "unknown",
    **{v: v for v in typing.get_args(MaritalStatus)},
}
_ETHNICITY: dict[str, Ethnicity] = {
    "h": "hispanic_or_latino",
    "2135-2": "hispanic_or_latino",
    "n": "not_hispanic_or_latino",
    "2186-5": "not_hispanic_or_latino",
    "u": "unknown",
    **{v: v for v in typing.get_args(Ethnicity)},
}
_RELATIONSHIPS: frozenset[str] = frozenset(typing.get_args(Relationship))
_EMPLOYMENT: frozenset[str] = frozenset(typing.get_args(EmploymentStatusCode))
_STUDENT: frozenset[str] = frozenset(typing.get_args(StudentStatusCode))
_PHONE_KINDS: dict[str, PhoneKind] = {
    "b": "work",
    "business": "work",
    "work": "work",
    "office": "work",
    "m": "main",
    "main": "main",
    "f": "fax",
    "fa": "fax",
    "fax": "fax",
    "tf": "toll_free",
    "tollfree": "toll_free",
    "toll_free": "toll_free",
    "s800": "toll_free",
    "n800": "toll_free",
    "v": "voip",
    "voip": "voip",
    "p": "pager",
    "pager": "pager",
    "c": "mobile",
    "cell": "mobile",
    "mobile": "mobile",
    "h": "home",
    "home": "home",
    "sms": "sms",
}
_POLICY_TYPES: frozenset[str] = frozenset(typing.get_args(InsurancePolicyType))
_POLICY_ALIASES: dict[str, InsurancePolicyType] = {
    "commercial": "commercial_insurance",
    "bcbs": "blue_cross_blue_shield",
    "workers_comp": "workers_compensation",
    "auto": "auto_insurance",
    "tricare": "champus",
}
_LEDGER_KINDS: frozenset[str] = frozenset(typing.get_args(LedgerEntryKind))
_TRANSACTION_STATUSES: frozenset[str] = frozenset(typing.get_args(TransactionStatus))
_CHARGE_KINDS = frozenset({"charge", "simple_charge"})
_CONFIRMATION_METHODS: frozenset[str] = frozenset(typing.get_args(ConfirmationMethod))
_CONFIRMATION_OUTCOMES: frozenset[str] = frozenset(typing.get_args(ConfirmationOutcome))
_COVERAGE_LEVELS: frozenset[str] = frozenset(typing.get_args(CoverageLevel))
_ELIGIBILITY_STATUSES: frozenset[str] = frozenset(typing.get_args(EligibilityCheckStatus))
_RESPONSIBLE: frozenset[str] = frozenset(typing.get_args(ResponsibleParty))


def gender(*values: str | None) -> AdministrativeGender | None:
    """The first of ``values`` that is a gender code (``M``) or word (``Male``), as the domain's."""
    for value in values:
        found = _GENDERS.get(_word(value))
        if found is not None:
            return found
    return None


def marital_status(value: str | None) -> MaritalStatus | None:
    """A ``marital_status_code`` (``S``) or word as the domain's; None when it is neither."""
    return _MARITAL.get(_word(value))


def ethnicity(value: str | None) -> Ethnicity | None:
    """An ``ethnicity_code`` (``H``, ``N``, ``U``, a CDC code) or word; None when it is neither."""
    return _ETHNICITY.get(_word(value))


def employment_status(value: str | None) -> EmploymentStatusCode | None:
    """An ``employment_status_code``, verbatim; None when CareCloud does not define it."""
    code = _text(value).upper()
    return cast(EmploymentStatusCode, code) if code in _EMPLOYMENT else None


def student_status(value: str | None) -> StudentStatusCode | None:
    """A ``student_status_code``, verbatim; None when CareCloud does not define it."""
    code = _text(value).upper()
    return cast(StudentStatusCode, code) if code in _STUDENT else None


def confirmation_method(value: str | None) -> ConfirmationMethod | None:
    """A ``communication_method`` as the domain's; None when it is not one."""
    word = _word(value)
    return cast(ConfirmationMethod, word) if word in _CONFIRMATION_METHODS else None


def confirmation_outcome(value: str | None) -> ConfirmationOutcome | None:
    """A ``communication_outcome`` as the domain's; None when it is not one."""
    word = _word(value)
    return cast(ConfirmationOutcome, word) if word in _CONFIRMATION_OUTCOMES else None


def ledger_kind(value: str | None) -> LedgerEntryKind | None:
    """A ``transaction_type`` other than a charge as the domain's; None for a charge kind (see
    ``is_charge``) or an unknown type."""
    word = _word(value)
    return cast(LedgerEntryKind, word) if word in _LEDGER_KINDS else None


def transaction_status(value: str | None) -> TransactionStatus | None:
    """A ``transaction_status`` as the domain's; None when it is not one."""
    word = _word(value)
    return cast(TransactionStatus, word) if word in _TRANSACTION_STATUSES else None


def responsible_party(value: str | None) -> ResponsibleParty | None:
    """A ``balance_type`` as the domain's; None when it is not one."""
    word = _word(value)
    return cast(ResponsibleParty, word) if word in _RESPONSIBLE else None


def coverage_level(value: str | None) -> CoverageLevel | None:
    """A benefit's ``coverage_level`` as the domain's; None when it is not one."""
    word = _word(value)
    return cast(CoverageLevel, word) if word in _COVERAGE_LEVELS else None


def eligibility_status(value: str | None) -> EligibilityCheckStatus | None:
    """An eligibility request's ``status`` as the domain's; None when it is not one."""
    word = _word(value)
    return cast(EligibilityCheckStatus, word) if word in _ELIGIBILITY_STATUSES else None


def relationship(value: str | None) -> Relationship:
    """CareCloud's relationship word as the domain's; a word it adds later becomes ``other``."""
    word = _word(value)
    if not word:
        return "unknown"
    return cast(Relationship, word) if word in _RELATIONSHIPS else "other"


def policy_type(value: str | None) -> InsurancePolicyType:
    """``insurance_policy_type`` (or a display word such as ``Commercial``) as the domain's."""
    word = _word(value)
    if word in _POLICY_TYPES:
        return cast(InsurancePolicyType, word)
    return _POLICY_ALIASES.get(word, "other")


def phone_kind(value: str | None) -> PhoneKind:
    """A phone type code (``B``, ``C``, ``TF``...) or word (``Business``) as the domain's kind."""
    return _PHONE_KINDS.get(_word(value), "other")


def payer_kind(plan_types: Iterable[str | None]) -> PayerKind:
    """What kind of payer offers plans of these types (the v2 payer directory does not say).

    Blue Cross Blue Shield if any plan is BCBS; Medicare, Medicaid, TRICARE, workers' comp, auto
    or self-pay when every plan is of that family; commercial otherwise, ``other`` without plans.
    """
    kinds = [policy_type(t) for t in plan_types]
    if not kinds:
        return "other"
    if "blue_cross_blue_shield" in kinds:
        return "bcbs"
    families: list[tuple[PayerKind, tuple[str, ...]]] = [
        ("medicare", ("medicare_",)),
        ("medicaid", ("medicaid",)),
        ("tricare", ("champus", "champ_va")),
        ("workers_comp", ("workers_compensation",)),
        ("auto", ("auto_insurance",)),
        ("self", ("self_pay",)),
    ]
    for kind, prefixes in families:
        if all(k.startswith(prefixes) for k in kinds):
            return kind
    return "commercial"


_STATUS_CODES: dict[str, AppointmentStatus] = {
    "P": AppointmentStatus.SCHEDULED,
    "I": AppointmentStatus.ARRIVED,
    "O": AppointmentStatus.CHECKED_OUT,
    "C": AppointmentStatus.CANCELLED,
    "R": AppointmentStatus.RESCHEDULED,
    "N": AppointmentStatus.NO_SHOW,
}


def appointment_status(code: str | None, name: str | None, is_confirmed: bool) -> AppointmentStatus:
    """The domain status of an upstream status code (``P I O C R``, ``N``) or, for a
    practice-defined code, of its name; a pending appointment that is confirmed is ``confirmed``.
    """
    status = _STATUS_CODES.get(_text(code).upper())
    if status is None:
        words = set(re.findall(r"[a-z]+", _text(name).lower()))
        if {"no", "show"} <= words or "noshow" in words:
            status = AppointmentStatus.NO_SHOW
        elif any(w.startswith("cancel") for w in words):
            status = AppointmentStatus.CANCELLED
        elif any(w.startswith("resched") for w in words):
            status = AppointmentStatus.RESCHEDULED
        elif words & {"out", "departed", "completed"}:
            status = AppointmentStatus.CHECKED_OUT
        elif words & {"in", "arrived"}:
            status = AppointmentStatus.ARRIVED
        else:
            status = AppointmentStatus.SCHEDULED
    if status is AppointmentStatus.SCHEDULED and is_confirmed:
        return AppointmentStatus.CONFIRMED
    return status
