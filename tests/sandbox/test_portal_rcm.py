"""Portal RCM: charges, claim submission and its scrubber, ERAs, denials, appeals, statements."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from tests.support.sandbox import ANCHOR, LiveTenant, portal_login, portal_persona

from carecloud_sandbox import billing, personas, statements

API = "/portal/api"


class _Dice(random.Random):
    """Dice that always roll ``value`` (0.0 denies a claim, 0.99 pays it)."""

    def __init__(self, value: float) -> None:
        super().__init__(1)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.fixture(scope="module")
def portal(live: LiveTenant) -> Iterator[httpx.Client]:
    """The persona front desk, signed in (CSRF header set)."""
    with live.client() as c:
        portal_login(live, c, portal_persona(live))
        yield c


def _error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code, r.text
    return error


_taken: set[str] = set()


def _billable(live: LiveTenant, count: int = 2) -> tuple[str, list[int]]:
    """A practice-1 patient (not used by another test) with ``count`` claimable charges."""
    today = ANCHOR.isoformat()
    year_ago = (ANCHOR - timedelta(days=300)).isoformat()
    rows = live.tenant.db.all(
        "SELECT p.chart_number, t.id FROM transactions t JOIN patients p ON p.id = t.patient_id "
        "WHERE p.practice_id = 1 AND t.transaction_type = 'charge' AND t.billed = 0 "
        "AND t.diagnosis_codes_json != '[]' AND t.service_date BETWEEN ? AND ? "
        "AND EXISTS (SELECT 1 FROM insurance_policies ip WHERE ip.patient_id = p.id "
        "AND ip.policy_priority = 1 AND (ip.effective_to IS NULL OR ip.effective_to >= ?)) "
        "ORDER BY p.internal_id, t.id",
        (year_ago, today, today),
    )
    by_chart: dict[str, list[int]] = {}
    for r in rows:
        by_chart.setdefault(r["chart_number"], []).append(int(r["id"]))
    for chart, ids in by_chart.items():
        if chart not in _taken and len(ids) >= count:
            _taken.add(chart)
            return chart, ids[:count]
    raise AssertionError("no billable patient left")


def _document(live: LiveTenant, chart: str) -> int:
    doc = live.tenant.db.scalar(
        "SELECT d.id FROM documents d JOIN patients p ON p.id = d.patient_id "
        "WHERE p.chart_number = ? ORDER BY d.id LIMIT 1",
        (chart,),
    )
    assert doc is not None
    return int(doc)


def _submit(portal: httpx.Client, chart: str, charges: list[int], **extra: Any) -> httpx.Response:
    return portal.post(f"{API}/claims", json={"chartNumber": chart, "chargeIds": charges, **extra})


def _adjudicate(live: LiveTenant, claim_number: str, dice: float) -> str:
    """Move a submitted claim through the payer (the activity clock's job) with fixed dice."""
    db = live.tenant.db
    claim_id = int(db.scalar("SELECT id FROM claims WHERE claim_number = ?", (claim_number,)))
    at = live.tenant.now_db()
    with db.transaction() as conn:
        billing.record_status(conn, claim_id, "accepted", at, "277CA")
        return billing.adjudicate(conn, _Dice(dice), claim_id, at=at, paid_on=ANCHOR)


# --- charges and submission ---------------------------------------------------------------------


def test_charges_list_filters_by_patient_and_billed(portal: httpx.Client, live: LiveTenant) -> None:
    chart, _ = _billable(live)
    r = portal.get(f"{API}/charges", params={"patient": chart, "billed": "false", "pageSize": 100})
    assert r.status_code == 200
    body = r.json()
    assert body["totalItems"] > 0
    assert all(c["chartNumber"] == chart and c["billed"] is False for c in body["items"])
    assert all(c["amount"].count(".") == 1 for c in body["items"])
    error = _error(
        portal.get(f"{API}/charges", params={"billed": "maybe"}), 422, "validation_failed"
    )
    assert error["field"] == "billed"
    _error(portal.get(f"{API}/charges", params={"patient": "NOPE"}), 422, "validation_failed")


def test_claim_submission_happy_path(portal: httpx.Client, live: LiveTenant) -> None:
    chart, charges = _billable(live)
    document = _document(live, chart)
    r = _submit(
        portal,
        chart,
        charges,
        attachments=[{"documentId": document, "type": "09"}],
        referringProvider={"npi": personas.PROVIDER_NPI, "name": "Referring clinic"},
    )
    assert r.status_code == 201, r.text
    claim = r.json()
    assert claim["status"] == "submitted"
    assert claim["claimNumber"].startswith("MGFM-")
    assert claim["patient"]["chartNumber"] == chart
    assert [ln["chargeId"] for ln in claim["lines"]] == charges
    assert all(ln["diagnosisPointers"] for ln in claim["lines"])
    assert claim["diagnoses"][0]["pointer"] == 1
    assert claim["attachments"] == [{"documentId": document, "type": "09"}]
    assert claim["referringProvider"]["npi"] == personas.PROVIDER_NPI
    history = [(h["status"], h["categoryCode"]) for h in claim["statusHistory"]]
    assert history == [("draft", None), ("scrubbed", None), ("submitted", "A1")]
    assert claim["submittedAt"] == live.tenant.now_db()
    billed = portal.get(f"{API}/charges", params={"patient": chart, "billed": "true"}).json()
    assert set(charges) <= {c["id"] for c in billed["items"]}
    listed = portal.get(f"{API}/claims", params={"status": "submitted", "patient": chart}).json()
    assert [c["claimNumber"] for c in listed["items"]] == [claim["claimNumber"]]
    shown = portal.get(f"{API}/claims/{claim['claimNumber']}").json()
    assert shown == claim
    logged = live.tenant.db.all(
        "SELECT entity, action FROM change_log WHERE source = 'portal' AND entity IN ('claim', 'charge')"
    )
    assert ("claim", "create") in [tuple(r) for r in logged]
    # The same charges cannot be billed twice.
    error = _error(_submit(portal, chart, charges), 422, "validation_failed")
    assert error["field"] == "chargeIds[0]"
    assert error["claimStatus"] == "draft"
    assert {e["field"] for e in error["errors"]} == {"chargeIds[0]", "chargeIds[1]"}


def _claims(live: LiveTenant) -> int:
    return int(live.tenant.db.scalar("SELECT COUNT(*) FROM claims"))


def test_scrubber_names_the_missing_diagnosis_pointer(
    portal: httpx.Client, live: LiveTenant
) -> None:
    chart, charges = _billable(live)
    with live.tenant.db.transaction() as conn:
        conn.execute(
            "UPDATE transactions SET diagnosis_codes_json = '[]' WHERE id = ?", (charges[1],)
        )
    before = _claims(live)
    error = _error(_submit(portal, chart, charges), 422, "validation_failed")
    assert error["field"] == "lines[1].diagnosisPointers"
    assert _claims(live) == before  # nothing written: the claim stays a draft on the client
    assert portal.get(f"{API}/charges", params={"patient": chart, "billed": "true"}).json()[
        "totalItems"
    ] == live.tenant.db.scalar(
        "SELECT COUNT(*) FROM transactions t JOIN patients p ON p.id = t.patient_id "
        "WHERE p.chart_number = ? AND t.transaction_type = 'charge' AND t.billed = 1",
        (chart,),
    )


def test_scrubber_names_missing_insurance(portal: httpx.Client, live: LiveTenant) -> None:
    chart, charges = _billable(live, 1)
    with live.tenant.db.transaction() as conn:
        conn.execute(
            "UPDATE insurance_policies SET effective_to = '2000-01-01' WHERE patient_id = "
            "(SELECT id FROM patients WHERE chart_number = ?)",
            (chart,),
        )
    error = _error(_submit(portal, chart, charges), 422, "validation_failed")
    assert error["field"] == "insurance"


def test_scrubber_names_the_referring_npi_and_attachments(
    portal: httpx.Client, live: LiveTenant
) -> None:
    chart, charges = _billable(live, 1)
    other_chart, _ = _billable(live, 1)
    error = _error(
        _submit(
            portal,
            chart,
            charges,
            referringProvider={"npi": "1234567890"},
            attachments=[{"documentId": _document(live, other_chart), "type": "LA"}],
        ),
        422,
        "validation_failed",
    )
    fields = {e["field"] for e in error["errors"]}
    assert fields == {"referringProvider.npi", "attachments[0].documentId"}
    error = _error(_submit(portal, chart, charges, referringProvider={}), 422, "validation_failed")
    assert error["field"] == "referringProvider.npi"
    error = _error(
        _submit(portal, chart, charges, attachments=[{"documentId": 1, "type": "selfie"}]),
        422,
        "validation_failed",
    )
    assert error["field"] == "attachments[0].type"


def test_scrubber_names_a_charge_of_someone_else(portal: httpx.Client, live: LiveTenant) -> None:
    chart, _ = _billable(live, 1)
    _, foreign = _billable(live, 1)
    error = _error(_submit(portal, chart, foreign), 422, "validation_failed")
    assert error["field"] == "chargeIds[0]"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"chargeIds": [1]}, "patient"),
        ({"chartNumber": "MG000001"}, "chargeIds"),
        ({"chartNumber": "MG000001", "chargeIds": []}, "chargeIds"),
        ({"chartNumber": "MG000001", "chargeIds": ["1"]}, "chargeIds[0]"),
        ({"chartNumber": "MG000001", "chargeIds": [1, 1]}, "chargeIds[1]"),
        ({"chartNumber": "MG000001", "chargeIds": [2**70]}, "chargeIds[0]"),
        ({"chartNumber": "MG000001", "chargeIds": [1], "attachments": {}}, "attachments"),
        (
            {"chartNumber": "MG000001", "chargeIds": [1], "attachments": [{"type": "09"}]},
            "attachments[0].documentId",
        ),
        ({"chartNumber": "NOPE", "chargeIds": [1]}, "chartNumber"),
    ],
)
def test_claim_body_validation_names_the_field(
    portal: httpx.Client, body: dict[str, Any], field: str
) -> None:
    error = _error(portal.post(f"{API}/claims", json=body), 422, "validation_failed")
    assert error["field"] == field


