"""Request bodies of the write routes: strict (unknown fields are refused), with examples.

Each body turns into the write service's command; ids are carebridge ids as the read routes
answer them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from carebridge.domain.values import (
    ICD10CM,
    AppointmentId,
    ChargeId,
    EncounterId,
    LocationId,
    PatientId,
    ProcedureCode,
    ProviderId,
    RequestDay,
    RequestInstant,
    ResourceId,
    VisitReasonId,
)
from carebridge.services.writes import NewAppointment, NewCharge, NewClaim, NewEncounter, Rebooking

Text = Annotated[str, StringConstraints(max_length=2000)]


class Body(BaseModel):
    """A write's body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    def sent(self) -> dict[str, Any]:
        """The body as JSON: the write's fingerprint under its key, and its ledger entry."""
        return self.model_dump(mode="json")


class Booking(Body):
    """Where and when a visit goes: a free slot of ``GET /availability``."""

    resource_id: ResourceId
    location_id: LocationId
    visit_reason_id: VisitReasonId
    provider_id: ProviderId | None = None
    start: RequestInstant
    end: RequestInstant | None = None
    chief_complaint: Text = ""
    comments: Text = ""


class CreateAppointment(Booking):
    """``POST /create_appointment``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pat_3q4z1c9m2x7b",
                    "resource_id": "res_0a1b2c3d4e5f",
                    "location_id": "loc_0a1b2c3d4e5f",
                    "visit_reason_id": "vr_0a1b2c3d4e5f",
                    "start": "2026-12-01T15:00:00Z",
                    "chief_complaint": "follow-up",
                }
            ]
        }
    )

    patient_id: PatientId

    def command(self) -> NewAppointment:
        return NewAppointment(**self.model_dump())


class Reschedule(Booking):
    """``POST /reschedule_appointment``: the appointment and its new slot."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "appointment_id": "apt_0a1b2c3d4e5f",
                    "resource_id": "res_0a1b2c3d4e5f",
                    "location_id": "loc_0a1b2c3d4e5f",
                    "visit_reason_id": "vr_0a1b2c3d4e5f",
                    "start": "2026-12-02T16:30:00Z",
                }
            ]
        }
    )

    appointment_id: AppointmentId

    def command(self) -> Rebooking:
        return Rebooking(**self.model_dump(exclude={"appointment_id"}))


class Cancel(Body):
    """``POST /cancel_appointment``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"appointment_id": "apt_0a1b2c3d4e5f", "reason_code": "PATCAN"}]
        }
    )

    appointment_id: AppointmentId
    reason_code: Annotated[str, StringConstraints(max_length=32)] | None = None
    comments: Text = ""


class AppointmentRef(Body):
    """``POST /check_in`` and ``POST /check_out``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"appointment_id": "apt_0a1b2c"}]})

    appointment_id: AppointmentId


class ProcedureLine(Body):
    """A procedure performed and its units."""

    code: ProcedureCode
    units: int = Field(default=1, ge=1, le=99)


class CreateEncounter(Body):
    """``POST /create_encounter``: push a visit's chart to the EHR (it starts open)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pat_3q4z1c9m2x7b",
                    "chief_complaint": "cough",
                    "note": {"subjective": "3 days of cough", "plan": "fluids, rest"},
                    "diagnoses": ["J06.9"],
                    "procedures": [{"code": "99213", "units": 1}],
                }
            ]
        }
    )

    patient_id: PatientId
    provider_id: ProviderId | None = None
    location_id: LocationId | None = None
    start: RequestInstant | None = None
    chief_complaint: Text = ""
    note: dict[Literal["subjective", "objective", "assessment", "plan"], Text] = Field(
        default_factory=dict
    )
    diagnoses: list[ICD10CM] = Field(default_factory=list, max_length=12)
    procedures: list[ProcedureLine] = Field(default_factory=list, max_length=20)

    def command(self) -> NewEncounter:
        return NewEncounter(
            patient_id=self.patient_id,
            provider_id=self.provider_id,
            location_id=self.location_id,
            start=self.start,
            chief_complaint=self.chief_complaint,
            note=dict(self.note),
            diagnoses=tuple(self.diagnoses),
            procedures=tuple((p.code, p.units) for p in self.procedures),
        )


class EncounterRef(Body):
    """``POST /sign_encounter``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"encounter_id": "enc_0a1b2c"}]})

    encounter_id: EncounterId


class NewAddendum(Body):
    """``POST /encounters/{id}/addenda``: text added to a signed encounter."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"text": "Culture result reviewed; plan unchanged."}]}
    )

    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class CreateCharge(Body):
    """``POST /create_charge``: a CPT/HCPCS charge on the patient's ledger."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pat_3q4z1c9m2x7b",
                    "procedure_code": "99213",
                    "diagnosis_codes": ["J06.9"],
                    "service_date": "2026-11-24",
                }
            ]
        }
    )

    patient_id: PatientId
    procedure_code: ProcedureCode
    units: int = Field(default=1, ge=1, le=99)
    diagnosis_codes: list[ICD10CM] = Field(min_length=1, max_length=12)
    service_date: RequestDay
    provider_id: ProviderId | None = None
    location_id: LocationId | None = None
    encounter_id: EncounterId | None = None

    def command(self) -> NewCharge:
        fields = self.model_dump(exclude={"diagnosis_codes"})
        return NewCharge(diagnosis_codes=tuple(self.diagnosis_codes), **fields)


class Attachment(Body):
    """A document sent with a claim, and its X12 PWK report type (``OZ``, ``09`` ...)."""

    document_id: Annotated[str, StringConstraints(pattern=r"^\d{1,12}$")]
    type: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{2}$")]


class SubmitClaim(Body):
    """``POST /submit_claim``: unbilled charges, scrubbed and submitted."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pat_3q4z1c9m2x7b",
                    "charge_ids": ["chg_0a1b2c3d4e5f"],
                    "attachments": [{"document_id": "4411", "type": "09"}],
                }
            ]
        }
    )

    patient_id: PatientId
    charge_ids: list[ChargeId] = Field(min_length=1, max_length=50)
    attachments: list[Attachment] = Field(default_factory=list, max_length=10)

    def command(self) -> NewClaim:
        return NewClaim(
            patient_id=self.patient_id,
            charge_ids=tuple(self.charge_ids),
            attachments=tuple((a.document_id, a.type) for a in self.attachments),
        )
