"""The synthetic practice: deterministic, realistic, consistent."""

from __future__ import annotations

from datetime import date

import pytest
import simple_icd_10_cm as cm

from carebridge.domain.npi import is_valid_npi
from carebridge.sandbox import codes, personas
from carebridge.sandbox.config import SandboxConfig
from carebridge.sandbox.db import TRUTH_TABLES, TenantDB
from carebridge.sandbox.generator import generate

ANCHOR = date(2026, 11, 24)


def _tenant(seed: int = 42, patients: int = 150) -> TenantDB:
    db = TenantDB()
    generate(db, SandboxConfig(seed=seed, patients=patients, practices=2), ANCHOR)
    return db


def _dump(db: TenantDB) -> dict[str, list[tuple[object, ...]]]:
    return {
        t: [tuple(r) for r in db.all(f"SELECT * FROM {t} ORDER BY {o}")]
        for t, o in TRUTH_TABLES.items()
    }


@pytest.fixture(scope="module")
def db() -> TenantDB:
    return _tenant()


def test_same_seed_gives_the_same_tenant_and_another_seed_does_not(db: TenantDB) -> None:
    assert _dump(_tenant()) == _dump(db)
    assert _dump(_tenant(seed=43))["patients"] != _dump(db)["patients"]


def test_personas_are_present_with_fixed_ids(db: TenantDB) -> None:
    for persona in personas.FAMILY:
        row = db.one("SELECT first_name, dob FROM patients WHERE id = ?", (persona.id,))
        assert row is not None
        assert (row[0], row[1]) == (persona.first_name, persona.dob.isoformat())
    assert (
        db.scalar("SELECT npi FROM providers WHERE id = ?", (personas.PROVIDER_ID,))
        == personas.PROVIDER_NPI
    )


def test_every_npi_has_a_valid_luhn_digit(db: TenantDB) -> None:
    npis = [r[0] for r in db.all("SELECT npi FROM providers UNION SELECT npi FROM locations")]
    assert npis
    assert all(is_valid_npi(n) for n in npis)


def test_curated_icd10_codes_are_billable_leaves() -> None:
    assert all(cm.is_valid_item(c) and cm.is_leaf(c) for c in codes.ICD10_PRIMARY_CARE)


def test_charges_use_curated_codes(db: TenantDB) -> None:
    import orjson

    for proc, dx in db.all(
        "SELECT procedure_code, diagnosis_codes_json FROM transactions WHERE transaction_type = 'charge'"
    ):
        assert proc in codes.FEE_SCHEDULE_CENTS
        assert set(orjson.loads(dx)) <= set(codes.ICD10_PRIMARY_CARE)


def test_no_resource_is_double_booked(db: TenantDB) -> None:
    overlaps = db.scalar(
        "SELECT COUNT(*) FROM appointments a JOIN appointments b ON a.resource_id = b.resource_id "
        "AND a.id < b.id AND a.start_time < b.end_time AND b.start_time < a.end_time"
    )
    assert overlaps == 0


def test_every_patient_ledger_balances(db: TenantDB) -> None:
    unbalanced = db.scalar(
        "SELECT COUNT(*) FROM (SELECT patient_id, SUM(amount_cents) AS s, SUM(CASE WHEN "
        "transaction_type = 'charge' THEN balance_cents ELSE 0 END) AS b FROM transactions "
        "GROUP BY patient_id) WHERE s != b"
    )
    assert unbalanced == 0


def test_volume_is_near_patients_times_appointments_per_patient() -> None:
    big = _tenant(patients=2000)
    total = big.scalar("SELECT COUNT(*) FROM appointments")
    assert 2000 * 10 * 0.6 <= total <= 2000 * 10 * 1.4


def test_status_mix_is_plausible(db: TenantDB) -> None:
    mix = dict(db.all("SELECT status_code, COUNT(*) FROM appointments GROUP BY status_code"))
    assert mix["O"] > mix["C"] > 0
    assert mix["P"] > 0
    assert db.scalar("SELECT COUNT(*) FROM appointments WHERE start_time > '2026-11-25'") > 0


def test_coverage_mix_includes_medicare_medicaid_commercial_and_self_pay() -> None:
    db = _tenant(patients=800)
    kinds = {
        r[0]
        for r in db.all(
            "SELECT y.kind FROM insurance_policies p JOIN payers y ON y.id = p.payer_id"
        )
    }
    assert {"medicare", "commercial"} <= kinds
    assert db.scalar("SELECT COUNT(*) FROM insurance_profiles WHERE self_pay = 1") > 0


@pytest.mark.slow
def test_twenty_thousand_patients_generate_consistently() -> None:
    db = _tenant(patients=20_000)
    assert db.scalar("SELECT COUNT(*) FROM patients") == 20_000
