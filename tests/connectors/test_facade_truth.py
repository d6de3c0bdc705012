"""A full read of a sandbox tenant through ``CareCloudTenant`` equals the tenant's ground truth.

The sandbox runs in process behind ``httpx.ASGITransport`` on a manual clock; stamina's test
mode removes backoff sleeps and the throttle runs on a fake clock. Every entity of the read
port is read through the facade and compared, field by field the domain carries, with the
tenant's tables (``tenant.db``), spelling the id rule and the value conversions out
independently of the mappers.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
import stamina
from tests.connectors.harness import assert_appointment_matches
from tests.support.clock import FakeTime

from carebridge.connectors.carecloud.facade import CareCloudTenant
from carebridge.connectors.carecloud.mfa import TotpSource
from carebridge.connectors.carecloud.surfaces import (
    Connection,
    PortalSecrets,
    SmartSecrets,
    V2Secrets,
    connect,
)
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.domain import (
    Allergy,
    Appointment,
    AppointmentId,
    AppointmentStatus,
    Balance,
    Charge,
    ChargeId,
    Claim,
    ClaimId,
    Coverage,
    CoverageId,
    Document,
    DocumentId,
    Encounter,
    EncounterId,
    Immunization,
    LabResult,
    Location,
    LocationId,
    Medication,
    Patient,
    PatientId,
    PayerId,
    Payment,
    PaymentId,
    Problem,
    Provider,
    ProviderId,
    Remittance,
    RemittanceId,
    Resource,
    ResourceId,
    Slot,
    Statement,
    VisitReason,
    VisitReasonId,
)
from carecloud_sandbox import personas
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.control import credentials
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2.availability import find_slots

pytestmark = pytest.mark.anyio

BASE = "http://sandbox.test"
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
ANCHOR = date(2026, 11, 24)
TENANT = "tnt_facade"
X = TypeVar("X")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the tenant and the facade ------------------------------------------------------------------


@dataclass
class Box:
    """An in-process sandbox tenant and a facade connected to its three surfaces."""

    tenant: Tenant
    clock: ManualClock
    transport: httpx.ASGITransport
    creds: dict[str, Any]
    connection: Connection
    facade: CareCloudTenant

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.tenant.db.all(sql, params)]

    async def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(transport=self.transport, base_url=BASE) as c:
            return await c.request(method, path, **kwargs)

    async def close(self) -> None:
        await self.connection.aclose()
        await self.transport.aclose()
        self.tenant.db.close()


def open_box(patients: int, seed: int = 7) -> Box:
    """Generate a one-practice tenant and connect a facade to it (TOTP for the portal)."""
    clock = ManualClock(START)
    config = SandboxConfig(seed=seed, patients=patients, practices=1, anchor=ANCHOR, base_url=BASE)
    tenant = Tenant.open(config, clock=clock)
    transport = httpx.ASGITransport(app=build_app(tenant))
    creds: dict[str, Any] = credentials(tenant)
    practice = creds["practices"][0]
    user = next(u for u in practice["users"] if u["username"] == personas.USERNAME)
    connector = creds["connector"]
    t = FakeTime()
    gate = AimdThrottle(ThrottleConfig(start_rate=50), clock=t.clock, sleep=t.sleep)
    conn = connect(
        clock=clock.now,
        transport=transport,
        throttle=gate,
        v2=V2Secrets(
            creds["token_url"],
            creds["client_id"],
            creds["client_secret"],
            practice["refresh_token"],
        ),
        portal=PortalSecrets(
            api_url=f"{BASE}/portal/api",
            username=user["username"],
            password=user["password"],
            codes=[TotpSource(user["totp_seed"], clock.now)],
            methods=("totp",),
        ),
        fhir=SmartSecrets(
            connector["token_url"],
            connector["client_id"],
            connector["private_key_pem"],
            connector["kid"],
            connector["alg"],
        ),
    )
    facade = CareCloudTenant(
        conn,
        tenant=TENANT,
        v2_base=BASE,
        portal_api=f"{BASE}/portal/api",
        fhir_base=connector["practices"][0]["fhir_base"],
        clock=clock.now,
    )
    return Box(tenant, clock, transport, creds, conn, facade)


@pytest.fixture
async def box(request: pytest.FixtureRequest) -> AsyncIterator[Box]:
    patients = getattr(request, "param", 200)
    with stamina.set_testing(True, attempts=8):
        b = open_box(patients)
        yield b
        await b.close()


# --- one full read ------------------------------------------------------------------------------


@dataclass
class Read:
    """Everything a full read through the facade returned."""

    providers: list[Provider] = field(default_factory=list)
    locations: list[Location] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    visit_reasons: list[VisitReason] = field(default_factory=list)
    slots: dict[int, list[Slot]] = field(default_factory=dict)
    patients: list[Patient] = field(default_factory=list)
    coverages: dict[PatientId, list[Coverage]] = field(default_factory=dict)
    balances: dict[PatientId, list[Balance]] = field(default_factory=dict)
    appointments: list[Appointment] = field(default_factory=list)
    details: list[Appointment] = field(default_factory=list)
    encounters: list[Encounter] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    medications: list[Medication] = field(default_factory=list)
    allergies: list[Allergy] = field(default_factory=list)
    labs: list[LabResult] = field(default_factory=list)
    immunizations: list[Immunization] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    charges: list[Charge] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    remittances: list[Remittance] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)


async def collect(items: AsyncIterator[X]) -> list[X]:
    return [x async for x in items]


REASONS = (personas.VISIT_ESTABLISHED, personas.VISIT_NEW)
SLOT_WINDOW = (date(2026, 11, 25), date(2026, 12, 2))


async def full_read(box: Box, *, details: int = 25) -> Read:
    """Every entity of the read port; ``details`` appointments are also read one by one."""
    f = box.facade
    read = Read()
    read.providers = await collect(f.providers())
    read.locations = await collect(f.locations())
    read.resources = await collect(f.resources())
    read.visit_reasons = await collect(f.visit_reasons())
    for reason in REASONS:
        vid = VisitReasonId.new(key("visit_reason", reason))
        read.slots[reason] = await f.availability(vid, *SLOT_WINDOW)
    # Appointments first: they name each patient's v2 id, which spares a search per person.
    (span,) = box.rows("SELECT MIN(start_time) AS lo, MAX(start_time) AS hi FROM appointments")
    lo = date.fromisoformat(span["lo"][:10]) - timedelta(days=1)
    hi = date.fromisoformat(span["hi"][:10]) + timedelta(days=1)
    read.appointments = await collect(f.appointments(lo, hi))
    confirmed = {
        AppointmentId.new(key("appointment", r["appointment_id"]))
        for r in box.rows("SELECT DISTINCT appointment_id FROM appointment_confirmations")
    }
    sample = [a for a in read.appointments if a.id in confirmed][:details]
    read.details = [await f.appointment(a.id) for a in sample]
    read.patients = await collect(f.patients())
    for p in read.patients:
        read.coverages[p.id] = await f.coverages(p.id)
        read.balances[p.id] = await f.balance(p.id)
        read.problems += await collect(f.problems(p.id))
        read.medications += await collect(f.medications(p.id))
        read.allergies += await collect(f.allergies(p.id))
        read.labs += await collect(f.labs(p.id))
        read.immunizations += await collect(f.immunizations(p.id))
        read.documents += await collect(f.documents(p.id))
    read.encounters = await collect(f.encounters())
    read.charges = await collect(f.charges())
    read.claims = await collect(f.claims())
    read.payments = await collect(f.payments())
    read.remittances = await collect(f.remittances())
    read.statements = await collect(f.statements())
    return read


# --- the ground truth, spelled out independently of the mappers ---------------------------------


def key(kind: str, upstream: object) -> str:
    return f"{TENANT}:{kind}:{upstream}"


def instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def day(text: str | None) -> date | None:
    return None if not text else date.fromisoformat(text)


def cents(value: int | None) -> Decimal:
    return Decimal(int(value or 0)).scaleb(-2)


def opt_cents(value: int | None) -> Decimal | None:
    return None if value is None else cents(value)


def e164(text: str) -> str:
    return "+1" + re.sub(r"\D", "", text)


def pid(chart: str) -> PatientId:
    return PatientId.new(key("patient", chart))


def prv(upstream: object) -> ProviderId | None:
    return None if upstream is None else ProviderId.new(key("provider", upstream))


def enc(upstream: object) -> EncounterId | None:
    return None if upstream is None else EncounterId.new(key("encounter", upstream))


def by_id(items: list[X], ident: Any) -> dict[Any, X]:
    out = {ident(x): x for x in items}
    assert len(out) == len(items), "duplicate records"
    return out


GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown"}
MARITAL = {
    "S": "never_married",
    "M": "married",
    "D": "divorced",
    "W": "widowed",
    "L": "legally_separated",
    "T": "domestic_partner",
    "U": "unknown",
}
ETHNICITY = {"H": "hispanic_or_latino", "N": "not_hispanic_or_latino", "U": "unknown"}
PHONE_KIND = {"C": "mobile", "H": "home", "B": "work", "M": "main", "F": "fax", "TF": "toll_free"}
CODE_STATUS = {
    "P": AppointmentStatus.SCHEDULED,
    "I": AppointmentStatus.ARRIVED,
    "O": AppointmentStatus.CHECKED_OUT,
    "C": AppointmentStatus.CANCELLED,
    "R": AppointmentStatus.RESCHEDULED,
    "N": AppointmentStatus.NO_SHOW,
}
LOINC = {
    "Progress note": "11506-3",
    "Procedure Note": "28570-0",
    "History and Physical": "34117-2",
    "Discharge summary": "18842-5",
    "Consult note": "11488-4",
}


def assert_practice(box: Box, read: Read) -> None:
    providers = by_id(read.providers, lambda p: p.id)
    truth = box.rows("SELECT * FROM providers WHERE practice_id = 1 AND status = 'A'")
    assert set(providers) == {prv(r["id"]) for r in truth}
    for r in truth:
        p = providers[prv(r["id"])]
        assert p.npi == r["npi"]
        assert (p.name.first, p.name.last, p.credentials) == (
            r["first_name"],
            r["last_name"],
            r["credentials"],
        )
        assert p.email == r["email"]
        assert p.phone is not None
        assert p.phone.number == e164(r["phone_number"])
        assert (p.taxonomy, p.specialty_name) == (r["taxonomy"], r["specialty_name"])

    locations = by_id(read.locations, lambda x: x.id)
    truth = box.rows("SELECT * FROM locations WHERE practice_id = 1 AND status = 'A'")
    assert set(locations) == {LocationId.new(key("location", r["id"])) for r in truth}
    for r in truth:
        loc = locations[LocationId.new(key("location", r["id"]))]
        address = json.loads(r["address_json"])
        assert loc.name == r["name"]
        assert loc.place_of_service == r["place_of_service_code"]
        assert loc.visible_in_scheduler is bool(r["is_visible_appointment_scheduler"])
        assert loc.address is not None
        assert (
            loc.address.line1,
            loc.address.city,
            loc.address.state,
            loc.address.zip_code,
            loc.address.county,
            loc.address.latitude,
        ) == (
            address["line1"],
            address["city"],
            address["state_code"],
            address["zip_code"],
            address["county_name"],
            float(address["latitude"]),
        )
        assert [(p.number, p.is_primary) for p in loc.phones] == [
            (e164(p["phone_number"]), p["is_primary"]) for p in json.loads(r["phones_json"])
        ]

    resources = by_id(read.resources, lambda x: x.id)
    truth = box.rows("SELECT * FROM resources WHERE practice_id = 1 AND status = 'A'")
    assert set(resources) == {ResourceId.new(key("resource", r["id"])) for r in truth}
    for r in truth:
        res = resources[ResourceId.new(key("resource", r["id"]))]
        assert (res.name, res.code, res.description) == (r["name"], r["code"], r["description"])
        assert res.sort_code == r["sort_code"]
        assert res.bookable_by_request is bool(r["is_for_requests"])
        assert res.confirmation_mode == r["appointment_confirmation"]
        assert res.default_provider_id == prv(r["default_provider_id"])
        assert (res.created_at, res.updated_at) == (
            instant(r["created_at"]),
            instant(r["updated_at"]),
        )
        expected = box.rows(
            "SELECT visit_reason_id FROM resource_visit_reasons v JOIN visit_reasons r "
            "ON r.id = v.visit_reason_id WHERE resource_id = ? AND r.status = 'A' ORDER BY 1",
            (r["id"],),
        )
        assert res.visit_reason_ids == tuple(
            VisitReasonId.new(key("visit_reason", x["visit_reason_id"])) for x in expected
        )

    reasons = by_id(read.visit_reasons, lambda x: x.id)
    truth = box.rows("SELECT * FROM visit_reasons WHERE practice_id = 1 AND status = 'A'")
    assert set(reasons) == {VisitReasonId.new(key("visit_reason", r["id"])) for r in truth}
    for r in truth:
        vr = reasons[VisitReasonId.new(key("visit_reason", r["id"]))]
        assert (vr.name, vr.description) == (r["name"], r["description"])
        assert vr.duration_minutes == r["duration"]
        assert vr.bookable_by_request is bool(r["for_requests"])

    defaults = {
        r["id"]: r["default_provider_id"]
        for r in box.rows("SELECT id, default_provider_id FROM resources")
    }
    for reason, slots in read.slots.items():
        got = sorted((s.start, s.end, s.location_id, s.resource_id, s.provider_id) for s in slots)
        free = sorted(
            (
                s.start,
                s.end,
                LocationId.new(key("location", s.location_id)),
                ResourceId.new(key("resource", s.resource_id)),
                prv(defaults[s.resource_id]),
            )
            for s in find_slots(
                box.tenant, 1, visit_reason_id=reason, start=SLOT_WINDOW[0], end=SLOT_WINDOW[1]
            )
        )
        assert got == free
        assert got, "the persona's reasons should have free slots"
        assert {s.visit_reason_id for s in slots} == {
            VisitReasonId.new(key("visit_reason", reason))
        }


def assert_patients(box: Box, read: Read) -> None:
    truth = box.rows("SELECT * FROM patients WHERE practice_id = 1")
    patients = by_id(read.patients, lambda p: p.id)
    assert set(patients) == {pid(r["chart_number"]) for r in truth}
    open_cents: dict[str, dict[str, int]] = {}
    for r in box.rows(
        "SELECT patient_id, balance_type, SUM(balance_cents) AS open FROM transactions "
        "WHERE transaction_type IN ('charge', 'simple_charge') GROUP BY patient_id, balance_type"
    ):
        open_cents.setdefault(r["patient_id"], {})[r["balance_type"]] = r["open"]
    walk = box.facade.crosswalk()
    fhir_ids = fhir_logical_ids(box)
    for row in truth:
        data = json.loads(row["data_json"])
        p = patients[pid(row["chart_number"])]
        assert p.sources[0].upstream_id == row["id"]
        assert (p.name.first, p.name.last, p.name.middle) == (
            row["first_name"],
            row["last_name"],
            row["middle_initial"],
        )
        assert (p.name.prefix, p.name.suffix) == (data["prefix"], data["suffix"])
        assert p.birth_date == day(row["dob"])
        assert p.death_date == day(data["date_of_death"])
        assert p.gender == GENDER.get(row["gender_code"] or "")
        assert p.ssn == (row["ssn"] or None)
        assert p.email == (row["email"] or None)
        assert p.identifier("chart_number") == row["chart_number"]
        assert p.identifier("account_number") == row["account_number"]
        assert p.identifier("v2_id") == row["id"]
        licence = p.drivers_license
        assert (licence.number if licence else "") == row["drivers_license_number"]
        assert p.marital_status == MARITAL[data["marital_status_code"]]
        assert p.language == data["language_code"]
        assert p.race == (data["race_code"] or None)
        assert p.ethnicity == ETHNICITY[data["ethnicity_code"]]
        assert p.active is (row["status"] == "A")
        assert p.primary_location_id == LocationId.new(key("location", row["primary_location_id"]))
        assert p.primary_provider_id == prv(row["primary_provider_id"])
        assert p.last_seen_date == day(row["last_seen_date"])
        assert p.referring_physician_npi == (data["referring_physician_npi"] or None)
        assert [
            (a.line1, a.line2, a.city, a.state, a.zip_code, a.is_primary) for a in p.addresses
        ] == [
            (a["line1"], a["line2"], a["city"], a["state_code"], a["zip_code"], a["is_primary"])
            for a in data["addresses"]
        ]
        assert [(ph.number, ph.kind, ph.is_primary) for ph in p.phones] == [
            (e164(ph["phone_number"]), PHONE_KIND[ph["phone_type_code"]], ph["is_primary"])
            for ph in data["phones"]
        ]
        party = data["responsible_party"]
        if party["relationship"] == "self":
            assert p.guarantor is None
        else:
            g = p.guarantor
            assert g is not None
            assert g.relationship == party["relationship"]
            assert (g.name.first, g.name.last) == (party["first_name"], party["last_name"])
            assert g.birth_date == day(party["dob"])
            assert g.gender == GENDER[party["gender"]]
            assert [ph.number for ph in g.phones] == [
                e164(x["phone_number"]) for x in party["phones"]
            ]
            assert [a.zip_code for a in g.addresses] == [a["zip_code"] for a in party["addresses"]]
        owed = open_cents.get(row["id"], {})
        assert p.account_balance == cents(sum(owed.values()))
        assert_coverages(box, row, p.coverages)
        assert [c.model_dump(exclude={"sources"}) for c in read.coverages[p.id]] == [
            c.model_dump(exclude={"sources"}) for c in p.coverages
        ]
        assert {b.responsible: b.total for b in read.balances[p.id]} == {
            b.responsible: cents(owed.get(b.responsible, 0)) for b in read.balances[p.id]
        }
        assert all(b.patient_id == p.id for b in read.balances[p.id])
        # The crosswalk links the person's ids on every surface.
        ids = walk[p.id]
        assert (ids.chart_number, ids.v2_id) == (row["chart_number"], row["id"])
        assert ids.rcm_account_number is not None
        assert ids.fhir_id == fhir_ids[row["chart_number"]]


def fhir_logical_ids(box: Box) -> dict[str, str]:
    """Chart number -> the Connector's logical id of the patient (the sandbox's crosswalk)."""
    return {
        r["chart_number"]: r["fhir_id"]
        for r in box.rows(
            "SELECT p.chart_number, f.fhir_id FROM fhir_ids f JOIN patients p "
            "ON p.id = f.entity_id WHERE f.resource_type = 'Patient'"
        )
    }


def assert_coverages(box: Box, patient: dict[str, Any], coverages: tuple[Coverage, ...]) -> None:
    rows = box.rows(
        "SELECT p.*, f.name AS profile_name, f.is_default, y.name AS payer_name, y.plans_json "
        "FROM insurance_policies p JOIN insurance_profiles f ON f.id = p.profile_id "
        "JOIN payers y ON y.id = p.payer_id WHERE p.patient_id = ? "
        "ORDER BY p.profile_id, p.policy_priority",
        (patient["id"],),
    )
    assert len(coverages) == len(rows)
    for c, row in zip(coverages, rows, strict=True):
        plan = next(x for x in json.loads(row["plans_json"]) if x["id"] == row["plan_id"])
        insured = json.loads(row["insured_json"])
        assert c.id == CoverageId.new(key("coverage", row["id"]))
        assert c.patient_id == pid(patient["chart_number"])
        assert c.payer_id == PayerId.new(key("payer", row["payer_id"]))
        assert (c.payer_name, c.plan_name) == (row["payer_name"], plan["name"])
        assert c.policy_type == row["insurance_policy_type"]
        assert c.priority == row["policy_priority"]
        assert (c.profile_name, c.is_default_profile) == (
            row["profile_name"],
            bool(row["is_default"]),
        )
        assert c.member_number == row["member_number"]
        assert (c.policy_number, c.group_name) == (row["policy_number"], row["group_name"])
        assert (c.effective_from, c.effective_to) == (
            day(row["effective_from"]),
            day(row["effective_to"]),
        )
        assert c.copay == opt_cents(row["co_payment_cents"])
        assert c.deductible == opt_cents(row["deductible_cents"])
        assert c.requires_authorization is bool(row["requires_authorization"])
        assert c.insured.relationship == insured["relation_to_patient"]
        assert c.insured.birth_date == day(insured.get("date_of_birth"))


def assert_schedule(box: Box, read: Read) -> None:
    truth = box.rows(
        "SELECT a.*, p.chart_number, r.code AS reason_code, r.name AS reason_name "
        "FROM appointments a JOIN patients p ON p.id = a.patient_id "
        "LEFT JOIN cancellation_reasons r ON r.id = a.cancellation_reason_id"
    )
    appointments = by_id(read.appointments, lambda a: a.id)
    assert set(appointments) == {AppointmentId.new(key("appointment", r["id"])) for r in truth}
    rows = {AppointmentId.new(key("appointment", r["id"])): r for r in truth}
    for aid, r in rows.items():
        a = appointments[aid]
        expected = CODE_STATUS[r["status_code"]]
        if expected is AppointmentStatus.SCHEDULED and r["is_confirmed"]:
            expected = AppointmentStatus.CONFIRMED
        assert a.status is expected
        assert_appointment_matches(a, r, key)
    assert read.details
    for d in read.details:
        r = rows[d.id]
        listed = appointments[d.id]
        assert d.model_dump(
            exclude={
                "sources",
                "confirmations",
                "encounter_id",
                "preferred_confirmation_method",
                "created_by_application",
            }
        ) == listed.model_dump(
            exclude={
                "sources",
                "confirmations",
                "encounter_id",
                "preferred_confirmation_method",
                "created_by_application",
            }
        )
        assert d.preferred_confirmation_method == r["preferred_confirmation_method"]
        assert d.encounter_id == enc(r["encounter_id"])
        assert d.created_by_application == r["created_by_application"]
        confirmations = box.rows(
            "SELECT * FROM appointment_confirmations WHERE appointment_id = ? ORDER BY id",
            (r["id"],),
        )
        assert [
            (c.method, c.outcome, c.method_description, c.comments, c.confirmed_at, c.recorded_at)
            for c in d.confirmations
        ] == [
            (
                t["communication_method"],
                t["communication_outcome"],
                t["communication_method_description"] or "",
                t["comments"] or "",
                instant(t["date_confirmed"]),
                instant(t["created_at"]),
            )
            for t in confirmations
        ]


def charts(box: Box) -> dict[str, str]:
    return {r["id"]: r["chart_number"] for r in box.rows("SELECT id, chart_number FROM patients")}


def assert_charts(box: Box, read: Read) -> None:
    chart_of = charts(box)
    encounters = by_id(read.encounters, lambda e: e.id)
    truth = box.rows("SELECT * FROM encounters")
    vitals = {r["encounter_id"]: r for r in box.rows("SELECT * FROM vitals")}
    assert set(encounters) == {enc(r["id"]) for r in truth}
    for row in truth:
        e = encounters[enc(row["id"])]
        assert e.patient_id == pid(chart_of[row["patient_id"]])
        assert e.provider_id == prv(row["provider_id"])
        assert (e.status, e.type) == (row["status"], row["encounter_type"])
        assert e.service_date == day(row["encounter_date"])
        assert (e.start, e.end) == (instant(row["start_time"]), instant(row["end_time"]))
        assert e.chief_complaint == row["chief_complaint"]
        assert e.signed_at == instant(row["signed_at"])
        assert e.signed_by == prv(row["signed_by"])
        assert e.note.model_dump() == {
            "subjective": "",
            "objective": "",
            "assessment": "",
            "plan": "",
            **json.loads(row["note_json"]),
        }
        codes = [d["code"] for d in json.loads(row["diagnoses_json"])]
        assert [(d.rank, d.code) for d in e.diagnoses] == list(enumerate(codes, start=1))
        assert [(p.code, p.units, list(p.modifiers)) for p in e.procedures] == [
            (p["code"], p["units"], p["modifiers"]) for p in json.loads(row["procedures_json"])
        ]
        if row["id"] in vitals:
            (v,) = e.vitals
            t = vitals[row["id"]]
            assert v.taken_at == instant(t["taken_at"])
            assert (v.systolic_mmhg, v.diastolic_mmhg, v.spo2_percent) == (
                t["systolic_mmhg"],
                t["diastolic_mmhg"],
                t["spo2_pct"],
            )
            assert (v.height_cm, v.weight_kg, v.temperature_c) == (
                t["height_cm"],
                t["weight_kg"],
                t["temperature_c"],
            )
            assert (v.bmi, v.heart_rate_bpm, v.respiratory_rate) == (
                t["bmi"],
                t["heart_rate_bpm"],
                t["respiratory_rate"],
            )
        else:
            assert e.vitals == ()

    def upstream(x: Any) -> int:
        return int(x.sources[0].upstream_id)

    problems = by_id(read.problems, upstream)
    truth = box.rows("SELECT * FROM problems")
    assert sorted(problems) == sorted(r["id"] for r in truth)
    for r in truth:
        p = problems[r["id"]]
        assert p.patient_id == pid(chart_of[r["patient_id"]])
        assert (p.code, p.description, p.status) == (r["icd10_code"], r["description"], r["status"])
        assert (p.onset_date, p.resolved_date) == (day(r["onset_date"]), day(r["resolved_date"]))
        assert p.created_at == instant(r["created_at"])

    medications = by_id(read.medications, upstream)
    truth = box.rows("SELECT * FROM medications")
    assert sorted(medications) == sorted(r["id"] for r in truth)
    for r in truth:
        med = medications[r["id"]]
        assert med.patient_id == pid(chart_of[r["patient_id"]])
        assert (med.rxnorm_code, med.name, med.sig, med.status) == (
            r["rxnorm_code"],
            r["name"],
            r["sig"],
            r["status"],
        )
        assert (med.start_date, med.end_date) == (day(r["start_date"]), day(r["end_date"]))
        assert med.prescriber_id == prv(r["prescriber_id"] or None)

    allergies = by_id(read.allergies, upstream)
    truth = box.rows("SELECT * FROM allergies")
    assert sorted(allergies) == sorted(r["id"] for r in truth)
    for r in truth:
        a = allergies[r["id"]]
        assert a.patient_id == pid(chart_of[r["patient_id"]])
        assert (a.allergen.system, a.allergen.code, a.allergen.name) == (
            r["allergen_system"],
            r["allergen_code"],
            r["allergen_name"],
        )
        assert (a.category, a.reaction, a.severity, a.status) == (
            r["category"],
            r["reaction"],
            r["severity"],
            r["status"],
        )
        assert a.recorded_date == day(r["recorded_date"])

    labs = by_id(read.labs, upstream)
    truth = box.rows("SELECT * FROM lab_results")
    assert sorted(labs) == sorted(r["id"] for r in truth)
    for r in truth:
        lab = labs[r["id"]]
        assert lab.patient_id == pid(chart_of[r["patient_id"]])
        assert (lab.order_code, lab.loinc_code, lab.name) == (
            r["order_code"],
            r["loinc_code"],
            r["name"],
        )
        assert (lab.value_number, lab.value_text) == (r["value_num"], r["value_text"])
        assert lab.unit == (r["unit"] if r["value_num"] is not None else None)
        assert (lab.reference_low, lab.reference_high) == (r["reference_low"], r["reference_high"])
        assert (lab.interpretation, lab.status) == (r["interpretation"], r["status"])
        assert (lab.collected_at, lab.resulted_at) == (
            instant(r["collected_at"]),
            instant(r["resulted_at"]),
        )
        assert lab.encounter_id == enc(r["encounter_id"])

    immunizations = by_id(read.immunizations, upstream)
    truth = box.rows("SELECT * FROM immunizations")
    assert sorted(immunizations) == sorted(r["id"] for r in truth)
    for r in truth:
        i = immunizations[r["id"]]
        assert i.patient_id == pid(chart_of[r["patient_id"]])
        assert (i.cvx_code, i.cpt_code, i.name, i.lot_number) == (
            r["cvx_code"],
            r["cpt_code"],
            r["name"],
            r["lot_number"],
        )
        assert (i.administered_on, i.site, i.route) == (
            day(r["administered_on"]),
            r["site"],
            r["route"],
        )
        assert i.status == r["status"].replace("-", "_")

    documents = by_id(read.documents, lambda d: d.id)
    truth = box.rows("SELECT * FROM documents WHERE status = 'A'")
    assert set(documents) == {DocumentId.new(key("document", r["id"])) for r in truth}
    for r in truth:
        d = documents[DocumentId.new(key("document", r["id"]))]
        assert d.patient_id == pid(chart_of[r["patient_id"]])
        assert (d.name, d.description, d.source_name) == (
            r["name"],
            r["description"],
            r["document_source_name"],
        )
        assert d.type_loinc == LOINC.get(r["document_source_name"], "11502-2")
        assert d.document_date == day(r["document_date"])
        assert (d.content_type, d.size_bytes) == (r["content_type"], r["size_bytes"])


def assert_revenue_cycle(box: Box, read: Read) -> None:
    chart_of = charts(box)
    charges = by_id(read.charges, lambda c: c.id)
    truth = box.rows("SELECT * FROM transactions WHERE transaction_type = 'charge'")
    assert set(charges) == {ChargeId.new(key("transaction", r["id"])) for r in truth}
    for r in truth:
        c = charges[ChargeId.new(key("transaction", r["id"]))]
        assert c.patient_id == pid(chart_of[r["patient_id"]])
        assert c.kind == r["transaction_type"]
        assert (c.amount, c.balance) == (cents(r["amount_cents"]), cents(r["balance_cents"]))
        assert (c.responsible, c.status, c.billed) == (
            r["balance_type"],
            r["transaction_status"],
            bool(r["billed"]),
        )
        assert (c.service_date, c.posting_date) == (day(r["service_date"]), day(r["posting_date"]))
        assert (c.procedure_code, c.units) == (r["procedure_code"], r["units"])
        assert list(c.modifiers) == json.loads(r["modifiers_json"])
        assert list(c.diagnosis_codes) == json.loads(r["diagnosis_codes_json"])
        assert c.description == r["description"]
        assert c.provider_id == prv(r["provider_id"])
        assert c.location_id == LocationId.new(key("location", r["location_id"]))
        assert c.encounter_id == enc(r["encounter_id"])

    claims = by_id(read.claims, lambda c: c.id)
    truth = box.rows("SELECT * FROM claims")
    assert set(claims) == {ClaimId.new(key("claim", r["claim_number"])) for r in truth}
    for r in truth:
        claim = claims[ClaimId.new(key("claim", r["claim_number"]))]
        assert claim.patient_id == pid(chart_of[r["patient_id"]])
        assert claim.status == r["status"]
        assert (claim.billed, claim.paid, claim.patient_responsibility) == (
            cents(r["billed_cents"]),
            cents(r["paid_cents"]),
            cents(r["patient_resp_cents"]),
        )
        assert list(claim.diagnoses) == json.loads(r["diagnoses_json"])
        assert claim.payer_control_number == r["payer_control_number"]
        assert (claim.submitted_at, claim.adjudicated_at) == (
            instant(r["submitted_at"]),
            instant(r["adjudicated_at"]),
        )
        lines = box.rows(
            "SELECT * FROM claim_lines WHERE claim_id = ? ORDER BY line_number", (r["id"],)
        )
        assert [
            (ln.line_number, ln.charge_id, ln.procedure_code, ln.billed) for ln in claim.lines
        ] == [
            (
                t["line_number"],
                ChargeId.new(key("transaction", t["charge_id"])),
                t["procedure_code"],
                cents(t["billed_cents"]),
            )
            for t in lines
        ]
        history = box.rows(
            "SELECT * FROM claim_status_history WHERE claim_id = ? ORDER BY at, id", (r["id"],)
        )
        assert [(h.status, h.category_code, h.at) for h in claim.status_history] == [
            (t["status"], t["category_code"], instant(t["at"])) for t in history
        ]

    payments = by_id(read.payments, lambda p: p.id)
    truth = box.rows("SELECT * FROM payments")
    assert set(payments) == {PaymentId.new(key("payment", r["id"])) for r in truth}
    for r in truth:
        p = payments[PaymentId.new(key("payment", r["id"]))]
        assert (p.kind, p.trace_number, p.payment_date) == (
            r["kind"],
            r["trace_number"],
            day(r["payment_date"]),
        )
        assert p.amount == cents(r["amount_cents"])
        assert p.method == {"ACH": "ach", "CHK": "check"}.get(r["method"], r["method"])
        if r["kind"] == "era":
            assert p.payer_id == PayerId.new(key("payer", r["payer_id"]))
            assert p.patient_id is None
        else:
            assert p.patient_id == pid(chart_of[r["patient_id"]])

    remittances = by_id(read.remittances, lambda x: x.id)
    truth = box.rows(
        "SELECT r.*, c.claim_number FROM remittances r JOIN claims c ON c.id = r.claim_id"
    )
    ids = {
        RemittanceId.new(key("remittance", f"{t['payment_id']}/{t['claim_number']}")): t
        for t in truth
    }
    assert set(remittances) == set(ids)
    for rid, t in ids.items():
        a = remittances[rid]
        assert a.claim_id == ClaimId.new(key("claim", t["claim_number"]))
        assert a.payment_id == PaymentId.new(key("payment", t["payment_id"]))
        assert (a.billed, a.paid, a.patient_responsibility) == (
            cents(t["billed_cents"]),
            cents(t["paid_cents"]),
            cents(t["patient_resp_cents"]),
        )
        assert a.claim_status_code == t["claim_status_code"]
        truth_lines = box.rows(
            "SELECT * FROM remittance_lines WHERE remittance_id = ? ORDER BY id", (t["id"],)
        )
        assert len(a.lines) == len(truth_lines)
        for line, tl in zip(a.lines, truth_lines, strict=True):
            assert (line.billed, line.allowed, line.paid) == (
                cents(tl["billed_cents"]),
                cents(tl["allowed_cents"]),
                cents(tl["paid_cents"]),
            )
            adjustments = box.rows(
                "SELECT * FROM adjustments WHERE remittance_line_id = ? ORDER BY id", (tl["id"],)
            )
            assert [(x.group, x.carc, x.rarc, x.amount) for x in line.adjustments] == [
                (t2["group_code"], t2["carc"], t2["rarc"], cents(t2["amount_cents"]))
                for t2 in adjustments
            ]

    statements = {s.sources[0].upstream_id: s for s in read.statements}
    truth = box.rows("SELECT * FROM statements")
    assert sorted(statements) == sorted(r["statement_number"] for r in truth)
    for r in truth:
        s = statements[r["statement_number"]]
        aging = json.loads(r["aging_json"])
        assert s.patient_id == pid(chart_of[r["patient_id"]])
        assert s.balance == cents(r["balance_cents"]) == s.aging.total
        assert (s.aging.current, s.aging.over_30, s.aging.over_90) == (
            cents(aging["current"]),
            cents(aging["over30"]),
            cents(aging["over90"]),
        )
        assert (s.statement_date, s.due_date, s.status) == (
            day(r["statement_date"]),
            day(r["due_date"]),
            r["status"],
        )
        assert [(ln.charge_id, ln.balance) for ln in s.lines] == [
            (ChargeId.new(key("transaction", t["chargeId"])), cents(t["balanceCents"]))
            for t in json.loads(r["lines_json"])
        ]


def assert_truth(box: Box, read: Read) -> None:
    assert_practice(box, read)
    assert_patients(box, read)
    assert_schedule(box, read)
    assert_charts(box, read)
    assert_revenue_cycle(box, read)
    health = box.facade.health()
    # No breaking drift anywhere, and none at all on v2 and the portal. The Connector's wire
    # models describe only what the mappers read, so its Bundles show additive (unknown) keys.
    for name, endpoint in health["drift"]["endpoints"].items():
        assert endpoint["breaking"] == 0, name
        if not name.startswith("GET /Patient"):
            assert not endpoint["observations"], (name, endpoint["observations"])
    assert set(health["brokers"]) == {"v2", "portal", "fhir"}
    assert all(b["has_credential"] for b in health["brokers"].values())
    assert health["throttle"]["rate"] > 0
    # Only fields the domain has no place for are dropped, and they are reported per endpoint.
    assert "GET /v2/appointment_resources/{id}" in health["dropped"]
    text = json.dumps(health)
    for secret in ("client_secret", "refresh_token", "password", "private_key"):
        assert box.creds.get(secret, "\0") not in text


# --- the tests ---------------------------------------------------------------------------------


async def run_and_check(box: Box) -> float:
    started = time.perf_counter()
    read = await full_read(box)
    assert_truth(box, read)
    return time.perf_counter() - started


@pytest.mark.parametrize("box", [60], indirect=True)
async def test_a_full_read_of_a_60_patient_tenant_equals_the_ground_truth(box: Box) -> None:
    await run_and_check(box)


@pytest.mark.slow
@pytest.mark.parametrize("box", [200], indirect=True)
async def test_a_full_read_of_a_200_patient_tenant_equals_the_ground_truth(box: Box) -> None:
    await run_and_check(box)


@pytest.mark.slow
@pytest.mark.parametrize("box", [2000], indirect=True)
async def test_a_full_read_of_a_2000_patient_tenant_equals_the_ground_truth(box: Box) -> None:
    elapsed = await run_and_check(box)
    print(f"full read of 2,000 patients: {elapsed:.1f} s")


@pytest.mark.parametrize("box", [40], indirect=True)
async def test_filters_and_single_reads_agree_with_the_full_read(box: Box) -> None:
    f = box.facade
    patients = [p async for p in f.patients()]
    target = patients[3]
    truth = box.rows(
        "SELECT a.* FROM appointments a JOIN patients p ON p.id = a.patient_id "
        "WHERE p.chart_number = ?",
        (target.identifier("chart_number"),),
    )
    window = (date(2020, 1, 1), date(2028, 12, 31))
    mine = [a async for a in f.appointments(*window, patient_id=target.id)]
    assert {a.id for a in mine} == {AppointmentId.new(key("appointment", r["id"])) for r in truth}
    cancelled = [a async for a in f.appointments(*window, status=AppointmentStatus.CANCELLED)]
    assert cancelled
    assert all(a.status is AppointmentStatus.CANCELLED for a in cancelled)
    provider = ProviderId.new(key("provider", personas.PROVIDER_ID))
    theirs = [a async for a in f.appointments(*window, provider_id=provider)]
    assert theirs
    assert all(a.provider_id == provider for a in theirs)
    assert await f.patient(target.id) == target
    charges = [c async for c in f.charges(patient_id=target.id)]
    assert all(c.patient_id == target.id for c in charges)
    encounters = [e async for e in f.encounters(patient_id=target.id)]
    assert all(e.patient_id == target.id for e in encounters)
    denied = [c async for c in f.claims(status="denied")]
    assert all(c.status == "denied" for c in denied)