def test_claim_writes_need_csrf(live: LiveTenant, portal: httpx.Client) -> None:
    cookies = {"portal_session": portal.cookies.get("portal_session", path="/portal") or ""}
    with live.client(cookies=cookies) as bare:
        _error(bare.post(f"{API}/claims", json={}), 403, "csrf_failed")
        _error(bare.post(f"{API}/claims/X-1/appeal", json={}), 403, "csrf_failed")


# --- adjudication, ERAs, denials and appeals ----------------------------------------------------


def test_paid_claim_shows_its_era_with_balanced_cas(portal: httpx.Client, live: LiveTenant) -> None:
    chart, charges = _billable(live)
    number = _submit(portal, chart, charges).json()["claimNumber"]
    assert _adjudicate(live, number, 0.99) in ("paid", "partially_paid")
    claim = portal.get(f"{API}/claims/{number}").json()
    assert [h["categoryCode"] for h in claim["statusHistory"]][-2:] == ["A2", "F1"]
    remittance = claim["remittances"][0]
    assert remittance["claimStatusCode"] == "1"
    for line in remittance["lines"]:
        adjusted = sum(float(a["amount"]) for a in line["adjustments"])
        assert abs(float(line["billedAmount"]) - float(line["paidAmount"]) - adjusted) < 0.005
        assert {a["groupCode"] for a in line["adjustments"]} <= {"CO", "PR", "OA", "PI"}
    era_id = remittance["eraId"]
    payments = portal.get(f"{API}/payments", params={"kind": "era", "pageSize": 100}).json()
    assert era_id in [p["id"] for p in payments["items"]]
    era = portal.get(f"{API}/eras/{era_id}").json()
    assert era["kind"] == "era"
    assert era["payer"]["name"]
    assert [c["claimNumber"] for c in era["claims"]] == [number]
    _error(portal.get(f"{API}/eras/999999"), 404, "not_found")
    _error(portal.get(f"{API}/payments", params={"kind": "cash"}), 422, "validation_failed")


