"""The chart: encounters (with notes, diagnoses, procedures, vitals and signing), problems,
medications, allergies, lab results, immunizations and documents.

Clinical text (notes, addenda, reactions) is PHI and is left out of ``repr``.
"""

from __future__ import annotations

from datetime import date

from pydantic import Field, TypeAdapter, model_validator

from carebridge.domain.provenance import DomainModel, NonEmptyStr, Record, check_timestamps
from carebridge.domain.values import (
    ICD10CM,
    LOINC,
    AllergyId,
    AppointmentId,
    CVXCode,
    DocumentId,
    EncounterId,
    ImmunizationId,
    Instant,
    LabResultId,
    LocationId,
    MedicationId,
    MimeType,
    Modifier,
    PatientId,
    ProblemId,
    ProcedureCode,
    ProviderId,
    RxNormCode,
    SnomedCode,
    VitalsId,
)
from carebridge.domain.vocab import (
    AllergenSystem,
    AllergyCategory,
    AllergySeverity,
    AllergyStatus,
    EncounterStatus,
    EncounterType,
    ImmunizationRoute,
    ImmunizationSite,
    ImmunizationStatus,
    LabInterpretation,
    LabResultStatus,
    MedicationStatus,
    ProblemStatus,
)

_RXNORM: TypeAdapter[str] = TypeAdapter(RxNormCode)
_SNOMED: TypeAdapter[str] = TypeAdapter(SnomedCode)

# --- encounters ----------------------------------------------------------------------------------


class ClinicalNote(DomainModel):
    """A SOAP note."""

    subjective: str = Field(default="", repr=False)
    objective: str = Field(default="", repr=False)
    assessment: str = Field(default="", repr=False)
    plan: str = Field(default="", repr=False)


class EncounterDiagnosis(DomainModel):
    """A diagnosis addressed at the visit; ``rank`` 1 is the primary."""

    rank: int = Field(ge=1)
    code: ICD10CM
    description: str = ""


class EncounterProcedure(DomainModel):
    """A procedure performed at the visit."""

    code: ProcedureCode
    units: int = Field(default=1, ge=1)
    modifiers: tuple[Modifier, ...] = Field(default=(), max_length=4)
    description: str = ""


class VitalSigns(Record):
    """One set of vital signs taken at an encounter."""

    id: VitalsId
    patient_id: PatientId
    encounter_id: EncounterId
    taken_at: Instant
    height_cm: float | None = Field(default=None, gt=0, le=300)
    weight_kg: float | None = Field(default=None, gt=0, le=700)
    bmi: float | None = Field(default=None, gt=0, le=200)
    systolic_mmhg: int | None = Field(default=None, gt=0, le=350)
    diastolic_mmhg: int | None = Field(default=None, gt=0, le=250)
    heart_rate_bpm: int | None = Field(default=None, gt=0, le=350)
    respiratory_rate: int | None = Field(default=None, gt=0, le=150)
    temperature_c: float | None = Field(default=None, ge=20, le=46)
    spo2_percent: int | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> VitalSigns:
        if (self.systolic_mmhg is None) != (self.diastolic_mmhg is None):
            raise ValueError("diastolic_mmhg: blood pressure has both numbers or neither")
        if (
            self.systolic_mmhg is not None
            and self.diastolic_mmhg is not None
            and self.systolic_mmhg <= self.diastolic_mmhg
        ):
            raise ValueError("systolic_mmhg: must be above diastolic_mmhg")
        return self


class Addendum(DomainModel):
    """Text added to a signed encounter."""

    author_id: ProviderId
    text: NonEmptyStr = Field(repr=False)
    created_at: Instant


class Encounter(Record):
    """A clinical encounter: usually the visit of an appointment, documented and signed."""

    id: EncounterId
    patient_id: PatientId
    appointment_id: AppointmentId | None = None
    provider_id: ProviderId
    location_id: LocationId | None = None
    type: EncounterType = "office_visit"
    service_date: date
    """The practice-local date of service."""
    start: Instant
    end: Instant | None = None
    status: EncounterStatus
    chief_complaint: str = Field(default="", repr=False)
    note: ClinicalNote = ClinicalNote()
    diagnoses: tuple[EncounterDiagnosis, ...] = ()
    procedures: tuple[EncounterProcedure, ...] = ()
    vitals: tuple[VitalSigns, ...] = ()
    addenda: tuple[Addendum, ...] = ()
    signed_at: Instant | None = None
    signed_by: ProviderId | None = None
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Encounter:
        if self.end is not None and self.end < self.start:
            raise ValueError("end: must not be before start")
        if self.signed_at is not None and self.signed_by is None:
            raise ValueError("signed_by: a signed encounter names who signed it")
        if self.signed_by is not None and self.signed_at is None:
            raise ValueError("signed_at: a signer needs a signing time")
        if (self.status == "signed") != (self.signed_at is not None):
            raise ValueError("status: 'signed' exactly when signed_at is set")
        if self.signed_at is not None and self.signed_at < self.start:
            raise ValueError("signed_at: must not be before start")
        if self.addenda:
            if self.signed_at is None:
                raise ValueError("addenda: only a signed encounter takes addenda")
            if any(a.created_at < self.signed_at for a in self.addenda):
                raise ValueError("addenda: each is written after signing")
        ranks = [d.rank for d in self.diagnoses]
        if sorted(ranks) != list(range(1, len(ranks) + 1)):
            raise ValueError("diagnoses: ranks run 1, 2, 3 ... without gaps or repeats")
        if len({d.code for d in self.diagnoses}) != len(self.diagnoses):
            raise ValueError("diagnoses: a code is listed once")
        for vitals in self.vitals:
            if vitals.encounter_id != self.id or vitals.patient_id != self.patient_id:
                raise ValueError("vitals: each belongs to this encounter and patient")
        check_timestamps(self.created_at, self.updated_at)
        return self

    @property
    def primary_diagnosis(self) -> EncounterDiagnosis | None:
        """The rank-1 diagnosis, if any."""
        return next((d for d in self.diagnoses if d.rank == 1), None)


