"""A store for the read benchmarks: one tenant, one API key and N synthetic patients.

Every value is an obvious placeholder (``Bench0001 Placeholder``, SSNs in the never-issued 900
range, ``*.example`` e-mails), so nothing here is PHI.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from carebridge.domain import (
    Address,
    AgingBuckets,
    Balance,
    Coverage,
    CoverageId,
    Insured,
    LocationId,
    Patient,
    PatientId,
    PatientIdentifier,
    PayerId,
    PersonName,
    Phone,
    Provenance,
    ProviderId,
)
from carebridge.services.keys import mint, parse_scopes
from carebridge.store import entities, migrate
from carebridge.store import tenants as repo
from carebridge.store.engine import create_engine
from carebridge.store.schema import tenants

TENANT = "ten_bench"
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
T0 = datetime(2025, 7, 10, 18, 0, tzinfo=UTC)
PAYER = PayerId.new("bench:payer:1")
PROVIDER = ProviderId.new("bench:provider:1")
LOCATION = LocationId.new("bench:location:1")


def _source(surface: str, upstream_id: str) -> Provenance:
    return Provenance.model_validate(
        {
            "surface": surface,
            "endpoint": "GET /v2/patients/{id}",
            "upstream_id": upstream_id,
            "fetched_at": T0,
        }
    )


def patient(i: int) -> Patient:
    """The i-th synthetic patient: a realistic shape (address, phone, identifiers, one
    coverage, two balances), about 2.5 KB of JSON."""
    pid = PatientId.new(f"bench:patient:{i}")
    balances = [
        Balance.model_validate(
            {
                "sources": (_source("v2", f"guid-{i}"),),
                "patient_id": pid,
                "responsible": responsible,
                "aging": AgingBuckets.model_validate({"current": "40.00", "over_30": "10.00"}),
                "unbilled": "5.00",
                "unapplied_credit": "15.00",
                "total": "40.00",
                "as_of": date(2025, 7, 10),
            }
        )
        for responsible in ("patient", "insurance")
    ]
    coverage = Coverage.model_validate(
        {
            "sources": (_source("v2", f"guid-{i}"),),
            "id": CoverageId.new(f"bench:coverage:{i}"),
            "patient_id": pid,
            "payer_id": PAYER,
            "payer_name": "Example Health Plan",
            "plan_name": "Example PPO",
            "policy_type": "ppo",
            "priority": 1,
            "member_number": f"BENCH{i:06d}",
            "effective_from": date(2025, 1, 1),
            "copay": "25",
            "deductible": "500.00",
            "coinsurance_percent": 20,
            "out_of_pocket_max": 3000,
            "insured": Insured(relationship="self"),
        }
    )
    return Patient.model_validate(
        {
            "sources": (_source("v2", f"guid-{i}"), _source("fhir", f"fhir-{i}")),
            "id": pid,
            "name": PersonName(first=f"Bench{i:04d}", last="Placeholder"),
            "birth_date": date(1950, 1, 1) + timedelta(days=37 * i),
            "gender": ("female", "male")[i % 2],
            "ssn": f"900-{i // 10000 % 100:02d}-{i % 10000:04d}",
            "email": f"bench{i}@sandbox.example",
            "addresses": [
                Address.model_validate(
                    {
                        "line1": f"{i + 1} Example Way",
                        "city": "Sampletown",
                        "state": "CO",
                        "zip_code": "80540",
                        "is_primary": True,
                    }
                )
            ],
            "phones": [
                Phone.model_validate(
                    {"number": "303-555-0100", "kind": "mobile", "is_primary": True}
                )
            ],
            "identifiers": [
                PatientIdentifier(kind="chart_number", value=f"BC{i:06d}"),
                PatientIdentifier(kind="account_number", value=f"A{i:07d}"),
            ],
            "marital_status": "never_married",
            "language": "eng",
            "race": "2106-3",
            "ethnicity": "not_hispanic_or_latino",
            "primary_location_id": LOCATION,
            "primary_provider_id": PROVIDER,
            "coverages": [coverage],
            "balances": balances,
            "created_at": T0 - timedelta(days=30),
            "updated_at": T0,
        }
    )


async def seed(url: str, patients: int) -> str:
    """Migrate the store at ``url``, add the tenant, ``patients`` patients and a
    ``patient.read`` key; returns the key (``cbk_...``)."""
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                tenants.insert().values(
                    id=TENANT, name="Bench", upstream="carecloud", settings={}, created_at=NOW
                )
            )
            await entities.upsert(
                conn, TENANT, "patient", [patient(i) for i in range(patients)], fetched_at=NOW
            )
        minted = mint()
        await repo.add_key(
            engine,
            key_id="key_bench",
            tenant_id=TENANT,
            prefix=minted.prefix,
            secret_hash=minted.secret_hash,
            scopes=parse_scopes("patient.read"),
            label="bench",
            now=NOW,
        )
    finally:
        await engine.dispose()
    return minted.display
