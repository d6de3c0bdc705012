"""The ``Upstream`` port: everything the services may ask of a practice's upstream system.

Services see only this protocol and the domain; the CareCloud connector implements it (one
driver per surface behind a tenant facade) and so could another vendor's. Reads stream domain
records; writes take command models and answer a :class:`WriteResult` that says whether a
read-back confirmed the write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, Literal, Protocol, TypeVar

from pydantic import Field

from carebridge.domain import (
    Allergy,
    Appointment,
    Balance,
    Charge,
    Claim,
    Coverage,
    Document,
    EligibilityCheck,
    EligibilityRequest,
    Encounter,
    Immunization,
    LabResult,
    Location,
    Medication,
    Patient,
    Payment,
    Problem,
    Provider,
    Remittance,
    Resource,
    Slot,
    Statement,
    VisitReason,
)
from carebridge.domain.provenance import DomainModel
from carebridge.domain.values import (
    ICD10CM,
    AppointmentId,
    ChargeId,
    EncounterId,
    Instant,
    LocationId,
    PatientId,
    ProcedureCode,
    ProviderId,
    ResourceId,
    VisitReasonId,
)
from carebridge.domain.vocab import AppointmentStatus

T = TypeVar("T")

Confirmation = Literal["confirmed", "diverged", "pending"]


class WriteResult(DomainModel, Generic[T]):
    """A write's outcome: the record as read back, and whether it matched what was asked.

    ``diverged`` lists the fields whose read-back differs from the request (dotted names).
    """

    value: T
    confirmation: Confirmation
    diverged: tuple[str, ...] = ()
    attempts: int = Field(default=1, ge=1)


# --- commands ------------------------------------------------------------------------------------


class NewAppointment(DomainModel):
    """Book a visit in a free slot."""

    patient_id: PatientId
    resource_id: ResourceId
    location_id: LocationId
    visit_reason_id: VisitReasonId
    provider_id: ProviderId | None = None
    start: Instant
    end: Instant | None = None
    chief_complaint: str = Field(default="", repr=False)
    comments: str = Field(default="", repr=False)


class NewCharge(DomainModel):
    """Post a charge to a patient's ledger."""

    patient_id: PatientId
    procedure_code: ProcedureCode
    units: int = Field(default=1, ge=1, le=99)
    diagnosis_codes: tuple[ICD10CM, ...] = Field(min_length=1, max_length=12)
    service_date: date
    provider_id: ProviderId | None = None
    location_id: LocationId | None = None
    encounter_id: EncounterId | None = None


class NewClaim(DomainModel):
    """Submit a claim from unbilled charges, with attachments (document ids and PWK types)."""

    patient_id: PatientId
    charge_ids: tuple[ChargeId, ...] = Field(min_length=1)
    attachments: tuple[tuple[str, str], ...] = ()


class NewEncounter(DomainModel):
    """Push an encounter (a visit's chart) to the EHR."""

    patient_id: PatientId
    provider_id: ProviderId | None = None
    location_id: LocationId | None = None
    start: Instant | None = None
    chief_complaint: str = Field(default="", repr=False)
    note: dict[str, str] = Field(default_factory=dict, repr=False)
    diagnoses: tuple[ICD10CM, ...] = ()
    procedures: tuple[tuple[ProcedureCode, int], ...] = ()


# --- the port -----------------------------------------------------------------------------------


