"""The tenant's charts: code tables and the rows a visit or a patient's history leaves in them.

The generator (history) and the activity clock (new visits) share these builders, so a chart
looks the same whichever wrote it. Builders take an ``add(sql, row)`` sink: the generator's
batcher, or a list the clock writes in its own transaction.

Code sources (curated 2026-11-25): LOINC (loinc.org, free to use) for labs and vital signs;
CVX (CDC, public domain) with the CPT vaccine product codes they map to; RxNorm (NLM, public
domain) clinical drug and ingredient codes; SNOMED CT substance codes for non-drug allergens.
Reference ranges are typical adult laboratory ranges, for plausibility only.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from carecloud_sandbox import codes

Add = Callable[[str, tuple[Any, ...]], None]


def _insert(table: str, columns: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    return f"INSERT INTO {table}({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"


SQL_ENCOUNTER = _insert(
    "encounters",
    "id, practice_id, patient_id, appointment_id, provider_id, location_id, encounter_type, "
    "encounter_date, start_time, end_time, status, chief_complaint, note_json, diagnoses_json, "
    "procedures_json, signed_at, signed_by, created_at, updated_at",
)
SQL_VITALS = _insert(
    "vitals",
    "id, practice_id, patient_id, encounter_id, taken_at, height_cm, weight_kg, bmi, "
    "systolic_mmhg, diastolic_mmhg, heart_rate_bpm, respiratory_rate, temperature_c, spo2_pct, "
    "created_at, updated_at",
)
SQL_LAB = _insert(
    "lab_results",
    "practice_id, patient_id, encounter_id, order_code, loinc_code, name, value_num, value_text, "
    "unit, reference_low, reference_high, interpretation, status, collected_at, resulted_at, "
    "created_at, updated_at",
)
SQL_IMMUNIZATION = _insert(
    "immunizations",
    "practice_id, patient_id, encounter_id, cvx_code, cpt_code, name, lot_number, "
    "administered_on, site, route, status, created_at, updated_at",
)
SQL_PROBLEM = _insert(
    "problems",
    "practice_id, patient_id, icd10_code, description, status, onset_date, resolved_date, "
    "encounter_id, created_at, updated_at",
)
SQL_MEDICATION = _insert(
    "medications",
    "practice_id, patient_id, rxnorm_code, name, sig, status, start_date, end_date, "
    "prescriber_id, encounter_id, created_at, updated_at",
)
SQL_ALLERGY = _insert(
    "allergies",
    "practice_id, patient_id, allergen_code, allergen_system, allergen_name, category, reaction, "
    "severity, status, recorded_date, created_at, updated_at",
)


@dataclass(frozen=True)
class Vaccine:
    """A vaccine product: its CVX code, the CPT product code billed, and how it is given."""

    cvx: str
    name: str
    route: str  # HL7 table 0162: IM intramuscular, SC subcutaneous


VACCINES: dict[str, Vaccine] = {
    "90700": Vaccine("20", "DTaP", "IM"),
    "90707": Vaccine("03", "MMR", "SC"),
    "90715": Vaccine("115", "Tdap", "IM"),
    "90686": Vaccine("150", "Influenza, injectable, quadrivalent, preservative free", "IM"),
}


@dataclass(frozen=True)
class LabTest:
    """One result of an ordered test: LOINC, unit and the normal range (or a text result)."""

    loinc: str
    name: str
    unit: str | None
    low: float | None
    high: float | None
    text_results: tuple[str, ...] = ()


LABS: dict[str, tuple[LabTest, ...]] = {
    "83036": (LabTest("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6),),
    "80061": (
        LabTest("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 125, 200),
        LabTest("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 40, 150),
        LabTest("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 40, 90),
        LabTest(
            "13457-7",
            "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
            "mg/dL",
            40,
            100,
        ),
    ),
    "80053": (
        LabTest("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 99),
        LabTest("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.3),
        LabTest("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 135, 145),
        LabTest("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1),
    ),
    "87880": (
        LabTest(
            "78012-2",
            "Streptococcus pyogenes Ag [Presence] in Throat by Rapid immunoassay",
            None,
            None,
            None,
            ("Negative", "Positive"),
        ),
    ),
    "81002": (
        LabTest(
            "5799-2",
            "Leukocyte esterase [Presence] in Urine by Test strip",
            None,
            None,
            None,
            ("Negative", "Positive"),
        ),
    ),
}


@dataclass(frozen=True)
class Drug:
    """A prescribable drug (RxNorm clinical drug) and its usual directions."""

    rxnorm: str
    name: str
    sig: str
    days: int | None = None  # a course of this many days; None = long-term


# Long-term medications for chronic conditions, and short courses for acute ones.
MEDICATIONS: dict[str, tuple[Drug, ...]] = {
    "I10": (
        Drug("314076", "lisinopril 10 MG Oral Tablet", "Take 1 tablet by mouth daily"),
        Drug("197361", "amlodipine 5 MG Oral Tablet", "Take 1 tablet by mouth daily"),
    ),
    "E78.5": (
        Drug("617310", "atorvastatin 20 MG Oral Tablet", "Take 1 tablet by mouth at bedtime"),
    ),
    "E11.9": (
        Drug(
            "861007",
            "metformin hydrochloride 500 MG Oral Tablet",
            "Take 1 tablet by mouth twice daily with meals",
        ),
    ),
    "E03.9": (
        Drug(
            "966222",
            "levothyroxine sodium 0.05 MG Oral Tablet",
            "Take 1 tablet by mouth every morning",
        ),
    ),
    "J45.909": (
        Drug(
            "745679",
            "albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
            "Inhale 2 puffs every 4 hours as needed",
        ),
    ),
    "J30.9": (
        Drug(
            "1014676", "cetirizine hydrochloride 10 MG Oral Tablet", "Take 1 tablet by mouth daily"
        ),
    ),
    "F41.1": (Drug("312940", "sertraline 50 MG Oral Tablet", "Take 1 tablet by mouth daily"),),
    "F32.A": (Drug("312940", "sertraline 50 MG Oral Tablet", "Take 1 tablet by mouth daily"),),
    "K21.9": (
        Drug(
            "198053",
            "omeprazole 20 MG Delayed Release Oral Capsule",
            "Take 1 capsule by mouth daily before breakfast",
        ),
    ),
    "I48.91": (Drug("1364445", "apixaban 5 MG Oral Tablet", "Take 1 tablet by mouth twice daily"),),
    "E55.9": (
        Drug("636676", "cholecalciferol 1000 UNT Oral Tablet", "Take 1 tablet by mouth daily"),
    ),
    "J02.0": (
        Drug(
            "308191", "amoxicillin 500 MG Oral Capsule", "Take 1 capsule by mouth twice daily", 10
        ),
    ),
    "N39.0": (
        Drug(
            "198335",
            "nitrofurantoin 100 MG Oral Capsule (monohydrate macrocrystals)",
            "Take 1 capsule by mouth twice daily",
            5,
        ),
    ),
    "H66.90": (
        Drug(
            "308191", "amoxicillin 500 MG Oral Capsule", "Take 1 capsule by mouth twice daily", 10
        ),
    ),
}


@dataclass(frozen=True)
class Allergen:
    """An allergen, coded in RxNorm (drug ingredients) or SNOMED CT (substances)."""

    code: str
    system: str
    name: str
    category: str
    reactions: tuple[str, ...]
    weight: float


ALLERGENS: tuple[Allergen, ...] = (
    Allergen("7980", "rxnorm", "Penicillin G", "medication", ("Hives", "Rash"), 0.40),
    Allergen("10831", "rxnorm", "Sulfamethoxazole", "medication", ("Rash", "Itching"), 0.15),
    Allergen("2670", "rxnorm", "Codeine", "medication", ("Nausea", "Vomiting"), 0.10),
    Allergen("1191", "rxnorm", "Aspirin", "medication", ("Wheezing", "Hives"), 0.07),
    Allergen("256349002", "snomed", "Peanut", "food", ("Anaphylaxis", "Hives", "Swelling"), 0.12),
    Allergen("111088007", "snomed", "Latex", "environment", ("Contact dermatitis",), 0.06),
    Allergen("102263004", "snomed", "Eggs", "food", ("Hives", "Vomiting"), 0.10),
)

NORMAL_EXAM = "Alert, no acute distress. Heart regular rate and rhythm. Lungs clear bilaterally."


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def vitals(rng: random.Random, age: int, gender: str, dx: list[str]) -> dict[str, Any]:
    """Plausible vital signs for a patient of this age and sex, raised by their conditions."""
    if age < 18:
        height = 50 + age * 6.2 if age < 12 else 125 + (age - 11) * (6 if gender == "M" else 3.5)
        height = min(height, 180 if gender == "M" else 168) + rng.uniform(-4, 4)
        bmi = rng.uniform(15, 21)
        systolic, diastolic = rng.randint(90, 115), rng.randint(55, 75)
        heart, resp = rng.randint(75, 120) - age * 2, rng.randint(16, 28) - age // 2
    else:
        height = (176 if gender == "M" else 163) + rng.gauss(0, 7)
        bmi = rng.uniform(21, 29) + (6 if "E66.9" in dx else 0)
        systolic = rng.randint(108, 132) + (14 if "I10" in dx else 0) + max(0, age - 50) // 3
        diastolic = rng.randint(66, 84) + (6 if "I10" in dx else 0)
        heart, resp = rng.randint(60, 92), rng.randint(12, 18)
    fever = any(code in dx for code in ("R50.9", "B34.9", "J02.0", "H66.90"))
    temperature = rng.uniform(38.0, 39.2) if fever else rng.uniform(36.4, 37.2)
    weight = bmi * (height / 100) ** 2
    return {
        "height_cm": round(height, 1),
        "weight_kg": round(weight, 1),
        "bmi": round(weight / (height / 100) ** 2, 1),
        "systolic_mmhg": systolic,
        "diastolic_mmhg": diastolic,
        "heart_rate_bpm": max(heart, 55),
        "respiratory_rate": max(resp, 10),
        "temperature_c": round(temperature, 1),
        "spo2_pct": rng.randint(95, 100),
    }


def lab_result(
    rng: random.Random, test: LabTest, dx: list[str]
) -> tuple[float | None, str | None, str]:
    """A value for one test: (number, text, interpretation N/H/L/A)."""
    if test.text_results:
        positive = ("J02.0" in dx and test.loinc == "78012-2") or (
            "N39.0" in dx and test.loinc == "5799-2"
        )
        text = "Positive" if positive and rng.random() < 0.85 else "Negative"
        return None, text, "A" if text == "Positive" else "N"
    if test.low is None or test.high is None:
        return None, None, "N"
    span = test.high - test.low
    value = rng.uniform(test.low + span * 0.1, test.high - span * 0.1)
    if test.loinc == "4548-4" and "E11.9" in dx:
        value = rng.uniform(6.3, 9.4)
    elif test.loinc == "4548-4" and "R73.03" in dx:
        value = rng.uniform(5.7, 6.4)
    elif test.loinc in ("2093-3", "13457-7") and "E78.5" in dx:
        value = test.high * rng.uniform(1.0, 1.35)
    elif rng.random() < 0.08:
        value = (
            test.high * rng.uniform(1.02, 1.2)
            if rng.random() < 0.6
            else test.low * rng.uniform(0.8, 0.98)
        )
    value = round(value, 1)
    interpretation = "H" if value > test.high else "L" if value < test.low else "N"
    return value, None, interpretation


def soap_note(complaint: str, dx: list[str], lines: list[tuple[str, int]]) -> dict[str, str]:
    """A short structured note for a visit."""
    assessment = "; ".join(
        f"{code} {codes.ICD10_DESCRIPTIONS.get(code, '')}".strip() for code in dx
    )
    orders = [codes.PROCEDURE_BY_CODE[c].label for c, _ in lines if c in codes.PROCEDURE_BY_CODE]
    return {
        "subjective": complaint,
        "objective": NORMAL_EXAM,
        "assessment": assessment,
        "plan": ("; ".join(orders) + ". " if orders else "") + "Return as needed.",
    }


def visit_chart(
    add: Add,
    rng: random.Random,
    *,
    encounter_id: int,
    practice_id: int,
    patient_id: str,
    appointment_id: str | None,
    provider_id: int,
    location_id: int | None,
    encounter_date: date,
    start: datetime,
    end: datetime | None,
    complaint: str,
    dx: list[str],
    lines: list[tuple[str, int]],
    age: int,
    gender: str,
    nurse: bool,
    signed_at: datetime | None,
    now: datetime,
) -> None:
    """The chart a visit leaves: the encounter, its vitals, lab results and immunizations.

    ``start``/``end`` are aware instants; ``signed_at`` None leaves the encounter open. Rows
    carry ``updated_at`` no later than ``now``.
    """
    created = _z(start)
    updated = _z(min(signed_at or end or start, now))
    diagnoses = [{"code": c, "description": codes.ICD10_DESCRIPTIONS.get(c, "")} for c in dx]
    procedures = [
        {
            "code": c,
            "units": u,
            "modifiers": [],
            "description": codes.PROCEDURE_BY_CODE[c].label if c in codes.PROCEDURE_BY_CODE else "",
        }
        for c, u in lines
    ]
    add(
        SQL_ENCOUNTER,
        (
            encounter_id,
            practice_id,
            patient_id,
            appointment_id,
            provider_id,
            location_id,
            "nurse_visit" if nurse else "office_visit",
            encounter_date.isoformat(),
            created,
            None if end is None else _z(end),
            "signed" if signed_at is not None else "open",
            complaint,
            _json(soap_note(complaint, dx, lines)),
            _json(diagnoses),
            _json(procedures),
            None if signed_at is None else _z(signed_at),
            None if signed_at is None else provider_id,
            created,
            updated,
        ),
    )
    taken = start + timedelta(minutes=rng.randrange(2, 9))
    v = vitals(rng, age, gender, dx)
    add(
        SQL_VITALS,
        (
            encounter_id,
            practice_id,
            patient_id,
            encounter_id,
            _z(min(taken, now)),
            *v.values(),
            _z(min(taken, now)),
            _z(min(taken, now)),
        ),
    )
    for code, _ in lines:
        for test in LABS.get(code, ()):
            num, text, interpretation = lab_result(rng, test, dx)
            collected = min(start + timedelta(minutes=rng.randrange(10, 30)), now)
            in_house = code in ("87880", "81002")
            resulted = collected + (
                timedelta(minutes=15) if in_house else timedelta(hours=rng.randrange(20, 60))
            )
            final = resulted <= now
            add(
                SQL_LAB,
                (
                    practice_id,
                    patient_id,
                    encounter_id,
                    code,
                    test.loinc,
                    test.name,
                    num if final else None,
                    text if final else None,
                    test.unit,
                    test.low,
                    test.high,
                    interpretation if final else "N",
                    "final" if final else "preliminary",
                    _z(collected),
                    _z(resulted) if final else None,
                    _z(collected),
                    _z(resulted if final else collected),
                ),
            )
        vaccine = VACCINES.get(code)
        if vaccine is not None:
            given = min(start + timedelta(minutes=rng.randrange(10, 30)), now)
            add(
                SQL_IMMUNIZATION,
                (
                    practice_id,
                    patient_id,
                    encounter_id,
                    vaccine.cvx,
                    code,
                    vaccine.name,
                    f"{rng.choice('ABCDEFGHJK')}{rng.randrange(10000, 99999)}",
                    encounter_date.isoformat(),
                    rng.choice(("LA", "RA", "LT", "RT") if age < 3 else ("LA", "RA")),
                    vaccine.route,
                    "completed",
                    _z(given),
                    _z(given),
                ),
            )
    # An acute course prescribed at this visit.
    for code in dx[:1]:
        for drug in MEDICATIONS.get(code, ()):
            if drug.days is None:
                continue
            end_day = encounter_date + timedelta(days=drug.days)
            status = "completed" if end_day < now.date() else "active"
            add(
                SQL_MEDICATION,
                (
                    practice_id,
                    patient_id,
                    drug.rxnorm,
                    drug.name,
                    drug.sig + f" for {drug.days} days",
                    status,
                    encounter_date.isoformat(),
                    end_day.isoformat(),
                    provider_id,
                    encounter_id,
                    created,
                    updated,
                ),
            )


def patient_chart(
    add: Add,
    rng: random.Random,
    *,
    practice_id: int,
    patient_id: str,
    conditions: tuple[str, ...],
    registered: datetime,
    provider_id: int | None,
    now: datetime,
) -> None:
    """A patient's problem list, long-term medications and allergies as of registration."""
    at = _z(min(registered, now))
    onset_floor = registered.date() - timedelta(days=365 * 3)
    for code in conditions:
        onset = onset_floor + timedelta(days=rng.randrange(0, 365 * 3))
        add(
            SQL_PROBLEM,
            (
                practice_id,
                patient_id,
                code,
                codes.ICD10_DESCRIPTIONS.get(code, code),
                "active",
                onset.isoformat(),
                None,
                None,
                at,
                at,
            ),
        )
        for drug in MEDICATIONS.get(code, ())[: 1 + int(rng.random() < 0.3)]:
            if drug.days is not None:
                continue
            add(
                SQL_MEDICATION,
                (
                    practice_id,
                    patient_id,
                    drug.rxnorm,
                    drug.name,
                    drug.sig,
                    "active",
                    onset.isoformat(),
                    None,
                    provider_id,
                    None,
                    at,
                    at,
                ),
            )
    if rng.random() < 0.22:
        allergen = rng.choices(ALLERGENS, weights=[a.weight for a in ALLERGENS])[0]
        add(
            SQL_ALLERGY,
            (
                practice_id,
                patient_id,
                allergen.code,
                allergen.system,
                allergen.name,
                allergen.category,
                rng.choice(allergen.reactions),
                "severe"
                if allergen.reactions[0] == "Anaphylaxis" and rng.random() < 0.5
                else rng.choice(("mild", "moderate")),
                "active",
                registered.date().isoformat(),
                at,
                at,
            ),
        )
