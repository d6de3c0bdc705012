"""The practice and its schedule: providers, locations, resources, visit reasons, open slots and
appointments.

An appointment books a ``resource`` (the schedule column: a doctor, a room or a machine) at a
``location`` for a ``visit_reason``; ``provider_id`` is the billing/rendering provider
(``upstream/carecloud.md`` §6.1).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from carebridge.domain.contact import Address, PersonName, Phone, check_one_primary
from carebridge.domain.provenance import DomainModel, NonEmptyStr, Record, check_timestamps
from carebridge.domain.values import (
    NPI,
    AppointmentId,
    Email,
    EncounterId,
    Instant,
    LocationId,
    PatientId,
    PlaceOfService,
    ProcedureCode,
    ProviderId,
    ResourceId,
    Taxonomy,
    TimeZoneName,
    VisitReasonId,
)
from carebridge.domain.vocab import AppointmentStatus, ConfirmationMethod, ConfirmationOutcome


class Provider(Record):
    """A clinician of the practice who renders and bills services."""

    id: ProviderId
    npi: NPI
    name: PersonName
    credentials: str = ""
    """MD, DO, NP, PA-C ..."""
    email: Email | None = None
    phone: Phone | None = None
    taxonomy: Taxonomy | None = None
    specialty_name: str | None = None
    active: bool = True

    @model_validator(mode="after")
    def _check(self) -> Provider:
        if self.specialty_name and self.taxonomy is None:
            raise ValueError("taxonomy: a specialty needs its NUCC taxonomy code")
        return self


class Location(Record):
    """A place where the practice sees patients."""

    id: LocationId
    name: NonEmptyStr
    mnemonic: str = ""
    npi: NPI | None = None
    place_of_service: PlaceOfService
    time_zone: TimeZoneName | None = None
    address: Address | None = None
    phones: tuple[Phone, ...] = ()
    visible_in_scheduler: bool = True
    is_default: bool = False
    active: bool = True

    @model_validator(mode="after")
    def _check(self) -> Location:
        check_one_primary(self.phones, "phones")
        return self


class Resource(Record):
    """A schedulable column: a doctor, a room or a machine."""

    id: ResourceId
    name: NonEmptyStr
    code: str = ""
    description: str = ""
    default_provider_id: ProviderId | None = None
    bookable_by_request: bool = True
    """Whether patients may request it (online booking)."""
    confirmation_mode: str = ""
    """CareCloud's ``appointment_confirmation`` code, verbatim (undocumented)."""
    sort_code: int | None = None
    visit_reason_ids: tuple[VisitReasonId, ...] = ()
    """The visit reasons its templates accept."""
    active: bool = True
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Resource:
        if len(set(self.visit_reason_ids)) != len(self.visit_reason_ids):
            raise ValueError("visit_reason_ids: must not repeat")
        check_timestamps(self.created_at, self.updated_at)
        return self


class VisitReason(Record):
    """A kind of visit (CareCloud's "nature of visit"): its default length and usual code."""

    id: VisitReasonId
    name: NonEmptyStr
    description: str = ""
    duration_minutes: int = Field(ge=1, le=24 * 60)
    procedure_code: ProcedureCode | None = None
    """The E/M or HCPCS code usually billed for it."""
    bookable_by_request: bool = True
    active: bool = True


class Slot(Record):
    """An open time a resource can take a visit reason at a location (availability search)."""

    start: Instant
    end: Instant
    location_id: LocationId
    resource_id: ResourceId
    visit_reason_id: VisitReasonId
    provider_id: ProviderId | None = None

    @model_validator(mode="after")
    def _check(self) -> Slot:
        if self.end <= self.start:
            raise ValueError("end: must be after start")
        return self


class AppointmentCancellation(DomainModel):
    """Why an appointment was cancelled or rescheduled."""

    reason_code: str = ""
    reason_name: str = ""
    comments: str = Field(default="", repr=False)


class AppointmentConfirmation(DomainModel):
    """One attempt to confirm an appointment with the patient."""

    method: ConfirmationMethod
    outcome: ConfirmationOutcome | None = None
    method_description: str = ""
    comments: str = Field(default="", repr=False)
    confirmed_at: Instant | None = None
    recorded_at: Instant | None = None


class UpstreamStatus(DomainModel):
    """The practice-configured status the upstream reported, kept for display and audit."""

    code: NonEmptyStr
    name: str = ""


class Appointment(Record):
    """A booked visit."""

    id: AppointmentId
    patient_id: PatientId
    provider_id: ProviderId
    location_id: LocationId | None = None
    resource_id: ResourceId | None = None
    visit_reason_id: VisitReasonId | None = None
    status: AppointmentStatus
    upstream_status: UpstreamStatus | None = None
    start: Instant
    end: Instant
    chief_complaint: str = Field(default="", repr=False)
    comments: str = Field(default="", repr=False)
    is_confirmed: bool = False
    confirmations: tuple[AppointmentConfirmation, ...] = ()
    preferred_confirmation_method: ConfirmationMethod | None = None
    patient_contacted: bool = False
    is_force_overbook: bool = False
    cancellation: AppointmentCancellation | None = None
    arrived_at: Instant | None = None
    departed_at: Instant | None = None
    referring_physician_npi: NPI | None = None
    encounter_id: EncounterId | None = None
    created_by_application: str | None = None
    updated_by_application: str | None = None
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Appointment:
        if self.end <= self.start:
            raise ValueError("end: must be after start")
        if self.status is AppointmentStatus.CONFIRMED and not self.is_confirmed:
            raise ValueError("is_confirmed: a confirmed appointment has is_confirmed set")
        if self.cancellation is not None and self.status not in (
            AppointmentStatus.CANCELLED,
            AppointmentStatus.RESCHEDULED,
        ):
            raise ValueError("cancellation: only a cancelled or rescheduled appointment has one")
        if self.departed_at is not None:
            if self.arrived_at is None:
                raise ValueError("departed_at: a patient departs only after arriving")
            if self.departed_at < self.arrived_at:
                raise ValueError("departed_at: must not be before arrived_at")
        if self.status is AppointmentStatus.ARRIVED and self.arrived_at is None:
            raise ValueError("arrived_at: an arrived appointment records when")
        if self.status is AppointmentStatus.CHECKED_OUT and self.departed_at is None:
            raise ValueError("departed_at: a checked-out appointment records when")
        check_timestamps(self.created_at, self.updated_at)
        return self

    @property
    def duration_minutes(self) -> int:
        """Length in whole minutes."""
        return int((self.end - self.start).total_seconds() // 60)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """True when the appointment shares time with ``[start, end)``."""
        return self.start < end and start < self.end
