"""Curated code tables of the synthetic practice, each with its source and date.

Only code values and descriptions that are public (CMS ICD-10-CM, CMS HCPCS Level II, CMS Place
of Service, NUCC taxonomy) or written for this project are kept. Licensed descriptor text (AMA
CPT, X12 CARC/RARC wording) is not reproduced: those tables carry codes and a short label of our
own. Fee amounts are synthetic.

``tests/sandbox/test_generator.py`` checks every ICD-10-CM code here against
``simple-icd-10-cm`` (a billable leaf, with the description stored here) so the tables cannot
drift from the code set they cite.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- ICD-10-CM -------------------------------------------------------------------------------
# Source: CMS ICD-10-CM FY2026 (April 2026 update), public domain, as packaged by
# simple-icd-10-cm 1.5.0; descriptions copied from that release. A primary-care subset chosen
# for this project. Curated 2026-11-24.


@dataclass(frozen=True)
class Condition:
    """A chronic condition a patient may carry, with a crude prevalence by age and sex.

    The chance a patient has it is ``prevalence`` at ``full_age`` and above, ramping linearly
    from zero at ``min_age``; nothing above ``max_age``.
    """

    code: str
    min_age: int
    full_age: int
    prevalence: float
    max_age: int
    sex: str | None = None  # 'F' or 'M' when sex-specific


ICD10_DESCRIPTIONS: dict[str, str] = {
    # chronic
    "I10": "Essential (primary) hypertension",
    "E11.9": "Type 2 diabetes mellitus without complications",
    "E11.65": "Type 2 diabetes mellitus with hyperglycemia",
    "E78.5": "Hyperlipidemia, unspecified",
    "E78.00": "Pure hypercholesterolemia, unspecified",
    "E03.9": "Hypothyroidism, unspecified",
    "E66.9": "Obesity, unspecified",
    "E55.9": "Vitamin D deficiency, unspecified",
    "R73.03": "Prediabetes",
    "J45.909": "Unspecified asthma, uncomplicated",
    "J30.9": "Allergic rhinitis, unspecified",
    "F41.1": "Generalized anxiety disorder",
    "F32.A": "Depression, unspecified",
    "F90.0": "Attention-deficit hyperactivity disorder, predominantly inattentive type",
    "G47.00": "Insomnia, unspecified",
    "G43.909": "Migraine, unspecified, not intractable, without status migrainosus",
    "K21.9": "Gastro-esophageal reflux disease without esophagitis",
    "M17.11": "Unilateral primary osteoarthritis, right knee",
    "N40.0": "Benign prostatic hyperplasia without lower urinary tract symptoms",
    "I48.91": "Unspecified atrial fibrillation",
    "L20.9": "Atopic dermatitis, unspecified",
    # acute
    "J06.9": "Acute upper respiratory infection, unspecified",
    "J02.9": "Acute pharyngitis, unspecified",
    "J02.0": "Streptococcal pharyngitis",
    "J01.90": "Acute sinusitis, unspecified",
    "J20.9": "Acute bronchitis, unspecified",
    "R05.9": "Cough, unspecified",
    "R50.9": "Fever, unspecified",
    "R51.9": "Headache, unspecified",
    "R10.9": "Unspecified abdominal pain",
    "R11.2": "Nausea with vomiting, unspecified",
    "M54.50": "Low back pain, unspecified",
    "M25.561": "Pain in right knee",
    "N39.0": "Urinary tract infection, site not specified",
    "H66.90": "Otitis media, unspecified, unspecified ear",
    "H10.9": "Unspecified conjunctivitis",
    "A09": "Infectious gastroenteritis and colitis, unspecified",
    "B34.9": "Viral infection, unspecified",
    "L03.90": "Cellulitis, unspecified",
    "S93.401A": "Sprain of unspecified ligament of right ankle, initial encounter",
    # encounters and screening
    "Z00.00": "Encounter for general adult medical examination without abnormal findings",
    "Z00.01": "Encounter for general adult medical examination with abnormal findings",
    "Z00.121": "Encounter for routine child health examination with abnormal findings",
    "Z00.129": "Encounter for routine child health examination without abnormal findings",
    "Z23": "Encounter for immunization",
    "Z13.31": "Encounter for screening for depression",
    "Z71.3": "Dietary counseling and surveillance",
    "Z76.0": "Encounter for issue of repeat prescription",
}

ICD10_PRIMARY_CARE: tuple[str, ...] = tuple(ICD10_DESCRIPTIONS)

CHRONIC_CONDITIONS: tuple[Condition, ...] = (
    Condition("I10", 25, 65, 0.55, 120),
    Condition("E78.5", 30, 60, 0.35, 120),
    Condition("E11.9", 30, 60, 0.14, 120),
    Condition("R73.03", 25, 50, 0.12, 120),
    Condition("E66.9", 10, 40, 0.30, 120),
    Condition("E03.9", 25, 60, 0.08, 120, "F"),
    Condition("E55.9", 18, 50, 0.06, 120),
    Condition("J45.909", 3, 8, 0.09, 120),
    Condition("J30.9", 4, 15, 0.12, 120),
    Condition("F41.1", 12, 25, 0.10, 120),
    Condition("F32.A", 12, 25, 0.08, 120),
    Condition("F90.0", 5, 8, 0.08, 30),
    Condition("G47.00", 25, 60, 0.06, 120),
    Condition("G43.909", 12, 25, 0.06, 70, "F"),
    Condition("K21.9", 25, 50, 0.10, 120),
    Condition("M17.11", 50, 70, 0.10, 120),
    Condition("N40.0", 50, 70, 0.25, 120, "M"),
    Condition("I48.91", 65, 80, 0.08, 120),
    Condition("L20.9", 0, 1, 0.10, 12),
)

# Acute problems seen at sick visits, split by age; the first are the most frequent.
ACUTE_ADULT: tuple[str, ...] = (
    "J06.9",
    "J01.90",
    "J20.9",
    "R05.9",
    "M54.50",
    "J02.9",
    "R51.9",
    "N39.0",
    "M25.561",
    "A09",
    "R10.9",
    "L03.90",
    "S93.401A",
    "H10.9",
    "B34.9",
)
ACUTE_CHILD: tuple[str, ...] = (
    "J06.9",
    "H66.90",
    "J02.9",
    "R50.9",
    "J02.0",
    "R05.9",
    "B34.9",
    "A09",
    "H10.9",
    "R11.2",
)

# --- procedures: CPT (codes only) and HCPCS Level II ------------------------------------------
# Sources: AMA CPT 2026 codes only (descriptors are licensed; the labels below are our own
# words) and CMS HCPCS Level II 2026 annual file (public domain). Fee amounts are synthetic,
# shaped like a 2026 commercial charge master (roughly 1.5x the CMS physician fee schedule).
# Curated 2026-11-24.


@dataclass(frozen=True)
class Procedure:
    """A billable procedure with the practice's fee."""

    code: str
    system: str  # 'CPT' or 'HCPCS'
    fee_cents: int
    label: str  # our own short label, not a licensed descriptor
    preventive: bool = False  # no patient cost-sharing under the ACA / Medicare AWV rules


