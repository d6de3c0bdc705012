"""Portal wire models and mappers against a live emulated tenant and its ground truth.

A small tenant (one practice, 40 patients) runs in process, its ASGI app behind httpx (no
sockets, the real routes); the persona front desk signs
in through the MFA flow, every list and detail the mappers read is fetched for real, parsed with
the wire models, mapped, and each mapped field is compared with the sandbox's own tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import BaseModel
from tests.connectors.harness import InProcessTenant, open_tenant
from tests.support.sandbox import ANCHOR, LiveTenant, portal_login, portal_persona, portal_totp

from carebridge.connectors.carecloud.mapping import portal as m
from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.paging import portal_next
from carebridge.connectors.carecloud.wire import portal as w
from carebridge.domain import (
    CLAIM_STATUS_CATEGORY,
    ChargeId,
    ClaimId,
    ClaimStatus,
    EncounterId,
    PatientId,
    PaymentId,
    ProviderId,
    RemittanceId,
    can_transition_claim,
    money_sum,
)
from carebridge.errors import UnexpectedPayload
from carecloud_sandbox import personas
from carecloud_sandbox.config import SandboxConfig

API = "/portal/api"
TENANT = "tnt_portal"
ItemT = TypeVar("ItemT", bound=BaseModel)


# --- an in-process tenant: the real ASGI app behind httpx, no sockets ----------------------------


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def live() -> Iterator[InProcessTenant]:
    """A one-practice tenant that has worked one more day (patient payments, new claims)."""
    tenant, transport = open_tenant(SandboxConfig(seed=1, patients=40, practices=1, anchor=ANCHOR))
    with tenant.client() as c:
        assert c.post("/_sandbox/clock/advance", json={"minutes": 24 * 60}).status_code == 200
    yield tenant
    transport.shut()
    tenant.tenant.db.close()


@pytest.fixture(scope="module")
def portal(live: LiveTenant) -> Iterator[httpx.Client]:
    """The persona front desk, signed in (CSRF header set)."""
    with live.client() as c:
        portal_login(live, c, portal_persona(live))
        yield c


def ctx(live: LiveTenant, endpoint: str) -> Context:
    return Context(tenant=TENANT, surface="portal", endpoint=endpoint, fetched_at=live.clock.now())


def fetch_all(client: httpx.Client, path: str, item: type[ItemT], **params: Any) -> list[ItemT]:
    """Every item of a portal list, page by page (``paging.portal_next``)."""
    items: list[ItemT] = []
    page: int | None = 1
    while page is not None:
        r = client.get(path, params={**params, "page": page, "pageSize": 100})
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(w.Page[item].model_validate(body).items)  # type: ignore[valid-type]
        page = portal_next(body)
    return items


def get(client: httpx.Client, path: str, model: type[ItemT]) -> ItemT:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return model.model_validate(r.json())


def instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def cents(value: int | None) -> Decimal:
    return Decimal(int(value or 0)).scaleb(-2)


def key(kind: str, upstream: object) -> str:
    """The id key rule, spelled out independently of the mappers."""
    return f"{TENANT}:{kind}:{upstream}"


def rows(live: LiveTenant, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return [dict(r) for r in live.tenant.db.all(sql, params)]


def charts(live: LiveTenant) -> dict[str, str]:
    """Patient GUID -> chart number, from the ground truth."""
    return {r["id"]: r["chart_number"] for r in rows(live, "SELECT id, chart_number FROM patients")}


# --- session and errors -------------------------------------------------------------------------


def test_sign_in_answers_and_error_envelopes_parse(live: LiveTenant) -> None:
    user = portal_persona(live)
    with live.client() as c:
        first = c.post(
            f"{API}/session", json={"username": user.username, "password": user.password}
        )
        mfa = w.MfaRequiredPayload.model_validate(first.json())
        assert "totp" in mfa.methods
        challenge = w.MfaChallengePayload.model_validate(
            c.post(f"{API}/session/mfa/challenge", json={"method": "totp"}).json()
        )
        assert (challenge.status, challenge.method) == ("challenge_ready", "totp")
        verified = c.post(f"{API}/session/mfa/verify", json={"code": portal_totp(live, user)})
        session = w.AuthenticatedPayload.model_validate(verified.json())
        assert session.csrf_token == c.cookies.get("portal_csrf")
        assert session.user.id == user.id
        assert session.user.practice.id == personas.PRACTICE_ID
        whoami = get(c, f"{API}/session", w.WhoAmIPayload)
        assert whoami.user.username == user.username
        assert whoami.idle_expires_at is not None

    with live.client() as anonymous:
        wrong = anonymous.post(
            f"{API}/session", json={"username": "nobody@x.example", "password": "nope"}
        )
        assert wrong.status_code == 401
        assert w.ErrorEnvelope.model_validate(wrong.json()).error.code == "invalid_credentials"
        expired = w.ErrorEnvelope.model_validate(anonymous.get(f"{API}/patients").json()).error
        assert (expired.code, expired.reason) == ("session_expired", "none")


def test_a_list_parses_into_its_page_envelope(portal: httpx.Client, live: LiveTenant) -> None:
    body = portal.get(f"{API}/patients", params={"pageSize": 7, "page": 2}).json()
    page = w.Page[w.PatientItemPayload].model_validate(body)
    total = live.tenant.db.scalar("SELECT COUNT(*) FROM patients")
    assert (page.page, page.page_size, page.total_items) == (2, 7, total)
    assert page.total_pages == -(-total // 7)
    assert portal_next(body) == 3


# --- patients -----------------------------------------------------------------------------------


def test_every_patient_maps_to_the_chart_number_id_and_the_truth(
    portal: httpx.Client, live: LiveTenant
) -> None:
    items = fetch_all(portal, f"{API}/patients", w.PatientItemPayload)
    truth = {r["chart_number"]: r for r in rows(live, "SELECT * FROM patients")}
    assert sorted(i.chart_number for i in items) == sorted(truth)
    for item in items:
        listed = m.patient_from_portal(item, ctx(live, "GET /portal/api/patients"))
        summary_payload = get(
            portal, f"{API}/patients/{item.chart_number}", w.PatientSummaryPayload
        )
        mapped = m.patient_from_portal(
            summary_payload, ctx(live, "GET /portal/api/patients/{chartNumber}")
        )
        patient, row = mapped.value, truth[item.chart_number]
        assert patient.id == listed.value.id == PatientId.new(key("patient", row["chart_number"]))
        assert (patient.name.first, patient.name.last) == (row["first_name"], row["last_name"])
        assert patient.name.middle == row["middle_initial"]
        assert patient.birth_date == day(row["dob"])
        assert patient.gender == {"M": "male", "F": "female"}.get(row["gender_code"], "unknown")
        assert patient.active is (row["status"] == "A")
        assert patient.identifier("chart_number") == row["chart_number"]
        assert patient.identifier("account_number") == row["account_number"]
        assert patient.email == (row["email"] or None)
        assert [p.number for p in patient.phones] == (
            [f"+1{row['phone_digits']}"] if row["phone_digits"] else []
        )
        assert patient.last_seen_date == day(row["last_seen_date"])
        assert patient.primary_provider_id == ProviderId.new(
            key("provider", row["primary_provider_id"])
        )
        assert patient.updated_at == instant(row["updated_at"])
        assert patient.created_at == instant(row["created_at"])
        assert patient.sources[0].upstream_id == row["chart_number"]
        # Computed dropped: the balance, counts and embedded provider are not carried ...
        assert {"balance.total", "counts.openEncounters", "primaryProvider.npi"} <= set(
            mapped.dropped
        )
        # ... and nothing the mapper carried is reported.
        assert not {"chartNumber", "firstName", "dateOfBirth", "sex", "email"} & set(mapped.dropped)
        insured = live.tenant.db.scalar(
            "SELECT COUNT(*) FROM insurance_policies WHERE patient_id = ?", (row["id"],)
        )
        assert ("insurance[].memberNumber" in mapped.dropped) is bool(insured)


# --- encounters ---------------------------------------------------------------------------------

ENCOUNTER_DROPS = {
    "chargeIds[]",
    "provider.name",
    "provider.npi",
    "signedBy.name",
    "signedBy.npi",
    "vitals[].updatedAt",
    "addenda[].id",
    "addenda[].author.name",
    "addenda[].author.npi",
}


def test_encounters_map_with_note_codes_vitals_and_signature(
    portal: httpx.Client, live: LiveTenant
) -> None:
    truth = {r["id"]: r for r in rows(live, "SELECT * FROM encounters")}
    vitals = {r["encounter_id"]: r for r in rows(live, "SELECT * FROM vitals")}
    chart_of = charts(live)
    listed = 0
    detailed = 0
    for chart in sorted(set(chart_of.values())):
        for item in fetch_all(portal, f"{API}/patients/{chart}/encounters", w.EncounterItemPayload):
            summary = m.encounter_from_portal(item, ctx(live, "GET .../encounters"))
            s, row = summary.value, truth[item.id]
            listed += 1
            assert s.id == EncounterId.new(key("encounter", row["id"]))
            assert s.patient_id == PatientId.new(key("patient", chart_of[row["patient_id"]]))
            assert s.provider_id == ProviderId.new(key("provider", row["provider_id"]))
            assert (s.status, s.type) == (row["status"], row["encounter_type"])
            assert s.service_date == day(row["encounter_date"])
            assert (s.start, s.end) == (instant(row["start_time"]), instant(row["end_time"]))
            assert s.chief_complaint == row["chief_complaint"]
            assert s.signed_at == instant(row["signed_at"])
            assert s.signed_by == (
                ProviderId.new(key("provider", row["signed_by"])) if row["signed_by"] else None
            )
            assert s.diagnoses == ()
            assert set(summary.dropped) <= ENCOUNTER_DROPS
            # The details of every open encounter and of a quarter of the rest.
            if item.status != "open" and item.id % 4:
                continue
            detail = get(portal, f"{API}/encounters/{item.id}", w.EncounterDetailPayload)
            mapped = m.encounter_from_portal(detail, ctx(live, "GET /portal/api/encounters/{id}"))
            e = mapped.value
            detailed += 1
            assert e.model_dump(
                exclude={"note", "diagnoses", "procedures", "vitals", "addenda", "sources"}
            ) == s.model_dump(
                exclude={"note", "diagnoses", "procedures", "vitals", "addenda", "sources"}
            )
            assert e.note.model_dump() == {
                "subjective": "",
                "objective": "",
                "assessment": "",
                "plan": "",
                **json.loads(row["note_json"]),
            }
            codes = [d["code"] for d in json.loads(row["diagnoses_json"])]
            assert [(d.rank, d.code) for d in e.diagnoses] == list(enumerate(codes, start=1))
            procedures = json.loads(row["procedures_json"])
            assert [(p.code, p.units, list(p.modifiers)) for p in e.procedures] == [
                (p["code"], p["units"], p["modifiers"]) for p in procedures
            ]
            if row["id"] in vitals:
                (v,) = e.vitals
                truth_v = vitals[row["id"]]
                assert v.taken_at == instant(truth_v["taken_at"])
                assert (v.systolic_mmhg, v.diastolic_mmhg, v.spo2_percent) == (
                    truth_v["systolic_mmhg"],
                    truth_v["diastolic_mmhg"],
                    truth_v["spo2_pct"],
                )
                assert (v.height_cm, v.weight_kg, v.temperature_c) == (
                    truth_v["height_cm"],
                    truth_v["weight_kg"],
                    truth_v["temperature_c"],
                )
            else:
                assert e.vitals == ()
            assert set(mapped.dropped) <= ENCOUNTER_DROPS
            assert ("chargeIds[]" in mapped.dropped) is bool(detail.charge_ids)
    assert listed == len(truth)
    assert detailed >= len(truth) // 5


# --- chart lists --------------------------------------------------------------------------------


def test_chart_lists_map_to_the_truth(portal: httpx.Client, live: LiveTenant) -> None:
    chart_of = charts(live)
    found: dict[str, dict[int, Any]] = {k: {} for k in ("prb", "med", "alg", "lab", "imm", "vit")}
    drops: set[str] = set()
    c = ctx(live, "GET /portal/api/patients/{chartNumber}/...")
    lists: list[tuple[str, str, str, type[w.TracedModel], Callable[..., Mapped[Any]]]] = [
        ("prb", "problems", "problems", w.ProblemPayload, m.problem_from_portal),
        ("med", "medications", "medications", w.MedicationPayload, m.medication_from_portal),
        ("alg", "allergies", "allergies", w.AllergyPayload, m.allergy_from_portal),
        ("lab", "lab_results", "labs", w.LabPayload, m.lab_from_portal),
        (
            "imm",
            "immunizations",
            "immunizations",
            w.ImmunizationPayload,
            m.immunization_from_portal,
        ),
        ("vit", "vitals", "vitals", w.VitalsPayload, m.vitals_from_portal),
    ]
    for kind, table, path, payload, mapper in lists:
        # The charts that hold rows of the kind, and one that holds none (an empty page).
        holders = {r["patient_id"] for r in rows(live, f"SELECT DISTINCT patient_id FROM {table}")}
        empty = (
            min(chart_of[g] for g in chart_of if g not in holders)
            if len(holders) < len(chart_of)
            else None
        )
        for chart in sorted({chart_of[g] for g in holders} | ({empty} if empty else set())):
            items = fetch_all(portal, f"{API}/patients/{chart}/{path}", payload)
            assert bool(items) is (chart != empty)
            for item in items:
                mapped = mapper(item, c, chart_number=chart)
                assert mapped.value.patient_id == PatientId.new(key("patient", chart))
                found[kind][int(mapped.value.sources[0].upstream_id)] = mapped.value
                drops |= set(mapped.dropped)
    # Only what the domain has no field for is dropped.
    # (a lab without a numeric value keeps no unit)
    assert drops <= {"updatedAt", "unit"}

    problems = rows(live, "SELECT * FROM problems")
    assert sorted(found["prb"]) == sorted(r["id"] for r in problems)
    for r in problems:
        p = found["prb"][r["id"]]
        assert (p.code, p.description, p.status) == (r["icd10_code"], r["description"], r["status"])
        assert (p.onset_date, p.resolved_date) == (day(r["onset_date"]), day(r["resolved_date"]))
        assert p.created_at == instant(r["created_at"])

    medications = rows(live, "SELECT * FROM medications")
    assert sorted(found["med"]) == sorted(r["id"] for r in medications)
    for r in medications:
        med = found["med"][r["id"]]
        assert (med.rxnorm_code, med.name, med.sig, med.status) == (
            r["rxnorm_code"],
            r["name"],
            r["sig"],
            r["status"],
        )
        assert (med.start_date, med.end_date) == (day(r["start_date"]), day(r["end_date"]))
        assert med.prescriber_id == (
            ProviderId.new(key("provider", r["prescriber_id"])) if r["prescriber_id"] else None
        )

    allergies = rows(live, "SELECT * FROM allergies")
    assert sorted(found["alg"]) == sorted(r["id"] for r in allergies)
    for r in allergies:
        a = found["alg"][r["id"]]
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

    labs = rows(live, "SELECT * FROM lab_results")
    assert sorted(found["lab"]) == sorted(r["id"] for r in labs)
    for r in labs:
        lab = found["lab"][r["id"]]
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
        assert lab.encounter_id == EncounterId.new(key("encounter", r["encounter_id"]))

    immunizations = rows(live, "SELECT * FROM immunizations")
    assert sorted(found["imm"]) == sorted(r["id"] for r in immunizations)
    for r in immunizations:
        i = found["imm"][r["id"]]
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

    vitals = rows(live, "SELECT * FROM vitals")
    assert sorted(found["vit"]) == sorted(r["id"] for r in vitals)
    for r in vitals:
        v = found["vit"][r["id"]]
        assert v.encounter_id == EncounterId.new(key("encounter", r["encounter_id"]))
        assert (v.bmi, v.heart_rate_bpm, v.respiratory_rate) == (
            r["bmi"],
            r["heart_rate_bpm"],
            r["respiratory_rate"],
        )


# --- RCM ----------------------------------------------------------------------------------------


def test_charges_map_to_the_ledger(portal: httpx.Client, live: LiveTenant) -> None:
    items = fetch_all(portal, f"{API}/charges", w.ChargePayload)
    truth = {
        r["id"]: r
        for r in rows(live, "SELECT * FROM transactions WHERE transaction_type = 'charge'")
    }
    assert sorted(i.id for i in items) == sorted(truth)
    chart_of = charts(live)
    for item in items:
        mapped = m.charge_from_portal(item, ctx(live, "GET /portal/api/charges"))
        c, r = mapped.value, truth[item.id]
        assert c.id == ChargeId.new(key("transaction", r["id"]))
        assert c.patient_id == PatientId.new(key("patient", chart_of[r["patient_id"]]))
        assert (c.amount, c.balance) == (cents(r["amount_cents"]), cents(r["balance_cents"]))
        assert (c.responsible, c.status, c.billed) == (
            r["balance_type"],
            r["transaction_status"],
            bool(r["billed"]),
        )
        assert (c.service_date, c.posting_date) == (day(r["service_date"]), day(r["posting_date"]))
        assert (c.procedure_code, c.units) == (r["procedure_code"], r["units"])
        assert list(c.diagnosis_codes) == json.loads(r["diagnosis_codes_json"])
        assert mapped.dropped == ()


@pytest.fixture(scope="module")
def claim_details(portal: httpx.Client) -> list[w.ClaimDetailPayload]:
    """Every claim's detail, fetched once (the writes below come after the reads)."""
    return [
        get(portal, f"{API}/claims/{item.claim_number}", w.ClaimDetailPayload)
        for item in fetch_all(portal, f"{API}/claims", w.ClaimItemPayload)
    ]


