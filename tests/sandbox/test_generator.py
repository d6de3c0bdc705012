"""The synthetic practice: deterministic, realistic and internally consistent."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import simple_icd_10_cm as cm

from carebridge.domain.npi import is_valid_npi
from carecloud_sandbox import codes, personas
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.db import TenantDB
from carecloud_sandbox.generator import generate, office_holidays
from carecloud_sandbox.tenant import ALL_PRIVILEGES

ANCHOR = date(2026, 11, 24)
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _tenant(seed: int = 42, patients: int = 300, practices: int = 2, **extra: Any) -> TenantDB:
    db = TenantDB()
    generate(db, SandboxConfig(seed=seed, patients=patients, practices=practices, **extra), ANCHOR)
    return db


def _dump(db: TenantDB) -> dict[str, list[tuple[object, ...]]]:
    tables = [r[0] for r in db.all("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: sorted(tuple(r) for r in db.all(f"SELECT * FROM {t}")) for t in tables}


def _pairs(db: TenantDB, sql: str) -> dict[Any, Any]:
    return {r[0]: r[1] for r in db.all(sql)}


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _now(db: TenantDB, practice_id: int) -> datetime:
    """The generator's 'now': 09:00 practice-local on the anchor day."""
    tz = ZoneInfo(db.scalar("SELECT timezone FROM practices WHERE id = ?", (practice_id,)))
    return datetime.combine(ANCHOR, time(9), tz)


@pytest.fixture(scope="module")
def db() -> TenantDB:
    return _tenant()


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_gives_the_same_tenant_and_another_seed_does_not(db: TenantDB) -> None:
    dump = _dump(db)
    assert _dump(_tenant()) == dump
    other = _dump(_tenant(seed=43))
    for table in ("patients", "appointments", "transactions", "oauth_clients", "users"):
        assert other[table] != dump[table], table
    assert all(dump[t] for t in ("appointment_confirmations", "documents", "insurance_policies"))


def test_secrets_derive_from_the_seed(db: TenantDB) -> None:
    secret = db.scalar(
        "SELECT client_secret FROM oauth_clients WHERE client_id = ?", (personas.CLIENT_ID,)
    )
    other = _tenant(seed=7, patients=10).scalar(
        "SELECT client_secret FROM oauth_clients WHERE client_id = ?", (personas.CLIENT_ID,)
    )
    assert len(secret) >= 32
    assert secret != other


# --- personas and reference data ------------------------------------------------------------------


def test_personas_are_present_with_fixed_ids(db: TenantDB) -> None:
    practices = {r[0]: r[1] for r in db.all("SELECT id, business_entity_id FROM practices")}
    assert practices == {1: personas.PRACTICE_GUID, 2: personas.PRACTICE2_GUID}
    user = db.one("SELECT * FROM users WHERE id = ?", (personas.USER_ID,))
    assert user is not None
    assert (user["practice_id"], user["username"], user["password"], user["totp_seed"]) == (
        1,
        personas.USERNAME,
        personas.PASSWORD,
        personas.TOTP_SEED,
    )
    assert db.scalar("SELECT practice_id FROM users WHERE id = ?", (personas.USER2_ID,)) == 2
    for persona in personas.FAMILY:
        row = db.one("SELECT * FROM patients WHERE id = ?", (persona.id,))
        assert row is not None
        assert (
            row["internal_id"],
            row["practice_id"],
            row["first_name"],
            row["dob"],
            row["chart_number"],
        ) == (
            persona.internal_id,
            1,
            persona.first_name,
            persona.dob.isoformat(),
            persona.chart_number,
        )
        policy = db.one(
            "SELECT payer_id, member_number FROM insurance_policies WHERE patient_id = ? "
            "AND policy_priority = 1",
            (persona.id,),
        )
        assert policy is not None
        assert tuple(policy) == (personas.PAYER_ID, persona.member_number)
    assert db.scalar("SELECT name FROM payers WHERE id = ?", (personas.PAYER_ID,)) == "Aetna"