PROCEDURES: tuple[Procedure, ...] = (
    Procedure("99202", "CPT", 11500, "New patient office visit, level 2"),
    Procedure("99203", "CPT", 17500, "New patient office visit, level 3"),
    Procedure("99204", "CPT", 26000, "New patient office visit, level 4"),
    Procedure("99205", "CPT", 33500, "New patient office visit, level 5"),
    Procedure("99211", "CPT", 3500, "Established patient visit, nurse"),
    Procedure("99212", "CPT", 9000, "Established patient office visit, level 2"),
    Procedure("99213", "CPT", 13500, "Established patient office visit, level 3"),
    Procedure("99214", "CPT", 19500, "Established patient office visit, level 4"),
    Procedure("99215", "CPT", 27000, "Established patient office visit, level 5"),
    Procedure("99381", "CPT", 21000, "Preventive visit, new, infant", True),
    Procedure("99382", "CPT", 21500, "Preventive visit, new, age 1-4", True),
    Procedure("99383", "CPT", 22000, "Preventive visit, new, age 5-11", True),
    Procedure("99384", "CPT", 24000, "Preventive visit, new, age 12-17", True),
    Procedure("99385", "CPT", 23500, "Preventive visit, new, age 18-39", True),
    Procedure("99386", "CPT", 27000, "Preventive visit, new, age 40-64", True),
    Procedure("99387", "CPT", 29000, "Preventive visit, new, age 65+", True),
    Procedure("99391", "CPT", 18500, "Preventive visit, established, infant", True),
    Procedure("99392", "CPT", 19000, "Preventive visit, established, age 1-4", True),
    Procedure("99393", "CPT", 19000, "Preventive visit, established, age 5-11", True),
    Procedure("99394", "CPT", 20500, "Preventive visit, established, age 12-17", True),
    Procedure("99395", "CPT", 21000, "Preventive visit, established, age 18-39", True),
    Procedure("99396", "CPT", 23000, "Preventive visit, established, age 40-64", True),
    Procedure("99397", "CPT", 25000, "Preventive visit, established, age 65+", True),
    Procedure("G0402", "HCPCS", 25500, "Welcome to Medicare preventive visit", True),
    Procedure("G0438", "HCPCS", 21000, "Annual wellness visit, initial", True),
    Procedure("G0439", "HCPCS", 14500, "Annual wellness visit, subsequent", True),
    Procedure("G0444", "HCPCS", 3000, "Annual depression screening", True),
    Procedure("G2211", "HCPCS", 2400, "Visit complexity add-on"),
    Procedure("90686", "CPT", 2500, "Influenza vaccine, quadrivalent, preservative free", True),
    Procedure("90700", "CPT", 4200, "DTaP vaccine, under 7 years", True),
    Procedure("90707", "CPT", 9500, "MMR vaccine", True),
    Procedure("90715", "CPT", 5200, "Tdap vaccine, 7 years and older", True),
    Procedure("90471", "CPT", 2800, "Immunization administration, first", True),
    Procedure("90472", "CPT", 1600, "Immunization administration, each additional", True),
    Procedure("96127", "CPT", 1000, "Brief emotional or behavioral assessment"),
    Procedure("36415", "CPT", 1200, "Routine venipuncture"),
    Procedure("80053", "CPT", 3200, "Comprehensive metabolic panel"),
    Procedure("80061", "CPT", 3800, "Lipid panel"),
    Procedure("83036", "CPT", 2600, "Hemoglobin A1c"),
    Procedure("85025", "CPT", 2100, "Complete blood count with differential"),
    Procedure("81002", "CPT", 900, "Urinalysis, non-automated, without microscopy"),
    Procedure("87880", "CPT", 2200, "Rapid strep test"),
    Procedure("93000", "CPT", 6000, "Electrocardiogram with interpretation"),
)

