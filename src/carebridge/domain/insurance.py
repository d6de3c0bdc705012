"""Payers and the coverages (insurance policies) patients hold with them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from carebridge.domain.contact import Address, PersonName, Phone, check_one_primary
from carebridge.domain.provenance import DomainModel, NonEmptyStr, Record, check_timestamps
from carebridge.domain.values import CoverageId, Instant, NonNegativeMoney, PatientId, PayerId
from carebridge.domain.vocab import (
    AdministrativeGender,
    InsurancePolicyType,
    PayerKind,
    Relationship,
)

PayerCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[0-9A-Z]{2,15}$")
]
"""A payer's electronic id at the clearinghouse (``60054``)."""


class PayerPlan(DomainModel):
    """A plan a payer offers."""

    name: NonEmptyStr
    policy_type: InsurancePolicyType
    upstream_id: str | None = None


class Payer(Record):
    """An insurance company or government program claims go to."""

    id: PayerId
    name: NonEmptyStr
    payer_code: PayerCode
    kind: PayerKind
    pending: bool = False
    """CareCloud's ``payer_pending?``: the practice added it and it is not yet enrolled."""
    address: Address | None = None
    phones: tuple[Phone, ...] = ()
    plans: tuple[PayerPlan, ...] = ()
    active: bool = True

    @model_validator(mode="after")
    def _check(self) -> Payer:
        check_one_primary(self.phones, "phones")
        names = [p.name for p in self.plans]
        if len(set(names)) != len(names):
            raise ValueError("plans: plan names are unique within a payer")
        return self


class Insured(DomainModel):
    """The subscriber of a policy; ``name`` may be left out when the patient is the subscriber."""

    relationship: Relationship = "self"
    name: PersonName | None = Field(default=None, repr=False)
    birth_date: date | None = Field(default=None, repr=False)
    gender: AdministrativeGender | None = None
    addresses: tuple[Address, ...] = ()
    phones: tuple[Phone, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Insured:
        if self.relationship != "self" and self.name is None:
            raise ValueError("name: an insured other than the patient needs a name")
        check_one_primary(self.addresses, "addresses")
        check_one_primary(self.phones, "phones")
        return self


class Coverage(Record):
    """One insurance policy of a patient (an upstream insurance profile's policy)."""

    id: CoverageId
    patient_id: PatientId
    payer_id: PayerId
    payer_name: str = ""
    plan_name: str = ""
    policy_type: InsurancePolicyType
    priority: int = Field(ge=1, le=4)
    """1 primary, 2 secondary, 3 tertiary, 4 quaternary (at most four per profile)."""
    profile_name: str = ""
    """The upstream insurance profile (a named set of policies) it belongs to."""
    is_default_profile: bool = True
    member_number: NonEmptyStr = Field(repr=False)
    policy_number: str = Field(default="", repr=False)
    group_number: str = ""
    group_name: str = ""
    effective_from: date | None = None
    effective_to: date | None = None
    copay: NonNegativeMoney | None = None
    deductible: NonNegativeMoney | None = None
    coinsurance_percent: Decimal | None = Field(default=None, ge=0, le=100, decimal_places=2)
    """The patient's share after the deductible, in percent."""
    out_of_pocket_max: NonNegativeMoney | None = None
    requires_authorization: bool = False
    insured: Insured = Insured()
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Coverage:
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise ValueError("effective_to: must not be before effective_from")
        check_timestamps(self.created_at, self.updated_at)
        return self

    def is_active_on(self, day: date) -> bool:
        """True when the policy is in force on ``day`` (open ends count as in force)."""
        starts = self.effective_from is None or self.effective_from <= day
        ends = self.effective_to is None or day <= self.effective_to
        return starts and ends