def test_persona_schedule_objects(db: TenantDB) -> None:
    provider = db.one("SELECT * FROM providers WHERE id = ?", (personas.PROVIDER_ID,))
    assert provider is not None
    assert (provider["npi"], provider["status"], provider["taxonomy"]) == (
        personas.PROVIDER_NPI,
        "A",
        personas.PROVIDER_TAXONOMY,
    )
    assert (
        db.scalar("SELECT status FROM providers WHERE id = ?", (personas.INACTIVE_PROVIDER_ID,))
        == "I"
    )
    location = db.one("SELECT * FROM locations WHERE id = ?", (personas.LOCATION_ID,))
    assert location is not None
    assert location["place_of_service_code"] == "11"
    address = orjson.loads(location["address_json"])
    assert set(address) >= {
        "line1",
        "line2",
        "line3",
        "city",
        "zip_code",
        "county_name",
        "latitude",
        "longitude",
        "state_name",
        "state_code",
    }
    phones = orjson.loads(location["phones_json"])
    assert {p["phone_type"] for p in phones} == {"B", "F"}
    assert all(set(p) == {"phone_number", "phone_type", "phone_ext", "is_primary"} for p in phones)
    resource = db.one("SELECT * FROM resources WHERE id = ?", (personas.RESOURCE_ID,))
    assert resource is not None
    assert resource["default_provider_id"] == personas.PROVIDER_ID
    assert (
        db.scalar("SELECT status FROM resources WHERE id = ?", (personas.INACTIVE_RESOURCE_ID,))
        == "I"
    )
    reasons = {
        r[0]: (r[1], r[2])
        for r in db.all("SELECT id, duration, status FROM visit_reasons WHERE practice_id = 1")
    }
    for reason in personas.VISIT_REASONS:
        assert reasons[reason.id] == (reason.duration, "A")
    assert reasons[personas.INACTIVE_VISIT_REASON][1] == "I"
    linked = {
        r[0]
        for r in db.all(
            "SELECT visit_reason_id FROM resource_visit_reasons WHERE resource_id = ?",
            (personas.RESOURCE_ID,),
        )
    }
    assert linked == {v.id for v in personas.VISIT_REASONS}


def test_oauth_clients_and_privileges(db: TenantDB) -> None:
    rows = {
        r["client_id"]: r
        for r in db.all("SELECT client_id, redirect_uri, scopes_json FROM oauth_clients")
    }
    assert set(orjson.loads(rows[personas.CLIENT_ID]["scopes_json"])) == set(ALL_PRIVILEGES)
    limited = orjson.loads(rows[personas.LIMITED_CLIENT_ID]["scopes_json"])
    assert limited
    assert all(p.endswith(".read") for p in limited)
    assert {r["redirect_uri"] for r in rows.values()} == {personas.REDIRECT_URI}


def test_statuses_and_cancellation_reasons(db: TenantDB) -> None:
    first = db.one("SELECT practice_id, code FROM appointment_statuses WHERE id = 1")
    assert first is not None
    assert tuple(first) == (1, "P")
    for practice in (1, 2):
        found = {
            r[0]
            for r in db.all(
                "SELECT code FROM appointment_statuses WHERE practice_id = ?", (practice,)
            )
        }
        assert found == {"P", "I", "O", "C", "R", "N"}
    assert db.scalar("SELECT practice_id IS NULL FROM cancellation_reasons WHERE id = 4") == 1
    assert db.scalar("SELECT COUNT(*) FROM cancellation_reasons WHERE practice_id = 2") > 0


def test_payers_have_plans_lags_and_denial_rates(db: TenantDB) -> None:
    kinds = set()
    for row in db.all("SELECT * FROM payers"):
        kinds.add(row["kind"])
        plans = orjson.loads(row["plans_json"])
        assert plans
        assert all(set(p) == {"id", "name", "insurance_policy_type"} for p in plans)
        assert row["adjudication_lag_days"] > 0
        assert 0 < row["denial_rate"] < 0.5
    assert {"commercial", "medicare", "medicaid", "bcbs", "workers_comp"} <= kinds
    names = [r[0] for r in db.all("SELECT name FROM payers WHERE name LIKE '%aet%'")]
    assert names == ["Aetna"]


