"""Curated code tables of the synthetic practice, each with its source and date.

Only code values and short descriptions written for this project are kept; licensed descriptor
text (CPT, CARC/RARC wording) is not reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass

# Source: AMA CPT E/M office visit codes 99202-99215 (codes only; descriptors are licensed) and
# CMS HCPCS Level II 2026 annual file (public domain). Fee amounts are synthetic, shaped like a
# 2026 commercial fee schedule. Curated 2026-11-24.
FEE_SCHEDULE_CENTS: dict[str, int] = {
    "99202": 11500,
    "99203": 17500,
    "99204": 26000,
    "99205": 33500,
    "99211": 3500,
    "99212": 9000,
    "99213": 13500,
    "99214": 19500,
    "99215": 27000,
    "99392": 19000,  # preventive visit, established, age 1-4
    "99393": 19000,  # preventive visit, established, age 5-11
    "99396": 23000,  # preventive visit, established, age 40-64
    "G0438": 21000,  # HCPCS: annual wellness visit, initial
    "G0439": 14500,  # HCPCS: annual wellness visit, subsequent
    "90686": 2500,  # influenza vaccine, quadrivalent
    "90471": 2800,  # immunization administration
    "36415": 1200,  # routine venipuncture
    "81002": 900,  # urinalysis, non-automated
    "87880": 2200,  # rapid strep test
}

# Source: CMS Place of Service code set (public), as of 2026. Curated 2026-11-24.
PLACE_OF_SERVICE: dict[str, str] = {
    "02": "Telehealth provided other than in patient's home",
    "10": "Telehealth provided in patient's home",
    "11": "Office",
    "12": "Home",
    "19": "Off campus-outpatient hospital",
    "20": "Urgent care facility",
    "22": "On campus-outpatient hospital",
}

# Source: NUCC Health Care Provider Taxonomy code set v26.1 (public), 2026. Curated 2026-11-24.
TAXONOMIES: dict[str, str] = {
    "207Q00000X": "Family Medicine",
    "208D00000X": "General Practice",
    "207R00000X": "Internal Medicine",
    "208000000X": "Pediatrics",
    "363LF0000X": "Nurse Practitioner, Family",
    "363LP0200X": "Nurse Practitioner, Pediatrics",
    "363A00000X": "Physician Assistant",
}

# Source: CMS ICD-10-CM FY2026 (April 2026 update), validated against simple-icd-10-cm 1.5.0 by
# tests; a primary-care subset chosen for this project. Curated 2026-11-24.
ICD10_PRIMARY_CARE: tuple[str, ...] = (
    "I10",  # essential hypertension
    "E11.9",  # type 2 diabetes without complications
    "E78.5",  # hyperlipidemia, unspecified
    "J06.9",  # acute upper respiratory infection, unspecified
    "J02.9",  # acute pharyngitis, unspecified
    "M54.50",  # low back pain, unspecified
    "F41.1",  # generalized anxiety disorder
    "F32.A",  # depression, unspecified
    "Z00.00",  # general adult exam without abnormal findings
    "Z00.129",  # routine child health exam without abnormal findings
    "Z23",  # encounter for immunization
    "R05.9",  # cough, unspecified
    "K21.9",  # GERD without esophagitis
    "N39.0",  # urinary tract infection, site not specified
    "H66.90",  # otitis media, unspecified, unspecified ear
    "J45.909",  # unspecified asthma, uncomplicated
    "E66.9",  # obesity, unspecified
    "R51.9",  # headache, unspecified
)

# Source: X12 Claim Adjustment Group Codes and CARC values (x12.org code lists, values only),
# as of the 2026-07 list update. Curated 2026-11-24.
CARC_CONTRACTUAL = "45"
CARC_DEDUCTIBLE = "1"
CARC_COINSURANCE = "2"
CARC_COPAY = "3"


@dataclass(frozen=True)
class PayerSeed:
    """A payer of the synthetic market."""

    id: int
    name: str
    payer_code: str
    kind: str
    policy_type: str
    lag_days: int
    denial_rate: float
    allowed_pct: int  # share of billed charges the payer allows


# Source: a plausible US payer mix for a Midwest primary-care practice; names are public
# company names, payer ids are synthetic. Curated 2026-11-24.
PAYERS: tuple[PayerSeed, ...] = (
    PayerSeed(77, "Aetna", "60054", "commercial", "ppo", 14, 0.06, 72),
    PayerSeed(78, "UnitedHealthcare", "87726", "commercial", "hmo", 12, 0.08, 70),
    PayerSeed(79, "Cigna", "62308", "commercial", "ppo", 16, 0.07, 71),
    PayerSeed(
        80,
        "Blue Cross Blue Shield of Illinois",
        "00621",
        "bcbs",
        "blue_cross_blue_shield",
        10,
        0.05,
        68,
    ),
    PayerSeed(81, "Humana", "61101", "commercial", "medicare_hmo", 18, 0.09, 66),
    PayerSeed(82, "Medicare Part B", "00952", "medicare", "medicare_b", 14, 0.04, 60),
    PayerSeed(83, "Illinois Medicaid", "IL-MCD", "medicaid", "medicaid", 30, 0.12, 45),
    PayerSeed(84, "Tricare West", "99726", "commercial", "champus", 21, 0.07, 62),
    PayerSeed(
        85,
        "Midwest Workers Comp Mutual",
        "WC001",
        "workers_comp",
        "workers_compensation",
        35,
        0.15,
        80,
    ),
)
