"""The synthetic practice: deterministic from a seed, streamed into the tenant's SQLite database.

Memory stays bounded at any size: rows are written in batches, and everything an appointment or
a ledger line needs about its patient (GUID, coverage, copay) is re-derived from a per-patient
seeded RNG instead of being kept in memory.

Order of generation (each step depends only on the seed and the earlier steps):
reference data (practices, users, OAuth clients, payers, statuses, reasons) -> per practice:
providers, locations, resources, visit reasons, templates, blockouts -> patients with
insurance -> a day-by-day schedule of appointments, with the ledger of each visit.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mimesis import Address, Person
from mimesis.enums import Gender
from mimesis.locales import Locale

from carebridge.domain.npi import npi_from_base
from carebridge.sandbox import codes, personas
from carebridge.sandbox.config import SandboxConfig
from carebridge.sandbox.db import TenantDB

Progress = Callable[[str, int, int], None]
BATCH = 5000
SLOT_MINUTES = 20
WINDOWS = ((time(8, 0), time(12, 0)), (time(13, 0), time(17, 0)))
FUTURE_DAYS = 60
STATUS_CODES = (
    ("P", "Pending"),
    ("I", "Checked In"),
    ("O", "Checked Out"),
    ("C", "Cancelled"),
    ("R", "Rescheduled"),
    ("N", "No Show"),
)
PRIVILEGES_READ = (
    "patients.read",
    "appointments.read",
    "scheduling.read",
    "billing.read",
    "documents.read",
    "practice.read",
)
DOC_SOURCES = ("Progress note", "Procedure Note", "History and Physical", "Consult note")


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _secret(seed: int, name: str) -> str:
    return hashlib.sha256(f"carebridge-sandbox:{seed}:{name}".encode()).hexdigest()[:40]


def _guid(seed: int, kind: str, number: int) -> str:
    rng = random.Random(f"{seed}:{kind}:{number}")
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True)
class PracticePlan:
    """What the generator decided for one practice."""

    id: int
    guid: str
    name: str
    tz: str
    fhir_code: str
    pediatric: bool
    first_patient: int  # internal ids [first_patient, first_patient + patients)
    patients: int


@dataclass(frozen=True)
class Coverage:
    """A patient's coverage, re-derivable from the seed at any time."""

    payer: codes.PayerSeed | None
    copay_cents: int
    deductible_cents: int
    coinsurance_pct: int


class _Batcher:
    """Collects rows per statement and writes them in batches."""

    def __init__(self, db: TenantDB) -> None:
        self.db = db
        self.pending: dict[str, list[tuple[Any, ...]]] = {}

    def add(self, sql: str, row: tuple[Any, ...]) -> None:
        rows = self.pending.setdefault(sql, [])
        rows.append(row)
        if len(rows) >= BATCH:
            self.flush_one(sql)

    def flush_one(self, sql: str) -> None:
        rows = self.pending.pop(sql, [])
        if rows:
            with self.db.transaction() as conn:
                conn.executemany(sql, rows)

    def flush(self) -> None:
        for sql in list(self.pending):
            self.flush_one(sql)