def test_more_practices_get_their_own_data() -> None:
    db = _tenant(patients=90, practices=3)
    counts = _pairs(db, "SELECT practice_id, COUNT(*) FROM patients GROUP BY practice_id")
    assert counts == {1: 30, 2: 30, 3: 30}
    assert db.scalar("SELECT COUNT(*) FROM users WHERE practice_id = 3") == 1
    assert db.scalar("SELECT COUNT(*) FROM providers WHERE practice_id = 3") >= 3
    assert db.scalar("SELECT COUNT(*) FROM appointments WHERE practice_id = 3") > 0


# --- codes ----------------------------------------------------------------------------------------


def test_every_npi_has_a_valid_luhn_digit(db: TenantDB) -> None:
    npis = [
        r[0]
        for r in db.all(
            "SELECT npi FROM providers UNION ALL SELECT npi FROM locations "
            "UNION ALL SELECT npi FROM practices"
        )
    ]
    assert len(npis) > 8
    assert all(is_valid_npi(n) for n in npis)
    assert len(set(npis)) == len(npis)


def test_curated_icd10_codes_are_billable_leaves_with_their_descriptions() -> None:
    for code, description in codes.ICD10_DESCRIPTIONS.items():
        assert cm.is_valid_item(code), code
        assert cm.is_leaf(code), code
        assert cm.get_description(code) == description, code
    referenced = {c.code for c in codes.CHRONIC_CONDITIONS} | set(codes.ACUTE_ADULT)
    assert referenced | set(codes.ACUTE_CHILD) <= set(codes.ICD10_PRIMARY_CARE)


def test_code_tables_are_well_formed() -> None:
    assert set(codes.FEE_SCHEDULE_CENTS) == {p.code for p in codes.PROCEDURES}
    assert all(re.fullmatch(r"\d{5}|[A-Z]\d{4}", c) for c in codes.FEE_SCHEDULE_CENTS)
    assert all(v > 0 for v in codes.FEE_SCHEDULE_CENTS.values())
    assert all(re.fullmatch(r"\d{3}[0-9A-Z]{6}X", t) for t in codes.TAXONOMIES)
    assert all(re.fullmatch(r"\d{2}", p) for p in codes.PLACE_OF_SERVICE)
    for _, new, established in codes.PREVENTIVE_BY_AGE:
        assert codes.PROCEDURE_BY_CODE[new].preventive
        assert codes.PROCEDURE_BY_CODE[established].preventive
    for group, carc, rarc in codes.DENIALS:
        assert group in codes.ADJUSTMENT_GROUPS
        assert carc in codes.CARC
        assert rarc is None or rarc in codes.RARC
    plan_ids = [plan.id for p in codes.PAYERS for plan in p.plans]
    assert len(plan_ids) == len(set(plan_ids))


def test_charges_use_curated_codes_and_fees(db: TenantDB) -> None:
    rows = db.all(
        "SELECT procedure_code, units, amount_cents, diagnosis_codes_json FROM transactions "
        "WHERE transaction_type = 'charge'"
    )
    assert len(rows) > 500
    for code, units, amount, dx in rows:
        assert amount == codes.FEE_SCHEDULE_CENTS[code] * units
        diagnoses = orjson.loads(dx)
        assert 1 <= len(diagnoses) <= 4
        assert set(diagnoses) <= set(codes.ICD10_PRIMARY_CARE)
    used = {r[0] for r in rows}
    assert {"99213", "99214"} <= used
    assert used & {"99393", "99394", "99395", "99396", "G0439"}


def test_age_appropriate_codes(db: TenantDB) -> None:
    rows = db.all(
        "SELECT t.procedure_code, t.service_date, p.dob, t.diagnosis_codes_json "
        "FROM transactions t JOIN patients p ON p.id = t.patient_id "
        "WHERE t.transaction_type = 'charge'"
    )
    bands = {code: start for start, new, est in codes.PREVENTIVE_BY_AGE for code in (new, est)}
    ends = dict(
        zip([b[0] for b in codes.PREVENTIVE_BY_AGE], [1, 5, 12, 18, 40, 65, 200], strict=True)
    )
    for code, service, dob, dx in rows:
        born, seen = date.fromisoformat(dob), date.fromisoformat(service)
        age = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
        assert born < seen
        if code in bands:
            assert bands[code] <= age < ends[bands[code]], (code, age)
        diagnoses = orjson.loads(dx)
        if "Z00.129" in diagnoses or "Z00.121" in diagnoses:
            assert age < 18
        if "Z00.00" in diagnoses or "Z00.01" in diagnoses:
            assert age >= 18


