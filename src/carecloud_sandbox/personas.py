"""Named personas with fixed ids: the records tests and docs can rely on for any seed.

The generator inserts these first, then fills the practices with seeded synthetic records. Every
name here is invented; none belongs to a real person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# --- practice 1: the main sandbox practice -------------------------------------------------
PRACTICE_ID = 1
PRACTICE_GUID = "5f1a3c2e-8b7d-4e21-9c64-0a3b5d7e9f10"
PRACTICE_NAME = "Maple Grove Family Medicine"
PRACTICE_TZ = "America/Chicago"
PRACTICE_FHIR_CODE = "MGFM"

# --- practice 2: a second practice of the same tenant ----------------------------------------
PRACTICE2_ID = 2
PRACTICE2_GUID = "c7d9e1f3-2a4b-4c6d-8e0f-1a2b3c4d5e6f"
PRACTICE2_NAME = "Riverbend Pediatrics"
PRACTICE2_TZ = "America/New_York"
PRACTICE2_FHIR_CODE = "RBPD"

# --- the provider, location, resource and visit reasons of practice 1 ------------------------
PROVIDER_ID = 40483
PROVIDER_NPI = "1245319599"  # Luhn-valid with the 80840 prefix
PROVIDER_FIRST = "Avery"
PROVIDER_LAST = "Quinnfield"
PROVIDER_TAXONOMY = "207Q00000X"  # Family Medicine
INACTIVE_PROVIDER_ID = 40499  # status 'I': hidden from lists, 404 on show, refused on booking

LOCATION_ID = 55491
LOCATION_NAME = "Maple Grove Main Clinic"
RESOURCE_ID = 37367  # schedulable column for PROVIDER_ID
RESOURCE_NAME = "Dr. Quinnfield"
INACTIVE_RESOURCE_ID = 37399

VISIT_NEW = 119103  # NEW PATIENT VISIT, 40 minutes
VISIT_ESTABLISHED = 119104  # ESTABLISHED PATIENT VISIT, 20 minutes
VISIT_FOLLOW_UP = 119105  # FOLLOW UP VISIT, 15 minutes
VISIT_WELLNESS = 119106  # ANNUAL WELLNESS VISIT, 40 minutes
VISIT_SICK = 119107  # SICK VISIT, 20 minutes
INACTIVE_VISIT_REASON = 119199


@dataclass(frozen=True)
class VisitReasonPersona:
    """A visit reason with its booking duration and usual billing code."""

    id: int
    name: str
    description: str
    duration: int
    procedure_code: str


VISIT_REASONS = (
    VisitReasonPersona(VISIT_NEW, "NEW PATIENT VISIT", "New patient office visit", 40, "99203"),
    VisitReasonPersona(
        VISIT_ESTABLISHED, "ESTABLISHED PATIENT VISIT", "Established patient visit", 20, "99213"
    ),
    VisitReasonPersona(VISIT_FOLLOW_UP, "FOLLOW UP VISIT", "Short follow-up", 15, "99212"),
    VisitReasonPersona(VISIT_WELLNESS, "ANNUAL WELLNESS VISIT", "Medicare AWV", 40, "G0439"),
    VisitReasonPersona(VISIT_SICK, "SICK VISIT", "Same-day sick visit", 20, "99213"),
)

# --- payer -----------------------------------------------------------------------------------
PAYER_ID = 77
PAYER_NAME = "Aetna"

# --- the Sandbox family (practice 1) ----------------------------------------------------------


@dataclass(frozen=True)
class PatientPersona:
    """A named synthetic patient with a fixed GUID."""

    id: str
    internal_id: int
    chart_number: str
    first_name: str
    last_name: str
    dob: date
    gender_code: str
    member_number: str


JORDAN = PatientPersona(
    "37d480d1-fe7d-4600-bbb1-bd79367e418d",
    1,
    "MG000001",
    "Jordan",
    "Sandbox",
    date(1984, 3, 14),
    "M",
    "W100000001",
)
CASEY = PatientPersona(
    "4b8e2f6a-1c3d-4e5f-a6b7-c8d9e0f1a2b3",
    2,
    "MG000002",
    "Casey",
    "Sandbox",
    date(1986, 11, 2),
    "F",
    "W100000002",
)
MIA = PatientPersona(
    "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
    3,
    "MG000003",
    "Mia",
    "Sandbox",
    date(2016, 6, 30),
    "F",
    "W100000003",
)
FAMILY = (JORDAN, CASEY, MIA)

# --- people who log in ------------------------------------------------------------------------
USER_ID = 9001
USERNAME = "frontdesk@maplegrove.example"
PASSWORD = "sandbox-Password-1"  # noqa: S105 - a published sandbox credential
TOTP_SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
USER2_ID = 9002
USERNAME2 = "billing@riverbend.example"

# --- the OAuth application ---------------------------------------------------------------------
CLIENT_ID = "carebridge-sandbox-app"
APP_ID = 501
REDIRECT_URI = "http://127.0.0.1:8700/oauth2/callback"
LIMITED_CLIENT_ID = "carebridge-readonly-app"  # holds read privileges only (403 on writes)
LIMITED_APP_ID = 502
