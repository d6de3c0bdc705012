"""The synthetic practice: deterministic from a seed, streamed into the tenant's SQLite database.

Memory stays bounded at any size: rows are written in batches, and everything an appointment or
a ledger line needs about its patient (GUID, date of birth, coverage, conditions) is re-derived
from a per-patient seeded RNG (with a small bounded cache) instead of being kept in memory.

Order of generation (each step depends only on the seed and the earlier steps):

1. reference data: practices, users, OAuth clients, payers, statuses, cancellation reasons;
2. per practice: locations, providers and their resources, visit reasons, templates;
3. per practice: the size of the history window, from the capacity of the templates less the
   blockouts, so the volume meets ``patients x appointments_per_patient``; then the blockouts
   (holidays, a weekly staff meeting, provider vacations) of that window;
4. patients with their insurance;
5. a day-by-day schedule of appointments on a 15-minute grid (never overlapping on a resource,
   only inside template hours and outside blockouts), with the ledger and documents of each
   checked-out visit;
6. each patient's last seen date.

Instants are computed from practice-local wall times and stored in UTC (``db.py``).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
import math
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from mimesis import Address, Person
from mimesis.enums import Gender
from mimesis.locales import Locale

from carecloud_sandbox import billing, clinical, codes, crosswalk, personas, statements
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.db import TenantDB
from carecloud_sandbox.npi import npi_from_base

Progress = Callable[[str, int, int], None]

BATCH = 5000
BULK_CACHE_KIB = 64 * 1024  # SQLite page cache while generating
STEP = 15  # minutes: the grid of templates and bookings
FUTURE_DAYS = 60
MIN_HISTORY_DAYS = 28
MAX_HISTORY_DAYS = 366 * 15
NOW_LOCAL = time(9, 0)  # the generator's "now" on the anchor day, practice-local
PAST_OCCUPANCY = 0.75  # share of template time booked in the past
TODAY_OCCUPANCY = 0.80
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
APPLICATIONS = (("CareCloud Central", 0.85), ("CareCloud Breeze", 0.15))


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _secret(seed: int, name: str) -> str:
    return hashlib.sha256(f"carebridge-sandbox:{seed}:{name}".encode()).hexdigest()[:40]


def _b32(seed: int, name: str) -> str:
    raw = hashlib.sha256(f"carebridge-sandbox:totp:{seed}:{name}".encode()).digest()[:20]
    return base64.b32encode(raw).decode()


def _guid(seed: int, kind: str, number: int) -> str:
    rng = random.Random(f"{seed}:{kind}:{number}")
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _weighted(rng: random.Random, table: Sequence[tuple[Any, float]]) -> Any:
    roll = rng.random() * sum(w for _, w in table)
    for value, weight in table:
        roll -= weight
        if roll < 0:
            return value
    return table[-1][0]


def _age(dob: date, on: date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


def _unique_digits(number: int, width: int, salt: int) -> str:
    """A scrambled but unique ``width``-digit string for each ``number`` below 10**width."""
    return f"{(number * 7_654_321 + salt) % 10**width:0{width}d}"


# --- geography and holidays ------------------------------------------------------------------


@dataclass(frozen=True)
class Geo:
    """Where a practice is: its towns (with ZIP codes), phone area codes and state programs."""

    city: str
    county: str
    state_code: str
    state_name: str
    zip_code: str
    latitude: str
    longitude: str
    area_codes: tuple[str, ...]
    towns: tuple[tuple[str, str], ...]  # (town, ZIP prefix or ZIP)
    medicaid_payer: int


GEOS: dict[str, Geo] = {
    "IL": Geo(
        "Springfield",
        "Sangamon",
        "IL",
        "Illinois",
        "62704",
        "39.7817",
        "-89.6501",
        ("217", "309"),
        (
            ("Springfield", "627"),
            ("Chatham", "62629"),
            ("Rochester", "62563"),
            ("Sherman", "62684"),
            ("Petersburg", "62675"),
            ("Jacksonville", "62650"),
            ("Lincoln", "62656"),
            ("Taylorville", "62568"),
            ("Decatur", "625"),
        ),
        83,
    ),
    "OH": Geo(
        "Columbus",
        "Franklin",
        "OH",
        "Ohio",
        "43215",
        "39.9612",
        "-82.9988",
        ("614", "380"),
        (
            ("Columbus", "432"),
            ("Dublin", "43017"),
            ("Westerville", "43081"),
            ("Grove City", "43123"),
            ("Hilliard", "43026"),
            ("Reynoldsburg", "43068"),
            ("Gahanna", "43230"),
            ("Worthington", "43085"),
        ),
        86,
    ),
    "CO": Geo(
        "Denver",
        "Denver",
        "CO",
        "Colorado",
        "80203",
        "39.7392",
        "-104.9903",
        ("303", "720"),
        (
            ("Denver", "802"),
            ("Aurora", "80012"),
            ("Lakewood", "80226"),
            ("Englewood", "80110"),
            ("Arvada", "80002"),
            ("Westminster", "80030"),
            ("Littleton", "80120"),
        ),
        87,
    ),
}


CAPITALS = {"IL": "Springfield", "OH": "Columbus", "CO": "Denver"}


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def office_holidays(year: int) -> tuple[tuple[date, str], ...]:
    """The days a US primary-care office closes in ``year`` (observed federal dates)."""
    may_last = _nth_weekday(year, 5, 0, 4)
    if (may_last + timedelta(days=7)).month == 5:
        may_last += timedelta(days=7)
    return (
        (_observed(date(year, 1, 1)), "New Year's Day"),
        (may_last, "Memorial Day"),
        (_observed(date(year, 7, 4)), "Independence Day"),
        (_nth_weekday(year, 9, 0, 1), "Labor Day"),
        (_nth_weekday(year, 11, 3, 4), "Thanksgiving Day"),
        (_observed(date(year, 12, 25)), "Christmas Day"),
    )


def _holiday(day: date) -> str | None:
    for when, name in office_holidays(day.year):
        if when == day:
            return name
    return None


# --- plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """One weekly template window of a resource (local minutes since midnight)."""

    days: str  # Sunday..Saturday mask
    start: int
    end: int
    location_id: int


@dataclass(frozen=True)
class Column:
    """A schedulable resource with its billing provider and templates."""

    index: int
    provider_id: int
    resource_id: int
    location_id: int
    templates: tuple[Template, ...]


@dataclass(frozen=True)
class Reason:
    """A visit reason as the schedule uses it."""

    id: int
    duration: int
    procedure_code: str
    kind: str  # new, established, follow_up, preventive, sick, nurse
    weight: float

    @property
    def steps(self) -> int:
        """Grid steps the visit occupies."""
        return math.ceil(self.duration / STEP)


@dataclass
class PracticePlan:
    """What the generator decided for one practice."""

    id: int
    guid: str
    name: str
    tz_name: str
    fhir_code: str
    pediatric: bool
    geo: Geo
    first_patient: int  # internal ids [first_patient, first_patient + patients)
    patients: int
    location_id: int = 0
    columns: tuple[Column, ...] = ()
    reasons: tuple[Reason, ...] = ()
    statuses: dict[str, int] | None = None
    cancel_reasons: tuple[tuple[int, float], ...] = ()
    history_days: int = MIN_HISTORY_DAYS
    scale: float = 1.0  # occupancy factor below 1 when a small practice would overshoot
    vacation_monday: date | None = None
    first_day: date = date(2000, 1, 1)  # the first day of the generated schedule

    @property
    def tz(self) -> ZoneInfo:
        """The practice's zone."""
        return ZoneInfo(self.tz_name)


@dataclass(frozen=True)
class Coverage:
    """A patient's coverage, re-derivable from the seed at any time."""

    payer: codes.PayerSeed | None  # None = self-pay
    plan: codes.Plan | None
    copay_cents: int
    deductible_cents: int
    coinsurance_pct: int
    secondary: codes.PayerSeed | None
    secondary_plan: codes.Plan | None
    workers_comp: bool


@dataclass(frozen=True)
class Profile:
    """Everything about a patient that appointments and ledgers need, derived from the seed."""

    internal_id: int
    guid: str
    dob: date
    gender: str
    registered: date
    coverage: Coverage
    conditions: tuple[str, ...]
    language: str
    confirmation: str | None


# --- batched writes ------------------------------------------------------------------------------


class _Batcher:
    """Collects rows per statement and writes them in batches, each batch in one transaction."""

    def __init__(self, db: TenantDB) -> None:
        self.db = db
        self.pending: dict[str, list[tuple[Any, ...]]] = {}
        self.count = 0

    def add(self, sql: str, row: tuple[Any, ...]) -> None:
        self.pending.setdefault(sql, []).append(row)
        self.count += 1
        if self.count >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.count:
            return
        with self.db.transaction() as conn:
            for sql, rows in self.pending.items():
                if rows:
                    conn.executemany(sql, rows)
        self.pending = {}
        self.count = 0


def _insert(table: str, columns: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    return f"INSERT INTO {table}({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"


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
    "departed_at, is_confirmed, patient_contacted, preferred_confirmation_method, encounter_id, "
    "created_by_application, updated_by_application, created_at, updated_at",
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
    "encounter_id, appointment_id, charge_id, insurance_profile_id, billed, created_at, updated_at",
)
SQL_DOCUMENT = _insert(
    "documents",
    "practice_id, patient_id, name, description, document_source_name, document_date, "
    "content_type, size_bytes, created_at, updated_at",
)
SQL_BLOCKOUT = _insert(
    "appointment_blockouts",
    "practice_id, name, description, location_ids_json, resource_ids_json, days, start_date, "
    "end_date, start_at, end_at, recurrence_id",
)

CHIEF_COMPLAINTS: dict[str, str] = {
    "J06.9": "Cold symptoms",
    "J01.90": "Sinus pressure",
    "J20.9": "Chest cold",
    "R05.9": "Cough",
    "M54.50": "Low back pain",
    "J02.9": "Sore throat",
    "J02.0": "Sore throat",
    "R51.9": "Headache",
    "N39.0": "Painful urination",
    "M25.561": "Knee pain",
    "A09": "Vomiting and diarrhea",
    "R10.9": "Stomach pain",
    "L03.90": "Skin redness and swelling",
    "S93.401A": "Twisted ankle",
    "H10.9": "Pink eye",
    "B34.9": "Fever and body aches",
    "H66.90": "Ear pain",
    "R50.9": "Fever",
    "R11.2": "Vomiting",
}
APPOINTMENT_COMMENTS = (
    "Prefers morning appointments",
    "Needs a work note",
    "Bring medication list",
    "Parent will accompany",
    "Wheelchair access",
    "Running late, called ahead",
)
CANCELLATION_COMMENTS = (
    "Patient called to cancel",
    "Cancelled via reminder text",
    "Conflict with work",
    "Feeling better",
    "Childcare issue",
    "Provider out sick",
    "Left voicemail to cancel",
)