# --- schedule -------------------------------------------------------------------------------------


def test_no_resource_is_double_booked(db: TenantDB) -> None:
    # Sorted by start, any overlap shows up between neighbours.
    overlaps = db.scalar(
        "SELECT COUNT(*) FROM (SELECT start_time, LAG(end_time) OVER (PARTITION BY resource_id "
        "ORDER BY start_time, end_time) AS previous_end FROM appointments) "
        "WHERE start_time < previous_end"
    )
    assert overlaps == 0
    assert db.scalar("SELECT COUNT(DISTINCT resource_id) FROM appointments") >= 6


def _windows(db: TenantDB) -> dict[int, list[Any]]:
    by_resource: dict[int, list[Any]] = defaultdict(list)
    for t in db.all("SELECT * FROM appointment_templates WHERE status = 'A'"):
        for resource in orjson.loads(t["resource_ids_json"]):
            by_resource[resource].append(t)
    return by_resource


def test_appointments_lie_inside_templates_and_outside_blockouts(db: TenantDB) -> None:
    templates = _windows(db)
    blockouts = db.all("SELECT * FROM appointment_blockouts WHERE status = 'A'")
    assert {b["name"] for b in blockouts} >= {"Office closed", "Staff meeting", "Vacation"}
    zones = {r[0]: ZoneInfo(r[1]) for r in db.all("SELECT id, timezone FROM practices")}
    checked = 0
    for a in db.all("SELECT * FROM appointments"):
        tz = zones[a["practice_id"]]
        start = _utc(a["start_time"]).astimezone(tz)
        end = _utc(a["end_time"]).astimezone(tz)
        assert start.date() == end.date()
        assert start.minute % 15 == 0
        day, index = start.date().isoformat(), (start.weekday() + 1) % 7
        lo, hi = start.strftime("%H:%M"), end.strftime("%H:%M")
        assert any(
            t["days"][index] == "1"
            and t["effective_from"] <= day
            and (t["effective_to"] is None or day <= t["effective_to"])
            and t["start_at"] <= lo
            and hi <= t["end_at"]
            and a["location_id"] in orjson.loads(t["location_ids_json"])
            for t in templates[a["resource_id"]]
        ), a["internal_id"]
        for b in blockouts:
            if (
                a["resource_id"] in orjson.loads(b["resource_ids_json"])
                and b["days"][index] == "1"
                and b["start_date"] <= day <= b["end_date"]
            ):
                assert hi <= b["start_at"] or lo >= b["end_at"], (a["internal_id"], b["name"])
        checked += 1
    assert checked > 2000


def test_holidays_and_vacations_are_blocked(db: TenantDB) -> None:
    assert (date(2026, 11, 26), "Thanksgiving Day") in office_holidays(2026)
    assert (date(2026, 7, 3), "Independence Day") in office_holidays(2026)  # Saturday, observed
    assert (date(2026, 5, 25), "Memorial Day") in office_holidays(2026)
    assert db.scalar("SELECT COUNT(*) FROM appointments WHERE start_time LIKE '2026-11-26%'") == 0
    vacation = db.one(
        "SELECT * FROM appointment_blockouts WHERE name = 'Vacation' AND start_date > ? "
        "ORDER BY start_date LIMIT 1",
        (ANCHOR.isoformat(),),
    )
    assert vacation is not None
    resource = orjson.loads(vacation["resource_ids_json"])[0]
    assert resource != personas.RESOURCE_ID
    assert (
        db.scalar(
            "SELECT COUNT(*) FROM appointments WHERE resource_id = ? AND start_time >= ? "
            "AND start_time < ?",
            (
                resource,
                vacation["start_date"],
                (date.fromisoformat(vacation["end_date"]) + timedelta(days=1)).isoformat(),
            ),
        )
        == 0
    )