CLAIM_DROPS = {
    "renderingProvider.name",
    "renderingProvider.npi",
    "patient.rcmAccountNumber",
    "payer.name",
    "diagnoses[].description",
    "referringProvider.npi",
    "referringProvider.name",
}


def test_claims_map_with_lines_and_a_lawful_277_history(
    claim_details: list[w.ClaimDetailPayload], live: LiveTenant
) -> None:
    details = claim_details
    truth = {r["claim_number"]: r for r in rows(live, "SELECT * FROM claims")}
    assert sorted(d.claim_number for d in details) == sorted(truth)
    statuses: set[ClaimStatus] = set()
    for detail in details:
        mapped = m.claim_from_portal(detail, ctx(live, "GET /portal/api/claims/{claimNumber}"))
        claim, r = mapped.value, truth[detail.claim_number]
        assert claim.id == ClaimId.new(key("claim", r["claim_number"]))
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
        lines = rows(
            live, "SELECT * FROM claim_lines WHERE claim_id = ? ORDER BY line_number", (r["id"],)
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
        history = rows(
            live,
            "SELECT * FROM claim_status_history WHERE claim_id = ? ORDER BY at, id",
            (r["id"],),
        )
        assert [(h.status, h.category_code, h.at) for h in claim.status_history] == [
            (t["status"], t["category_code"], instant(t["at"])) for t in history
        ]
        assert claim.status_history[-1].status == claim.status
        for before, after in pairwise(claim.status_history):
            assert can_transition_claim(before.status, after.status)
        for change in claim.status_history:
            assert change.category_code == CLAIM_STATUS_CATEGORY[change.status]
        statuses.add(claim.status)
        assert set(mapped.dropped) <= CLAIM_DROPS
        assert not any(path.startswith("remittances") for path in mapped.dropped)
    assert {
        ClaimStatus.SUBMITTED,
        ClaimStatus.PENDING,
        ClaimStatus.PAID,
        ClaimStatus.PARTIALLY_PAID,
        ClaimStatus.DENIED,
    } <= statuses


def test_remittances_balance_and_merge_from_claims_and_eras(
    portal: httpx.Client, claim_details: list[w.ClaimDetailPayload], live: LiveTenant
) -> None:
    from_claims = {
        r.value.id: r
        for detail in claim_details
        for r in m.remittances_from_claim(detail, ctx(live, "GET /portal/api/claims/{n}"))
    }
    payments = fetch_all(portal, f"{API}/payments", w.PaymentPayload, kind="era")
    from_eras = {}
    for payment in payments:
        era = get(portal, f"{API}/eras/{payment.id}", w.EraPayload)
        mapped_payment = m.payment_from_portal(era, ctx(live, "GET /portal/api/eras/{id}"))
        assert mapped_payment.value.id == PaymentId.new(key("payment", payment.id))
        assert not any(p.startswith("claims") for p in mapped_payment.dropped)
        for r in m.remittances_from_era(era, ctx(live, "GET /portal/api/eras/{id}")):
            from_eras[r.value.id] = r
            assert r.value.payment_id == mapped_payment.value.id
            assert set(r.dropped) <= {
                "claims[].chartNumber",
                "claims[].lines[].adjustments[].carcDescription",
            }
    assert from_claims.keys() == from_eras.keys()
    truth = rows(
        live,
        "SELECT r.*, c.claim_number FROM remittances r JOIN claims c ON c.id = r.claim_id",
    )
    assert len(truth) == len(from_claims)
    for t in truth:
        rid = RemittanceId.new(key("remittance", f"{t['payment_id']}/{t['claim_number']}"))
        a, b = from_claims[rid].value, from_eras[rid].value
        assert a.model_dump(exclude={"sources", "payer_claim_control_number"}) == b.model_dump(
            exclude={"sources", "payer_claim_control_number"}
        )
        assert a.claim_id == ClaimId.new(key("claim", t["claim_number"]))
        assert (a.billed, a.paid, a.patient_responsibility) == (
            cents(t["billed_cents"]),
            cents(t["paid_cents"]),
            cents(t["patient_resp_cents"]),
        )
        assert a.claim_status_code == t["claim_status_code"]
        truth_lines = rows(
            live, "SELECT * FROM remittance_lines WHERE remittance_id = ? ORDER BY id", (t["id"],)
        )
        assert len(a.lines) == len(truth_lines)
        for line, tl in zip(a.lines, truth_lines, strict=True):
            assert line.billed == money_sum((line.paid, *(x.amount for x in line.adjustments)))
            assert (line.billed, line.allowed, line.paid) == (
                cents(tl["billed_cents"]),
                cents(tl["allowed_cents"]),
                cents(tl["paid_cents"]),
            )
            adjustments = rows(
                live,
                "SELECT * FROM adjustments WHERE remittance_line_id = ? ORDER BY id",
                (tl["id"],),
            )
            assert [(x.group, x.carc, x.rarc, x.amount) for x in line.adjustments] == [
                (t2["group_code"], t2["carc"], t2["rarc"], cents(t2["amount_cents"]))
                for t2 in adjustments
            ]
        assert from_claims[rid].dropped == ("remittances[].lines[].adjustments[].carcDescription",)


def test_payments_map_to_the_truth(portal: httpx.Client, live: LiveTenant) -> None:
    items = fetch_all(portal, f"{API}/payments", w.PaymentPayload)
    truth = {r["id"]: r for r in rows(live, "SELECT * FROM payments")}
    assert sorted(i.id for i in items) == sorted(truth)
    chart_of = charts(live)
    kinds = set()
    for item in items:
        mapped = m.payment_from_portal(item, ctx(live, "GET /portal/api/payments"))
        p, r = mapped.value, truth[item.id]
        kinds.add(p.kind)
        assert (p.kind, p.trace_number, p.payment_date) == (
            r["kind"],
            r["trace_number"],
            day(r["payment_date"]),
        )
        assert p.amount == cents(r["amount_cents"])
        assert p.method == {"ACH": "ach", "CHK": "check"}.get(r["method"], r["method"])
        if r["kind"] == "era":
            assert p.payer_id is not None
            assert p.patient_id is None
        else:
            assert p.patient_id == PatientId.new(key("patient", chart_of[r["patient_id"]]))
        assert set(mapped.dropped) <= {"payer.name"}
    assert kinds == {"era", "patient"}


def test_statements_map_with_aging_and_lines(portal: httpx.Client, live: LiveTenant) -> None:
    items = fetch_all(portal, f"{API}/statements", w.StatementPayload)
    truth = {r["statement_number"]: r for r in rows(live, "SELECT * FROM statements")}
    assert sorted(i.statement_number for i in items) == sorted(truth)
    for item in items:
        mapped = m.statement_from_portal(item, ctx(live, "GET /portal/api/statements"))
        s, r = mapped.value, truth[item.statement_number]
        aging = json.loads(r["aging_json"])
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
        assert mapped.dropped == ("rcmAccountNumber",)


def test_work_queues_parse(portal: httpx.Client, live: LiveTenant) -> None:
    denials = fetch_all(portal, f"{API}/workqueues/denials", w.DenialItemPayload)
    denied = live.tenant.db.scalar("SELECT COUNT(*) FROM claims WHERE status = 'denied'")
    assert len(denials) == denied > 0
    for item in denials:
        assert item.status == "denied"
        assert item.appealable
        assert item.denial is not None
        assert item.denial.group_code != "PR"
    collections = fetch_all(portal, f"{API}/workqueues/collections", w.CollectionsItemPayload)
    assert all(c.reasons for c in collections)


# --- writes through the portal ------------------------------------------------------------------


def test_pushed_signed_and_billed_encounter_maps_end_to_end(
    portal: httpx.Client, live: LiveTenant
) -> None:
    chart = personas.JORDAN.chart_number
    created = portal.post(
        f"{API}/encounters",
        json={
            "chartNumber": chart,
            "chiefComplaint": "Cough",
            "notes": {"subjective": "Cough for a week", "plan": "Rest"},
            "diagnoses": ["J06.9"],
            "procedures": [{"code": "99213"}],
        },
    )
    assert created.status_code == 201, created.text
    opened = m.encounter_from_portal(
        w.EncounterDetailPayload.model_validate(created.json()),
        ctx(live, "POST /portal/api/encounters"),
    ).value
    assert (opened.status, opened.signed_at, opened.note.subjective) == (
        "open",
        None,
        "Cough for a week",
    )
    number = created.json()["id"]
    signed = portal.post(f"{API}/encounters/{number}/sign")
    assert signed.status_code == 200, signed.text
    live.clock.advance(timedelta(minutes=5))
    added = portal.post(f"{API}/encounters/{number}/addenda", json={"text": "Called back."})
    assert added.status_code == 201, added.text
    detail = w.EncounterDetailPayload.model_validate(added.json())
    encounter = m.encounter_from_portal(detail, ctx(live, "POST .../addenda")).value
    assert encounter.id == opened.id == EncounterId.new(key("encounter", number))
    assert encounter.status == "signed"
    assert encounter.signed_by == opened.provider_id
    (addendum,) = encounter.addenda
    assert (addendum.text, addendum.author_id) == ("Called back.", opened.provider_id)
    assert addendum.created_at == live.clock.now().replace(microsecond=0)

    claim = portal.post(
        f"{API}/claims", json={"chartNumber": chart, "chargeIds": detail.charge_ids}
    )
    assert claim.status_code == 201, claim.text
    mapped = m.claim_from_portal(
        w.ClaimDetailPayload.model_validate(claim.json()), ctx(live, "POST /portal/api/claims")
    ).value
    assert [(h.status, h.category_code) for h in mapped.status_history] == [
        (ClaimStatus.DRAFT, None),
        (ClaimStatus.SCRUBBED, None),
        (ClaimStatus.SUBMITTED, "A1"),
    ]
    assert mapped.encounter_id == encounter.id
    assert [line.charge_id for line in mapped.lines] == [
        ChargeId.new(key("transaction", c)) for c in detail.charge_ids
    ]

    again = portal.post(
        f"{API}/claims", json={"chartNumber": chart, "chargeIds": detail.charge_ids}
    )
    error = w.ErrorEnvelope.model_validate(again.json()).error
    assert (again.status_code, error.code, error.claim_status) == (
        422,
        "validation_failed",
        "draft",
    )
    assert error.errors is not None
    assert error.errors[0].field == "chargeIds[0]"


def test_an_appealed_denial_keeps_a_lawful_history(portal: httpx.Client, live: LiveTenant) -> None:
    denied = fetch_all(portal, f"{API}/workqueues/denials", w.DenialItemPayload)[0]
    r = portal.post(f"{API}/claims/{denied.claim_number}/appeal", json={"reason": "Records sent."})
    assert r.status_code == 200, r.text
    claim = m.claim_from_portal(
        w.ClaimDetailPayload.model_validate(r.json()), ctx(live, "POST .../appeal")
    ).value
    assert claim.status == ClaimStatus.APPEALED
    assert [h.status for h in claim.status_history][-2:] == [
        ClaimStatus.DENIED,
        ClaimStatus.APPEALED,
    ]
    assert claim.status_history[-1].category_code == "A1"


# --- drift and bad values -----------------------------------------------------------------------


def test_fields_the_upstream_adds_or_renames_are_reported_as_dropped(
    portal: httpx.Client, live: LiveTenant
) -> None:
    encounter = live.tenant.db.scalar("SELECT MIN(id) FROM encounters")
    with live.client() as control:
        rule = {
            "endpoint": "GET /portal/api/encounters/*",
            "add": {"telehealthUrl": "https://x.invalid/v", "vitals.[].pulseOx": 97},
            "rename": {"chiefComplaint": "reasonForVisit"},
        }
        assert control.post("/_sandbox/drift", json=rule).status_code in (200, 201)
        try:
            payload = get(portal, f"{API}/encounters/{encounter}", w.EncounterDetailPayload)
        finally:
            control.delete("/_sandbox/drift")
    mapped = m.encounter_from_portal(payload, ctx(live, "GET /portal/api/encounters/{id}"))
    assert {"telehealthUrl", "vitals[].pulseOx", "reasonForVisit"} <= set(mapped.dropped)
    assert mapped.value.chief_complaint == ""


def test_values_outside_the_domain_raise_unexpected_payload(
    portal: httpx.Client, live: LiveTenant
) -> None:
    claim_number = live.tenant.db.scalar("SELECT MIN(claim_number) FROM claims")
    detail = get(portal, f"{API}/claims/{claim_number}", w.ClaimDetailPayload)
    c = ctx(live, "GET /portal/api/claims/{claimNumber}")
    with pytest.raises(UnexpectedPayload) as status:
        m.claim_from_portal(detail.model_copy(update={"status": "lost"}), c)
    assert status.value.field_path == "status"
    with pytest.raises(UnexpectedPayload) as amount:
        m.claim_from_portal(detail.model_copy(update={"billed_amount": "12.345"}), c)
    assert amount.value.field_path == "billedAmount"
    with pytest.raises(UnexpectedPayload) as invariant:
        m.claim_from_portal(detail.model_copy(update={"billed_amount": "0.01"}), c)
    assert invariant.value.field_path == "billed"


def test_an_unknown_encounter_type_maps_to_other_and_is_reported(
    portal: httpx.Client, live: LiveTenant
) -> None:
    encounter = live.tenant.db.scalar("SELECT MIN(id) FROM encounters")
    detail = get(portal, f"{API}/encounters/{encounter}", w.EncounterDetailPayload)
    mapped = m.encounter_from_portal(
        detail.model_copy(update={"encounter_type": "home_visit"}), ctx(live, "GET")
    )
    assert mapped.value.type == "other"
    assert "type" in mapped.dropped
    assert mapped.value.fetched_at == live.clock.now()
    assert mapped.value.fetched_at.tzinfo == UTC


def test_values_the_domain_cannot_take_are_dropped_or_refused(
    portal: httpx.Client, live: LiveTenant
) -> None:
    c = ctx(live, "GET /portal/api/patients/{chartNumber}")
    chart = personas.JORDAN.chart_number
    raw = portal.get(f"{API}/patients/{chart}").json()
    odd = w.PatientSummaryPayload.model_validate(
        {**raw, "phone": "12", "email": "not-an-address", "preferredLanguage": "English"}
    )
    mapped = m.patient_from_portal(odd, c)
    assert (mapped.value.phones, mapped.value.email, mapped.value.language) == ((), None, None)
    assert {"phone", "email", "preferredLanguage"} <= set(mapped.dropped)
    spanish = w.PatientSummaryPayload.model_validate({**raw, "preferredLanguage": "SPA"})
    assert m.patient_from_portal(spanish, c).value.language == "spa"
    with pytest.raises(UnexpectedPayload) as sex:
        m.patient_from_portal(w.PatientSummaryPayload.model_validate({**raw, "sex": "x"}), c)
    assert sex.value.field_path == "sex"

    problem = fetch_all(portal, f"{API}/patients/{chart}/problems", w.ProblemPayload)[0]
    with pytest.raises(UnexpectedPayload) as system:
        m.problem_from_portal(
            problem.model_copy(update={"code_system": "SNOMED CT"}), c, chart_number=chart
        )
    assert system.value.field_path == "codeSystem"

    payment = fetch_all(portal, f"{API}/payments", w.PaymentPayload)[0]
    wired = m.payment_from_portal(payment.model_copy(update={"method": "wire"}), c)
    assert wired.value.method == "other"
    assert "method" in wired.dropped

    claim_number = live.tenant.db.scalar("SELECT MIN(claim_number) FROM claims")
    claim = portal.get(f"{API}/claims/{claim_number}").json()
    claim["diagnoses"][0]["pointer"] = 2
    with pytest.raises(UnexpectedPayload) as pointer:
        m.claim_from_portal(w.ClaimDetailPayload.model_validate(claim), c)
    assert pointer.value.field_path == "diagnoses[].pointer"

    encounter = portal.get(
        f"{API}/encounters/{live.tenant.db.scalar('SELECT MIN(encounter_id) FROM vitals')}"
    ).json()
    encounter["vitals"][0]["encounterId"] += 1
    with pytest.raises(UnexpectedPayload) as stray:
        m.encounter_from_portal(w.EncounterDetailPayload.model_validate(encounter), c)
    assert stray.value.field_path == "vitals[].encounterId"


def test_a_mapper_inside_a_reading_block_shares_its_record(
    portal: httpx.Client, live: LiveTenant
) -> None:
    payment = fetch_all(portal, f"{API}/payments", w.PaymentPayload)[0]
    with w.reading() as reads:
        inner = m.payment_from_portal(payment, ctx(live, "GET /portal/api/payments"))
        assert (id(payment), "trace_number") in reads
    assert inner.dropped == m.payment_from_portal(payment, ctx(live, "GET")).dropped