# --- chart lists ---------------------------------------------------------------------------------


class Problem(Record):
    """An entry of the problem list."""

    id: ProblemId
    patient_id: PatientId
    code: ICD10CM
    description: str = ""
    status: ProblemStatus
    onset_date: date | None = None
    resolved_date: date | None = None
    encounter_id: EncounterId | None = None
    """Where it was first recorded."""
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Problem:
        if self.resolved_date is not None and self.status != "resolved":
            raise ValueError("resolved_date: only a resolved problem has one")
        if self.onset_date and self.resolved_date and self.resolved_date < self.onset_date:
            raise ValueError("resolved_date: must not be before onset_date")
        check_timestamps(self.created_at, self.updated_at)
        return self


class Medication(Record):
    """A medication on the patient's list."""

    id: MedicationId
    patient_id: PatientId
    rxnorm_code: RxNormCode
    name: NonEmptyStr
    sig: str = ""
    """The dosing instructions."""
    status: MedicationStatus
    start_date: date
    end_date: date | None = None
    prescriber_id: ProviderId | None = None
    encounter_id: EncounterId | None = None
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Medication:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date: must not be before start_date")
        check_timestamps(self.created_at, self.updated_at)
        return self


class Allergen(DomainModel):
    """What the patient reacts to: RxNorm for drugs, SNOMED CT otherwise."""

    system: AllergenSystem
    code: NonEmptyStr
    name: NonEmptyStr

    @model_validator(mode="after")
    def _code_fits_system(self) -> Allergen:
        adapter = _RXNORM if self.system == "rxnorm" else _SNOMED
        try:
            adapter.validate_python(self.code)
        except ValueError:
            raise ValueError(f"code: not a valid {self.system} code") from None
        return self


class Allergy(Record):
    """An allergy or intolerance."""

    id: AllergyId
    patient_id: PatientId
    allergen: Allergen
    category: AllergyCategory
    reaction: str = Field(default="", repr=False)
    severity: AllergySeverity | None = None
    status: AllergyStatus
    recorded_date: date
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Allergy:
        if self.category == "medication" and self.allergen.system != "rxnorm":
            raise ValueError("allergen: a medication allergen is coded in RxNorm")
        check_timestamps(self.created_at, self.updated_at)
        return self


class LabResult(Record):
    """One observation of a lab test."""

    id: LabResultId
    patient_id: PatientId
    encounter_id: EncounterId | None = None
    order_code: ProcedureCode
    """The CPT of the billed test."""
    loinc_code: LOINC
    name: NonEmptyStr
    value_number: float | None = None
    value_text: str | None = Field(default=None, repr=False)
    unit: str | None = None
    reference_low: float | None = None
    reference_high: float | None = None
    interpretation: LabInterpretation | None = None
    status: LabResultStatus
    collected_at: Instant
    resulted_at: Instant | None = None
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> LabResult:
        if (
            self.reference_low is not None
            and self.reference_high is not None
            and self.reference_high < self.reference_low
        ):
            raise ValueError("reference_high: must not be below reference_low")
        if self.resulted_at is not None and self.resulted_at < self.collected_at:
            raise ValueError("resulted_at: must not be before collected_at")
        if self.status in ("final", "amended", "corrected") and (
            self.value_number is None and self.value_text is None
        ):
            raise ValueError("value_number: a final result has a value (number or text)")
        if self.unit is not None and self.value_number is None:
            raise ValueError("unit: only a numeric value has a unit")
        check_timestamps(self.created_at, self.updated_at)
        return self


class Immunization(Record):
    """A vaccine given (or recorded as not given)."""

    id: ImmunizationId
    patient_id: PatientId
    encounter_id: EncounterId | None = None
    cvx_code: CVXCode
    cpt_code: ProcedureCode | None = None
    name: NonEmptyStr
    lot_number: str = ""
    administered_on: date
    site: ImmunizationSite | None = None
    route: ImmunizationRoute | None = None
    status: ImmunizationStatus
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Immunization:
        check_timestamps(self.created_at, self.updated_at)
        return self


class Document(Record):
    """A document in the patient's chart (metadata; the content is fetched separately)."""

    id: DocumentId
    patient_id: PatientId
    name: NonEmptyStr = Field(repr=False)
    description: str = Field(default="", repr=False)
    source_name: str = ""
    """CareCloud's ``document_source_name`` (Progress note, Consult note ...)."""
    type_loinc: LOINC | None = None
    """The LOINC document type the source name maps to (11506-3 progress note ...)."""
    document_date: date
    content_type: MimeType
    size_bytes: int = Field(ge=0)
    active: bool = True
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Document:
        check_timestamps(self.created_at, self.updated_at)
        return self