def test_future_availability_is_real_and_falls_off(db: TenantDB) -> None:
    tz = ZoneInfo(personas.PRACTICE_TZ)
    booked: dict[date, int] = defaultdict(int)
    for start, end in db.all(
        "SELECT start_time, end_time FROM appointments WHERE resource_id = ? AND start_time > ?",
        (personas.RESOURCE_ID, "2026-11-25"),
    ):
        booked[_utc(start).astimezone(tz).date()] += (_utc(end) - _utc(start)).seconds // 60
    soon = [booked[ANCHOR + timedelta(days=d)] for d in range(1, 8)]
    late = [booked[ANCHOR + timedelta(days=d)] for d in range(45, 61)]
    # 480 template minutes a weekday: the next week is busy yet bookable, two months out is open.
    assert 0 < sum(soon) / 5 < 480
    assert sum(late) / 12 < 0.35 * 480
    assert sum(soon) / 5 > sum(late) / 12


def test_volume_is_near_patients_times_appointments_per_patient(db: TenantDB) -> None:
    assert 300 * 10 * 0.9 <= db.scalar("SELECT COUNT(*) FROM appointments") <= 300 * 10 * 1.1
    small = _tenant(patients=2000, appointments_per_patient=4.0)
    assert 8000 * 0.9 <= small.scalar("SELECT COUNT(*) FROM appointments") <= 8000 * 1.1
    # A longer history for more visits per patient, never in the future beyond 60 days.
    busy = _tenant(patients=600, appointments_per_patient=25.0)
    assert 15000 * 0.9 <= busy.scalar("SELECT COUNT(*) FROM appointments") <= 15000 * 1.1
    assert busy.scalar("SELECT MAX(start_time) FROM appointments") < "2027-01-24"


def test_status_mix_is_plausible(db: TenantDB) -> None:
    past = _pairs(
        db,
        "SELECT status_code, COUNT(*) FROM appointments WHERE start_time < '2026-11-24' "
        "GROUP BY status_code",
    )
    total = sum(past.values())
    assert 0.80 < past["O"] / total < 0.92
    assert 0.04 < past["C"] / total < 0.12
    assert past["N"] > 0
    assert past["R"] > 0
    future = _pairs(
        db,
        "SELECT status_code, COUNT(*) FROM appointments WHERE start_time > '2026-11-25' "
        "GROUP BY status_code",
    )
    assert set(future) == {"P"}
    confirmed = db.scalar(
        "SELECT AVG(is_confirmed) FROM appointments WHERE start_time > '2026-11-25'"
    )
    assert 0.25 < confirmed < 0.6
    today = {
        r[0]
        for r in db.all(
            "SELECT status_code FROM appointments WHERE start_time LIKE '2026-11-24%' "
            "AND practice_id = 1"
        )
    }
    assert {"P", "I"} <= today
    assert today <= {"P", "I", "O"}


def test_status_ids_belong_to_the_practice(db: TenantDB) -> None:
    mismatched = db.scalar(
        "SELECT COUNT(*) FROM appointments a LEFT JOIN appointment_statuses s "
        "ON s.id = a.appointment_status_id AND s.practice_id = a.practice_id "
        "AND s.code = a.status_code WHERE s.id IS NULL"
    )
    assert mismatched == 0


def test_appointment_details_are_consistent(db: TenantDB) -> None:
    nows = {p: _now(db, p) for p in (1, 2)}
    for a in db.all("SELECT * FROM appointments"):
        now = nows[a["practice_id"]]
        for column in ("start_time", "end_time", "created_at", "updated_at"):
            assert INSTANT.match(a[column])
        start, created, updated = (
            _utc(a["start_time"]),
            _utc(a["created_at"]),
            _utc(a["updated_at"]),
        )
        assert created < start
        assert created <= updated <= max(now, created)
        assert created <= now
        code = a["status_code"]
        assert (a["departed_at"] is not None) == (code == "O")
        assert (a["arrived_at"] is not None) == (code in "OI")
        assert (a["cancellation_reason_id"] is not None) == (code == "C")
        if code == "O":
            assert _utc(a["arrived_at"]) <= _utc(a["departed_at"]) <= now
    orphans = db.scalar(
        "SELECT COUNT(*) FROM appointments a LEFT JOIN patients p ON p.id = a.patient_id "
        "AND p.practice_id = a.practice_id WHERE p.id IS NULL OR p.dob >= substr(a.start_time, 1, 10)"
    )
    assert orphans == 0
    unconfirmed = db.scalar(
        "SELECT COUNT(*) FROM appointments a WHERE is_confirmed = 1 AND NOT EXISTS ("
        "SELECT 1 FROM appointment_confirmations c WHERE c.appointment_id = a.id "
        "AND c.communication_outcome = 'confirmed' AND c.date_confirmed <= a.start_time)"
    )
    assert unconfirmed == 0