class Upstream(Protocol):
    """One tenant's upstream practice system."""

    # practice
    def providers(self) -> AsyncIterator[Provider]: ...
    def locations(self) -> AsyncIterator[Location]: ...
    def resources(self) -> AsyncIterator[Resource]: ...
    def visit_reasons(self) -> AsyncIterator[VisitReason]: ...
    async def availability(
        self,
        visit_reason_id: VisitReasonId,
        start: date,
        end: date,
        *,
        location_ids: tuple[LocationId, ...] = (),
        resource_ids: tuple[ResourceId, ...] = (),
    ) -> list[Slot]: ...

    # patients
    def patients(self, *, updated_since: datetime | None = None) -> AsyncIterator[Patient]: ...
    async def patient(self, patient_id: PatientId) -> Patient: ...
    async def coverages(self, patient_id: PatientId) -> list[Coverage]: ...
    async def balance(self, patient_id: PatientId) -> list[Balance]: ...
    async def check_eligibility(
        self, patient_id: PatientId, request: EligibilityRequest
    ) -> EligibilityCheck: ...

    # schedule
    def appointments(
        self,
        start: date,
        end: date,
        *,
        patient_id: PatientId | None = None,
        provider_id: ProviderId | None = None,
        location_id: LocationId | None = None,
        status: AppointmentStatus | None = None,
    ) -> AsyncIterator[Appointment]: ...
    async def appointment(self, appointment_id: AppointmentId) -> Appointment: ...
    async def create_appointment(self, command: NewAppointment) -> WriteResult[Appointment]: ...
    async def cancel_appointment(
        self, appointment_id: AppointmentId, *, reason_code: str | None, comments: str = ""
    ) -> WriteResult[Appointment]: ...
    async def reschedule_appointment(
        self, appointment_id: AppointmentId, command: NewAppointment
    ) -> WriteResult[Appointment]: ...
    async def check_in(self, appointment_id: AppointmentId) -> WriteResult[Appointment]: ...
    async def check_out(self, appointment_id: AppointmentId) -> WriteResult[Appointment]: ...

    # charts
    def encounters(
        self, *, patient_id: PatientId | None = None, updated_since: datetime | None = None
    ) -> AsyncIterator[Encounter]: ...
    def problems(self, patient_id: PatientId) -> AsyncIterator[Problem]: ...
    def medications(self, patient_id: PatientId) -> AsyncIterator[Medication]: ...
    def allergies(self, patient_id: PatientId) -> AsyncIterator[Allergy]: ...
    def labs(self, patient_id: PatientId) -> AsyncIterator[LabResult]: ...
    def immunizations(self, patient_id: PatientId) -> AsyncIterator[Immunization]: ...
    def documents(self, patient_id: PatientId) -> AsyncIterator[Document]: ...
    async def push_encounter(self, command: NewEncounter) -> WriteResult[Encounter]: ...
    async def add_addendum(
        self, encounter_id: EncounterId, text: str
    ) -> WriteResult[Encounter]: ...
    async def sign_encounter(self, encounter_id: EncounterId) -> WriteResult[Encounter]: ...

    # revenue cycle
    def charges(self, *, patient_id: PatientId | None = None) -> AsyncIterator[Charge]: ...
    async def create_charge(self, command: NewCharge) -> WriteResult[Charge]: ...
    def claims(
        self, *, status: str | None = None, updated_since: datetime | None = None
    ) -> AsyncIterator[Claim]: ...
    async def submit_claim(self, command: NewClaim) -> WriteResult[Claim]: ...
    def payments(self, *, updated_since: datetime | None = None) -> AsyncIterator[Payment]: ...
    def remittances(
        self, *, updated_since: datetime | None = None
    ) -> AsyncIterator[Remittance]: ...
    def statements(self, *, updated_since: datetime | None = None) -> AsyncIterator[Statement]: ...


# --- sign-in state shared by every process ----------------------------------------------------

StepClaim = Literal["claimed", "used", "blocked"]


@dataclass(frozen=True)
class MfaAccountState:
    """What every process knows of one upstream account's sign-ins.

    Attributes:
        last_step: the newest TOTP step any process sent (-1 before the first).
        failures: consecutive refused sign-ins (password or code), reset by a success.
        locked_until: the end of a lockout the upstream announced, if one is running.
    """

    last_step: int = -1
    failures: int = 0
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        """The upstream's lockout is still running at ``now``."""
        return self.locked_until is not None and now < self.locked_until


class MfaSteps(Protocol):
    """The MFA ledger of upstream accounts: one record per account, shared by every process.

    A TOTP step is good once per account upstream, and refused sign-ins lock the account, so
    the steps used and the failures seen must be the same for every process that signs in.
    ``account`` is an opaque key (a digest of the upstream URL and username), never a name.
    """

    async def state(self, account: str) -> MfaAccountState:
        """The account's record (a fresh one when none exists)."""
        ...

    async def claim(
        self, account: str, step: int, *, max_failures: int, now: datetime
    ) -> StepClaim:
        """Atomically take ``step`` if it is newer than every step taken before, the account
        has fewer than ``max_failures`` consecutive failures and is not locked at ``now``.

        Returns ``claimed``, ``used`` (a step at or after ``step`` was taken) or ``blocked``.
        """
        ...

    async def failed(self, account: str) -> int:
        """Count one refused sign-in; return the consecutive failures now recorded."""
        ...

    async def succeeded(self, account: str) -> None:
        """A sign-in went through: the consecutive failures start again from zero."""
        ...

    async def locked(self, account: str, until: datetime) -> None:
        """The upstream locked the account until ``until``: nobody tries before then."""
        ...

    async def reset(self, account: str) -> None:
        """An operator checked the credentials: clear the failures and the lockout (the last
        step is kept, since the upstream still refuses it)."""
        ...