PROCEDURE_BY_CODE: dict[str, Procedure] = {p.code: p for p in PROCEDURES}
FEE_SCHEDULE_CENTS: dict[str, int] = {p.code: p.fee_cents for p in PROCEDURES}

# Preventive medicine codes by age band: (first age of the band, new patient, established).
PREVENTIVE_BY_AGE: tuple[tuple[int, str, str], ...] = (
    (0, "99381", "99391"),
    (1, "99382", "99392"),
    (5, "99383", "99393"),
    (12, "99384", "99394"),
    (18, "99385", "99395"),
    (40, "99386", "99396"),
    (65, "99387", "99397"),
)

# How often each E/M level is billed (a typical primary-care distribution).
NEW_PATIENT_LEVELS: tuple[tuple[str, float], ...] = (
    ("99202", 0.10),
    ("99203", 0.45),
    ("99204", 0.38),
    ("99205", 0.07),
)
ESTABLISHED_LEVELS: tuple[tuple[str, float], ...] = (
    ("99212", 0.12),
    ("99213", 0.48),
    ("99214", 0.35),
    ("99215", 0.05),
)
FOLLOW_UP_LEVELS: tuple[tuple[str, float], ...] = (("99212", 0.55), ("99213", 0.45))
EVALUATION_CODES: frozenset[str] = frozenset(
    {"99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215"}
)

# --- place of service --------------------------------------------------------------------------
# Source: CMS Place of Service Code Set (public), as of 2026. Curated 2026-11-24.
PLACE_OF_SERVICE: dict[str, str] = {
    "02": "Telehealth Provided Other than in Patient's Home",
    "03": "School",
    "10": "Telehealth Provided in Patient's Home",
    "11": "Office",
    "12": "Home",
    "19": "Off Campus-Outpatient Hospital",
    "20": "Urgent Care Facility",
    "21": "Inpatient Hospital",
    "22": "On Campus-Outpatient Hospital",
    "23": "Emergency Room - Hospital",
    "31": "Skilled Nursing Facility",
    "32": "Nursing Facility",
    "81": "Independent Laboratory",
}