# --- the generator -------------------------------------------------------------------------------


class Generator:
    """Writes one synthetic tenant; use :func:`generate`."""

    def __init__(
        self,
        db: TenantDB,
        config: SandboxConfig,
        anchor: date,
        progress: Progress | None,
        now: datetime | None = None,
    ) -> None:
        self.db = db
        self.cfg = config
        self.seed = config.seed
        self.anchor = anchor
        self.clock_now = now
        self.progress: Progress = progress or (lambda *_: None)
        self.out = _Batcher(db)
        self.plans: list[PracticePlan] = []
        self.txn_id = 0
        self.appt_id = 0
        self.row_ids: dict[str, int] = {}
        self.payments: dict[tuple[int, int, date], list[int]] = {}
        self.profile = lru_cache(maxsize=20_000)(self._profile)
        self._expected = lru_cache(maxsize=100_000)(self._expected_bookings)

    def now(self, tz: ZoneInfo) -> datetime:
        """The generator's "now" for a practice: 09:00 practice-local on the anchor day, but
        never after the tenant clock's instant at generation (a tenant generated on the wall
        clock before the practice's 09:00 must not hold bookings or edits stamped in the
        future: its v2 writes stamp the real instant, which would then precede them)."""
        local = datetime.combine(self.anchor, NOW_LOCAL, tz)
        return local if self.clock_now is None else min(local, self.clock_now)

    def run(self) -> None:
        """Generate everything, in order, as a bulk load.

        Secondary indexes are dropped while the rows stream in and rebuilt at the end (a sort
        is much cheaper than millions of random B-tree inserts), and SQLite gets a larger page
        cache for the duration; both are restored before returning.
        """
        conn = self.db.conn
        indexes = [
            (str(name), str(sql))
            for name, sql in self.db.all(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        ]
        cache = int(self.db.scalar("PRAGMA cache_size"))
        with self.db.lock:
            conn.execute(f"PRAGMA cache_size = {-BULK_CACHE_KIB}")
            for name, _ in indexes:
                conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        try:
            self._generate()
        finally:
            self.out.flush()
            self.progress("indexes", 0, len(indexes))
            with self.db.lock:
                for _, sql in indexes:
                    conn.execute(sql)
                conn.execute(f"PRAGMA cache_size = {cache}")
        self.finish()
        self.clamp_to_now()

    def _generate(self) -> None:
        self.plan_practices()
        self.reference()
        for plan in self.plans:
            self.practice(plan)
            self.size_window(plan)
            self.blockouts(plan)
        for plan in self.plans:
            self.patients(plan)
        for plan in self.plans:
            self.schedule(plan)

    def clamp_to_now(self) -> None:
        """Stamp nothing after the tenant clock's instant at generation.

        The ledger plans by date (a claim paid on the anchor day, posted in the afternoon), so
        some of its instants fall later on the anchor day than the clock: a real upstream never
        answers a record changed in the future, and a change made now would precede them.
        """
        if self.clock_now is None:
            return
        now = _z(self.clock_now)
        with self.db.transaction() as conn:
            tables = [
                str(r[0])
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for table in tables:
                columns = [
                    str(c[1])
                    for c in conn.execute(f'PRAGMA table_info("{table}")')
                    if str(c[1]).endswith("_at")
                ]
                for column in columns:
                    conn.execute(
                        f'UPDATE "{table}" SET "{column}" = ? WHERE "{column}" > ? '
                        f"AND \"{column}\" LIKE '____-__-__T__:__:__Z'",
                        (now, now),
                    )

    # --- practices and reference data -------------------------------------------------------

    def plan_practices(self) -> None:
        total = max(self.cfg.patients, 0)
        count = max(self.cfg.practices, 1)
        share, extra = divmod(total, count)
        sizes = [share + (extra if pid == 1 else 0) for pid in range(1, count + 1)]
        family = min(total, len(personas.FAMILY))
        for i in range(1, count):
            while sizes[0] < family and sizes[i] > 0:
                sizes[0] += 1
                sizes[i] -= 1
        first = 1
        for pid, size in enumerate(sizes, start=1):
            if pid == 1:
                spec = (
                    personas.PRACTICE_GUID,
                    personas.PRACTICE_NAME,
                    personas.PRACTICE_TZ,
                    personas.PRACTICE_FHIR_CODE,
                    False,
                    "IL",
                )
            elif pid == 2:
                spec = (
                    personas.PRACTICE2_GUID,
                    personas.PRACTICE2_NAME,
                    personas.PRACTICE2_TZ,
                    personas.PRACTICE2_FHIR_CODE,
                    True,
                    "OH",
                )
            else:
                spec = (
                    _guid(self.seed, "practice", pid),
                    f"Front Range Family Health {pid}",
                    "America/Denver",
                    f"FRF{pid}",
                    False,
                    "CO",
                )
            guid, name, tz, fhir, peds, state = spec
            self.plans.append(
                PracticePlan(pid, guid, name, tz, fhir, peds, GEOS[state], first, size)
            )
            first += size

    def reference(self) -> None:
        created = self._instant(self.anchor - timedelta(days=6 * 365), time(12), ZoneInfo("UTC"))
        from carecloud_sandbox.tenant import ALL_PRIVILEGES

        with self.db.transaction() as conn:
            for plan in self.plans:
                geo = plan.geo
                conn.execute(
                    "INSERT INTO practices VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        plan.id,
                        plan.guid,
                        plan.name,
                        plan.tz_name,
                        npi_from_base(150_000_000 + plan.id * 37),
                        f"{36 + plan.id}-{_unique_digits(plan.id, 7, self.seed)}",
                        plan.fhir_code,
                        _json(
                            {
                                "line1": f"{100 + plan.id * 11} Main St",
                                "line2": "",
                                "city": geo.city,
                                "state_code": geo.state_code,
                                "zip_code": geo.zip_code,
                            }
                        ),
                    ),
                )
                if plan.id == 1:
                    uid, username, password, totp = (
                        personas.USER_ID,
                        personas.USERNAME,
                        personas.PASSWORD,
                        personas.TOTP_SEED,
                    )
                else:
                    uid = personas.USER2_ID if plan.id == 2 else 9000 + plan.id
                    username = (
                        personas.USERNAME2
                        if plan.id == 2
                        else f"frontdesk{plan.id}@practice.example"
                    )
                    password = "sb-" + _secret(self.seed, f"password:{uid}")[:16]
                    totp = _b32(self.seed, f"user:{uid}")
                first_name, last_name = (
                    ("Robin", "Ashdown") if plan.id == 1 else ("Morgan", f"Ellery{plan.id}")
                )
                conn.execute(
                    "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        uid,
                        plan.id,
                        username,
                        password,
                        first_name,
                        last_name,
                        username,
                        f"+1{geo.area_codes[0]}555{_unique_digits(uid, 4, 1)}",
                        totp,
                    ),
                )
            for client_id, app_id, name, scopes in (
                (personas.CLIENT_ID, personas.APP_ID, "carebridge sandbox app", ALL_PRIVILEGES),
                (
                    personas.LIMITED_CLIENT_ID,
                    personas.LIMITED_APP_ID,
                    "carebridge read-only app",
                    tuple(p for p in ALL_PRIVILEGES if p.endswith(".read")),
                ),
            ):
                conn.execute(
                    "INSERT INTO oauth_clients VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        client_id,
                        _secret(self.seed, f"client:{client_id}"),
                        app_id,
                        name,
                        personas.REDIRECT_URI,
                        _json(list(scopes)),
                    ),
                )
            for p in codes.PAYERS:
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
                                "line1": f"PO Box {14000 + p.id * 97}",
                                "line2": "",
                                "city": CAPITALS.get(p.state, "Lexington"),
                                "state_code": p.state or "KY",
                                "zip_code": f"40{p.id * 7 % 1000:03d}",
                            }
                        ),
                        _json(
                            [
                                {
                                    "phone_number": f"800-555-{_unique_digits(p.id, 4, 77)}",
                                    "phone_type": "TF",
                                    "phone_ext": "",
                                    "is_primary": True,
                                }
                            ]
                        ),
                        _json(
                            [
                                {
                                    "id": plan.id,
                                    "name": plan.name,
                                    "insurance_policy_type": plan.insurance_policy_type,
                                }
                                for plan in p.plans
                            ]
                        ),
                        p.lag_days,
                        p.denial_rate,
                    ),
                )
            global_reasons = (
                (1, "PR", "Patient Request", "Patient asked to cancel", 0),
                (2, "PU", "Provider Unavailable", "Provider schedule change", 0),
                (3, "WX", "Weather", "Office closed or travel unsafe", 0),
                (4, "OT", "Other", "Cancelled for another reason", 1),
                (5, "IL", "Patient Ill", "Patient too ill to attend", 0),
                (6, "TR", "Transportation", "Patient has no transportation", 0),
                (7, "RS", "Rescheduled", "Moved to another time", 0),
            )
            for rid, code, name, description, default in global_reasons:
                conn.execute(
                    "INSERT INTO cancellation_reasons VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?)",
                    (rid, code, name, description, default, rid, created, created),
                )
            for plan in self.plans:
                own = (
                    (100 + plan.id * 10 + 1, "INS", "Insurance Issue", "Coverage not verified"),
                    (100 + plan.id * 10 + 2, "BAL", "Outstanding Balance", "Balance due first"),
                )
                for sort, (rid, code, name, description) in enumerate(own, start=20):
                    conn.execute(
                        "INSERT INTO cancellation_reasons VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                        (rid, plan.id, code, name, description, sort, created, created),
                    )
                plan.cancel_reasons = (
                    (1, 0.40),
                    (4, 0.15),
                    (5, 0.20),
                    (6, 0.06),
                    (3, 0.04),
                    (2, 0.05),
                    (own[0][0], 0.06),
                    (own[1][0], 0.04),
                )
                ids: dict[str, int] = {}
                for n, (code, name) in enumerate(STATUS_CODES, start=1):
                    sid = n if plan.id == 1 else plan.id * 10 + n
                    ids[code] = sid
                    conn.execute(
                        "INSERT INTO appointment_statuses VALUES (?, ?, ?, ?)",
                        (sid, plan.id, code, name),
                    )
                plan.statuses = ids

    def practice(self, plan: PracticePlan) -> None:
        rng = random.Random(f"{self.seed}:practice:{plan.id}")
        person = Person(Locale.EN, seed=rng.randrange(2**31))
        geo = plan.geo
        created = self._instant(self.anchor - timedelta(days=6 * 365), time(12), plan.tz)
        n_providers = max(3, math.ceil(plan.patients / 1200))
        loc_id = personas.LOCATION_ID if plan.id == 1 else 55_000 + plan.id * 100
        plan.location_id = loc_id
        short = plan.name.split()[0]
        columns: list[Column] = []
        with self.db.transaction() as conn:
            for lid, name, pos, default, line2 in (
                (
                    loc_id,
                    personas.LOCATION_NAME if plan.id == 1 else f"{short} Main Office",
                    "11",
                    1,
                    "Suite 200",
                ),
                (loc_id + 1, f"{short} Telehealth", "02", 0, ""),
            ):
                conn.execute(
                    "INSERT INTO locations VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'A', ?, ?)",
                    (
                        lid,
                        plan.id,
                        name,
                        "".join(w[0] for w in name.split()).upper()[:4],
                        npi_from_base(160_000_000 + lid),
                        pos,
                        int(pos == "11"),
                        default,
                        _json(
                            {
                                "line1": f"{100 + plan.id * 11} Main St",
                                "line2": line2,
                                "line3": "",
                                "city": geo.city,
                                "zip_code": geo.zip_code,
                                "county_name": geo.county,
                                "latitude": geo.latitude,
                                "longitude": geo.longitude,
                                "state_name": geo.state_name,
                                "state_code": geo.state_code,
                            }
                        ),
                        _json(
                            [
                                {
                                    "phone_number": f"{geo.area_codes[0]}-555-"
                                    f"{_unique_digits(lid, 4, 3)}",
                                    "phone_type": "B",
                                    "phone_ext": "",
                                    "is_primary": True,
                                },
                                {
                                    "phone_number": f"{geo.area_codes[0]}-555-"
                                    f"{_unique_digits(lid, 4, 4)}",
                                    "phone_type": "F",
                                    "phone_ext": "",
                                    "is_primary": False,
                                },
                            ]
                        ),
                    ),
                )
            taxonomies = (
                ("208000000X", "208000000X", "363LP0200X")
                if plan.pediatric
                else ("207Q00000X", "207R00000X", "363LF0000X", "207Q00000X", "363A00000X")
            )
            for i in range(n_providers):
                if plan.id == 1 and i == 0:
                    prov, res = personas.PROVIDER_ID, personas.RESOURCE_ID
                    first, last, tax = (
                        personas.PROVIDER_FIRST,
                        personas.PROVIDER_LAST,
                        personas.PROVIDER_TAXONOMY,
                    )
                    npi = personas.PROVIDER_NPI
                else:
                    prov, res = 41_000 + plan.id * 1000 + i, 38_000 + plan.id * 1000 + i
                    first, last = person.first_name(), person.last_name()
                    tax = taxonomies[i % len(taxonomies)]
                    npi = npi_from_base(120_000_000 + prov)
                cred = (
                    "NP"
                    if tax.startswith("363L")
                    else "PA-C"
                    if tax.startswith("363A")
                    else rng.choice(("MD", "MD", "DO"))
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
                        f"{first[0].lower()}.{last.lower()}{prov}@provider.example",
                        f"{geo.area_codes[0]}-555-{_unique_digits(prov, 4, 5)}",
                        tax,
                        codes.TAXONOMIES[tax],
                    ),
                )
                name = (
                    personas.RESOURCE_NAME
                    if res == personas.RESOURCE_ID
                    else f"Dr. {last}"
                    if cred in ("MD", "DO")
                    else f"{first} {last}, {cred}"
                )
                conn.execute(
                    "INSERT INTO resources VALUES (?, ?, ?, ?, ?, 'A', ?, 1, 'P', ?, ?, ?, ?, ?)",
                    (
                        res,
                        plan.id,
                        name,
                        f"{last[:3].upper()}{i + 1}",
                        f"Schedule of {first} {last}, {cred}",
                        i + 1,
                        prov,
                        created,
                        created,
                        personas.USER_ID,
                        personas.USER_ID,
                    ),
                )
                # Every third clinician (never the persona) takes Friday afternoons off.
                pm_days = "0111100" if i % 3 == 2 else "0111110"
                templates = (
                    Template("0111110", 8 * 60, 12 * 60, loc_id),
                    Template(pm_days, 13 * 60, 17 * 60, loc_id),
                )
                columns.append(Column(i, prov, res, loc_id, templates))
            if plan.id == 1:
                conn.execute(
                    "INSERT INTO providers VALUES (?, 1, ?, 'Harper', 'Vance', 'MD', ?, ?, "
                    "'207Q00000X', 'Family Medicine', 'I')",
                    (
                        personas.INACTIVE_PROVIDER_ID,
                        npi_from_base(120_000_000 + personas.INACTIVE_PROVIDER_ID),
                        "h.vance@provider.example",
                        "217-555-0499",
                    ),
                )
                conn.execute(
                    "INSERT INTO resources VALUES (?, 1, 'Procedure Room 2', 'PR2', "
                    "'Closed for renovation', 'I', 99, 0, 'P', NULL, ?, ?, ?, ?)",
                    (
                        personas.INACTIVE_RESOURCE_ID,
                        created,
                        created,
                        personas.USER_ID,
                        personas.USER_ID,
                    ),
                )
            reasons = self._reasons(plan)
            names = (
                {v.id: (v.name, v.description) for v in personas.VISIT_REASONS}
                if plan.id == 1
                else {}
            )
            for reason in reasons:
                name, description = names.get(reason.id) or _reason_text(reason.kind)
                conn.execute(
                    "INSERT INTO visit_reasons VALUES (?, ?, ?, ?, ?, ?, 'A', ?)",
                    (
                        reason.id,
                        plan.id,
                        name,
                        description,
                        reason.duration,
                        int(reason.kind != "nurse"),
                        reason.procedure_code,
                    ),
                )
                for column in columns:
                    conn.execute(
                        "INSERT INTO resource_visit_reasons VALUES (?, ?)",
                        (column.resource_id, reason.id),
                    )
            if plan.id == 1:
                conn.execute(
                    "INSERT INTO visit_reasons VALUES (?, 1, 'LEGACY PHYSICAL', "
                    "'Retired visit type', 30, 0, 'I', '99396')",
                    (personas.INACTIVE_VISIT_REASON,),
                )
            vr_json = _json([{"id": r.id, "max_appointments_allowed": 1} for r in reasons])
            effective = date(self.anchor.year - 16, 1, 1).isoformat()
            for column in columns:
                for template in column.templates:
                    label = "AM" if template.start < 12 * 60 else "PM"
                    conn.execute(
                        "INSERT INTO appointment_templates(practice_id, name, description, "
                        "location_ids_json, resource_ids_json, visit_reasons_json, days, "
                        "effective_from, effective_to, start_at, end_at, max_appointments_allowed)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, 1)",
                        (
                            plan.id,
                            f"{label} clinic {column.resource_id}",
                            f"Weekday {label.lower()} clinic",
                            _json([template.location_id]),
                            _json([column.resource_id]),
                            vr_json,
                            template.days,
                            effective,
                            _hhmm(template.start),
                            _hhmm(template.end),
                        ),
                    )
        plan.columns = tuple(columns)
        plan.reasons = reasons
        # A week's vacation for the second clinician two weeks out, so availability shows it.
        soon = self.anchor + timedelta(days=14)
        plan.vacation_monday = soon + timedelta(days=(7 - soon.weekday()) % 7)

    def _reasons(self, plan: PracticePlan) -> tuple[Reason, ...]:
        if plan.id == 1:
            kinds = {
                personas.VISIT_NEW: ("new", 0.10),
                personas.VISIT_ESTABLISHED: ("established", 0.36),
                personas.VISIT_FOLLOW_UP: ("follow_up", 0.22),
                personas.VISIT_WELLNESS: ("preventive", 0.12),
                personas.VISIT_SICK: ("sick", 0.20),
            }
            return tuple(
                Reason(v.id, v.duration, v.procedure_code, *kinds[v.id])
                for v in personas.VISIT_REASONS
            )
        base = 120_000 + plan.id * 100
        if plan.pediatric:
            return (
                Reason(base + 1, 40, "99203", "new", 0.07),
                Reason(base + 2, 20, "99213", "sick", 0.36),
                Reason(base + 3, 40, "99393", "preventive", 0.30),
                Reason(base + 4, 15, "99212", "follow_up", 0.15),
                Reason(base + 5, 15, "99211", "nurse", 0.12),
            )
        return (
            Reason(base + 1, 40, "99203", "new", 0.10),
            Reason(base + 2, 20, "99213", "established", 0.36),
            Reason(base + 3, 15, "99212", "follow_up", 0.20),
            Reason(base + 4, 40, "99396", "preventive", 0.12),
            Reason(base + 5, 20, "99213", "sick", 0.22),
        )

    # --- capacity, window and blockouts --------------------------------------------------------

    def free_intervals(self, plan: PracticePlan, column: Column, day: date) -> list[list[int]]:
        """Template time of one resource on one day, less every blockout (local minutes)."""
        index = (day.weekday() + 1) % 7
        spans = [
            [t.start, t.end] for t in column.templates if t.days[index] == "1"
        ]  # template windows never overlap
        if not spans:
            return []
        if _holiday(day) is not None:
            return []
        if self._on_vacation(plan, column, day):
            return []
        if day.weekday() == 2:  # weekly staff meeting, Wednesday 16:00-17:00
            spans = _subtract(spans, 16 * 60, 17 * 60)
        return spans

    def _on_vacation(self, plan: PracticePlan, column: Column, day: date) -> bool:
        if column.index == 0:
            return False
        monday = day - timedelta(days=day.weekday())
        if column.index == 1 and monday == plan.vacation_monday:
            return True
        return (monday.toordinal() // 7 + column.index * 5 + plan.id) % 26 == 0

    def _occupancy(self, plan: PracticePlan, delta: int) -> float:
        """Share of template time to book on a day ``delta`` days from the anchor."""
        if delta < 0:
            occupancy = PAST_OCCUPANCY
        elif delta == 0:
            occupancy = TODAY_OCCUPANCY
        else:
            # A booking curve: the next days are nearly full, a month out mostly open.
            occupancy = 0.12 + 0.58 * math.exp(-delta / 12)
        return occupancy * plan.scale

    def _booking_chance(self, plan: PracticePlan, occupancy: float) -> float:
        """The chance to book at a grid step so that ``occupancy`` of the time is booked."""
        total = sum(r.weight for r in plan.reasons)
        mean = sum(r.weight * r.steps for r in plan.reasons) / total
        return occupancy / (mean * (1 - occupancy) + occupancy)

    def _expected_bookings(self, key: tuple[int, int, float]) -> float:
        """Expected bookings in an interval of ``n`` grid steps at booking chance ``p``."""
        plan_id, n, p = key
        plan = self.plans[plan_id - 1]
        total = sum(r.weight for r in plan.reasons)
        values = [0.0] * (n + 1)
        for m in range(1, n + 1):
            acc = 0.0
            for r in plan.reasons:
                w = r.weight / total
                if r.steps <= m:
                    acc += w * (p * (1 + values[m - r.steps]) + (1 - p) * values[m - 1])
                else:
                    acc += w * values[m - 1]
            values[m] = acc
        return values[n]

    def _expected_day(self, plan: PracticePlan, day: date) -> float:
        p = self._booking_chance(plan, self._occupancy(plan, (day - self.anchor).days))
        total = 0.0
        for column in plan.columns:
            for start, end in self.free_intervals(plan, column, day):
                total += self._expected((plan.id, (end - start) // STEP, round(p, 6)))
        return total

    def size_window(self, plan: PracticePlan) -> None:
        """Choose the history window (and, for small practices, an occupancy scale)."""
        target = plan.patients * self.cfg.appointments_per_patient
        if target <= 0:
            plan.scale = 0.0  # nothing to book
            plan.history_days = MIN_HISTORY_DAYS
            plan.first_day = self.anchor - timedelta(days=plan.history_days)
            return

        def expected(history: int) -> float:
            return sum(
                self._expected_day(plan, self.anchor + timedelta(days=d))
                for d in range(-history, FUTURE_DAYS + 1)
            )

        plan.scale = 1.0
        minimal = expected(MIN_HISTORY_DAYS)
        if minimal >= target:
            lo, hi = 0.05, 1.0
            for _ in range(18):
                plan.scale = (lo + hi) / 2
                if expected(MIN_HISTORY_DAYS) > target:
                    hi = plan.scale
                else:
                    lo = plan.scale
            plan.scale = round((lo + hi) / 2, 4)
            plan.history_days = MIN_HISTORY_DAYS
        else:
            total = minimal
            history = MIN_HISTORY_DAYS
            while total < target and history < MAX_HISTORY_DAYS:
                history += 1
                total += self._expected_day(plan, self.anchor - timedelta(days=history))
            plan.history_days = history
        plan.first_day = self.anchor - timedelta(days=plan.history_days)

    def blockouts(self, plan: PracticePlan) -> None:
        """Write the blockouts that :meth:`free_intervals` applies, over the whole window."""
        first, last = plan.first_day, self.anchor + timedelta(days=FUTURE_DAYS + 30)
        everyone = _json([c.resource_id for c in plan.columns])
        where = _json([plan.location_id])
        rows: list[tuple[Any, ...]] = []
        for year in range(first.year, last.year + 1):
            for day, name in office_holidays(year):
                if first <= day <= last:
                    rows.append(
                        (
                            plan.id,
                            "Office closed",
                            name,
                            where,
                            everyone,
                            "1111111",
                            day.isoformat(),
                            day.isoformat(),
                            "00:00",
                            "23:59",
                            None,
                        )
                    )
        rows.append(
            (
                plan.id,
                "Staff meeting",
                "Weekly staff meeting",
                where,
                everyone,
                "0001000",
                first.isoformat(),
                date(self.anchor.year + 2, 12, 31).isoformat(),
                "16:00",
                "17:00",
                1,
            )
        )
        monday = first - timedelta(days=first.weekday())
        while monday <= last:
            for column in plan.columns:
                if self._on_vacation(plan, column, monday):
                    rows.append(
                        (
                            plan.id,
                            "Vacation",
                            f"Provider {column.provider_id} away",
                            where,
                            _json([column.resource_id]),
                            "0111110",
                            monday.isoformat(),
                            (monday + timedelta(days=4)).isoformat(),
                            "00:00",
                            "23:59",
                            None,
                        )
                    )
            monday += timedelta(days=7)
        rows.sort(key=lambda r: (r[6], r[4]))
        with self.db.transaction() as conn:
            conn.executemany(SQL_BLOCKOUT, rows)

    # --- patients -----------------------------------------------------------------------------

    def _plan_of(self, internal_id: int) -> PracticePlan:
        for plan in self.plans:
            if plan.first_patient <= internal_id < plan.first_patient + plan.patients:
                return plan
        raise KeyError(internal_id)

    def _profile(self, internal_id: int) -> Profile:
        """A patient's durable attributes, from the patient's own RNG."""
        plan = self._plan_of(internal_id)
        rng = random.Random(f"{self.seed}:patient:{internal_id}")
        persona = (
            personas.FAMILY[internal_id - 1]
            if plan.id == 1 and internal_id <= len(personas.FAMILY)
            else None
        )
        guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if plan.pediatric:
            dob = self.anchor - timedelta(days=rng.randrange(40, 18 * 365))
        else:
            age_band = _weighted(
                rng,
                ((0, 0.10), (1, 0.09), (2, 0.26), (3, 0.27), (4, 0.18), (5, 0.10)),
            )
            low, high = ((0, 12), (12, 18), (18, 40), (40, 65), (65, 80), (80, 96))[age_band]
            dob = self.anchor - timedelta(days=rng.randrange(low * 365 + 30, high * 365))
        gender = "F" if rng.random() < 0.51 else "M"
        if persona is not None:
            guid, dob, gender = persona.id, persona.dob, persona.gender_code
        age = _age(dob, self.anchor)
        registered = plan.first_day - timedelta(days=rng.randrange(1, 400))
        coverage = self._coverage(rng, plan, age, persona is not None)
        conditions = tuple(
            c.code
            for c in codes.CHRONIC_CONDITIONS
            if (c.sex is None or c.sex == gender)
            and c.min_age <= age <= c.max_age
            and rng.random()
            < c.prevalence * min(1.0, (age - c.min_age + 1) / max(1, c.full_age - c.min_age + 1))
        )
        language = "spa" if rng.random() < 0.07 else "eng"
        confirmation = _weighted(
            rng, ((None, 0.30), ("text_message", 0.35), ("phone", 0.20), ("email", 0.15))
        )
        return Profile(
            internal_id,
            guid,
            dob,
            gender,
            registered,
            coverage,
            conditions,
            language,
            confirmation,
        )

    def _coverage(
        self, rng: random.Random, plan: PracticePlan, age: int, persona: bool
    ) -> Coverage:
        payers = codes.PAYER_BY_ID
        medicaid = payers[plan.geo.medicaid_payer]
        roll = rng.random()
        secondary: codes.PayerSeed | None = None
        secondary_plan: codes.Plan | None = None
        if persona:
            payer, chosen = payers[personas.PAYER_ID], payers[personas.PAYER_ID].plans[0]
        elif roll < 0.05:
            return Coverage(None, None, 0, 0, 0, None, None, False)
        elif age >= 65:
            if rng.random() < 0.65:
                payer = payers[82]
                chosen = payer.plans[0]
                extra = rng.random()
                if extra < 0.22:
                    secondary, secondary_plan = payers[80], payers[80].plans[2]
                elif extra < 0.32:
                    secondary, secondary_plan = medicaid, medicaid.plans[0]
            else:
                payer = payers[81]
                chosen = rng.choice(payer.plans)
        elif (age < 19 and roll < 0.40) or (age >= 19 and roll < 0.17):
            payer = medicaid
            chosen = rng.choice(payer.plans)
        elif roll < 0.20:
            payer = payers[84]
            chosen = rng.choice(payer.plans)
        else:
            payer = payers[_weighted(rng, ((77, 0.25), (78, 0.25), (80, 0.30), (79, 0.20)))]
            chosen = rng.choice([p for p in payer.plans if p.id != 803])
        kind, policy = payer.kind, chosen.insurance_policy_type
        if kind == "medicaid":
            copay, deductible, coins = 0, 0, 0
        elif kind == "medicare":
            copay, deductible, coins = 0, 28_300, 20
        elif policy.startswith("medicare"):
            copay, deductible, coins = rng.choice((0, 0, 1000, 1500)), 0, 0
        elif policy == "champus":
            copay, deductible, coins = rng.choice((0, 3300)), rng.choice((0, 15_000)), 0
        else:
            hmo = policy == "hmo"
            copay = rng.choice((2000, 2500) if hmo else (2500, 3000, 4000, 5000))
            deductible = rng.choice((0, 50_000) if hmo else (50_000, 100_000, 200_000, 300_000))
            coins = 0 if hmo else rng.choice((0, 10, 20, 20))
        workers_comp = 19 <= age < 65 and rng.random() < 0.02
        return Coverage(
            payer, chosen, copay, deductible, coins, secondary, secondary_plan, workers_comp
        )

    def patients(self, plan: PracticePlan) -> None:
        """Insert the practice's patients with their insurance profiles and policies."""
        rng = random.Random(f"{self.seed}:patients:{plan.id}")
        person = Person(Locale.EN, seed=rng.randrange(2**31))
        address = Address(Locale.EN, seed=rng.randrange(2**31))
        geo = plan.geo
        tz = plan.tz
        columns = plan.columns
        now = self.now(tz)
        for n in range(plan.patients):
            iid = plan.first_patient + n
            prof = self.profile(iid)
            persona = (
                personas.FAMILY[iid - 1] if plan.id == 1 and iid <= len(personas.FAMILY) else None
            )
            sex = Gender.FEMALE if prof.gender == "F" else Gender.MALE
            if persona is not None:
                first, last = persona.first_name, persona.last_name
            else:
                first, last = person.first_name(gender=sex), person.last_name()
            age = _age(prof.dob, self.anchor)
            minor = age < 18
            town, zip_prefix = rng.choice(geo.towns)
            zip_code = zip_prefix + "".join(
                str(rng.randrange(10)) for _ in range(5 - len(zip_prefix))
            )
            home = {
                "line1": f"{address.street_number()} {address.street_name()} "
                f"{address.street_suffix()}",
                "line2": f"Apt {rng.randrange(1, 40)}{rng.choice('ABCD')}"
                if rng.random() < 0.15
                else "",
                "city": town,
                "state_code": geo.state_code,
                "zip_code": zip_code,
                "country_id": 225,
                "is_primary": True,
            }
            area = rng.choice(geo.area_codes)
            phone = f"{area}-555-{_unique_digits(iid, 4, self.seed)}"
            phones = [
                {
                    "phone_number": phone,
                    "phone_type_code": "C" if rng.random() < 0.78 else "H",
                    "extension": "",
                    "is_primary": True,
                }
            ]
            if rng.random() < 0.25:
                phones.append(
                    {
                        "phone_number": f"{area}-555-{_unique_digits(iid, 4, self.seed + 17)}",
                        "phone_type_code": "B" if not minor else "H",
                        "extension": str(rng.randrange(100, 999)) if rng.random() < 0.3 else "",
                        "is_primary": False,
                    }
                )
            if minor:
                parent_sex = "F" if rng.random() < 0.75 else "M"
                parent_first = person.first_name(
                    gender=Gender.FEMALE if parent_sex == "F" else Gender.MALE
                )
                parent_dob = prof.dob - timedelta(days=rng.randrange(20 * 365, 40 * 365))
                relationship = "mother" if parent_sex == "F" else "father"
                responsible: dict[str, Any] = {
                    "relationship": relationship,
                    "responsible_party_person_relationship_type_code": relationship,
                    "first_name": parent_first,
                    "last_name": last,
                    "name": f"{parent_first} {last}",
                    "dob": parent_dob.isoformat(),
                    "gender": parent_sex,
                    "addresses": [home],
                    "phones": phones[:1],
                }
                insured = {
                    "first_name": parent_first,
                    "last_name": last,
                    "middle_initial": "",
                    "date_of_birth": parent_dob.isoformat(),
                    "gender": parent_sex,
                    "relation_to_patient": relationship,
                    "addresses": [home],
                    "phones": phones[:1],
                }
            else:
                relationship = "self"
                responsible = {"relationship": "self"}
                insured = {
                    "first_name": first,
                    "last_name": last,
                    "middle_initial": "",
                    "date_of_birth": prof.dob.isoformat(),
                    "gender": prof.gender,
                    "relation_to_patient": "self",
                    "addresses": [],
                    "phones": [],
                }
            hispanic = rng.random()
            ethnicity = "H" if hispanic < 0.17 else "U" if hispanic < 0.23 else "N"
            if minor:
                marital = "S"
                employment = "N"
            else:
                marital = _weighted(
                    rng,
                    (("M", 0.50), ("S", 0.30), ("D", 0.12), ("W", 0.08 if age >= 65 else 0.01)),
                )
                employment = (
                    ("R" if rng.random() < 0.85 else "E")
                    if age >= 65
                    else _weighted(rng, (("E", 0.72), ("U", 0.05), ("D", 0.04), ("N", 0.19)))
                )
            student = "F" if 5 <= age < 18 or (18 <= age < 23 and rng.random() < 0.4) else "N"
            data = {
                "prefix": "",
                "suffix": "Jr." if prof.gender == "M" and not minor and rng.random() < 0.02 else "",
                "marital_status_code": marital,
                "language_code": "spa"
                if ethnicity == "H" and rng.random() < 0.35
                else prof.language,
                "race_code": _weighted(rng, codes.RACES),
                "ethnicity_code": ethnicity,
                "employment_status_code": employment,
                "student_status_code": student,
                "referring_physician_npi": "",
                "date_of_death": None,
                "addresses": [home],
                "phones": phones,
                "responsible_party": responsible,
            }
            created_at = self._instant(prof.registered, time(10, rng.randrange(60)), tz)
            updated_at = created_at
            if rng.random() < 0.25:
                span = max(1, (now - datetime.combine(prof.registered, time(10), tz)).days)
                changed = prof.registered + timedelta(days=rng.randrange(1, span + 1))
                updated_at = _z(min(now, datetime.combine(changed, time(11), tz)))
            prov, loc = (
                columns[iid % len(columns)].provider_id,
                columns[iid % len(columns)].location_id,
            )
            if persona is not None:
                email = f"{first.lower()}.{last.lower()}@sandbox.example"
            elif rng.random() < 0.82:
                email = f"{first.lower()}.{last.lower()}{iid}@example.com"
            else:
                email = ""
            ssn = (
                f"9{rng.randrange(0, 100):02d}-{rng.randrange(70, 100)}-{rng.randrange(1, 10000):04d}"
                if rng.random() < 0.7
                else ""
            )
            license_number = (
                f"{last[0].upper()}{rng.randrange(10**10, 10**11)}" if age >= 16 else ""
            )
            self.out.add(
                SQL_PATIENT,
                (
                    prof.guid,
                    iid,
                    plan.id,
                    persona.chart_number if persona else f"{plan.fhir_code[:2]}{iid:06d}",
                    f"A{plan.id}{iid:07d}",
                    first,
                    last,
                    chr(65 + rng.randrange(26)) if rng.random() < 0.7 else "",
                    prof.dob.isoformat(),
                    prof.gender,
                    ssn,
                    email,
                    phone.replace("-", ""),
                    license_number,
                    "A",
                    loc,
                    prov,
                    None,
                    _json(data),
                    created_at,
                    updated_at,
                ),
            )
            self._insurance(plan, rng, prof, relationship, responsible, insured, created_at)
            clinical.patient_chart(
                self.out.add,
                random.Random(f"{self.seed}:chart:{iid}"),
                practice_id=plan.id,
                patient_id=prof.guid,
                conditions=prof.conditions,
                registered=datetime.fromisoformat(created_at.replace("Z", "+00:00")),
                provider_id=prov,
                now=now,
            )
            if n % 2000 == 0:
                self.progress(f"patients practice {plan.id}", n, plan.patients)
        self.out.flush()
        self.progress(f"patients practice {plan.id}", plan.patients, plan.patients)

    def _insurance(
        self,
        plan: PracticePlan,
        rng: random.Random,
        prof: Profile,
        relationship: str,
        responsible: dict[str, Any],
        insured: dict[str, Any],
        created_at: str,
    ) -> None:
        iid = prof.internal_id
        cov = prof.coverage
        responsible_json = "{}" if relationship == "self" else _json(responsible)
        self.out.add(
            SQL_PROFILE,
            (
                iid * 2 - 1,
                prof.guid,
                "Self Pay" if cov.payer is None else _profile_name(cov.payer),
                int(cov.payer is None),
                1,
                relationship,
                responsible_json,
                created_at,
                created_at,
            ),
        )
        start = min(prof.registered, plan.first_day) - timedelta(days=rng.randrange(0, 700))
        start = max(start, prof.dob)
        start = start.replace(day=1)
        ends = None
        if cov.payer is not None and rng.random() < 0.03:
            ends = (self.anchor + timedelta(days=rng.randrange(5, 90))).isoformat()
        policies: list[tuple[int, codes.PayerSeed, codes.Plan, int, int, int]] = []
        if cov.payer is not None and cov.plan is not None:
            policies.append(
                (1, cov.payer, cov.plan, cov.copay_cents, cov.deductible_cents, cov.coinsurance_pct)
            )
        if cov.secondary is not None and cov.secondary_plan is not None:
            policies.append((2, cov.secondary, cov.secondary_plan, 0, 0, 0))
        for priority, payer, payer_plan, copay, deductible, coins in policies:
            persona = plan.id == 1 and iid <= len(personas.FAMILY) and priority == 1
            member = (
                personas.FAMILY[iid - 1].member_number
                if persona
                else member_number(payer, iid * 2 + priority, rng)
            )
            group = (
                "" if payer.kind in ("medicare", "medicaid") else f"{rng.randrange(10**5, 10**6)}"
            )
            group_name = (
                ""
                if payer.kind in ("medicare", "medicaid")
                else rng.choice(
                    (
                        "Acme Manufacturing",
                        "State Employees",
                        "Lakeview Schools",
                        "City of " + plan.geo.city,
                        "Prairie Logistics",
                        "Individual Marketplace",
                    )
                )
            )
            self.out.add(
                SQL_POLICY,
                (
                    iid * 3 - 3 + priority,
                    iid * 2 - 1,
                    prof.guid,
                    priority,
                    payer.id,
                    payer_plan.id,
                    payer_plan.insurance_policy_type,
                    member,
                    "",
                    group,
                    group_name,
                    start.isoformat(),
                    ends if priority == 1 else None,
                    copay,
                    deductible,
                    coins,
                    (deductible * 3 + 200_000) if deductible else None,
                    int(payer_plan.insurance_policy_type in ("hmo", "medicaid_hmo")),
                    _json(insured),
                    created_at,
                    created_at,
                ),
            )
        if cov.workers_comp:
            wc = codes.PAYER_BY_ID[85]
            self.out.add(
                SQL_PROFILE,
                (
                    iid * 2,
                    prof.guid,
                    "Workers Comp",
                    0,
                    0,
                    "employee",
                    "{}",
                    created_at,
                    created_at,
                ),
            )
            self.out.add(
                SQL_POLICY,
                (
                    iid * 3,
                    iid * 2,
                    prof.guid,
                    1,
                    wc.id,
                    wc.plans[0].id,
                    wc.plans[0].insurance_policy_type,
                    member_number(wc, iid, rng),
                    f"CLM{rng.randrange(10**7, 10**8)}",
                    "",
                    "",
                    (self.anchor - timedelta(days=rng.randrange(30, 400))).isoformat(),
                    None,
                    0,
                    0,
                    0,
                    None,
                    1,
                    _json(dict(insured, relation_to_patient="employee")),
                    created_at,
                    created_at,
                ),
            )

    # --- schedule -----------------------------------------------------------------------------

    def schedule(self, plan: PracticePlan) -> None:
        """Book the practice's window day by day, with the ledger of each visit."""
        if plan.patients == 0:
            return
        rng = random.Random(f"{self.seed}:schedule:{plan.id}")
        tz = plan.tz
        now = self.now(tz)
        weights = list(itertools.accumulate(r.weight for r in plan.reasons))
        reasons = plan.reasons
        total_days = plan.history_days + FUTURE_DAYS
        for offset in range(total_days + 1):
            day = plan.first_day + timedelta(days=offset)
            chance = self._booking_chance(plan, self._occupancy(plan, (day - self.anchor).days))
            midnight = datetime.combine(day, time(0), tz)
            for column in plan.columns:
                for start_min, end_min in self.free_intervals(plan, column, day):
                    cursor = start_min
                    while cursor + STEP <= end_min:
                        reason = reasons[bisect.bisect_right(weights, rng.random() * weights[-1])]
                        if cursor + reason.duration > end_min or rng.random() >= chance:
                            cursor += STEP
                            continue
                        start = midnight + timedelta(minutes=cursor)
                        self.appointment(plan, rng, now, day, start, column, reason)
                        cursor += reason.steps * STEP
            if offset % 20 == 0:
                self.progress(f"schedule practice {plan.id}", offset, total_days)
        self.out.flush()
        self.progress(f"schedule practice {plan.id}", total_days, total_days)

    def _pick_patient(self, plan: PracticePlan, rng: random.Random, day: date) -> Profile | None:
        for _ in range(8):
            prof = self.profile(plan.first_patient + rng.randrange(plan.patients))
            if prof.dob < day:
                return prof
        return None

    def appointment(
        self,
        plan: PracticePlan,
        rng: random.Random,
        now: datetime,
        day: date,
        start: datetime,
        column: Column,
        reason: Reason,
    ) -> None:
        """One booked slot, its confirmations and, once checked out, its ledger."""
        prof = self._pick_patient(plan, rng, day)
        if prof is None:
            return
        if plan.statuses is None:
            raise RuntimeError("statuses are written before the schedule")
        self.appt_id += 1
        aid = self.appt_id
        guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        end = start + timedelta(minutes=reason.duration)
        age = _age(prof.dob, day)
        lines, dx, complaint = self.visit_plan(rng, prof, reason, age, day)
        # When it was booked: sick visits the same day or the day before, others ahead.
        if reason.kind == "sick":
            created = start - timedelta(minutes=rng.randrange(45, 36 * 60))
        else:
            created = start - timedelta(days=rng.randrange(1, 75), minutes=rng.randrange(600))
        registered = datetime.combine(prof.registered, time(10), plan.tz)
        if created < registered:
            created = registered + timedelta(minutes=rng.randrange(60))
        if created > now:
            created = now - timedelta(minutes=rng.randrange(5, 60 * 24 * 20))
            created = max(created, registered)
        arrived = departed = None
        cancel_reason = cancel_comments = None
        if end <= now and day < self.anchor:
            code = _weighted(rng, (("O", 0.86), ("C", 0.08), ("N", 0.04), ("R", 0.02)))
        elif end <= now:
            code = "O" if rng.random() < 0.7 else "I"
        elif start <= now:
            code = "I"
        else:
            code = "P"
        if code in "OI":
            arrived = start - timedelta(minutes=rng.randrange(2, 20))
            arrived = min(arrived, now)
        if code == "O":
            departed = min(end + timedelta(minutes=rng.randrange(0, 20)), now)
        updated = created
        if code == "O" and departed is not None:
            updated = departed
        elif code == "I" and arrived is not None:
            updated = arrived
        elif code in "CR":
            updated = created + (start - created) * rng.uniform(0.2, 0.98)
            if code == "C":
                cancel_reason = _weighted(rng, plan.cancel_reasons)
                cancel_comments = rng.choice(CANCELLATION_COMMENTS)
        elif code == "N":
            updated = min(now, end + timedelta(hours=rng.randrange(1, 30)))
        # Reminders: confirmed by a text, call or e-mail in the days before the visit.
        confirmed = 0
        contact_at: datetime | None = None
        outcome = ""
        lead = (start.date() - self.anchor).days
        chance = 0.70 if lead <= 3 else 0.45 if lead <= 10 else 0.28
        if code != "P":
            chance = 0.55
        # Future visits may have been confirmed any time since booking; past ones in the
        # reminder days before the visit.
        window_lo = created if code == "P" else max(created, start - timedelta(days=3))
        window_hi = min(now, start - timedelta(hours=1))
        if window_hi > window_lo and rng.random() < chance + 0.12:
            contact_at = window_lo + (window_hi - window_lo) * rng.random()
            outcome = (
                "confirmed"
                if rng.random() < chance / (chance + 0.12)
                else rng.choice(("left_message", "no_answer", "message_sent"))
            )
            confirmed = int(outcome == "confirmed")
        method = prof.confirmation or "phone"
        if contact_at is not None:
            when = _z(contact_at)
            self.out.add(
                SQL_CONFIRMATION,
                (
                    guid,
                    when if confirmed else None,
                    method,
                    "Automated reminder" if method != "phone" else "Front desk call",
                    outcome,
                    "",
                    when,
                    when,
                ),
            )
            if code == "P" and contact_at > updated:
                updated = contact_at
        statuses = plan.statuses
        self.out.add(
            SQL_APPOINTMENT,
            (
                guid,
                aid,
                plan.id,
                prof.guid,
                column.provider_id,
                column.location_id,
                column.resource_id,
                reason.id,
                statuses[code],
                code,
                _z(start),
                _z(end),
                complaint,
                rng.choice(APPOINTMENT_COMMENTS) if rng.random() < 0.08 else "",
                cancel_reason,
                cancel_comments,
                None if arrived is None else _z(arrived),
                None if departed is None else _z(departed),
                confirmed,
                int(contact_at is not None),
                prof.confirmation,
                aid if code in "OI" else None,
                _weighted(rng, APPLICATIONS),
                "CareCloud Central",
                _z(created),
                _z(max(updated, created)),
            ),
        )
        if code in "OI" and arrived is not None:
            self.chart(
                plan,
                prof,
                guid,
                aid,
                day,
                start,
                arrived,
                departed,
                column,
                reason,
                complaint,
                lines,
                dx,
                now,
            )
        if code == "O" and departed is not None:
            self.ledger(plan, rng, prof, guid, aid, day, departed, column, lines, dx)
            self.documents(plan, rng, prof, reason, day, departed)

    def chart(
        self,
        plan: PracticePlan,
        prof: Profile,
        appointment: str,
        encounter: int,
        day: date,
        start: datetime,
        arrived: datetime,
        departed: datetime | None,
        column: Column,
        reason: Reason,
        complaint: str,
        lines: list[tuple[str, int]],
        dx: list[str],
        now: datetime,
    ) -> None:
        """The encounter of a visit that took place, signed within days of the visit."""
        rng = random.Random(f"{self.seed}:visit:{encounter}")
        signed_at = None
        if departed is not None:
            signed = departed + timedelta(hours=rng.choice((0.5, 2, 6, 20, 30, 52)))
            signed_at = signed if signed <= now else None
        clinical.visit_chart(
            self.out.add,
            rng,
            encounter_id=encounter,
            practice_id=plan.id,
            patient_id=prof.guid,
            appointment_id=appointment,
            provider_id=column.provider_id,
            location_id=column.location_id,
            encounter_date=day,
            start=max(start, arrived) if departed is not None else arrived,
            end=departed,
            complaint=complaint,
            dx=dx,
            lines=lines,
            age=_age(prof.dob, day),
            gender=prof.gender,
            nurse=reason.kind == "nurse",
            signed_at=signed_at,
            now=now,
        )

    def visit_plan(
        self, rng: random.Random, prof: Profile, reason: Reason, age: int, day: date
    ) -> tuple[list[tuple[str, int]], list[str], str]:
        """What a visit bills ((code, units) lines), its diagnoses and chief complaint."""
        conditions = list(prof.conditions)
        child = age < 18
        cov = prof.coverage
        medicare = cov.payer is not None and (
            cov.payer.kind == "medicare"
            or (cov.plan is not None and cov.plan.insurance_policy_type.startswith("medicare"))
        )
        flu_season = day.month in (9, 10, 11, 12, 1, 2, 3)
        lines: list[tuple[str, int]] = []
        dx: list[str] = []
        kind = reason.kind
        if kind == "preventive":
            if medicare and age >= 65:
                lines.append(("G0438" if rng.random() < 0.12 else "G0439", 1))
                complaint = "Medicare annual wellness visit"
            else:
                band = next(b for b in reversed(codes.PREVENTIVE_BY_AGE) if age >= b[0])
                lines.append((band[1] if rng.random() < 0.08 else band[2], 1))
                complaint = "Well child check" if child else "Annual physical"
            abnormal = bool(conditions) and rng.random() < 0.5
            if child:
                dx.append("Z00.121" if abnormal else "Z00.129")
            else:
                dx.append("Z00.01" if abnormal else "Z00.00")
            if abnormal:
                dx.extend(rng.sample(conditions, min(len(conditions), 2)))
            vaccines: list[str] = []
            if age < 7 and rng.random() < 0.45:
                vaccines.append("90700" if age < 2 or rng.random() < 0.5 else "90707")
            if 11 <= age <= 12 and rng.random() < 0.6:
                vaccines.append("90715")
            if flu_season and rng.random() < 0.35:
                vaccines.append("90686")
            if vaccines:
                lines.extend((v, 1) for v in vaccines)
                lines.append(("90471", 1))
                if len(vaccines) > 1:
                    lines.append(("90472", len(vaccines) - 1))
                dx.append("Z23")
            if age >= 12 and rng.random() < 0.3:
                if medicare:
                    lines.append(("G0444", 1))
                else:
                    lines.append(("96127", 1))
                dx.append("Z13.31")
            if age >= 40 and rng.random() < 0.35:
                lines.extend((("36415", 1), ("80061", 1)))
        elif kind == "nurse":
            complaint = "Vaccine visit"
            vaccine = "90686" if flu_season else ("90700" if age < 7 else "90715")
            lines.extend(((vaccine, 1), ("90471", 1)))
            dx.append("Z23")
        elif kind == "sick":
            acute = codes.ACUTE_CHILD if child else codes.ACUTE_ADULT
            problem = acute[min(int(rng.expovariate(0.35)), len(acute) - 1)]
            if problem == "N39.0" and prof.gender == "M" and rng.random() < 0.8:
                problem = "J06.9"
            dx.append(problem)
            symptom = "R50.9" if child else "R05.9"
            if problem not in (symptom, "R05.9", "R50.9") and rng.random() < 0.25:
                dx.append(symptom)
            if conditions and rng.random() < 0.2:
                dx.append(rng.choice(conditions))
            lines.append((_weighted(rng, (("99213", 0.6), ("99214", 0.3), ("99212", 0.1))), 1))
            if problem.startswith("J02") and rng.random() < 0.6:
                lines.append(("87880", 1))
            if problem == "N39.0":
                lines.append(("81002", 1))
            complaint = CHIEF_COMPLAINTS.get(problem, "Sick visit")
        else:
            table = {
                "new": codes.NEW_PATIENT_LEVELS,
                "established": codes.ESTABLISHED_LEVELS,
                "follow_up": codes.FOLLOW_UP_LEVELS,
            }[kind]
            lines.append((_weighted(rng, table), 1))
            if conditions:
                dx.extend(rng.sample(conditions, min(len(conditions), rng.randint(1, 3))))
                if medicare and kind != "new" and rng.random() < 0.5:
                    lines.append(("G2211", 1))
                if any(c.startswith("E11") for c in dx) and rng.random() < 0.4:
                    lines.extend((("36415", 1), ("83036", 1)))
                elif "I48.91" in dx and rng.random() < 0.3:
                    lines.append(("93000", 1))
                elif "I10" in dx and rng.random() < 0.15:
                    lines.extend((("36415", 1), ("80053", 1)))
                complaint = (
                    "Establish care"
                    if kind == "new"
                    else "Follow-up " + codes.ICD10_DESCRIPTIONS[dx[0]].split(",")[0].lower()
                )
            else:
                acute = codes.ACUTE_CHILD if child else codes.ACUTE_ADULT
                problem = acute[min(int(rng.expovariate(0.35)), len(acute) - 1)]
                if kind == "new":
                    dx.append(problem)
                    complaint = "New patient, establish care"
                elif not child and rng.random() < 0.4:
                    dx.append("Z76.0")
                    complaint = "Medication refill"
                else:
                    dx.append(problem)
                    complaint = "Recheck: " + CHIEF_COMPLAINTS.get(problem, "symptoms").lower()
        return lines, list(dict.fromkeys(dx))[:4], complaint

    # --- ledger and documents ------------------------------------------------------------------

    def _txn(
        self,
        plan: PracticePlan,
        prof: Profile,
        kind: str,
        status: str,
        balance_type: str,
        amount: int,
        balance: int,
        posting: date,
        service: date,
        column: Column,
        description: str,
        *,
        procedure: str | None = None,
        units: int | None = None,
        dx: str = "[]",
        encounter: int | None = None,
        appointment: str | None = None,
        charge_id: int | None = None,
        profile_id: int | None = None,
        billed: int = 1,
        at: str,
        updated: str | None = None,
        tx_id: int | None = None,
    ) -> int:
        if tx_id is None:
            self.txn_id += 1
            tx_id = self.txn_id
        self.out.add(
            SQL_TRANSACTION,
            (
                tx_id,
                plan.id,
                prof.guid,
                kind,
                status,
                balance_type,
                amount,
                balance,
                posting.isoformat(),
                service.isoformat(),
                column.location_id,
                column.provider_id,
                column.provider_id,
                units,
                description,
                procedure,
                dx,
                encounter,
                appointment,
                charge_id,
                profile_id,
                billed,
                at,
                updated or at,
            ),
        )
        return tx_id

    def ledger(
        self,
        plan: PracticePlan,
        rng: random.Random,
        prof: Profile,
        appointment: str,
        encounter: int,
        service: date,
        departed: datetime,
        column: Column,
        lines: list[tuple[str, int]],
        dx: list[str],
    ) -> None:
        """Charges of a checked-out visit and every credit applied to them so far.

        Each charge's balance is its amount less the credits that point at it, so a patient's
        ledger always sums to the open balance of the charges.
        """
        tz = plan.tz
        cov = prof.coverage
        age_days = (self.anchor - service).days
        billed = int(age_days > 2)
        dx_json = _json(dx)
        profile_id = None if cov.payer is None else prof.internal_id * 2 - 1
        posted_at = _z(departed + timedelta(minutes=rng.randrange(5, 90)))
        # Claim timing and outcome are per visit (one claim), the amounts per line.
        payer = cov.payer
        lag = 0 if payer is None else max(5, payer.lag_days + rng.randrange(-4, 9))
        adjudicated = billed and payer is not None and age_days >= lag
        denied = payer is not None and rng.random() < payer.denial_rate
        denial = codes.DENIALS[min(int(rng.expovariate(0.5)), len(codes.DENIALS) - 1)]
        resolution = rng.random()  # what happened to a denial: resubmitted, written off, open
        overturned: date | None = None  # a denial reversed on appeal: when it was denied
        if denied and adjudicated and age_days >= lag + 45 and resolution < 0.5:
            overturned = service + timedelta(days=lag)
            denied, lag = False, lag + rng.randrange(30, 45)
            adjudicated = age_days >= lag
        paid_on = service + timedelta(days=lag)
        deductible_left = 0
        if payer is not None and cov.deductible_cents:
            unmet = (
                max(0.0, 0.75 - 0.07 * (service.month - 1))
                if payer.kind != "medicare"
                else (0.6 if service.month <= 3 else 0.05)
            )
            if rng.random() < unmet:
                deductible_left = cov.deductible_cents
        statement_pays = rng.random()
        statement_on = paid_on + timedelta(days=rng.randrange(18, 50))
        copay_due = cov.copay_cents
        copay_collected = payer is not None and copay_due > 0 and rng.random() < 0.8
        claim_lines: list[tuple[int, str, int, billing.LineOutcome]] = []
        for code, units in lines:
            proc = codes.PROCEDURE_BY_CODE[code]
            amount = proc.fee_cents * units
            charge_id = self.txn_id + 1
            self.txn_id += 1
            credits: list[tuple[str, str, int, date, str]] = []
            balance = amount
            balance_type = "insurance" if payer is not None else "patient"
            if payer is None:
                if rng.random() < 0.5:
                    discount = amount * 30 // 100
                    credits.append(
                        ("patient_adjustment", "patient", discount, service, "Self-pay discount")
                    )
                    balance -= discount
                if rng.random() < 0.6:
                    credits.append(
                        ("patient_payment", "patient", balance, service, "Payment at visit")
                    )
                    balance = 0
                elif age_days > 30 and statement_pays < 0.5:
                    credits.append(
                        (
                            "patient_payment",
                            "patient",
                            balance,
                            service + timedelta(days=min(age_days, 30)),
                            "Patient payment",
                        )
                    )
                    balance = 0
            else:
                allowed = amount * payer.allowed_pct // 100
                share = copay_part = from_deductible = coinsurance_part = 0
                if not proc.preventive and payer.kind != "medicaid":
                    if code in codes.EVALUATION_CODES and copay_due:
                        copay_part = min(allowed, copay_due)
                        share += copay_part
                    rest = allowed - share
                    from_deductible = min(rest, deductible_left)
                    deductible_left -= from_deductible
                    share += from_deductible
                    coinsurance_part = (rest - from_deductible) * cov.coinsurance_pct // 100
                    share += coinsurance_part
                if billed:
                    claim_lines.append(
                        (
                            charge_id,
                            code,
                            units,
                            billing.denied_line(amount, denial)
                            if denied
                            else billing.paid_line(
                                amount, allowed, copay_part, from_deductible, coinsurance_part
                            ),
                        )
                    )
                at_visit = 0
                if copay_collected and code in codes.EVALUATION_CODES and copay_due:
                    at_visit = min(copay_due, share)
                    copay_due = 0
                    if at_visit:
                        credits.append(
                            ("patient_payment", "patient", at_visit, service, "Copay at visit")
                        )
                        balance -= at_visit
                if adjudicated and not denied:
                    name = payer.name
                    if allowed - share:
                        credits.append(
                            (
                                "insurance_payment",
                                "insurance",
                                allowed - share,
                                paid_on,
                                f"{name} payment",
                            )
                        )
                    if amount - allowed:
                        credits.append(
                            (
                                "insurance_adjustment",
                                "insurance",
                                amount - allowed,
                                paid_on,
                                f"{name} CO-{codes.CARC_CONTRACTUAL} contractual adjustment",
                            )
                        )
                    balance = share - at_visit
                    balance_type = "patient"
                    secondary = cov.secondary
                    second_on = paid_on + timedelta(days=rng.randrange(7, 21))
                    if secondary is not None and balance > 0 and second_on <= self.anchor:
                        credits.append(
                            (
                                "insurance_payment",
                                "insurance",
                                balance,
                                second_on,
                                f"{secondary.name} secondary payment",
                            )
                        )
                        balance = 0
                    elif balance > 0 and statement_on <= self.anchor and statement_pays < 0.75:
                        paid = balance if statement_pays < 0.65 else balance // 2
                        credits.append(
                            ("patient_payment", "patient", paid, statement_on, "Patient payment")
                        )
                        balance -= paid
                elif adjudicated and denied and age_days >= lag + 45 and resolution < 0.8:
                    group, carc, rarc = denial
                    label = f"{group}-{carc}" + (f" {rarc}" if rarc else "")
                    credits.append(
                        (
                            "insurance_adjustment",
                            "insurance",
                            balance,
                            paid_on + timedelta(days=45),
                            f"Denial write-off {label}",
                        )
                    )
                    balance = 0
            status = "not_posted" if not billed else "closed" if balance == 0 else "posted"
            last_at = posted_at
            credit_rows: list[tuple[Any, ...]] = []
            for kind, btype, value, posting, description in credits:
                posting = min(posting, self.anchor)
                at = (
                    posted_at
                    if posting == service
                    else self._instant(posting, time(rng.randrange(9, 17), rng.randrange(60)), tz)
                )
                last_at = max(last_at, at)
                credit_rows.append((kind, btype, value, posting, description, at))
            self._txn(
                plan,
                prof,
                "charge",
                status,
                balance_type,
                amount,
                balance,
                service,
                service,
                column,
                proc.label,
                procedure=code,
                units=units,
                dx=dx_json,
                encounter=encounter,
                appointment=appointment,
                profile_id=profile_id,
                billed=billed,
                at=posted_at,
                updated=last_at,
                tx_id=charge_id,
            )
            for kind, btype, value, posting, description, at in credit_rows:
                self._txn(
                    plan,
                    prof,
                    kind,
                    "posted",
                    btype,
                    -value,
                    0,
                    posting,
                    service,
                    column,
                    description,
                    encounter=encounter,
                    appointment=appointment,
                    charge_id=charge_id,
                    profile_id=profile_id if btype == "insurance" else None,
                    at=at,
                )

        if payer is not None and claim_lines:
            self.claim(
                plan,
                prof,
                encounter,
                service,
                departed,
                column,
                dx,
                payer.id,
                claim_lines,
                adjudicated=bool(adjudicated),
                paid_on=paid_on,
                overturned=overturned,
                written_off=bool(denied and adjudicated)
                and age_days >= lag + 45
                and resolution < 0.8,
                appealed=denied and resolution >= 0.9,
            )

    def claim(
        self,
        plan: PracticePlan,
        prof: Profile,
        encounter: int,
        service: date,
        departed: datetime,
        column: Column,
        dx: list[str],
        payer_id: int,
        lines: list[tuple[int, str, int, billing.LineOutcome]],
        *,
        adjudicated: bool,
        paid_on: date,
        overturned: date | None,
        written_off: bool,
        appealed: bool,
    ) -> None:
        """The claim of a billed visit, its status history and, once adjudicated, its ERA."""
        tz = plan.tz
        claim_id = self._next("claims")
        history: list[tuple[str, date, str]] = []
        submitted = service + timedelta(days=2)
        history.append(("submitted", submitted, "Sent in an 837P batch"))
        for status, day, note in (
            ("accepted", submitted + timedelta(days=1), "Accepted by the payer"),
            ("pending", submitted + timedelta(days=4), "In adjudication"),
        ):
            limit = overturned or (paid_on if adjudicated else None)
            if day <= self.anchor and (limit is None or day < limit):
                history.append((status, day, note))
        if history[-1][0] == "submitted" and adjudicated:
            history.append(
                ("accepted", min(submitted + timedelta(days=1), paid_on), "Accepted by the payer")
            )
        outcome = "submitted"
        if overturned is not None and overturned <= self.anchor:
            history.append(("denied", overturned, "Denied"))
            history.append(("appealed", overturned + timedelta(days=10), "Corrected claim sent"))
            if adjudicated:
                history.append(("pending", overturned + timedelta(days=11), "In adjudication"))
        era: date | None = None
        if adjudicated:
            outcome = billing.final_status([o for _, _, _, o in lines])
            era = max(paid_on, history[-1][1])
            history.append((outcome, era, "Remittance received"))
            if outcome == "denied" and written_off and era + timedelta(days=45) <= self.anchor:
                history.append(("closed", era + timedelta(days=45), "Denial written off"))
            elif outcome == "denied" and appealed and era + timedelta(days=20) <= self.anchor:
                history.append(("appealed", era + timedelta(days=20), "Appeal sent"))
        stamps = [
            self._instant(day, time(8 + n % 9, (claim_id * 7 + n) % 60), tz)
            for n, (_, day, _) in enumerate(history)
        ]
        created = _z(departed + timedelta(minutes=30))
        billed = sum(o.billed for _, _, _, o in lines)
        paid = sum(o.paid for _, _, _, o in lines) if adjudicated else 0
        patient = (
            sum(a[3] for _, _, _, o in lines for a in o.adjustments if a[0] == "PR")
            if adjudicated
            else 0
        )
        status = history[-1][0]
        names = [h[0] for h in history]
        decided = stamps[len(names) - 1 - names[::-1].index(outcome)] if era is not None else None
        self.out.add(
            billing.SQL_CLAIM,
            (
                claim_id,
                billing.claim_number(plan.fhir_code, claim_id),
                plan.id,
                prof.guid,
                encounter,
                payer_id,
                prof.internal_id * 3 - 2,
                column.provider_id,
                column.location_id,
                service.isoformat(),
                service.isoformat(),
                status,
                billed,
                paid,
                patient,
                _json(dx),
                "[]",
                "[]",
                f"{payer_id}{claim_id:011d}" if len(history) > 1 else None,
                stamps[0],
                decided,
                created,
                stamps[-1],
            ),
        )
        self.out.add(
            billing.SQL_HISTORY, (claim_id, "draft", None, "Created from charges", created)
        )
        self.out.add(
            billing.SQL_HISTORY, (claim_id, "scrubbed", None, "Passed the scrubber", created)
        )
        for (status_name, _, note), at in zip(history, stamps, strict=True):
            self.out.add(
                billing.SQL_HISTORY,
                (claim_id, status_name, billing.CATEGORY[status_name], note, at),
            )
        line_ids: list[int] = []
        for n, (charge_id, code, units, outcome_line) in enumerate(lines, start=1):
            line_id = self._next("claim_lines")
            line_ids.append(line_id)
            self.out.add(
                billing.SQL_CLAIM_LINE,
                (
                    line_id,
                    claim_id,
                    n,
                    charge_id,
                    code,
                    "[]",
                    units,
                    service.isoformat(),
                    outcome_line.billed,
                    "[1]",
                ),
            )
        if era is None:
            return
        key = (plan.id, payer_id, era)
        payment = self.payments.get(key)
        if payment is None:
            payment = [self._next("payments"), 0]
            self.payments[key] = payment
        at = decided or stamps[-1]
        paid_now, _ = billing.write_remittance(
            self.out.add,
            self._next,
            payment_id=payment[0],
            practice_id=plan.id,
            claim_id=claim_id,
            lines=[(line_id, o) for line_id, (_, _, _, o) in zip(line_ids, lines, strict=True)],
            at=at,
        )
        payment[1] += paid_now

    def _next(self, table: str) -> int:
        self.row_ids[table] = self.row_ids.get(table, 0) + 1
        return self.row_ids[table]

    def documents(
        self,
        plan: PracticePlan,
        rng: random.Random,
        prof: Profile,
        reason: Reason,
        service: date,
        departed: datetime,
    ) -> None:
        """Clinical documents of a checked-out visit: a note for some, an H&P for new patients."""
        sources: list[str] = []
        if rng.random() < 0.3:
            sources.append(_weighted(rng, [(s, w) for s, _, w in codes.DOCUMENT_SOURCES]))
        if reason.kind == "new" and rng.random() < 0.5:
            sources.append("History and Physical")
        at = _z(departed + timedelta(hours=rng.randrange(1, 30)))
        at = min(at, _z(self.now(plan.tz)))
        for source in dict.fromkeys(sources):
            self.out.add(
                SQL_DOCUMENT,
                (
                    plan.id,
                    prof.guid,
                    f"{source} {service.isoformat()}.pdf",
                    f"{source} for the visit of {service.isoformat()}",
                    source,
                    service.isoformat(),
                    "application/pdf",
                    rng.randrange(20_000, 400_000),
                    at,
                    at,
                ),
            )

    # --- finishing ----------------------------------------------------------------------------

    def finish(self) -> None:
        """Set each patient's last seen date from the checked-out visits; write the ERA
        payments, the FHIR id crosswalk and patient statements."""
        for (practice_id, payer_id, day), (payment_id, amount) in sorted(
            self.payments.items(), key=lambda item: item[1][0]
        ):
            at = _z(datetime.combine(day, time(7), UTC))
            self.out.add(
                billing.SQL_PAYMENT,
                (
                    payment_id,
                    practice_id,
                    "era",
                    payer_id,
                    None,
                    f"EFT{self.seed % 1000:03d}{payment_id:09d}",
                    "ACH",
                    day.isoformat(),
                    amount,
                    at,
                    at,
                ),
            )
        self.out.flush()
        crosswalk.link_all(self.db)
        statements.generate_history(self.db, self.anchor)
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE patients SET last_seen_date = (SELECT substr(MAX(a.start_time), 1, 10) "
                "FROM appointments a WHERE a.patient_id = patients.id AND a.status_code = 'O')"
            )
        self.progress("done", 1, 1)

    @staticmethod
    def _instant(day: date, at: time, tz: ZoneInfo) -> str:
        return _z(datetime.combine(day, at, tz))


def _subtract(spans: list[list[int]], start: int, end: int) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in spans:
        if end <= a or start >= b:
            out.append([a, b])
            continue
        if a < start:
            out.append([a, start])
        if end < b:
            out.append([end, b])
    return out


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _reason_text(kind: str) -> tuple[str, str]:
    return {
        "new": ("NEW PATIENT VISIT", "New patient office visit"),
        "established": ("ESTABLISHED PATIENT VISIT", "Established patient visit"),
        "follow_up": ("FOLLOW UP VISIT", "Short follow-up"),
        "preventive": ("WELL VISIT", "Preventive visit"),
        "sick": ("SICK VISIT", "Same-day sick visit"),
        "nurse": ("NURSE VISIT", "Vaccine or nurse-only visit"),
    }[kind]


def _profile_name(payer: codes.PayerSeed) -> str:
    return {
        "medicare": "Medicare",
        "medicaid": "Medicaid",
        "bcbs": "Commercial",
        "workers_comp": "Workers Comp",
    }.get(payer.kind, "Commercial")


_MBI_LETTERS = "ACDEFGHJKMNPQRTUVWXY"  # letters CMS allows in an MBI (no S L O I B Z)


def member_number(payer: codes.PayerSeed, number: int, rng: random.Random) -> str:
    """A member number in the payer's usual format, unique per ``number`` within the payer."""
    fmt = payer.member_format
    if fmt == "aetna":
        return "W2" + _unique_digits(number, 8, 11)
    if fmt == "uhc":
        return "9" + _unique_digits(number, 8, 13)
    if fmt == "cigna":
        return "U" + _unique_digits(number, 8, 17) + "01"
    if fmt == "bcbs":
        return "XOF" + _unique_digits(number, 9, 19)
    if fmt == "humana":
        return "H" + _unique_digits(number, 8, 23)
    if fmt == "mbi":
        digits = _unique_digits(number, 7, 29)
        letters = [rng.choice(_MBI_LETTERS) for _ in range(4)]
        # C A AN N - A AN N - A A N N  (positions 3 and 6 use digits here)
        return (
            f"{int(digits[0]) % 9 + 1}{letters[0]}{digits[1]}{digits[2]}"
            f"{letters[1]}{digits[3]}{digits[4]}{letters[2]}{letters[3]}{digits[5]}{digits[6]}"
        )
    if fmt == "claim":
        return f"WC{payer.id}-" + _unique_digits(number, 7, 31)
    width = int(fmt.removeprefix("digits"))
    return str(int(_unique_digits(number, width - 1, 37)) + 10 ** (width - 1))


def generate(
    db: TenantDB,
    config: SandboxConfig,
    anchor: date,
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> None:
    """Write a complete synthetic tenant for ``config.seed`` into ``db``.

    Args:
        db: an empty tenant database.
        config: sizes and the seed.
        anchor: the generator's "today": history lies before it, bookings after it.
        progress: optional ``(stage, done, total)`` callback.
        now: the tenant clock's instant; nothing generated is stamped after it.
    """
    Generator(db, config, anchor, progress, now).run()


def iter_practice_plans(db: TenantDB) -> Iterator[tuple[int, str]]:
    """The practices of a generated tenant as (id, business_entity_id)."""
    for row in db.all("SELECT id, business_entity_id FROM practices ORDER BY id"):
        yield int(row[0]), str(row[1])