# --- patients and coverage ------------------------------------------------------------------------


def test_patients_have_plausible_demographics(db: TenantDB) -> None:
    for p in db.all("SELECT * FROM patients"):
        data = orjson.loads(p["data_json"])
        assert data["language_code"] in ("eng", "spa")
        assert data["ethnicity_code"] in ("U", "H", "N")
        assert data["addresses"][0]["country_id"] == 225
        assert data["addresses"][0]["is_primary"] is True
        primary = [ph for ph in data["phones"] if ph["is_primary"]]
        assert len(primary) == 1
        assert re.sub(r"\D", "", primary[0]["phone_number"]) == p["phone_digits"]
        assert p["ssn"] == "" or p["ssn"].startswith("9")
        assert p["created_at"] <= p["updated_at"]
        if p["practice_id"] == 2:
            assert p["dob"] > "2008-11-24"  # a pediatric practice
    last_seen = db.one(
        "SELECT id, last_seen_date FROM patients WHERE last_seen_date IS NOT NULL LIMIT 1"
    )
    assert last_seen is not None
    assert (
        db.scalar(
            "SELECT MAX(substr(start_time, 1, 10)) FROM appointments WHERE patient_id = ? "
            "AND status_code = 'O'",
            (last_seen[0],),
        )
        == last_seen[1]
    )


def test_coverage_mix_and_member_numbers() -> None:
    db = _tenant(patients=1000)
    rows = db.all(
        "SELECT y.kind, y.id, p.member_number, p.policy_priority, t.dob "
        "FROM insurance_policies p JOIN payers y ON y.id = p.payer_id "
        "JOIN patients t ON t.id = p.patient_id"
    )
    kinds = {r[0] for r in rows}
    assert {"medicare", "medicaid", "commercial", "bcbs"} <= kinds
    assert db.scalar("SELECT COUNT(*) FROM insurance_profiles WHERE self_pay = 1") > 0
    assert db.scalar("SELECT COUNT(*) FROM insurance_policies WHERE policy_priority = 2") > 0
    members: dict[int, set[str]] = defaultdict(set)
    for kind, payer, member, priority, dob in rows:
        assert member not in members[payer]
        members[payer].add(member)
        if kind == "medicare" and priority == 1:
            assert dob <= "1961-11-24"  # 65 or older
            assert re.fullmatch(r"[1-9][A-Z]\d{2}[A-Z]\d{2}[A-Z]{2}\d{2}", member)


# --- ledger ---------------------------------------------------------------------------------------


def test_every_patient_ledger_balances(db: TenantDB) -> None:
    unbalanced = db.scalar(
        "SELECT COUNT(*) FROM (SELECT patient_id, SUM(amount_cents) AS s, SUM(CASE WHEN "
        "transaction_type = 'charge' THEN balance_cents ELSE 0 END) AS b FROM transactions "
        "GROUP BY patient_id) WHERE s != b"
    )
    assert unbalanced == 0


def test_each_charge_balance_is_its_amount_less_its_credits(db: TenantDB) -> None:
    mismatched = db.scalar(
        "SELECT COUNT(*) FROM transactions c WHERE c.transaction_type = 'charge' AND "
        "c.balance_cents != c.amount_cents + COALESCE((SELECT SUM(x.amount_cents) FROM "
        "transactions x WHERE x.charge_id = c.id), 0)"
    )
    assert mismatched == 0
    assert db.scalar("SELECT COUNT(*) FROM transactions WHERE balance_cents < 0") == 0
    bad_credits = db.scalar(
        "SELECT COUNT(*) FROM transactions x JOIN transactions c ON c.id = x.charge_id "
        "WHERE x.transaction_type != 'charge' AND (x.amount_cents >= 0 OR x.balance_cents != 0 "
        "OR x.posting_date < c.posting_date OR x.patient_id != c.patient_id)"
    )
    assert bad_credits == 0
    assert (
        db.scalar(
            "SELECT COUNT(*) FROM transactions WHERE transaction_type != 'charge' "
            "AND charge_id IS NULL"
        )
        == 0
    )