def test_denied_claim_sits_in_the_denials_queue_and_can_be_appealed(
    portal: httpx.Client, live: LiveTenant
) -> None:
    chart, charges = _billable(live)
    number = _submit(portal, chart, charges).json()["claimNumber"]
    assert _adjudicate(live, number, 0.0) == "denied"
    queue = portal.get(f"{API}/workqueues/denials", params={"pageSize": 100}).json()
    entry = next(c for c in queue["items"] if c["claimNumber"] == number)
    assert entry["status"] == "denied"
    assert entry["denial"] == {
        "groupCode": "CO",
        "carc": "16",
        "carcDescription": "Claim lacks information or has a billing error",
        "rarc": "M51",
    }
    assert entry["appealable"] is True
    document = _document(live, chart)
    r = portal.post(
        f"{API}/claims/{number}/appeal",
        json={
            "reason": "Corrected coding attached.",
            "attachments": [{"documentId": document, "type": "M1"}],
        },
    )
    assert r.status_code == 200, r.text
    appealed = r.json()
    assert appealed["status"] == "appealed"
    assert appealed["statusHistory"][-1]["status"] == "appealed"
    assert appealed["statusHistory"][-1]["categoryCode"] == "A1"
    assert {"documentId": document, "type": "M1"} in appealed["attachments"]
    queue = portal.get(f"{API}/workqueues/denials", params={"pageSize": 100}).json()
    assert number not in [c["claimNumber"] for c in queue["items"]]
    _error(
        portal.post(f"{API}/claims/{number}/appeal", json={"reason": "again"}),
        409,
        "invalid_transition",
    )
    error = _error(portal.post(f"{API}/claims/{number}/appeal", json={}), 422, "validation_failed")
    assert error["field"] == "reason"
    assert (
        live.tenant.db.scalar(
            "SELECT COUNT(*) FROM change_log WHERE entity = 'claim' AND action = 'appeal' AND source = 'portal'"
        )
        == 1
    )