def _insert(table: str, columns: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    marks = ", ".join("?" for _ in names)
    return f"INSERT INTO {table}({', '.join(names)}) VALUES ({marks})"


SQL_PATIENT = _insert(
    "patients",
    "id, internal_id, practice_id, chart_number, account_number, first_name, last_name, "
    "middle_initial, dob, gender_code, ssn, email, phone_digits, drivers_license_number, status, "
    "primary_location_id, primary_provider_id, last_seen_date, data_json, created_at, updated_at",
)
SQL_PROFILE = _insert(
    "insurance_profiles",
    "id, patient_id, name, self_pay, is_default, responsible_party_relationship, "
    "responsible_party_json, created_at, updated_at",
)
SQL_POLICY = _insert(
    "insurance_policies",
    "id, profile_id, patient_id, policy_priority, payer_id, plan_id, insurance_policy_type, "
    "member_number, policy_number, group_number, group_name, effective_from, effective_to, "
    "co_payment_cents, deductible_cents, coinsurance_pct, out_of_pocket_max_cents, "
    "requires_authorization, insured_json, created_at, updated_at",
)
SQL_APPOINTMENT = _insert(
    "appointments",
    "id, internal_id, practice_id, patient_id, provider_id, location_id, resource_id, "
    "nature_of_visit_id, appointment_status_id, status_code, start_time, end_time, "
    "reason_for_visit, comments, cancellation_reason_id, cancellation_comments, arrived_at, "
    "departed_at, is_confirmed, preferred_confirmation_method, created_by_application, "
    "updated_by_application, created_at, updated_at",
)
SQL_CONFIRMATION = _insert(
    "appointment_confirmations",
    "appointment_id, date_confirmed, communication_method, communication_method_description, "
    "communication_outcome, comments, created_at, updated_at",
)
SQL_TRANSACTION = _insert(
    "transactions",
    "id, practice_id, patient_id, transaction_type, transaction_status, balance_type, "
    "amount_cents, balance_cents, posting_date, service_date, location_id, provider_id, "
    "attending_provider_id, units, description, procedure_code, diagnosis_codes_json, "
    "appointment_id, charge_id, billed, created_at, updated_at",
)
SQL_DOCUMENT = _insert(
    "documents",
    "practice_id, patient_id, name, description, document_source_name, document_date, "
    "content_type, size_bytes, created_at, updated_at",
)


class Generator:
    """Writes one synthetic tenant; use :func:`generate`."""

    def __init__(
        self, db: TenantDB, config: SandboxConfig, anchor: date, progress: Progress | None
    ) -> None:
        self.db = db
        self.cfg = config
        self.seed = config.seed
        self.anchor = anchor
        self.progress = progress or (lambda *_: None)
        self.rng = random.Random(f"{self.seed}:reference")
        self.out = _Batcher(db)
        self.created = _z(datetime.combine(anchor - timedelta(days=4 * 365), time(12), UTC))
        self.plans: list[PracticePlan] = []
        # per practice: [(provider_id, resource_id, location_id)], visit reasons, status ids
        self.columns: dict[int, list[tuple[int, int, int]]] = {}
        self.reasons: dict[int, list[tuple[int, int, str]]] = {}
        self.status_ids: dict[int, dict[str, int]] = {}
        self.blocked: set[tuple[int, date]] = set()
        self.txn_id = 0
        self.appt_id = 0

    # --- reference data ---------------------------------------------------------------------

    def run(self) -> None:
        self.reference()
        for plan in self.plans:
            self.practice(plan)
        for plan in self.plans:
            self.patients(plan)
        for plan in self.plans:
            self.schedule(plan)
        self.out.flush()

    def reference(self) -> None:
        total = max(self.cfg.patients, 0)
        count = max(self.cfg.practices, 1)
        share, extra = divmod(total, count)
        known = {
            1: (
                personas.PRACTICE_GUID,
                personas.PRACTICE_NAME,
                personas.PRACTICE_TZ,
                personas.PRACTICE_FHIR_CODE,
                False,
            ),
            2: (
                personas.PRACTICE2_GUID,
                personas.PRACTICE2_NAME,
                personas.PRACTICE2_TZ,
                personas.PRACTICE2_FHIR_CODE,
                True,
            ),
        }
        first = 1
        for pid in range(1, count + 1):
            guid, name, tz, fhir, peds = known.get(
                pid,
                (
                    _guid(self.seed, "practice", pid),
                    f"Lakeside Clinic {pid}",
                    "America/Denver",
                    f"LKS{pid}",
                    False,
                ),
            )
            n = share + (extra if pid == 1 else 0)
            self.plans.append(PracticePlan(pid, guid, name, tz, fhir, peds, first, n))
            first += n
        with self.db.transaction() as conn:
            for plan in self.plans:
                conn.execute(
                    "INSERT INTO practices VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        plan.id,
                        plan.guid,
                        plan.name,
                        plan.tz,
                        npi_from_base(100000000 + plan.id),
                        f"36-{4100000 + plan.id}",
                        plan.fhir_code,
                        '{"line1": "100 Main St", "city": "Springfield", "state_code": "IL", '
                        '"zip_code": "62701"}',
                    ),
                )
                uid = personas.USER_ID if plan.id == 1 else 9000 + plan.id
                username = (
                    personas.USERNAME
                    if plan.id == 1
                    else personas.USERNAME2
                    if plan.id == 2
                    else f"staff{plan.id}@sandbox.example"
                )
                password = (
                    personas.PASSWORD if plan.id == 1 else _secret(self.seed, f"pw{plan.id}")[:16]
                )
                conn.execute(
                    "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        uid,
                        plan.id,
                        username,
                        password,
                        "Robin",
                        f"Staff{plan.id}",
                        username,
                        f"+1555010{plan.id:04d}",
                        personas.TOTP_SEED if plan.id == 1 else _b32(self.seed, plan.id),
                    ),
                )
            from carebridge.sandbox.tenant import ALL_PRIVILEGES

            conn.execute(
                "INSERT INTO oauth_clients VALUES (?, ?, ?, ?, ?, ?)",
                (
                    personas.CLIENT_ID,
                    _secret(self.seed, "client"),
                    personas.APP_ID,
                    "carebridge sandbox app",
                    personas.REDIRECT_URI,
                    _json(list(ALL_PRIVILEGES)),
                ),
            )
            conn.execute(
                "INSERT INTO oauth_clients VALUES (?, ?, ?, ?, ?, ?)",
                (
                    personas.LIMITED_CLIENT_ID,
                    _secret(self.seed, "limited"),
                    personas.LIMITED_APP_ID,
                    "carebridge read-only app",
                    personas.REDIRECT_URI,
                    _json(list(PRIVILEGES_READ)),
                ),
            )
            for p in codes.PAYERS:
                plans = [
                    {
                        "id": p.id * 10 + 1,
                        "name": f"{p.name} {p.policy_type.upper()}",
                        "insurance_policy_type": p.policy_type,
                    }
                ]
                conn.execute(
                    "INSERT INTO payers(id, name, payer_code, kind, pending, address_json, "
                    "phones_json, plans_json, adjudication_lag_days, denial_rate) "
                    "VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
                    (
                        p.id,
                        p.name,
                        p.payer_code,
                        p.kind,
                        _json(
                            {
                                "line1": f"PO Box {1000 + p.id}",
                                "city": "Chicago",
                                "state_code": "IL",
                                "zip_code": "60601",
                            }
                        ),
                        _json([{"phone_number": f"800-555-{p.id:04d}", "phone_type": "B"}]),
                        _json(plans),
                        p.lag_days,
                        p.denial_rate,
                    ),
                )
            reasons = (
                ("4", "Patient Cancelled", 1),
                ("5", "Provider Unavailable", 2),
                ("6", "Weather", 3),
                ("7", "Rescheduled by Patient", 4),
            )
            for rid, (code, name, sort) in zip((4, 5, 6, 7), reasons, strict=True):
                conn.execute(
                    "INSERT INTO cancellation_reasons VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?)",
                    (rid, code, name, name, int(rid == 4), sort, self.created, self.created),
                )
            for plan in self.plans:
                conn.execute(
                    "INSERT INTO cancellation_reasons VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                    (
                        100 + plan.id,
                        plan.id,
                        "INS",
                        "Insurance Issue",
                        "Coverage could not be verified",
                        10,
                        self.created,
                        self.created,
                    ),
                )
                ids = {}
                for n, (code, name) in enumerate(STATUS_CODES, start=1):
                    sid = n if plan.id == 1 else plan.id * 10 + n
                    ids[code] = sid
                    conn.execute(
                        "INSERT INTO appointment_statuses VALUES (?, ?, ?, ?)",
                        (sid, plan.id, code, name),
                    )
                self.status_ids[plan.id] = ids

    def practice(self, plan: PracticePlan) -> None:
        rng = random.Random(f"{self.seed}:practice:{plan.id}")
        person = Person(Locale.EN, seed=rng.randrange(2**31))
        n_providers = max(3, math.ceil(plan.patients / 1200))
        loc_id = personas.LOCATION_ID if plan.id == 1 else 56000 + plan.id * 10
        tz = ZoneInfo(plan.tz)
        columns: list[tuple[int, int, int]] = []
        with self.db.transaction() as conn:
            for lid, name, pos in (
                (
                    loc_id,
                    f"{plan.name.split()[0]} Main Clinic"
                    if plan.id != 1
                    else personas.LOCATION_NAME,
                    "11",
                ),
                (loc_id + 1, f"{plan.name.split()[0]} Telehealth", "02"),
            ):
                conn.execute(
                    "INSERT INTO locations VALUES (?, ?, ?, ?, ?, ?, 1, ?, 'A', ?, ?)",
                    (
                        lid,
                        plan.id,
                        name,
                        name[:4].upper(),
                        npi_from_base(200000000 + lid),
                        pos,
                        int(lid == loc_id),
                        _json(
                            {
                                "line1": f"{100 + plan.id} Oak Ave",
                                "line2": "Suite 200",
                                "line3": "",
                                "city": "Springfield",
                                "zip_code": "62701",
                                "county_name": "Sangamon",
                                "latitude": "39.7817",
                                "longitude": "-89.6501",
                                "state_name": "Illinois",
                                "state_code": "IL",
                            }
                        ),
                        _json(
                            [
                                {
                                    "phone_number": f"217-555-{lid % 10000:04d}",
                                    "phone_type": "B",
                                    "phone_ext": "",
                                    "is_primary": True,
                                },
                                {
                                    "phone_number": f"217-555-{(lid + 1) % 10000:04d}",
                                    "phone_type": "F",
                                    "phone_ext": "",
                                    "is_primary": False,
                                },
                            ]
                        ),
                    ),
                )
            taxonomies = (
                ["208000000X", "363LP0200X"]
                if plan.pediatric
                else ["207Q00000X", "207R00000X", "363LF0000X", "363A00000X"]
            )
            for i in range(n_providers):
                if plan.id == 1 and i == 0:
                    prov, res = personas.PROVIDER_ID, personas.RESOURCE_ID
                    first, last, tax = (
                        personas.PROVIDER_FIRST,
                        personas.PROVIDER_LAST,
                        personas.PROVIDER_TAXONOMY,
                    )
                else:
                    prov, res = 41000 + plan.id * 1000 + i, 38000 + plan.id * 1000 + i
                    first, last = person.first_name(), person.last_name()
                    tax = taxonomies[i % len(taxonomies)]
                npi = (
                    personas.PROVIDER_NPI
                    if prov == personas.PROVIDER_ID
                    else npi_from_base(120000000 + prov)
                )
                cred = (
                    "NP" if tax.startswith("363L") else "PA-C" if tax.startswith("363A") else "MD"
                )
                conn.execute(
                    "INSERT INTO providers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'A')",
                    (
                        prov,
                        plan.id,
                        npi,
                        first,
                        last,
                        cred,
                        f"provider{prov}@sandbox.example",
                        f"217-555-{prov % 10000:04d}",
                        tax,
                        codes.TAXONOMIES[tax],
                    ),
                )
                conn.execute(
                    "INSERT INTO resources VALUES (?, ?, ?, ?, ?, 'A', ?, 1, 'P', ?, ?, ?, ?, ?)",
                    (
                        res,
                        plan.id,
                        f"Dr. {last}" if cred == "MD" else f"{first} {last}, {cred}",
                        f"R{res}",
                        f"Schedule of provider {prov}",
                        i + 1,
                        prov,
                        self.created,
                        self.created,
                        personas.USER_ID,
                        personas.USER_ID,
                    ),
                )
                columns.append((prov, res, loc_id))
            if plan.id == 1:
                conn.execute(
                    "INSERT INTO providers VALUES (?, 1, ?, 'Former', 'Provider', 'MD', ?, ?, "
                    "'207Q00000X', 'Family Medicine', 'I')",
                    (
                        personas.INACTIVE_PROVIDER_ID,
                        npi_from_base(120040499),
                        "former@sandbox.example",
                        "217-555-0499",
                    ),
                )
                conn.execute(
                    "INSERT INTO resources VALUES (?, 1, 'Retired Room', 'RR', 'Retired', 'I', "
                    "99, 0, 'P', NULL, ?, ?, ?, ?)",
                    (
                        personas.INACTIVE_RESOURCE_ID,
                        self.created,
                        self.created,
                        personas.USER_ID,
                        personas.USER_ID,
                    ),
                )
            if plan.id == 1:
                reasons = [
                    (v.id, v.duration, v.procedure_code, v.name, v.description)
                    for v in personas.VISIT_REASONS
                ]
            else:
                base = 120000 + plan.id * 100
                reasons = [
                    (base + 1, 40, "99203", "NEW PATIENT VISIT", "New patient visit"),
                    (base + 2, 20, "99213", "SICK VISIT", "Same-day sick visit"),
                    (base + 3, 40, "99393", "WELL CHILD VISIT", "Preventive visit"),
                    (base + 4, 15, "99212", "FOLLOW UP VISIT", "Short follow-up"),
                ]
            for vid, duration, code, name, desc in reasons:
                conn.execute(
                    "INSERT INTO visit_reasons VALUES (?, ?, ?, ?, ?, 1, 'A', ?)",
                    (vid, plan.id, name, desc, duration, code),
                )
                for _, res, _ in columns:
                    conn.execute("INSERT INTO resource_visit_reasons VALUES (?, ?)", (res, vid))
            if plan.id == 1:
                conn.execute(
                    "INSERT INTO visit_reasons VALUES (?, 1, 'LEGACY PHYSICAL', 'Retired', 30, 0, "
                    "'I', '99396')",
                    (personas.INACTIVE_VISIT_REASON,),
                )
            self.reasons[plan.id] = [(vid, duration, code) for vid, duration, code, _, _ in reasons]
            vr_json = _json([{"id": vid, "max_appointments_allowed": 1} for vid, *_ in reasons])
            effective = (self.anchor - timedelta(days=4 * 365)).isoformat()
            for prov, res, lid in columns:
                for label, (start, end) in zip(("AM", "PM"), WINDOWS, strict=True):
                    conn.execute(
                        "INSERT INTO appointment_templates(practice_id, name, description, "
                        "location_ids_json, resource_ids_json, visit_reasons_json, days, "
                        "effective_from, effective_to, start_at, end_at, max_appointments_allowed)"
                        " VALUES (?, ?, ?, ?, ?, ?, '0111110', ?, NULL, ?, ?, 1)",
                        (
                            plan.id,
                            f"{label} clinic {res}",
                            f"Weekday {label} clinic of {prov}",
                            _json([lid]),
                            _json([res]),
                            vr_json,
                            effective,
                            start.strftime("%H:%M"),
                            end.strftime("%H:%M"),
                        ),
                    )
            # Thanksgiving-style closure two days after the anchor, for every column.
            holiday = self.anchor + timedelta(days=2)
            conn.execute(
                "INSERT INTO appointment_blockouts(practice_id, name, description, "
                "location_ids_json, resource_ids_json, days, start_date, end_date, start_at, "
                "end_at, recurrence_id) VALUES (?, 'Office closed', 'Holiday closure', ?, ?, "
                "'1111111', ?, ?, '00:00', '23:59', NULL)",
                (
                    plan.id,
                    _json([loc_id]),
                    _json([r for _, r, _ in columns]),
                    holiday.isoformat(),
                    holiday.isoformat(),
                ),
            )
            # A recurring staff meeting: Wednesday 12:00-13:00 is already lunch, so use 16:00-17:00.
            conn.execute(
                "INSERT INTO appointment_blockouts(practice_id, name, description, "
                "location_ids_json, resource_ids_json, days, start_date, end_date, start_at, "
                "end_at, recurrence_id) VALUES (?, 'Staff meeting', 'Weekly staff meeting', ?, ?, "
                "'0001000', ?, ?, '16:00', '17:00', 1)",
                (
                    plan.id,
                    _json([loc_id]),
                    _json([r for _, r, _ in columns]),
                    (self.anchor - timedelta(days=4 * 365)).isoformat(),
                    (self.anchor + timedelta(days=365)).isoformat(),
                ),
            )
        self.columns[plan.id] = columns
        self.blocked.update((res, self.anchor + timedelta(days=2)) for _, res, _ in columns)
        del tz

    # --- patients ---------------------------------------------------------------------------

    def coverage(self, internal_id: int, age: int, pediatric: bool) -> Coverage:
        rng = random.Random(f"{self.seed}:coverage:{internal_id}")
        roll = rng.random()
        payers = {p.id: p for p in codes.PAYERS}
        if roll < 0.05:
            return Coverage(None, 0, 0, 0)
        if age >= 65:
            payer = payers[82] if rng.random() < 0.7 else payers[81]
        elif (age < 19 or pediatric) and roll < 0.35:
            payer = payers[83]
        else:
            payer = payers[rng.choice((77, 77, 78, 78, 79, 80, 80, 84))]
        copay = (
            0 if payer.kind in ("medicaid", "medicare") else rng.choice((2000, 2500, 3000, 4000))
        )
        deductible = rng.choice((50000, 100000, 150000, 250000)) if payer.kind != "medicaid" else 0
        coins = 20 if payer.kind == "medicare" else rng.choice((0, 10, 20))
        return Coverage(payer, copay, deductible, coins)

    def dob_of(self, plan: PracticePlan, internal_id: int) -> date:
        """A patient's date of birth, re-derivable from the seed."""
        if plan.id == 1 and internal_id <= len(personas.FAMILY):
            return personas.FAMILY[internal_id - 1].dob
        rng = random.Random(f"{self.seed}:dob:{internal_id}")
        max_age = 18 if plan.pediatric else 90
        return self.anchor - timedelta(days=rng.randrange(60, max_age * 365))

    def patient_guid(self, plan: PracticePlan, internal_id: int) -> str:
        if plan.id == 1 and internal_id <= len(personas.FAMILY):
            return personas.FAMILY[internal_id - 1].id
        return _guid(self.seed, "patient", internal_id)

    def patients(self, plan: PracticePlan) -> None:
        rng = random.Random(f"{self.seed}:patients:{plan.id}")
        person = Person(Locale.EN, seed=rng.randrange(2**31))
        address = Address(Locale.EN, seed=rng.randrange(2**31))
        columns = self.columns[plan.id]
        for n in range(plan.patients):
            iid = plan.first_patient + n
            persona = personas.FAMILY[iid - 1] if plan.id == 1 and iid <= 3 else None
            if persona is not None:
                first, last, dob, gender = (
                    persona.first_name,
                    persona.last_name,
                    persona.dob,
                    persona.gender_code,
                )
            else:
                gender = "F" if rng.random() < 0.52 else "M"
                first = person.first_name(gender=Gender.FEMALE if gender == "F" else Gender.MALE)
                last = person.last_name()
                dob = self.dob_of(plan, iid)
            age = (self.anchor - dob).days // 365
            guid = self.patient_guid(plan, iid)
            phone = f"{rng.randrange(201, 990)}-555-{rng.randrange(10000):04d}"
            prov, _, loc = columns[iid % len(columns)]
            data = {
                "prefix": "",
                "suffix": "",
                "marital_status_code": "M" if age > 30 else "S",
                "language_code": "spa" if rng.random() < 0.08 else "eng",
                "race_code": rng.choice(("2106-3", "2054-5", "2028-9", "1002-5", "")),
                "ethnicity_code": "H" if rng.random() < 0.15 else "N",
                "employment_status_code": "E" if 18 <= age < 65 else ("R" if age >= 65 else "N"),
                "student_status_code": "F" if 5 <= age < 18 else "N",
                "referring_physician_npi": "",
                "date_of_death": None,
                "addresses": [
                    {
                        "line1": f"{address.street_number()} {address.street_name()} "
                        f"{address.street_suffix()}",
                        "line2": "",
                        "city": address.city(),
                        "state_code": "IL",
                        "zip_code": f"62{rng.randrange(1000):03d}",
                        "country_id": 225,
                        "is_primary": True,
                    }
                ],
                "phones": [
                    {
                        "phone_number": phone,
                        "phone_type_code": "C",
                        "extension": "",
                        "is_primary": True,
                    }
                ],
                "responsible_party": {"relationship": "self" if age >= 18 else "mother"},
            }
            created = _z(
                datetime.combine(
                    self.anchor - timedelta(days=rng.randrange(30, 1400)), time(14), UTC
                )
            )
            email = f"{first.lower()}.{last.lower()}{iid}@example.com"
            self.out.add(
                SQL_PATIENT,
                (
                    guid,
                    iid,
                    plan.id,
                    f"{plan.fhir_code[:2]}{iid:06d}",
                    f"A{plan.id}{iid:07d}",
                    first,
                    last,
                    chr(65 + rng.randrange(26)),
                    dob.isoformat(),
                    gender,
                    f"9{rng.randrange(10, 99)}-{rng.randrange(10, 99)}-{rng.randrange(10000):04d}",
                    email,
                    phone.replace("-", ""),
                    f"D{rng.randrange(10**8):08d}",
                    "A",
                    loc,
                    prov,
                    None,
                    _json(data),
                    created,
                    created,
                ),
            )
            cov = self.coverage(iid, age, plan.pediatric)
            self.out.add(
                SQL_PROFILE,
                (
                    iid,
                    guid,
                    "Self Pay" if cov.payer is None else cov.payer.kind.title(),
                    int(cov.payer is None),
                    1,
                    "self" if age >= 18 else "mother",
                    "{}",
                    created,
                    created,
                ),
            )
            if cov.payer is not None:
                member = (
                    persona.member_number if persona else f"{cov.payer.payer_code[:2]}{iid:09d}"
                )
                payer = cov.payer
                ends = (
                    (self.anchor + timedelta(days=rng.randrange(5, 90))).isoformat()
                    if rng.random() < 0.03
                    else None
                )
                self.out.add(
                    SQL_POLICY,
                    (
                        iid,
                        iid,
                        guid,
                        1,
                        payer.id,
                        payer.id * 10 + 1,
                        payer.policy_type,
                        member,
                        "",
                        f"G{rng.randrange(10**5):05d}",
                        "" if payer.kind != "commercial" else "ACME",
                        (self.anchor - timedelta(days=rng.randrange(200, 1500))).isoformat(),
                        ends,
                        cov.copay_cents,
                        cov.deductible_cents,
                        cov.coinsurance_pct,
                        cov.deductible_cents * 4 or None,
                        0,
                        _json(
                            {
                                "first_name": first,
                                "last_name": last,
                                "date_of_birth": dob.isoformat(),
                                "gender": gender,
                                "relation_to_patient": "self",
                            }
                        ),
                        created,
                        created,
                    ),
                )
            if n % 2000 == 0:
                self.progress(f"patients p{plan.id}", n, plan.patients)
        self.out.flush()

    # --- schedule and ledger ------------------------------------------------------------------

    def schedule(self, plan: PracticePlan) -> None:
        if plan.patients == 0:
            return
        columns = self.columns[plan.id]
        reasons = self.reasons[plan.id]
        status = self.status_ids[plan.id]
        tz = ZoneInfo(plan.tz)
        slots_per_day = (
            sum(
                (datetime.combine(self.anchor, e) - datetime.combine(self.anchor, s)).seconds // 60
                for s, e in WINDOWS
            )
            // SLOT_MINUTES
        )
        weekly = len(columns) * slots_per_day * 5 / 7
        target = plan.patients * self.cfg.appointments_per_patient
        future = weekly * FUTURE_DAYS * 0.3
        # 0.55 is the realised bookings per 20-minute grid slot in the past: 75% occupancy, less
        # the slots that 40-minute visits consume twice.
        history = max(30, math.ceil(max(target - future, 0) / (weekly * 0.55)))
        rng = random.Random(f"{self.seed}:schedule:{plan.id}")
        now = datetime.combine(self.anchor, time(9), tz)
        start_day = self.anchor - timedelta(days=history)
        total_days = history + FUTURE_DAYS
        for offset in range(total_days + 1):
            day = start_day + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            delta = (day - self.anchor).days
            occupancy = 0.75 if delta <= 0 else max(0.1, 0.7 - 0.01 * delta)
            for prov, res, loc in columns:
                if (res, day) in self.blocked:
                    continue
                for w_start, w_end in WINDOWS:
                    cursor = datetime.combine(day, w_start, tz)
                    end_window = datetime.combine(day, w_end, tz)
                    if day.weekday() == 2 and w_start.hour == 13:
                        end_window = datetime.combine(day, time(16), tz)  # staff meeting
                    while cursor + timedelta(minutes=SLOT_MINUTES) <= end_window:
                        vid, duration, code = reasons[rng.randrange(len(reasons))]
                        length = timedelta(minutes=duration)
                        if cursor + length > end_window or rng.random() >= occupancy:
                            cursor += timedelta(minutes=SLOT_MINUTES)
                            continue
                        self.appointment(
                            plan, rng, status, now, cursor, length, prov, res, loc, vid, code
                        )
                        steps = math.ceil(duration / SLOT_MINUTES)
                        cursor += timedelta(minutes=SLOT_MINUTES * steps)
            if offset % 30 == 0:
                self.progress(f"schedule p{plan.id}", offset, total_days)
        self.out.flush()

    def appointment(
        self,
        plan: PracticePlan,
        rng: random.Random,
        status: dict[str, int],
        now: datetime,
        start: datetime,
        length: timedelta,
        prov: int,
        res: int,
        loc: int,
        vid: int,
        code: str,
    ) -> None:
        self.appt_id += 1
        iid = plan.first_patient + rng.randrange(plan.patients)
        patient = self.patient_guid(plan, iid)
        guid = _guid(self.seed, "appointment", self.appt_id)
        end = start + length
        created = start - timedelta(days=rng.randrange(1, 45), hours=rng.randrange(8))
        if end <= now:
            roll = rng.random()
            code_ = "O" if roll < 0.86 else "C" if roll < 0.94 else "N" if roll < 0.98 else "R"
        elif start <= now:
            code_ = "I"
        else:
            code_ = "P"
        arrived = _z(start - timedelta(minutes=rng.randrange(2, 15))) if code_ in "OI" else None
        departed = _z(end + timedelta(minutes=rng.randrange(0, 10))) if code_ == "O" else None
        updated = departed or arrived or _z(created + timedelta(hours=1))
        if code_ == "C":
            updated = _z(start - timedelta(hours=rng.randrange(2, 48)))
        confirmed = int(code_ in "OIP" and rng.random() < 0.45)
        self.out.add(
            SQL_APPOINTMENT,
            (
                guid,
                self.appt_id,
                plan.id,
                patient,
                prov,
                loc,
                res,
                vid,
                status[code_],
                code_,
                _z(start),
                _z(end),
                "Follow-up" if vid % 2 else "Annual visit",
                "",
                4 if code_ == "C" else None,
                "Patient called to cancel" if code_ == "C" else None,
                arrived,
                departed,
                confirmed,
                rng.choice((None, "phone", "email", "text_message")),
                "carecloud",
                "carecloud",
                _z(created),
                updated,
            ),
        )
        if confirmed:
            when = _z(start - timedelta(days=2))
            self.out.add(
                SQL_CONFIRMATION,
                (guid, when, "text_message", "Automated reminder", "confirmed", "", when, when),
            )
        if code_ == "O":
            self.ledger(plan, rng, iid, patient, guid, start, prov, loc, code)

    def ledger(
        self,
        plan: PracticePlan,
        rng: random.Random,
        iid: int,
        patient: str,
        appt: str,
        start: datetime,
        prov: int,
        loc: int,
        code: str,
    ) -> None:
        service = start.date()
        age_days = (self.anchor - service).days
        amount = codes.FEE_SCHEDULE_CENTS[code]
        dx = _json(rng.sample(codes.ICD10_PRIMARY_CARE, rng.randint(1, 3)))
        posted = _z(start + timedelta(hours=3))
        age = (self.anchor - self.dob_of(plan, iid)).days // 365
        cov = self.coverage(iid, age, plan.pediatric)
        billed = int(age_days > 3)
        self.txn_id += 1
        charge_id = self.txn_id
        rows: list[tuple[str, str, int, str]] = []  # (type, balance_type, amount, posting)
        balance = amount
        balance_type = "insurance" if cov.payer is not None else "patient"
        if cov.payer is not None and age_days >= cov.payer.lag_days:
            post = (service + timedelta(days=cov.payer.lag_days)).isoformat()
            denied = rng.random() < cov.payer.denial_rate
            if not denied:
                allowed = amount * cov.payer.allowed_pct // 100
                patient_share = min(allowed, cov.copay_cents + allowed * cov.coinsurance_pct // 100)
                rows.append(("insurance_payment", "insurance", -(allowed - patient_share), post))
                rows.append(("insurance_adjustment", "insurance", -(amount - allowed), post))
                balance, balance_type = patient_share, "patient"
        if balance_type == "patient" and balance > 0 and age_days > 30 and rng.random() < 0.7:
            rows.append(
                (
                    "patient_payment",
                    "patient",
                    -balance,
                    (service + timedelta(days=min(age_days, 35))).isoformat(),
                )
            )
            balance = 0
        self.out.add(
            SQL_TRANSACTION,
            (
                charge_id,
                plan.id,
                patient,
                "charge",
                "posted" if billed else "not_posted",
                balance_type,
                amount,
                balance,
                service.isoformat(),
                service.isoformat(),
                loc,
                prov,
                prov,
                1,
                f"Office visit {code}",
                code,
                dx,
                appt,
                None,
                billed,
                posted,
                posted,
            ),
        )
        for kind, btype, credit, posting in rows:
            self.txn_id += 1
            self.out.add(
                SQL_TRANSACTION,
                (
                    self.txn_id,
                    plan.id,
                    patient,
                    kind,
                    "posted",
                    btype,
                    credit,
                    0,
                    posting,
                    service.isoformat(),
                    loc,
                    prov,
                    prov,
                    None,
                    kind.replace("_", " ").title(),
                    None,
                    "[]",
                    appt,
                    charge_id,
                    1,
                    posted,
                    posted,
                ),
            )
        if rng.random() < 0.3:
            self.out.add(
                SQL_DOCUMENT,
                (
                    plan.id,
                    patient,
                    f"Visit note {service.isoformat()}",
                    "Clinical note",
                    DOC_SOURCES[rng.randrange(len(DOC_SOURCES))],
                    service.isoformat(),
                    "application/pdf",
                    rng.randrange(20_000, 400_000),
                    posted,
                    posted,
                ),
            )


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def _b32(seed: int, number: int) -> str:
    import base64

    raw = hashlib.sha256(f"totp:{seed}:{number}".encode()).digest()[:20]
    return base64.b32encode(raw).decode()


def generate(
    db: TenantDB, config: SandboxConfig, anchor: date, *, progress: Progress | None = None
) -> None:
    """Write a complete synthetic tenant for ``config.seed`` into ``db``.

    Args:
        db: an empty tenant database.
        config: sizes and the seed.
        anchor: the generator's "today": history lies before it, bookings after it.
        progress: optional ``(stage, done, total)`` callback.
    """
    Generator(db, config, anchor, progress).run()


def iter_practice_plans(db: TenantDB) -> Iterator[tuple[int, str]]:
    """The practices of a generated tenant as (id, business_entity_id)."""
    for row in db.all("SELECT id, business_entity_id FROM practices ORDER BY id"):
        yield int(row[0]), str(row[1])