def test_ledger_follows_the_visits(db: TenantDB) -> None:
    # Only checked-out visits are charged, and every checked-out visit in the past is.
    stray = db.scalar(
        "SELECT COUNT(*) FROM transactions t JOIN appointments a ON a.id = t.appointment_id "
        "WHERE a.status_code != 'O'"
    )
    assert stray == 0
    uncharged = db.scalar(
        "SELECT COUNT(*) FROM appointments a WHERE a.status_code = 'O' AND NOT EXISTS ("
        "SELECT 1 FROM transactions t WHERE t.appointment_id = a.id "
        "AND t.transaction_type = 'charge')"
    )
    assert uncharged == 0
    recent = db.all(
        "SELECT DISTINCT billed, transaction_status FROM transactions "
        "WHERE transaction_type = 'charge' AND service_date >= '2026-11-22'"
    )
    assert [tuple(r) for r in recent] == [(0, "not_posted")]
    kinds = {r[0] for r in db.all("SELECT DISTINCT transaction_type FROM transactions")}
    assert {"charge", "insurance_payment", "insurance_adjustment", "patient_payment"} <= kinds
    assert db.scalar(
        "SELECT COUNT(*) FROM transactions WHERE transaction_type = 'insurance_adjustment' "
        "AND description LIKE '%CO-45%'"
    )
    balances = _pairs(
        db,
        "SELECT balance_type, SUM(balance_cents) FROM transactions "
        "WHERE transaction_type = 'charge' GROUP BY balance_type",
    )
    assert balances["insurance"] > 0
    assert balances["patient"] > 0


def test_self_pay_patients_owe_everything_themselves(db: TenantDB) -> None:
    rows = db.all(
        "SELECT t.transaction_type, t.balance_type FROM transactions t "
        "JOIN insurance_profiles p ON p.patient_id = t.patient_id AND p.is_default = 1 "
        "WHERE p.self_pay = 1"
    )
    assert rows
    assert {r[1] for r in rows} == {"patient"}
    assert not {r[0] for r in rows} & {"insurance_payment", "insurance_adjustment"}


def test_documents_come_from_checked_out_visits(db: TenantDB) -> None:
    sources = {s for s, _, _ in codes.DOCUMENT_SOURCES}
    rows = db.all("SELECT patient_id, document_date, document_source_name FROM documents")
    assert len(rows) > 100
    assert {r[2] for r in rows} <= sources
    stray = db.scalar(
        "SELECT COUNT(*) FROM documents d WHERE NOT EXISTS (SELECT 1 FROM transactions t "
        "WHERE t.patient_id = d.patient_id AND t.service_date = d.document_date)"
    )
    assert stray == 0


def test_progress_is_reported() -> None:
    seen: list[tuple[str, int, int]] = []
    generate(
        TenantDB(),
        SandboxConfig(seed=1, patients=40),
        ANCHOR,
        progress=lambda stage, done, total: seen.append((stage, done, total)),
    )
    stages = {s for s, _, _ in seen}
    assert {"patients practice 1", "schedule practice 2", "done"} <= stages
    assert all(0 <= done <= total for _, done, total in seen)


@pytest.mark.slow
def test_twenty_thousand_patients_generate_consistently() -> None:
    db = _tenant(patients=20_000)
    assert db.scalar("SELECT COUNT(*) FROM patients") == 20_000
    assert 180_000 <= db.scalar("SELECT COUNT(*) FROM appointments") <= 220_000
    assert db.scalar("SELECT COUNT(*) FROM providers WHERE status = 'A'") >= 2 * 9
    test_every_patient_ledger_balances(db)
    test_no_resource_is_double_booked(db)
