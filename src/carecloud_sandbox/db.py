"""The tenant's state: one SQLite database, in memory by default or in a file (``--state``).

Conventions of the schema (every route and the generator rely on them):

- instants are TEXT in UTC, ``YYYY-MM-DDTHH:MM:SSZ`` (they sort as text); routes render them in
  the practice's local time with an offset, as the real API does;
- dates are TEXT ``YYYY-MM-DD``;
- money is INTEGER cents; routes render strings;
- patients and appointments are keyed by a GUID (``id``) and also have an integer
  ``internal_id``; everything else is keyed by an integer;
- ``status`` is ``'A'`` (active) or ``'I'`` (inactive) where the upstream has one;
- nested, rarely filtered data lives in JSON TEXT columns named ``*_json``;
- every table is scoped by ``practice_id`` (the business entity's integer key), except the
  global ones (payers, global cancellation reasons, OAuth clients).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS practices (
    id                 INTEGER PRIMARY KEY,
    business_entity_id TEXT NOT NULL UNIQUE,          -- GUID, as the real API exposes it
    name               TEXT NOT NULL,
    timezone           TEXT NOT NULL,                 -- IANA zone; timestamps render in it
    npi                TEXT NOT NULL,
    tax_id             TEXT NOT NULL,
    fhir_code          TEXT NOT NULL UNIQUE,          -- the Connector's practice code
    address_json       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id          INTEGER PRIMARY KEY,
    practice_id INTEGER NOT NULL REFERENCES practices(id),
    username    TEXT NOT NULL UNIQUE,
    password    TEXT NOT NULL,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    email       TEXT NOT NULL,
    phone       TEXT NOT NULL,
    totp_seed   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_clients (
    client_id     TEXT PRIMARY KEY,
    client_secret TEXT NOT NULL,
    app_id        INTEGER NOT NULL,
    name          TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL,
    scopes_json   TEXT NOT NULL                        -- privileges CareCloud assigned the app
);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code         TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    practice_id  INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    redirect_uri TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS oauth_tokens (
    access_token       TEXT PRIMARY KEY,
    refresh_token      TEXT NOT NULL,
    client_id          TEXT NOT NULL,
    practice_id        INTEGER NOT NULL,
    user_id            INTEGER NOT NULL,
    scopes_json        TEXT NOT NULL,
    issued_at          TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    refresh_expires_at TEXT NOT NULL,
    revoked            INTEGER NOT NULL DEFAULT 0,
    refresh_revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS oauth_tokens_refresh ON oauth_tokens(refresh_token);
CREATE TABLE IF NOT EXISTS providers (
    id             INTEGER PRIMARY KEY,
    practice_id    INTEGER NOT NULL,
    npi            TEXT NOT NULL,
    first_name     TEXT NOT NULL,
    last_name      TEXT NOT NULL,
    credentials    TEXT NOT NULL,                      -- MD, DO, NP, PA-C ...
    email          TEXT NOT NULL,
    phone_number   TEXT NOT NULL,
    taxonomy       TEXT,                               -- NUCC code; NULL = no specialty
    specialty_name TEXT,
    status         TEXT NOT NULL DEFAULT 'A'
);
CREATE TABLE IF NOT EXISTS locations (
    id                               INTEGER PRIMARY KEY,
    practice_id                      INTEGER NOT NULL,
    name                             TEXT NOT NULL,
    mnemonic                         TEXT NOT NULL,
    npi                              TEXT NOT NULL,
    place_of_service_code            TEXT NOT NULL,
    is_visible_appointment_scheduler INTEGER NOT NULL DEFAULT 1,
    is_default                       INTEGER NOT NULL DEFAULT 0,
    status                           TEXT NOT NULL DEFAULT 'A',
    address_json                     TEXT NOT NULL,    -- line1 line2 line3 city zip_code county_name latitude longitude state_name state_code
    phones_json                      TEXT NOT NULL     -- [{phone_number, phone_type, phone_ext, is_primary}]
);
CREATE TABLE IF NOT EXISTS resources (
    id                       INTEGER PRIMARY KEY,
    practice_id              INTEGER NOT NULL,
    name                     TEXT NOT NULL,
    code                     TEXT NOT NULL,
    description              TEXT NOT NULL,
    status                   TEXT NOT NULL DEFAULT 'A',
    sort_code                INTEGER NOT NULL,
    is_for_requests          INTEGER NOT NULL DEFAULT 1,
    appointment_confirmation TEXT NOT NULL DEFAULT 'P',
    default_provider_id      INTEGER,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    created_by               INTEGER NOT NULL,
    updated_by               INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS visit_reasons (
    id           INTEGER PRIMARY KEY,
    practice_id  INTEGER NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    duration     INTEGER NOT NULL,                     -- minutes
    for_requests INTEGER NOT NULL DEFAULT 1,
    status       TEXT NOT NULL DEFAULT 'A',
    procedure_code TEXT                                -- the E/M or HCPCS code usually billed
);
CREATE TABLE IF NOT EXISTS resource_visit_reasons (
    resource_id     INTEGER NOT NULL,
    visit_reason_id INTEGER NOT NULL,
    PRIMARY KEY (resource_id, visit_reason_id)
);
CREATE TABLE IF NOT EXISTS appointment_templates (
    id                       INTEGER PRIMARY KEY,
    practice_id              INTEGER NOT NULL,
    name                     TEXT NOT NULL,
    description              TEXT NOT NULL,
    location_ids_json        TEXT NOT NULL,
    resource_ids_json        TEXT NOT NULL,
    visit_reasons_json       TEXT NOT NULL,            -- [{id, max_appointments_allowed}]
    days                     TEXT NOT NULL,            -- 7 chars Sunday..Saturday, '1' = used
    effective_from           TEXT NOT NULL,
    effective_to             TEXT,
    start_at                 TEXT NOT NULL,            -- local HH:MM
    end_at                   TEXT NOT NULL,
    max_appointments_allowed INTEGER NOT NULL DEFAULT 1,
    status                   TEXT NOT NULL DEFAULT 'A'
);
CREATE TABLE IF NOT EXISTS appointment_blockouts (
    id                INTEGER PRIMARY KEY,
    practice_id       INTEGER NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    location_ids_json TEXT NOT NULL,
    resource_ids_json TEXT NOT NULL,
    days              TEXT NOT NULL,                   -- 7 chars Sunday..Saturday
    start_date        TEXT NOT NULL,
    end_date          TEXT NOT NULL,
    start_at          TEXT NOT NULL,                   -- local HH:MM
    end_at            TEXT NOT NULL,
    recurrence_id     INTEGER,
    status            TEXT NOT NULL DEFAULT 'A'
);
CREATE TABLE IF NOT EXISTS appointment_statuses (
    id          INTEGER PRIMARY KEY,
    practice_id INTEGER NOT NULL,
    code        TEXT NOT NULL,                         -- P I O C R, plus practice-defined
    name        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cancellation_reasons (
    id                 INTEGER PRIMARY KEY,
    practice_id        INTEGER,                        -- NULL = global
    code               TEXT NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL,
    is_default         INTEGER NOT NULL DEFAULT 0,
    sort_code          INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS payers (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    payer_code   TEXT NOT NULL,                        -- the clearinghouse payer id
    kind         TEXT NOT NULL,                        -- commercial, medicare, medicaid, bcbs, workers_comp, self
    pending      INTEGER NOT NULL DEFAULT 0,
    address_json TEXT NOT NULL,
    phones_json  TEXT NOT NULL,
    plans_json   TEXT NOT NULL,                        -- [{id, name, insurance_policy_type}]
    adjudication_lag_days INTEGER NOT NULL DEFAULT 14,
    denial_rate  REAL NOT NULL DEFAULT 0.08,
    status       TEXT NOT NULL DEFAULT 'A'
);
CREATE TABLE IF NOT EXISTS patients (
    id                  TEXT PRIMARY KEY,              -- GUID
    internal_id         INTEGER NOT NULL UNIQUE,
    practice_id         INTEGER NOT NULL,
    chart_number        TEXT NOT NULL,
    account_number      TEXT NOT NULL,
    first_name          TEXT NOT NULL,
    last_name           TEXT NOT NULL,
    middle_initial      TEXT NOT NULL DEFAULT '',
    dob                 TEXT,                          -- YYYY-MM-DD
    gender_code         TEXT,                          -- FHIR administrative gender letter (M F O U)
    ssn                 TEXT NOT NULL DEFAULT '',
    email               TEXT NOT NULL DEFAULT '',
    phone_digits        TEXT NOT NULL DEFAULT '',      -- primary phone, digits only (search)
    drivers_license_number TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL DEFAULT 'A',
    primary_location_id INTEGER,
    primary_provider_id INTEGER,
    last_seen_date      TEXT,
    data_json           TEXT NOT NULL,                 -- every other demographic field, addresses, phones, responsible party
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS patients_practice_name ON patients(practice_id, last_name, first_name);
CREATE INDEX IF NOT EXISTS patients_practice_dob ON patients(practice_id, dob);
CREATE INDEX IF NOT EXISTS patients_practice_chart ON patients(practice_id, chart_number);
CREATE INDEX IF NOT EXISTS patients_practice_updated ON patients(practice_id, updated_at);
-- The v2 patient search's lookups, so its cost does not grow with the tenant: each term's
-- candidates come from these (names by trigram, the rest by equality), then the search's own
-- predicate filters them (v2/patients.py: search_patients).
CREATE INDEX IF NOT EXISTS patients_lower_chart ON patients(lower(chart_number));
CREATE INDEX IF NOT EXISTS patients_lower_last ON patients(lower(last_name));
CREATE INDEX IF NOT EXISTS patients_lower_first ON patients(lower(first_name));
CREATE INDEX IF NOT EXISTS patients_lower_email ON patients(lower(email));
CREATE INDEX IF NOT EXISTS patients_lower_license ON patients(lower(drivers_license_number));
CREATE INDEX IF NOT EXISTS patients_ssn ON patients(ssn);
CREATE VIRTUAL TABLE IF NOT EXISTS patient_names USING fts5(
    first_name, last_name, content='patients', tokenize='trigram'
);
CREATE TRIGGER IF NOT EXISTS patient_names_insert AFTER INSERT ON patients BEGIN
    INSERT INTO patient_names(rowid, first_name, last_name)
    VALUES (new.rowid, new.first_name, new.last_name);
END;
CREATE TRIGGER IF NOT EXISTS patient_names_delete AFTER DELETE ON patients BEGIN
    INSERT INTO patient_names(patient_names, rowid, first_name, last_name)
    VALUES ('delete', old.rowid, old.first_name, old.last_name);
END;
CREATE TRIGGER IF NOT EXISTS patient_names_update AFTER UPDATE OF first_name, last_name
ON patients BEGIN
    INSERT INTO patient_names(patient_names, rowid, first_name, last_name)
    VALUES ('delete', old.rowid, old.first_name, old.last_name);
    INSERT INTO patient_names(rowid, first_name, last_name)
    VALUES (new.rowid, new.first_name, new.last_name);
END;
CREATE TABLE IF NOT EXISTS insurance_profiles (
    id                              INTEGER PRIMARY KEY,
    patient_id                      TEXT NOT NULL,
    name                            TEXT NOT NULL,
    self_pay                        INTEGER NOT NULL DEFAULT 0,
    is_default                      INTEGER NOT NULL DEFAULT 0,
    responsible_party_relationship  TEXT NOT NULL DEFAULT 'self',
    responsible_party_json          TEXT NOT NULL DEFAULT '{}',
    created_at                      TEXT NOT NULL,
    updated_at                      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS insurance_profiles_patient ON insurance_profiles(patient_id);
CREATE TABLE IF NOT EXISTS insurance_policies (
    id                     INTEGER PRIMARY KEY,
    profile_id             INTEGER NOT NULL,
    patient_id             TEXT NOT NULL,
    policy_priority        INTEGER NOT NULL,           -- 1 primary .. 4 quaternary
    payer_id               INTEGER NOT NULL,
    plan_id                INTEGER,
    insurance_policy_type  TEXT NOT NULL,
    member_number          TEXT NOT NULL,
    policy_number          TEXT NOT NULL DEFAULT '',
    group_number           TEXT NOT NULL DEFAULT '',
    group_name             TEXT NOT NULL DEFAULT '',
    effective_from         TEXT,
    effective_to           TEXT,
    co_payment_cents       INTEGER,
    deductible_cents       INTEGER,
    coinsurance_pct        INTEGER,                    -- patient share in percent
    out_of_pocket_max_cents INTEGER,
    requires_authorization INTEGER NOT NULL DEFAULT 0,
    insured_json           TEXT NOT NULL,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS insurance_policies_patient ON insurance_policies(patient_id);
CREATE INDEX IF NOT EXISTS insurance_policies_profile ON insurance_policies(profile_id, policy_priority);
CREATE INDEX IF NOT EXISTS insurance_policies_member ON insurance_policies(member_number);
CREATE INDEX IF NOT EXISTS insurance_policies_lower_member ON insurance_policies(lower(member_number));
CREATE INDEX IF NOT EXISTS insurance_policies_lower_policy ON insurance_policies(lower(policy_number));
CREATE TABLE IF NOT EXISTS appointments (
    id                      TEXT PRIMARY KEY,          -- GUID
    internal_id             INTEGER NOT NULL UNIQUE,
    practice_id             INTEGER NOT NULL,
    patient_id              TEXT NOT NULL,
    provider_id             INTEGER NOT NULL,
    location_id             INTEGER,
    resource_id             INTEGER,
    nature_of_visit_id      INTEGER,                   -- exposed as visit_reason_id
    appointment_status_id   INTEGER NOT NULL,
    status_code             TEXT NOT NULL,             -- P I O C R (denormalized from the status)
    start_time              TEXT NOT NULL,             -- UTC
    end_time                TEXT NOT NULL,             -- UTC
    reason_for_visit        TEXT,                      -- exposed as chief_complaint
    comments                TEXT,
    cancellation_reason_id  INTEGER,
    cancellation_comments   TEXT,
    arrived_at              TEXT,
    departed_at             TEXT,
    is_confirmed            INTEGER NOT NULL DEFAULT 0,
    is_force_overbook       INTEGER NOT NULL DEFAULT 0,
    patient_contacted       INTEGER NOT NULL DEFAULT 0,
    preferred_confirmation_method TEXT,
    referring_physician_npi TEXT,
    encounter_id            INTEGER,
    data_json               TEXT NOT NULL DEFAULT '{}',
    created_by_application  TEXT,
    updated_by_application  TEXT,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS appointments_practice_start ON appointments(practice_id, start_time);
CREATE INDEX IF NOT EXISTS appointments_practice_page
    ON appointments(practice_id, start_time, internal_id);
CREATE INDEX IF NOT EXISTS appointments_patient ON appointments(patient_id, start_time);
CREATE INDEX IF NOT EXISTS appointments_resource_start ON appointments(resource_id, start_time);
CREATE INDEX IF NOT EXISTS appointments_practice_updated ON appointments(practice_id, updated_at);
CREATE TABLE IF NOT EXISTS appointment_confirmations (
    id                               INTEGER PRIMARY KEY,
    appointment_id                   TEXT NOT NULL,
    date_confirmed                   TEXT,
    communication_method             TEXT NOT NULL,
    communication_method_description TEXT,
    communication_outcome            TEXT,
    comments                         TEXT,
    created_at                       TEXT NOT NULL,
    updated_at                       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS appointment_confirmations_appointment ON appointment_confirmations(appointment_id);
CREATE TABLE IF NOT EXISTS transactions (
    id                     INTEGER PRIMARY KEY,
    practice_id            INTEGER NOT NULL,
    patient_id             TEXT NOT NULL,
    transaction_type       TEXT NOT NULL,              -- charge, insurance_payment, insurance_adjustment, patient_payment ...
    transaction_status     TEXT NOT NULL,              -- posted, not_posted, closed
    balance_type           TEXT NOT NULL,              -- 'insurance' or 'patient': who owes the open balance
    amount_cents           INTEGER NOT NULL,           -- charges positive, credits negative
    balance_cents          INTEGER NOT NULL,           -- open balance on a charge; 0 on credits
    unapplied_credit_cents INTEGER NOT NULL DEFAULT 0,
    posting_date           TEXT NOT NULL,              -- YYYY-MM-DD
    service_date           TEXT,
    location_id            INTEGER,
    provider_id            INTEGER,
    attending_provider_id  INTEGER,
    units                  INTEGER,
    description            TEXT NOT NULL,
    procedure_code         TEXT,
    modifiers_json         TEXT NOT NULL DEFAULT '[]',
    diagnosis_codes_json   TEXT NOT NULL DEFAULT '[]',
    encounter_id           INTEGER,
    appointment_id         TEXT,
    charge_id              INTEGER,                    -- credits point at the charge they settle
    insurance_profile_id   INTEGER,
    billed                 INTEGER NOT NULL DEFAULT 0, -- a charge is on a claim (else it is "unbilled")
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_patient_date ON transactions(patient_id, posting_date);
CREATE INDEX IF NOT EXISTS transactions_practice_updated ON transactions(practice_id, updated_at);
CREATE INDEX IF NOT EXISTS transactions_encounter ON transactions(encounter_id);
CREATE INDEX IF NOT EXISTS transactions_unbilled ON transactions(practice_id) WHERE billed = 0;
CREATE TABLE IF NOT EXISTS eligibility_requests (
    id            INTEGER PRIMARY KEY,
    practice_id   INTEGER NOT NULL,
    patient_id    TEXT NOT NULL,
    policy_id     INTEGER,
    status        TEXT NOT NULL,                       -- pending, complete, error
    request_json  TEXT NOT NULL,
    response_json TEXT,
    eligibility_date TEXT NOT NULL,
    ready_at      TEXT NOT NULL,                       -- polling before this answers 'pending'
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    id                   INTEGER PRIMARY KEY,
    practice_id          INTEGER NOT NULL,
    patient_id           TEXT NOT NULL,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL,
    document_source_name TEXT NOT NULL,
    document_date        TEXT NOT NULL,
    content_type         TEXT NOT NULL,
    size_bytes           INTEGER NOT NULL,
    status               TEXT NOT NULL DEFAULT 'A',
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_patient ON documents(patient_id, document_date);
CREATE TABLE IF NOT EXISTS fhir_ids (                -- the Connector's logical ids (ground truth crosswalk)
    id            INTEGER PRIMARY KEY,
    resource_type TEXT NOT NULL,                       -- Patient, Practitioner, Encounter ...
    fhir_id       TEXT NOT NULL,
    practice_id   INTEGER NOT NULL,
    entity        TEXT NOT NULL,                       -- the table: patients, providers, encounters ...
    entity_id     TEXT NOT NULL                        -- that table's key (a GUID or an integer as text)
);
CREATE UNIQUE INDEX IF NOT EXISTS fhir_ids_fhir ON fhir_ids(resource_type, fhir_id);
CREATE UNIQUE INDEX IF NOT EXISTS fhir_ids_entity ON fhir_ids(entity, entity_id, resource_type);
-- Charts (the portal's clinical side) ----------------------------------------------------------
CREATE TABLE IF NOT EXISTS encounters (
    id              INTEGER PRIMARY KEY,               -- the appointment's internal id when from a visit
    practice_id     INTEGER NOT NULL,
    patient_id      TEXT NOT NULL,
    appointment_id  TEXT,                              -- GUID, NULL for a pushed encounter
    provider_id     INTEGER NOT NULL,
    location_id     INTEGER,
    encounter_type  TEXT NOT NULL,                     -- office_visit, nurse_visit, telephone
    encounter_date  TEXT NOT NULL,                     -- practice-local YYYY-MM-DD
    start_time      TEXT NOT NULL,                     -- UTC
    end_time        TEXT,                              -- UTC
    status          TEXT NOT NULL,                     -- open, signed
    chief_complaint TEXT NOT NULL DEFAULT '',
    note_json       TEXT NOT NULL DEFAULT '{}',        -- {subjective, objective, assessment, plan}
    diagnoses_json  TEXT NOT NULL DEFAULT '[]',        -- [{code, description}] in rank order
    procedures_json TEXT NOT NULL DEFAULT '[]',        -- [{code, units, modifiers, description}]
    signed_at       TEXT,
    signed_by       INTEGER,                           -- provider id
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS encounters_patient ON encounters(patient_id, start_time);
CREATE INDEX IF NOT EXISTS encounters_practice_updated ON encounters(practice_id, updated_at);
CREATE INDEX IF NOT EXISTS encounters_open ON encounters(practice_id) WHERE status = 'open';
CREATE TABLE IF NOT EXISTS encounter_addenda (
    id           INTEGER PRIMARY KEY,
    encounter_id INTEGER NOT NULL,
    practice_id  INTEGER NOT NULL,
    author_id    INTEGER NOT NULL,                     -- provider id
    text         TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS encounter_addenda_encounter ON encounter_addenda(encounter_id);
CREATE TABLE IF NOT EXISTS vitals (
    id               INTEGER PRIMARY KEY,
    practice_id      INTEGER NOT NULL,
    patient_id       TEXT NOT NULL,
    encounter_id     INTEGER NOT NULL,
    taken_at         TEXT NOT NULL,                    -- UTC
    height_cm        REAL,
    weight_kg        REAL,
    bmi              REAL,
    systolic_mmhg    INTEGER,
    diastolic_mmhg   INTEGER,
    heart_rate_bpm   INTEGER,
    respiratory_rate INTEGER,
    temperature_c    REAL,
    spo2_pct         INTEGER,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS vitals_patient ON vitals(patient_id, taken_at);
CREATE TABLE IF NOT EXISTS problems (
    id            INTEGER PRIMARY KEY,
    practice_id   INTEGER NOT NULL,
    patient_id    TEXT NOT NULL,
    icd10_code    TEXT NOT NULL,
    description   TEXT NOT NULL,
    status        TEXT NOT NULL,                       -- active, resolved
    onset_date    TEXT,
    resolved_date TEXT,
    encounter_id  INTEGER,                             -- where it was first recorded
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS problems_patient ON problems(patient_id);
CREATE INDEX IF NOT EXISTS problems_practice_updated ON problems(practice_id, updated_at);
CREATE TABLE IF NOT EXISTS medications (
    id            INTEGER PRIMARY KEY,
    practice_id   INTEGER NOT NULL,
    patient_id    TEXT NOT NULL,
    rxnorm_code   TEXT NOT NULL,
    name          TEXT NOT NULL,
    sig           TEXT NOT NULL,
    status        TEXT NOT NULL,                       -- active, stopped, completed
    start_date    TEXT NOT NULL,
    end_date      TEXT,
    prescriber_id INTEGER,
    encounter_id  INTEGER,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS medications_patient ON medications(patient_id);
CREATE INDEX IF NOT EXISTS medications_practice_updated ON medications(practice_id, updated_at);
CREATE TABLE IF NOT EXISTS allergies (
    id            INTEGER PRIMARY KEY,
    practice_id   INTEGER NOT NULL,
    patient_id    TEXT NOT NULL,
    allergen_code TEXT NOT NULL,                       -- RxNorm for drugs, SNOMED CT otherwise
    allergen_system TEXT NOT NULL,                     -- rxnorm, snomed
    allergen_name TEXT NOT NULL,
    category      TEXT NOT NULL,                       -- medication, food, environment
    reaction      TEXT NOT NULL,
    severity      TEXT NOT NULL,                       -- mild, moderate, severe
    status        TEXT NOT NULL,                       -- active, inactive
    recorded_date TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS allergies_patient ON allergies(patient_id);
CREATE TABLE IF NOT EXISTS lab_results (
    id             INTEGER PRIMARY KEY,
    practice_id    INTEGER NOT NULL,
    patient_id     TEXT NOT NULL,
    encounter_id   INTEGER,
    order_code     TEXT NOT NULL,                      -- the CPT of the billed test
    loinc_code     TEXT NOT NULL,
    name           TEXT NOT NULL,
    value_num      REAL,
    value_text     TEXT,
    unit           TEXT,
    reference_low  REAL,
    reference_high REAL,
    interpretation TEXT NOT NULL,                      -- N, H, L, A (HL7 v3 ObservationInterpretation)
    status         TEXT NOT NULL,                      -- preliminary, final
    collected_at   TEXT NOT NULL,                      -- UTC
    resulted_at    TEXT,                               -- UTC
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lab_results_patient ON lab_results(patient_id, collected_at);
CREATE INDEX IF NOT EXISTS lab_results_practice_updated ON lab_results(practice_id, updated_at);
CREATE TABLE IF NOT EXISTS immunizations (
    id              INTEGER PRIMARY KEY,
    practice_id     INTEGER NOT NULL,
    patient_id      TEXT NOT NULL,
    encounter_id    INTEGER,
    cvx_code        TEXT NOT NULL,
    cpt_code        TEXT NOT NULL,
    name            TEXT NOT NULL,
    lot_number      TEXT NOT NULL,
    administered_on TEXT NOT NULL,                     -- YYYY-MM-DD
    site            TEXT NOT NULL,                     -- LA, RA, LT, RT (HL7 0163)
    route           TEXT NOT NULL,                     -- IM, SC, IN (HL7 0162)
    status          TEXT NOT NULL,                     -- completed, entered-in-error
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS immunizations_patient ON immunizations(patient_id);
-- RCM ---------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS claims (
    id                   INTEGER PRIMARY KEY,
    claim_number         TEXT NOT NULL UNIQUE,         -- the portal's id, e.g. MG-000123
    practice_id          INTEGER NOT NULL,
    patient_id           TEXT NOT NULL,
    encounter_id         INTEGER,
    payer_id             INTEGER NOT NULL,
    insurance_policy_id  INTEGER,
    provider_id          INTEGER NOT NULL,
    location_id          INTEGER,
    service_from         TEXT NOT NULL,                -- YYYY-MM-DD
    service_to           TEXT NOT NULL,
    status               TEXT NOT NULL,                -- draft .. closed (see CLAIM_STATUSES)
    billed_cents         INTEGER NOT NULL,
    paid_cents           INTEGER NOT NULL DEFAULT 0,
    patient_resp_cents   INTEGER NOT NULL DEFAULT 0,
    diagnoses_json       TEXT NOT NULL DEFAULT '[]',   -- ICD-10-CM codes, pointer order
    attachments_json     TEXT NOT NULL DEFAULT '[]',   -- [{documentId, type}]
    scrub_errors_json    TEXT NOT NULL DEFAULT '[]',   -- [{field, message}]
    payer_control_number TEXT,                         -- assigned on acceptance
    submitted_at         TEXT,
    adjudicated_at       TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_patient ON claims(patient_id);
CREATE INDEX IF NOT EXISTS claims_practice_status ON claims(practice_id, status);
CREATE INDEX IF NOT EXISTS claims_practice_updated ON claims(practice_id, updated_at);
CREATE TABLE IF NOT EXISTS claim_lines (
    id                 INTEGER PRIMARY KEY,
    claim_id           INTEGER NOT NULL,
    line_number        INTEGER NOT NULL,
    charge_id          INTEGER NOT NULL,               -- the ledger charge (transactions.id)
    procedure_code     TEXT NOT NULL,
    modifiers_json     TEXT NOT NULL DEFAULT '[]',
    units              INTEGER NOT NULL,
    service_date       TEXT NOT NULL,
    billed_cents       INTEGER NOT NULL,
    diagnosis_pointers_json TEXT NOT NULL DEFAULT '[1]'
);
CREATE INDEX IF NOT EXISTS claim_lines_claim ON claim_lines(claim_id);
CREATE TABLE IF NOT EXISTS claim_status_history (
    id            INTEGER PRIMARY KEY,
    claim_id      INTEGER NOT NULL,
    status        TEXT NOT NULL,
    category_code TEXT,                                -- 277 category: A1, A2, A3, P1, F1, F2 ...
    note          TEXT NOT NULL DEFAULT '',
    at            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS claim_status_history_claim ON claim_status_history(claim_id, at);
CREATE TABLE IF NOT EXISTS payments (
    id             INTEGER PRIMARY KEY,
    practice_id    INTEGER NOT NULL,
    kind           TEXT NOT NULL,                      -- era (a payer's remittance), patient
    payer_id       INTEGER,                            -- era only
    patient_id     TEXT,                               -- patient only
    trace_number   TEXT NOT NULL,                      -- EFT trace or check number
    method         TEXT NOT NULL,                      -- ACH, CHK, card, cash
    payment_date   TEXT NOT NULL,                      -- YYYY-MM-DD
    amount_cents   INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_practice_updated ON payments(practice_id, updated_at);
CREATE TABLE IF NOT EXISTS remittances (              -- one claim on an ERA (835 CLP)
    id                 INTEGER PRIMARY KEY,
    payment_id         INTEGER NOT NULL,
    practice_id        INTEGER NOT NULL,
    claim_id           INTEGER NOT NULL,
    claim_status_code  TEXT NOT NULL,                  -- 835 CLP02: 1, 2, 4, 22 ...
    billed_cents       INTEGER NOT NULL,
    paid_cents         INTEGER NOT NULL,
    patient_resp_cents INTEGER NOT NULL,
    received_at        TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS remittances_claim ON remittances(claim_id);
CREATE INDEX IF NOT EXISTS remittances_practice_updated ON remittances(practice_id, updated_at);
CREATE TABLE IF NOT EXISTS remittance_lines (          -- 835 SVC: billed = paid + adjustments
    id            INTEGER PRIMARY KEY,
    remittance_id INTEGER NOT NULL,
    claim_line_id INTEGER NOT NULL,
    billed_cents  INTEGER NOT NULL,
    allowed_cents INTEGER NOT NULL,
    paid_cents    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS remittance_lines_remittance ON remittance_lines(remittance_id);
CREATE TABLE IF NOT EXISTS adjustments (               -- 835 CAS
    id                  INTEGER PRIMARY KEY,
    remittance_line_id  INTEGER NOT NULL,
    group_code          TEXT NOT NULL,                 -- CO, PR, OA, PI
    carc                TEXT NOT NULL,
    rarc                TEXT,
    amount_cents        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS adjustments_line ON adjustments(remittance_line_id);
CREATE TABLE IF NOT EXISTS statements (
    id               INTEGER PRIMARY KEY,
    statement_number TEXT NOT NULL UNIQUE,
    practice_id      INTEGER NOT NULL,
    patient_id       TEXT NOT NULL,
    statement_date   TEXT NOT NULL,                    -- YYYY-MM-DD
    due_date         TEXT NOT NULL,
    balance_cents    INTEGER NOT NULL,
    aging_json       TEXT NOT NULL,                    -- {current, over30, over60, over90, over120}
    lines_json       TEXT NOT NULL,                    -- [{chargeId, serviceDate, code, amount, balance}]
    status           TEXT NOT NULL,                    -- sent, paid, collections
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS statements_patient ON statements(patient_id, statement_date);
CREATE INDEX IF NOT EXISTS statements_practice_updated ON statements(practice_id, updated_at);
-- Portal sessions and the message outbox ----------------------------------------------------------
CREATE TABLE IF NOT EXISTS portal_sessions (
    id             TEXT PRIMARY KEY,                   -- the session cookie's value
    user_id        INTEGER NOT NULL,
    csrf_token     TEXT NOT NULL,
    state          TEXT NOT NULL,                      -- mfa_pending, active, ended
    mfa_method     TEXT,                               -- totp, sms, email
    mfa_code       TEXT,                               -- the code sent by SMS or e-mail
    mfa_attempts   INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    ended_reason   TEXT
);
CREATE INDEX IF NOT EXISTS portal_sessions_user ON portal_sessions(user_id, created_at);
CREATE TABLE IF NOT EXISTS portal_user_state (
    user_id           INTEGER PRIMARY KEY,
    failed_attempts   INTEGER NOT NULL DEFAULT 0,
    locked_until      TEXT,
    last_totp_step    INTEGER NOT NULL DEFAULT 0,      -- a TOTP code is good once
    force_mfa         INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS portal_devices (            -- remembered devices that skip MFA
    token      TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox (                    -- SMS and e-mail the tenant "sent"
    id         INTEGER PRIMARY KEY,
    channel    TEXT NOT NULL,                          -- sms, email
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    body       TEXT NOT NULL,
    code       TEXT,                                   -- the one-time code it carries
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS change_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    practice_id INTEGER,
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    source      TEXT NOT NULL                          -- 'v2', 'clock', 'portal', 'control'
);
CREATE TABLE IF NOT EXISTS id_sequences (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

# The tables a ground-truth dump can stream, with the column that orders them.
TRUTH_TABLES: dict[str, str] = {
    "practices": "id",
    "providers": "id",
    "locations": "id",
    "resources": "id",
    "visit_reasons": "id",
    "appointment_templates": "id",
    "appointment_blockouts": "id",
    "appointment_statuses": "id",
    "cancellation_reasons": "id",
    "payers": "id",
    "patients": "internal_id",
    "insurance_profiles": "id",
    "insurance_policies": "id",
    "appointments": "internal_id",
    "appointment_confirmations": "id",
    "transactions": "id",
    "eligibility_requests": "id",
    "documents": "id",
    "fhir_ids": "id",
    "encounters": "id",
    "encounter_addenda": "id",
    "vitals": "id",
    "problems": "id",
    "medications": "id",
    "allergies": "id",
    "lab_results": "id",
    "immunizations": "id",
    "claims": "id",
    "claim_lines": "id",
    "claim_status_history": "id",
    "payments": "id",
    "remittances": "id",
    "remittance_lines": "id",
    "adjustments": "id",
    "statements": "id",
    "change_log": "seq",
}


class TenantDB:
    """One SQLite connection shared by the tenant, serialized by a lock.

    The server runs on one event loop, so the lock only matters when a test or the CLI touches
    the database from another thread.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else ":memory:"
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        if self.path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        indexed = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'patient_names'"
        ).fetchone()
        self.conn.executescript(SCHEMA)
        if indexed is None:  # a tenant saved before the name index: fill it from its patients
            self.conn.execute("INSERT INTO patient_names(patient_names) VALUES ('rebuild')")
        self.set_meta("schema_version", str(SCHEMA_VERSION), only_if_missing=True)

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one transaction: all of it lands, or none of it."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        """Return the first row of a query, or None."""
        with self.lock:
            row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
            return row

    def all(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Return every row of a query."""
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> Any:
        """Return the first column of the first row, or None."""
        row = self.one(sql, params)
        return None if row is None else row[0]

    def get_meta(self, key: str) -> str | None:
        """Read one value of the meta table."""
        value = self.scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str, *, only_if_missing: bool = False) -> None:
        """Write one value of the meta table."""
        verb = "INSERT OR IGNORE" if only_if_missing else "INSERT OR REPLACE"
        with self.lock:
            self.conn.execute(f"{verb} INTO meta(key, value) VALUES (?, ?)", (key, value))

    def next_id(self, name: str, conn: sqlite3.Connection | None = None) -> int:
        """Allocate the next integer id of a named sequence (call inside a transaction)."""
        c = conn or self.conn
        with self.lock:
            c.execute(
                "INSERT INTO id_sequences(name, value) VALUES (?, 1) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1",
                (name,),
            )
            row = c.execute("SELECT value FROM id_sequences WHERE name = ?", (name,)).fetchone()
            return int(row[0])

    def update_logged(
        self,
        table: str,
        row_id: str,
        columns: dict[str, Any],
        *,
        at: str,
        practice_id: int,
        entity: str,
        action: str,
        source: str = "v2",
    ) -> None:
        """Update one row by ``id`` and log the change, in one transaction.

        ``table`` and the column names are literals of the caller; values are bound.
        """
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE {table} SET {assignments} WHERE id = ?", (*columns.values(), row_id)
            )
            self.log_change(
                conn,
                at=at,
                practice_id=practice_id,
                entity=entity,
                entity_id=row_id,
                action=action,
                source=source,
            )

    def log_change(
        self,
        conn: sqlite3.Connection,
        *,
        at: str,
        practice_id: int | None,
        entity: str,
        entity_id: str | int,
        action: str,
        source: str,
    ) -> None:
        """Append one entry to the change log (ground truth for sync tests)."""
        conn.execute(
            "INSERT INTO change_log(at, practice_id, entity, entity_id, action, source) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (at, practice_id, entity, str(entity_id), action, source),
        )