# --- provider taxonomy -----------------------------------------------------------------------
# Source: NUCC Health Care Provider Taxonomy code set v26.1 (public), 2026. Curated 2026-11-24.
TAXONOMIES: dict[str, str] = {
    "207Q00000X": "Family Medicine",
    "207QA0505X": "Family Medicine, Adult Medicine",
    "208D00000X": "General Practice",
    "207R00000X": "Internal Medicine",
    "208000000X": "Pediatrics",
    "363LF0000X": "Nurse Practitioner, Family",
    "363LP0200X": "Nurse Practitioner, Pediatrics",
    "363A00000X": "Physician Assistant",
    "363AM0700X": "Physician Assistant, Medical",
}

# --- claim adjustments -------------------------------------------------------------------------
# Source: X12 Claim Adjustment Group Codes, Claim Adjustment Reason Codes (CARC) and Remittance
# Advice Remark Codes (RARC), x12.org code lists, values as of the 2026-07 update. X12 wording
# is licensed: the labels are our own paraphrases. Curated 2026-11-24.
ADJUSTMENT_GROUPS: dict[str, str] = {
    "CO": "Contractual obligation (provider write-off)",
    "PR": "Patient responsibility",
    "OA": "Other adjustment",
    "PI": "Payer-initiated reduction",
    "CR": "Correction or reversal (legacy)",
}
CARC: dict[str, str] = {
    "1": "Deductible",
    "2": "Coinsurance",
    "3": "Copay",
    "16": "Claim lacks information or has a billing error",
    "18": "Duplicate claim or service",
    "22": "Another payer may be primary (coordination of benefits)",
    "27": "Service after coverage ended",
    "29": "Filing limit expired",
    "45": "Charge exceeds the contracted or fee-schedule amount",
    "50": "Not medically necessary in the payer's view",
    "96": "Non-covered charge",
    "97": "Bundled into another service's payment",
    "109": "Not covered by this payer",
    "119": "Benefit maximum reached",
    "197": "Prior authorization missing",
    "204": "Not covered under the patient's benefit plan",
}
RARC: dict[str, str] = {
    "M51": "Procedure code missing, incomplete or invalid",
    "MA04": "Secondary payment needs the primary payer's remittance",
    "MA130": "Claim incomplete or invalid; resubmit as a new claim",
    "N130": "See plan benefit documents",
    "N290": "Rendering provider identifier missing or invalid",
    "N425": "Statutorily excluded service",
    "N54": "Claim inconsistent with the authorized services",
}
CARC_CONTRACTUAL = "45"
CARC_DEDUCTIBLE = "1"
CARC_COINSURANCE = "2"
CARC_COPAY = "3"

# Why a claim line is denied: (group code, CARC, RARC or None), most frequent first.
DENIALS: tuple[tuple[str, str, str | None], ...] = (
    ("CO", "16", "M51"),
    ("CO", "197", "N54"),
    ("CO", "50", "N130"),
    ("OA", "22", "MA04"),
    ("CO", "27", None),
    ("CO", "96", "N425"),
    ("CO", "18", None),
    ("CO", "29", None),
    ("CO", "109", None),
)

# --- documents -----------------------------------------------------------------------------------
# Source: the CareCloud v2 document source names and the LOINC document types they map to
# (upstream/carecloud.md section 2.5; LOINC is free to use). Weights are ours. Curated 2026-11-24.
DOCUMENT_SOURCES: tuple[tuple[str, str, float], ...] = (
    ("Progress note", "11506-3", 0.70),
    ("History and Physical", "34117-2", 0.10),
    ("Procedure Note", "28570-0", 0.08),
    ("Consult note", "11488-4", 0.08),
    ("Discharge summary", "18842-5", 0.04),
)

# --- demographics ----------------------------------------------------------------------------------
# Sources: CDC Race and Ethnicity Code Set v1.2 (race concepts), ISO 639-2 language codes; the
# weights approximate US Census 2020 shares. Curated 2026-11-24.
RACES: tuple[tuple[str, float], ...] = (
    ("2106-3", 0.60),  # White
    ("2054-5", 0.13),  # Black or African American
    ("2028-9", 0.06),  # Asian
    ("1002-5", 0.01),  # American Indian or Alaska Native
    ("2076-8", 0.01),  # Native Hawaiian or Other Pacific Islander
    ("2131-1", 0.09),  # Other Race
    ("", 0.10),  # declined
)


# --- payers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A plan of a payer, as ``GET /v2/payers/{id}/plans`` lists it."""

    id: int
    name: str
    insurance_policy_type: str


