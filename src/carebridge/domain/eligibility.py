"""Eligibility checks (X12 270/271): the request, then benefits by service type.

A check starts ``pending`` with only its request, and becomes ``complete`` with a coverage status
and benefits (or ``error`` with a reason). Each ``Benefit`` is one service type at one coverage
level and network: whether it is active, the copay (EB01 ``B``), the coinsurance (``A``, a
fraction 0..1 as EB08 sends it), the deductible and what remains of it (``C``), and the
out-of-pocket maximum and what remains (``G``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import Field, model_validator

from carebridge.domain.provenance import DomainModel, Record, check_timestamps
from carebridge.domain.values import (
    NPI,
    AppointmentId,
    CoverageId,
    EligibilityCheckId,
    Instant,
    NonNegativeMoney,
    PatientId,
    PayerId,
    ProviderId,
    ServiceTypeCode,
)
from carebridge.domain.vocab import (
    CoverageLevel,
    CoverageStatus,
    EligibilityCheckStatus,
    EligibilityMethod,
    InsurancePolicyType,
)


class EligibilityRequest(DomainModel):
    """What was asked: who, for which date of service and which service types."""

    service_date: date
    service_types: tuple[ServiceTypeCode, ...] = Field(default=("30",), min_length=1)
    """``30`` (health benefit plan coverage) is the generic inquiry."""
    coverage_id: CoverageId | None = None
    payer_id: PayerId | None = None
    provider_id: ProviderId | None = None
    provider_npi: NPI | None = None
    member_number: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _check(self) -> EligibilityRequest:
        if len(set(self.service_types)) != len(self.service_types):
            raise ValueError("service_types: must not repeat")
        return self


class Benefit(DomainModel):
    """The benefits of one service type at one coverage level and network."""

    service_type: ServiceTypeCode
    coverage_status: CoverageStatus = "active"
    coverage_level: CoverageLevel = "individual"
    in_network: bool | None = None
    """None when the payer did not say (EB12 absent)."""
    copay: NonNegativeMoney | None = None
    coinsurance: Decimal | None = Field(default=None, ge=0, le=1, decimal_places=4)
    """The patient's share as a fraction (0.20 for 20 %)."""
    deductible: NonNegativeMoney | None = None
    deductible_remaining: NonNegativeMoney | None = None
    out_of_pocket_max: NonNegativeMoney | None = None
    out_of_pocket_remaining: NonNegativeMoney | None = None
    authorization_required: bool | None = None
    notes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Benefit:
        if self.deductible_remaining is not None and (
            self.deductible is None or self.deductible_remaining > self.deductible
        ):
            raise ValueError("deductible_remaining: cannot exceed the deductible")
        if self.out_of_pocket_remaining is not None and (
            self.out_of_pocket_max is None or self.out_of_pocket_remaining > self.out_of_pocket_max
        ):
            raise ValueError("out_of_pocket_remaining: cannot exceed out_of_pocket_max")
        return self


class EligibilityCheck(Record):
    """One eligibility inquiry and, once answered, its result."""

    id: EligibilityCheckId
    patient_id: PatientId
    appointment_id: AppointmentId | None = None
    method: EligibilityMethod = "electronic"
    status: EligibilityCheckStatus
    request: EligibilityRequest
    requested_at: Instant
    responded_at: Instant | None = None
    coverage_status: CoverageStatus | None = None
    """The overall answer; set once ``complete``."""
    payer_id: PayerId | None = None
    payer_name: str = ""
    member_number: str | None = Field(default=None, repr=False)
    plan_type: InsurancePolicyType | None = None
    benefits: tuple[Benefit, ...] = ()
    reason: str = ""
    """Why coverage is inactive or the check failed (e.g. a 271 AAA reject reason)."""
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> EligibilityCheck:
        if self.status == "pending":
            if self.benefits or self.coverage_status is not None or self.responded_at is not None:
                raise ValueError("status: a pending check has no answer yet")
        elif self.responded_at is None:
            raise ValueError("responded_at: an answered check records when")
        if self.status == "complete" and self.coverage_status is None:
            raise ValueError("coverage_status: a complete check states the coverage status")
        if self.status == "error" and self.benefits:
            raise ValueError("benefits: a failed check has none")
        if self.responded_at is not None and self.responded_at < self.requested_at:
            raise ValueError("responded_at: must not be before requested_at")
        keys = [(b.service_type, b.coverage_level, b.in_network) for b in self.benefits]
        if len(set(keys)) != len(keys):
            raise ValueError("benefits: one per service type, coverage level and network")
        check_timestamps(self.created_at, self.updated_at)
        return self

    def benefit(
        self, service_type: str, *, coverage_level: CoverageLevel = "individual"
    ) -> Benefit | None:
        """The benefit for ``service_type``, preferring the in-network one."""
        matches = [
            b
            for b in self.benefits
            if b.service_type == service_type and b.coverage_level == coverage_level
        ]
        matches.sort(key=lambda b: b.in_network is not True)
        return matches[0] if matches else None