def test_a_submitted_claim_cannot_be_appealed(portal: httpx.Client, live: LiveTenant) -> None:
    chart, charges = _billable(live, 1)
    number = _submit(portal, chart, charges).json()["claimNumber"]
    _error(
        portal.post(f"{API}/claims/{number}/appeal", json={"reason": "x"}),
        409,
        "invalid_transition",
    )
    _error(portal.post(f"{API}/claims/NOPE-1/appeal", json={"reason": "x"}), 404, "not_found")


def test_claims_list_filters(portal: httpx.Client) -> None:
    everything = portal.get(f"{API}/claims", params={"pageSize": 100}).json()
    assert everything["totalItems"] >= 1
    newest = max(c["updatedAt"] for c in everything["items"])
    assert portal.get(f"{API}/claims", params={"updatedSince": newest}).json()["totalItems"] == 0
    several = portal.get(f"{API}/claims", params={"status": "submitted,denied,appealed"}).json()
    assert {c["status"] for c in several["items"]} <= {"submitted", "denied", "appealed"}
    error = _error(portal.get(f"{API}/claims", params={"status": "lost"}), 422, "validation_failed")
    assert error["field"] == "status"
    _error(portal.get(f"{API}/claims/NOPE-1"), 404, "not_found")


# --- statements and collections -----------------------------------------------------------------


def test_statements_and_the_collections_queue(portal: httpx.Client, live: LiveTenant) -> None:
    chart, charges = _billable(live, 1)
    db = live.tenant.db
    patient_id = str(db.scalar("SELECT id FROM patients WHERE chart_number = ?", (chart,)))
    old = (ANCHOR - timedelta(days=120)).isoformat()
    with db.transaction() as conn:
        conn.execute(
            "UPDATE transactions SET balance_type = 'patient', balance_cents = 4321, "
            "service_date = ? WHERE id = ?",
            (old, charges[0]),
        )
        statement_id = statements.issue(
            conn, practice_id=1, patient_id=patient_id, on=ANCHOR, at=live.tenant.now_db()
        )
    number = db.scalar("SELECT statement_number FROM statements WHERE id = ?", (statement_id,))
    listed = portal.get(f"{API}/statements", params={"patient": chart}).json()
    assert number in [s["statementNumber"] for s in listed["items"]]
    statement = portal.get(f"{API}/statements/{number}").json()
    assert statement["status"] == "collections"
    assert statement["chartNumber"] == chart
    assert any(
        ln["chargeId"] == charges[0] and ln["balance"] == "43.21" for ln in statement["lines"]
    )
    assert set(statement["aging"]) >= {"current", "over90"}
    queue = portal.get(f"{API}/workqueues/collections", params={"pageSize": 100}).json()
    entry = next(e for e in queue["items"] if e["chartNumber"] == chart)
    assert set(entry["reasons"]) == {"statement_in_collections", "balance_over_90_days"}
    assert float(entry["balanceOver90"]) >= 43.21
    assert entry["oldestServiceDate"] <= old
    assert entry["statement"]["statementNumber"] == number
    in_collections = portal.get(f"{API}/statements", params={"status": "collections"}).json()
    assert all(s["status"] == "collections" for s in in_collections["items"])
    _error(portal.get(f"{API}/statements", params={"status": "lost"}), 422, "validation_failed")
    _error(portal.get(f"{API}/statements/NOPE"), 404, "not_found")


def test_rcm_reads_need_a_session(live: LiveTenant) -> None:
    with live.client() as anonymous:
        for path in ("/charges", "/claims", "/payments", "/statements", "/workqueues/denials"):
            _error(anonymous.get(f"{API}{path}"), 401, "session_expired")
