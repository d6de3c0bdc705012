"""The tools' typed, compact outputs: each keeps only the fields its tool needs (PHI minimized:
no addresses, phones, e-mails, member or policy numbers, notes or free text).

Each model reads a record as the services answer it (its JSON) and ignores every other field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator


class Compact(BaseModel):
    """An output that keeps its declared fields of a record and drops the rest."""

    model_config = ConfigDict(extra="ignore")


def _display_name(data: Any) -> Any:
    """``name`` as "Last, First" (the record keeps first, last, middle...)."""
    if isinstance(data, dict) and isinstance(data.get("name"), dict):
        name = data["name"]
        data = {**data, "name": f"{name.get('last', '')}, {name.get('first', '')}"}
    return data


class PatientBrief(Compact):
    """A patient as a search finds them."""

    id: str
    name: str
    birth_date: str | None = None
    active: bool = True

    display_name = model_validator(mode="before")(_display_name)


class PatientList(BaseModel):
    patients: list[PatientBrief]
    next_cursor: str | None = None


class CoverageBrief(Compact):
    payer_id: str
    payer_name: str = ""
    plan_name: str = ""
    policy_type: str | None = None
    priority: int


class BalanceBrief(Compact):
    responsible: str
    total: str
    unbilled: str = "0.00"


class PatientSummary(Compact):
    """Demographics (name, birth date, sex), coverages and balances."""

    id: str
    name: str
    birth_date: str | None = None
    gender: str | None = None
    active: bool = True
    coverages: list[CoverageBrief] = []
    balances: list[BalanceBrief] = []

    display_name = model_validator(mode="before")(_display_name)


class SlotOut(Compact):
    start: str
    end: str
    location_id: str
    resource_id: str
    visit_reason_id: str
    provider_id: str | None = None


class Slots(BaseModel):
    slots: list[SlotOut]


class AppointmentOut(Compact):
    id: str
    patient_id: str
    status: str
    start: str
    end: str
    provider_id: str | None = None
    location_id: str | None = None
    resource_id: str | None = None
    visit_reason_id: str | None = None


class AppointmentList(BaseModel):
    appointments: list[AppointmentOut]
    next_cursor: str | None = None


class ScheduleOut(BaseModel):
    """A location's day: counted from local midnight in ``time_zone`` (the location's; UTC
    when the upstream names none), its bounds as UTC instants, and its appointments."""

    location_id: str
    day: str
    time_zone: str
    starts_at: str
    ends_at: str
    appointments: list[AppointmentOut]


class CodeOut(Compact):
    code: str


class AddendumBrief(Compact):
    """An addendum's author and time (its text is read in the chart, not here)."""

    author_id: str
    created_at: str


class EncounterBrief(Compact):
    id: str
    service_date: str
    status: str
    provider_id: str | None = None
    diagnoses: list[CodeOut] = []
    procedures: list[CodeOut] = []
    addenda: list[AddendumBrief] = []


class LabBrief(Compact):
    name: str
    loinc_code: str
    value_number: float | None = None
    unit: str | None = None
    interpretation: str | None = None
    collected_at: str


class ImmunizationBrief(Compact):
    name: str
    cvx_code: str
    administered_on: str
    status: str


class ProblemBrief(Compact):
    """A problem list entry: its ICD-10-CM code and status."""

    code: str
    description: str = ""
    status: str
    onset_date: str | None = None
    resolved_date: str | None = None


class MedicationBrief(Compact):
    """A medication list entry: the drug (RxNorm) and status; no dosing text."""

    name: str
    rxnorm_code: str
    status: str
    start_date: str
    end_date: str | None = None


class AllergyBrief(Compact):
    """An allergy: the allergen, its category, severity and status; no reaction text."""

    allergen: str
    allergen_code: str
    allergen_system: str
    category: str
    severity: str | None = None
    status: str

    @model_validator(mode="before")
    @classmethod
    def _allergen(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("allergen"), dict):
            allergen = data["allergen"]
            data = {
                **data,
                "allergen": allergen.get("name", ""),
                "allergen_code": allergen.get("code", ""),
                "allergen_system": allergen.get("system", ""),
            }
        return data


class ChartOut(BaseModel):
    """A chart summary: the current problems, medications and allergies (current entries
    first), recent encounters (with their diagnoses and procedures), labs and immunizations.
    Free text (notes, dosing instructions, reactions, addenda) is left out."""

    patient_id: str
    problems: list[ProblemBrief] = []
    medications: list[MedicationBrief] = []
    allergies: list[AllergyBrief] = []
    encounters: list[EncounterBrief]
    labs: list[LabBrief]
    immunizations: list[ImmunizationBrief]


class BenefitOut(Compact):
    service_type: str
    coverage_status: str
    in_network: bool | None = None
    copay: str | None = None
    coinsurance: str | None = None
    deductible_remaining: str | None = None
    authorization_required: bool | None = None


class EligibilityOut(Compact):
    id: str
    patient_id: str
    status: str
    coverage_status: str | None = None
    payer_name: str = ""
    plan_type: str | None = None
    benefits: list[BenefitOut] = []


class StatusStep(Compact):
    status: str
    at: str
    category_code: str | None = None


class ClaimOut(Compact):
    id: str
    claim_number: str
    patient_id: str
    payer_id: str
    status: str
    billed: str | None = None
    status_history: list[StatusStep] = []


class ClaimList(BaseModel):
    claims: list[ClaimOut]


class StatementOut(Compact):
    id: str
    statement_number: str
    statement_date: str
    due_date: str
    balance: str
    status: str


class StatementsOut(BaseModel):
    patient_id: str
    statements: list[StatementOut]
    balances: list[BalanceBrief]


class EventOut(Compact):
    seq: int
    type: str
    entity_id: str | None = None
    patient_id: str | None = None
    occurred_at: str | None = None
    redacted: bool = False


class EventList(BaseModel):
    events: list[EventOut]
    next_after: int | None = None


class PracticeItem(Compact):
    id: str
    name: str | None = None
    npi: str | None = None
    duration_minutes: int | None = None
    visit_reason_ids: list[str] = []
    active: bool = True

    display_name = model_validator(mode="before")(_display_name)


class PracticeList(BaseModel):
    kind: str
    items: list[PracticeItem]


class Check(BaseModel):
    """What a preview checked: ``ok`` and why."""

    name: Literal["availability", "appointment_state", "charges", "patient", "encounter_state"]
    ok: bool
    detail: str


class WriteOut(BaseModel):
    """A write tool's answer. Without a confirmation: ``stage`` ``preview``, with what would
    change, the upstream effects, the check, and the confirmation token to call again with
    (exactly the same arguments, before ``expires_at``). With one: ``stage`` ``done``, the
    record as read back and the read-back's verdict (``confirmed``, ``diverged``, ``pending``)."""

    stage: Literal["preview", "done"]
    operation: str
    would_change: dict[str, Any] | None = None
    upstream_effects: list[str] = []
    checks: list[Check] = []
    confirmation_token: str | None = None
    token_id: str | None = None
    expires_at: str | None = None
    needs_person_approval: bool = False
    record: dict[str, Any] | None = None
    confirmation: str | None = None
    diverged: list[str] = []
    ledger_id: int | None = None
    replayed: bool = False
