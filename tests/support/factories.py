"""Valid, obviously synthetic domain records for the tests (no PHI: names are placeholders)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from pydantic import BaseModel, ValidationError

from carebridge.domain import (
    Addendum,
    Address,
    Adjustment,
    AgingBuckets,
    Allergen,
    Allergy,
    AllergyId,
    Appointment,
    AppointmentId,
    AppointmentStatus,
    Balance,
    Benefit,
    Charge,
    ChargeId,
    Claim,
    ClaimId,
    ClaimLine,
    ClaimStatus,
    ClaimStatusChange,
    ClinicalNote,
    Coverage,
    CoverageId,
    Document,
    DocumentId,
    EligibilityCheck,
    EligibilityCheckId,
    EligibilityRequest,
    Encounter,
    EncounterDiagnosis,
    EncounterId,
    EncounterProcedure,
    Immunization,
    ImmunizationId,
    Insured,
    LabResult,
    LabResultId,
    LedgerEntry,
    LedgerEntryId,
    Location,
    LocationId,
    Medication,
    MedicationId,
    Patient,
    PatientId,
    PatientIdentifier,
    Payer,
    PayerId,
    PayerPlan,
    Payment,
    PaymentId,
    PersonName,
    Phone,
    Problem,
    ProblemId,
    Provenance,
    Provider,
    ProviderId,
    Remittance,
    RemittanceId,
    RemittanceLine,
    Resource,
    ResourceId,
    Slot,
    Statement,
    StatementId,
    StatementLine,
    VisitReason,
    VisitReasonId,
    VitalsId,
    VitalSigns,
)

M = TypeVar("M", bound=BaseModel)

PROPERTY = settings(derandomize=True, database=None, deadline=None)
"""Hypothesis settings for this package: the same examples on every run, nothing on disk."""

T0 = datetime(2025, 7, 10, 18, 0, tzinfo=UTC)
DAY = date(2025, 7, 10)
NPI_A = "1234567893"  # the CMS worked example

PATIENT = PatientId.new("test:patient:1")
PAYER = PayerId.new("test:payer:1")
COVERAGE = CoverageId.new("test:coverage:1")
PROVIDER = ProviderId.new("test:provider:1")
LOCATION = LocationId.new("test:location:1")
RESOURCE = ResourceId.new("test:resource:1")
VISIT_REASON = VisitReasonId.new("test:visit-reason:1")
APPOINTMENT = AppointmentId.new("test:appointment:1")
ENCOUNTER = EncounterId.new("test:encounter:1")
CLAIM = ClaimId.new("test:claim:1")
PAYMENT = PaymentId.new("test:payment:1")
CHARGE_1 = ChargeId.new("test:charge:1")
CHARGE_2 = ChargeId.new("test:charge:2")


def source(surface: str = "v2", upstream_id: str = "1") -> Provenance:
    return Provenance.model_validate(
        {
            "surface": surface,
            "endpoint": "GET /v2/test",
            "upstream_id": upstream_id,
            "fetched_at": T0,
        }
    )


SOURCES = (source(),)


def changed(model: M, **changes: Any) -> M:
    """``model`` with ``changes``, validated again (``model_copy`` would skip validation)."""
    return type(model).model_validate({**model.model_dump(), **changes})


def assert_round_trips(model: BaseModel) -> None:
    """JSON out and back in gives an equal model of the same type."""
    again = type(model).model_validate_json(model.model_dump_json())
    assert again == model
    assert again.model_dump_json() == model.model_dump_json()


def assert_invalid(model: M, field: str, **changes: Any) -> ValidationError:
    """Changing ``model`` by ``changes`` fails validation, with ``field`` named in the error."""
    with pytest.raises(ValidationError) as caught:
        changed(model, **changes)
    error = caught.value
    named = [
        e
        for e in error.errors()
        if field in (str(part) for part in e["loc"]) or str(e["msg"]).find(f"{field}:") >= 0
    ]
    assert named, f"no error names {field!r}: {error.errors()}"
    return error


# --- builders ------------------------------------------------------------------------------------


def name() -> PersonName:
    return PersonName(first="Testy", last="Placeholder")


def address() -> Address:
    return Address.model_validate(
        {
            "line1": "1 Example Way",
            "city": "Sampletown",
            "state": "CO",
            "zip_code": "80540",
            "is_primary": True,
        }
    )


def phone() -> Phone:
    return Phone.model_validate({"number": "303-555-0100", "kind": "mobile", "is_primary": True})


def payer() -> Payer:
    return Payer.model_validate(
        {
            "sources": SOURCES,
            "id": PAYER,
            "name": "Example Health Plan",
            "payer_code": "EX123",
            "kind": "commercial",
            "plans": [PayerPlan(name="Example PPO", policy_type="ppo")],
        }
    )


def coverage() -> Coverage:
    return Coverage.model_validate(
        {
            "sources": SOURCES,
            "id": COVERAGE,
            "patient_id": PATIENT,
            "payer_id": PAYER,
            "payer_name": "Example Health Plan",
            "plan_name": "Example PPO",
            "policy_type": "ppo",
            "priority": 1,
            "member_number": "TEST000001",
            "effective_from": date(2025, 1, 1),
            "copay": "25",
            "deductible": "500.00",
            "coinsurance_percent": Decimal(20),
            "out_of_pocket_max": 3000,
            "insured": Insured(relationship="self"),
        }
    )


def balance(responsible: str = "patient") -> Balance:
    return Balance.model_validate(
        {
            "sources": SOURCES,
            "patient_id": PATIENT,
            "responsible": responsible,
            "aging": AgingBuckets.model_validate({"current": "40.00", "over_30": "10.00"}),
            "unbilled": "5.00",
            "unapplied_credit": "15.00",
            "total": "40.00",
            "as_of": DAY,
        }
    )


def patient() -> Patient:
    return Patient.model_validate(
        {
            "sources": (source("v2", "guid-1"), source("fhir", "fhir-1")),
            "id": PATIENT,
            "name": name(),
            "birth_date": date(1980, 1, 1),
            "gender": "female",
            "ssn": "900-00-0001",
            "email": "testy.placeholder@sandbox.example",
            "addresses": [address()],
            "phones": [phone()],
            "identifiers": [
                PatientIdentifier(kind="chart_number", value="TC000001"),
                PatientIdentifier(kind="account_number", value="A1000001"),
            ],
            "marital_status": "never_married",
            "language": "eng",
            "race": "2106-3",
            "ethnicity": "not_hispanic_or_latino",
            "primary_location_id": LOCATION,
            "primary_provider_id": PROVIDER,
            "coverages": [coverage()],
            "balances": [balance("patient"), balance("insurance")],
            "created_at": T0 - timedelta(days=30),
            "updated_at": T0,
        }
    )


def provider() -> Provider:
    return Provider.model_validate(
        {
            "sources": SOURCES,
            "id": PROVIDER,
            "npi": NPI_A,
            "name": PersonName(first="Doc", last="Example"),
            "credentials": "MD",
            "taxonomy": "207Q00000X",
            "specialty_name": "Family Medicine",
        }
    )


def location() -> Location:
    return Location.model_validate(
        {
            "sources": SOURCES,
            "id": LOCATION,
            "name": "Example Clinic",
            "place_of_service": "11",
            "time_zone": "America/Denver",
            "address": address(),
            "phones": [phone()],
        }
    )


def resource() -> Resource:
    return Resource.model_validate(
        {
            "sources": SOURCES,
            "id": RESOURCE,
            "name": "Exam Room 1",
            "default_provider_id": PROVIDER,
            "visit_reason_ids": [VISIT_REASON],
        }
    )


def visit_reason() -> VisitReason:
    return VisitReason.model_validate(
        {
            "sources": SOURCES,
            "id": VISIT_REASON,
            "name": "Follow-up",
            "duration_minutes": 30,
            "procedure_code": "99213",
        }
    )


def slot() -> Slot:
    return Slot.model_validate(
        {
            "sources": SOURCES,
            "start": T0,
            "end": T0 + timedelta(minutes=30),
            "location_id": LOCATION,
            "resource_id": RESOURCE,
            "visit_reason_id": VISIT_REASON,
        }
    )


def appointment() -> Appointment:
    return Appointment.model_validate(
        {
            "sources": SOURCES,
            "id": APPOINTMENT,
            "patient_id": PATIENT,
            "provider_id": PROVIDER,
            "location_id": LOCATION,
            "resource_id": RESOURCE,
            "visit_reason_id": VISIT_REASON,
            "status": AppointmentStatus.CHECKED_OUT,
            "upstream_status": {"code": "O", "name": "Checked Out"},
            "start": "2025-07-10T12:00:00-06:00",
            "end": "2025-07-10T12:30:00-06:00",
            "is_confirmed": True,
            "confirmations": [{"method": "text_message", "outcome": "confirmed"}],
            "arrived_at": T0 - timedelta(minutes=5),
            "departed_at": T0 + timedelta(minutes=40),
            "encounter_id": ENCOUNTER,
            "created_at": T0 - timedelta(days=7),
            "updated_at": T0 + timedelta(minutes=40),
        }
    )


def vitals() -> VitalSigns:
    return VitalSigns.model_validate(
        {
            "sources": SOURCES,
            "id": VitalsId.new("test:vitals:1"),
            "patient_id": PATIENT,
            "encounter_id": ENCOUNTER,
            "taken_at": T0 + timedelta(minutes=2),
            "height_cm": 170.2,
            "weight_kg": 70.5,
            "bmi": 24.3,
            "systolic_mmhg": 120,
            "diastolic_mmhg": 80,
            "heart_rate_bpm": 70,
            "respiratory_rate": 14,
            "temperature_c": 36.8,
            "spo2_percent": 98,
        }
    )


def encounter() -> Encounter:
    return Encounter.model_validate(
        {
            "sources": (source("portal", "12"),),
            "id": ENCOUNTER,
            "patient_id": PATIENT,
            "appointment_id": APPOINTMENT,
            "provider_id": PROVIDER,
            "location_id": LOCATION,
            "service_date": DAY,
            "start": T0,
            "end": T0 + timedelta(minutes=30),
            "status": "signed",
            "note": ClinicalNote(subjective="synthetic", plan="synthetic"),
            "diagnoses": [
                EncounterDiagnosis(rank=1, code="I10"),
                EncounterDiagnosis(rank=2, code="e119"),
            ],
            "procedures": [EncounterProcedure(code="99213")],
            "vitals": [vitals()],
            "addenda": [
                Addendum(author_id=PROVIDER, text="synthetic", created_at=T0 + timedelta(hours=2))
            ],
            "signed_at": T0 + timedelta(hours=1),
            "signed_by": PROVIDER,
        }
    )


def problem() -> Problem:
    return Problem.model_validate(
        {
            "sources": SOURCES,
            "id": ProblemId.new("test:problem:1"),
            "patient_id": PATIENT,
            "code": "I10",
            "description": "Essential (primary) hypertension",
            "status": "resolved",
            "onset_date": date(2020, 1, 1),
            "resolved_date": date(2024, 1, 1),
        }
    )


def medication() -> Medication:
    return Medication.model_validate(
        {
            "sources": SOURCES,
            "id": MedicationId.new("test:medication:1"),
            "patient_id": PATIENT,
            "rxnorm_code": "314076",
            "name": "lisinopril 10 MG Oral Tablet",
            "sig": "1 tablet by mouth daily",
            "status": "stopped",
            "start_date": date(2020, 1, 1),
            "end_date": date(2024, 1, 1),
            "prescriber_id": PROVIDER,
        }
    )


def allergy() -> Allergy:
    return Allergy.model_validate(
        {
            "sources": SOURCES,
            "id": AllergyId.new("test:allergy:1"),
            "patient_id": PATIENT,
            "allergen": Allergen(system="rxnorm", code="7980", name="penicillin G"),
            "category": "medication",
            "reaction": "hives",
            "severity": "moderate",
            "status": "active",
            "recorded_date": DAY,
        }
    )


def lab_result() -> LabResult:
    return LabResult.model_validate(
        {
            "sources": SOURCES,
            "id": LabResultId.new("test:lab:1"),
            "patient_id": PATIENT,
            "encounter_id": ENCOUNTER,
            "order_code": "83036",
            "loinc_code": "4548-4",
            "name": "Hemoglobin A1c",
            "value_number": 6.1,
            "unit": "%",
            "reference_low": 4.0,
            "reference_high": 5.6,
            "interpretation": "H",
            "status": "final",
            "collected_at": T0,
            "resulted_at": T0 + timedelta(days=1),
        }
    )


def immunization() -> Immunization:
    return Immunization.model_validate(
        {
            "sources": SOURCES,
            "id": ImmunizationId.new("test:imm:1"),
            "patient_id": PATIENT,
            "cvx_code": "141",
            "cpt_code": "90686",
            "name": "Influenza, seasonal, injectable",
            "lot_number": "TESTLOT1",
            "administered_on": DAY,
            "site": "LA",
            "route": "IM",
            "status": "completed",
        }
    )


def document() -> Document:
    return Document.model_validate(
        {
            "sources": SOURCES,
            "id": DocumentId.new("test:doc:1"),
            "patient_id": PATIENT,
            "name": "progress-note.pdf",
            "source_name": "Progress note",
            "type_loinc": "11506-3",
            "document_date": DAY,
            "content_type": "application/pdf",
            "size_bytes": 2048,
        }
    )


def charge() -> Charge:
    return Charge.model_validate(
        {
            "sources": SOURCES,
            "id": CHARGE_1,
            "patient_id": PATIENT,
            "service_date": DAY,
            "posting_date": DAY,
            "procedure_code": "99213",
            "modifiers": ["25"],
            "diagnosis_codes": ["I10"],
            "amount": "150.00",
            "balance": "25.00",
            "responsible": "patient",
            "billed": True,
            "encounter_id": ENCOUNTER,
            "provider_id": PROVIDER,
        }
    )


def ledger_entry() -> LedgerEntry:
    return LedgerEntry.model_validate(
        {
            "sources": SOURCES,
            "id": LedgerEntryId.new("test:txn:1"),
            "patient_id": PATIENT,
            "kind": "patient_payment",
            "posting_date": DAY,
            "amount": "-25.00",
            "charge_id": CHARGE_1,
        }
    )


def claim() -> Claim:
    history = [
        ("draft", None, T0),
        ("scrubbed", None, T0),
        ("submitted", "A1", T0 + timedelta(days=1)),
        ("accepted", "A2", T0 + timedelta(days=2)),
        ("paid", "F1", T0 + timedelta(days=14)),
    ]
    return Claim.model_validate(
        {
            "sources": (source("portal", "MG-000001"),),
            "id": CLAIM,
            "claim_number": "MG-000001",
            "patient_id": PATIENT,
            "payer_id": PAYER,
            "coverage_id": COVERAGE,
            "encounter_id": ENCOUNTER,
            "provider_id": PROVIDER,
            "location_id": LOCATION,
            "status": ClaimStatus.PAID,
            "status_history": [
                ClaimStatusChange.model_validate({"status": s, "category_code": c, "at": at})
                for s, c, at in history
            ],
            "service_from": DAY,
            "service_to": DAY,
            "diagnoses": ["I10", "E11.9"],
            "lines": [
                ClaimLine.model_validate(
                    {
                        "line_number": 1,
                        "charge_id": CHARGE_1,
                        "procedure_code": "99213",
                        "service_date": DAY,
                        "billed": "150.00",
                        "diagnosis_pointers": [1, 2],
                    }
                ),
                ClaimLine.model_validate(
                    {
                        "line_number": 2,
                        "charge_id": CHARGE_2,
                        "procedure_code": "83036",
                        "service_date": DAY,
                        "billed": "50.00",
                        "diagnosis_pointers": [2],
                    }
                ),
            ],
            "billed": "200.00",
            "paid": "120.00",
            "patient_responsibility": "25.00",
            "payer_control_number": "PCN0001",
            "submitted_at": T0 + timedelta(days=1),
            "adjudicated_at": T0 + timedelta(days=14),
        }
    )


def payment() -> Payment:
    return Payment.model_validate(
        {
            "sources": SOURCES,
            "id": PAYMENT,
            "kind": "era",
            "payer_id": PAYER,
            "trace_number": "EFT0000001",
            "method": "ach",
            "payment_date": DAY + timedelta(days=14),
            "amount": "120.00",
        }
    )


def remittance() -> Remittance:
    line1 = RemittanceLine.model_validate(
        {
            "claim_line_number": 1,
            "procedure_code": "99213",
            "billed": "150.00",
            "allowed": "105.00",
            "paid": "80.00",
            "adjustments": [
                Adjustment(group="CO", carc="45", amount=Decimal("45.00")),
                Adjustment(group="PR", carc="3", amount=Decimal("25.00")),
            ],
        }
    )
    line2 = RemittanceLine.model_validate(
        {
            "claim_line_number": 2,
            "billed": "50.00",
            "allowed": "40.00",
            "paid": "40.00",
            "adjustments": [Adjustment(group="CO", carc="45", rarc="N130", amount=Decimal(10))],
        }
    )
    return Remittance.model_validate(
        {
            "sources": SOURCES,
            "id": RemittanceId.new("test:rem:1"),
            "payment_id": PAYMENT,
            "claim_id": CLAIM,
            "claim_status_code": "1",
            "billed": "200.00",
            "paid": "120.00",
            "patient_responsibility": "25.00",
            "lines": [line1, line2],
            "received_at": T0 + timedelta(days=14),
        }
    )


def statement() -> Statement:
    return Statement.model_validate(
        {
            "sources": SOURCES,
            "id": StatementId.new("test:stm:1"),
            "statement_number": "S-000001",
            "patient_id": PATIENT,
            "statement_date": DAY + timedelta(days=20),
            "due_date": DAY + timedelta(days=50),
            "balance": "25.00",
            "aging": {"current": "25.00"},
            "lines": [
                StatementLine.model_validate(
                    {
                        "charge_id": CHARGE_1,
                        "service_date": DAY,
                        "procedure_code": "99213",
                        "amount": "150.00",
                        "balance": "25.00",
                    }
                )
            ],
            "status": "sent",
        }
    )


def eligibility_check() -> EligibilityCheck:
    return EligibilityCheck.model_validate(
        {
            "sources": SOURCES,
            "id": EligibilityCheckId.new("test:elg:1"),
            "patient_id": PATIENT,
            "status": "complete",
            "request": EligibilityRequest.model_validate(
                {"service_date": DAY, "service_types": ["30", "98"], "coverage_id": COVERAGE}
            ),
            "requested_at": T0,
            "responded_at": T0 + timedelta(seconds=5),
            "coverage_status": "active",
            "payer_id": PAYER,
            "plan_type": "ppo",
            "benefits": [
                Benefit.model_validate(
                    {
                        "service_type": st,
                        "in_network": True,
                        "copay": "25.00",
                        "coinsurance": "0.20",
                        "deductible": "500.00",
                        "deductible_remaining": "125.00",
                        "out_of_pocket_max": "3000.00",
                        "out_of_pocket_remaining": "2100.00",
                    }
                )
                for st in ("30", "98")
            ],
        }
    )