@dataclass(frozen=True)
class PayerSeed:
    """A payer of the synthetic market."""

    id: int
    name: str
    payer_code: str
    kind: str  # commercial, medicare, medicaid, bcbs, workers_comp
    plans: tuple[Plan, ...]
    lag_days: int  # median days from claim to remittance
    denial_rate: float
    allowed_pct: int  # share of billed charges the payer allows
    member_format: str  # how its member numbers look, see generator.member_number
    state: str = ""  # a state program serves one state only

    @property
    def policy_type(self) -> str:
        """The insurance_policy_type of the payer's first plan."""
        return self.plans[0].insurance_policy_type


# Source: a plausible payer mix for Midwest primary care. Payer names are public company and
# program names; payer ids of the national carriers are their widely published clearinghouse
# ids, the state programs' ids are synthetic. Plan names are generic. Curated 2026-11-24.
PAYERS: tuple[PayerSeed, ...] = (
    PayerSeed(
        77,
        "Aetna",
        "60054",
        "commercial",
        (
            Plan(771, "Aetna PPO", "ppo"),
            Plan(772, "Aetna HMO", "hmo"),
            Plan(773, "Aetna POS", "pos"),
        ),
        14,
        0.06,
        72,
        "aetna",
    ),
    PayerSeed(
        78,
        "UnitedHealthcare",
        "87726",
        "commercial",
        (
            Plan(781, "UnitedHealthcare Choice Plus", "ppo"),
            Plan(782, "UnitedHealthcare Navigate HMO", "hmo"),
        ),
        12,
        0.08,
        70,
        "uhc",
    ),
    PayerSeed(
        79,
        "Cigna",
        "62308",
        "commercial",
        (Plan(791, "Cigna Open Access Plus", "pos"), Plan(792, "Cigna LocalPlus", "hmo")),
        16,
        0.07,
        71,
        "cigna",
    ),
    PayerSeed(
        80,
        "Blue Cross Blue Shield",
        "00621",
        "bcbs",
        (
            Plan(801, "Blue Choice PPO", "blue_cross_blue_shield"),
            Plan(802, "Blue Advantage HMO", "hmo"),
            Plan(803, "Blue Medicare Supplement", "commercial_insurance"),
        ),
        10,
        0.05,
        68,
        "bcbs",
    ),
    PayerSeed(
        81,
        "Humana",
        "61101",
        "commercial",
        (
            Plan(811, "Humana Gold Plus HMO", "medicare_hmo"),
            Plan(812, "Humana Choice PPO", "medicare_ppo"),
        ),
        18,
        0.09,
        66,
        "humana",
    ),
    PayerSeed(
        82,
        "Medicare Part B",
        "06102",
        "medicare",
        (Plan(821, "Medicare Part B", "medicare_b"),),
        14,
        0.04,
        60,
        "mbi",
    ),
    PayerSeed(
        83,
        "Illinois Medicaid",
        "ILMCD",
        "medicaid",
        (
            Plan(831, "Illinois Medicaid", "medicaid"),
            Plan(832, "HealthChoice Illinois", "medicaid_hmo"),
        ),
        30,
        0.12,
        45,
        "digits9",
        "IL",
    ),
    PayerSeed(
        84,
        "TRICARE East",
        "TREST",
        "commercial",
        (Plan(841, "TRICARE Select", "champus"), Plan(842, "TRICARE Prime", "champus")),
        21,
        0.07,
        62,
        "digits11",
    ),
    PayerSeed(
        85,
        "Midwest Workers Comp Mutual",
        "WC001",
        "workers_comp",
        (Plan(851, "Workers Compensation", "workers_compensation"),),
        35,
        0.15,
        80,
        "claim",
    ),
    PayerSeed(
        86,
        "Ohio Medicaid",
        "OHMCD",
        "medicaid",
        (
            Plan(861, "Ohio Medicaid", "medicaid"),
            Plan(862, "Ohio Medicaid Managed Care", "medicaid_hmo"),
        ),
        28,
        0.11,
        47,
        "digits12",
        "OH",
    ),
    PayerSeed(
        87,
        "Colorado Medicaid",
        "COMCD",
        "medicaid",
        (Plan(871, "Health First Colorado", "medicaid"),),
        26,
        0.10,
        46,
        "digits9",
        "CO",
    ),
)
PAYER_BY_ID: dict[int, PayerSeed] = {p.id: p for p in PAYERS}
