"""CareCloud RCM in the portal: charges, claims, ERAs, payments, statements and work queues.

Reads (a verified session; scoped to the user's practice):

- ``GET /portal/api/charges?patient=&billed=&updatedSince=`` ledger charges
- ``GET /portal/api/claims?status=&patient=&updatedSince=`` and ``/claims/{claimNumber}`` (lines,
  diagnoses, status history with 277 category codes, remittances with CAS adjustments)
- ``GET /portal/api/payments?kind=&updatedSince=`` and ``/eras/{id}`` (an 835 with its claims)
- ``GET /portal/api/statements?patient=&status=&updatedSince=`` and ``/statements/{number}``
- ``GET /portal/api/workqueues/denials`` (claims ``denied``, with the denial's CARC/RARC) and
  ``/workqueues/collections`` (statements in ``collections`` or patient balances over 90 days)

Writes (CSRF; logged with ``source="portal"``):

- ``POST /portal/api/claims {chartNumber, chargeIds, attachments: [{documentId, type}],
  referringProvider?: {npi}}``: the claim is built, scrubbed and submitted (``draft → scrubbed
  → submitted``) by :mod:`carecloud_sandbox.billing`; when the scrubber objects nothing is
  written (the claim stays a draft on the client) and the 422 lists every error with the field
  it is about
- ``POST /portal/api/claims/{claimNumber}/appeal {reason[, attachments]}`` for a denied (or
  partially paid) claim; other states get 409 ``invalid_transition``
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from carecloud_sandbox import billing, codes
from carecloud_sandbox.npi import is_valid_npi
from carecloud_sandbox.portal.charts import provider_json
from carecloud_sandbox.portal.common import (
    MAX_TEXT,
    Endpoint,
    PortalError,
    fetch_page,
    flag,
    invalid,
    json_response,
    money,
    not_found,
    page_body,
    paging,
    path_int,
    read_body,
    text_field,
    to_int,
    updated_since,
)
from carecloud_sandbox.portal.session import PortalSession, log_write, portal
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2.common import dumps, loads

# X12 PWK01 attachment report type codes a professional claim commonly carries.
ATTACHMENT_TYPES: dict[str, str] = {
    "03": "Report justifying treatment beyond utilization guidelines",
    "04": "Drugs administered",
    "05": "Treatment diagnosis",
    "06": "Initial assessment",
    "08": "Plan of treatment",
    "09": "Progress report",
    "B4": "Referral form",
    "CT": "Certification",
    "DG": "Diagnostic report",
    "EB": "Explanation of benefits (coordination of benefits)",
    "LA": "Laboratory results",
    "M1": "Medical record attachment",
    "OB": "Operative note",
    "OZ": "Support data for claim",
    "PN": "Physical therapy notes",
    "RR": "Radiology reports",
}
MAX_CHARGES = 50
MAX_ATTACHMENTS = 10

PORTAL_TABLES = """
CREATE TABLE IF NOT EXISTS portal_claim_referrals (   -- 837P loop 2310A of portal claims
    claim_id     INTEGER PRIMARY KEY,
    npi          TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT ''
);
"""


def ensure_tables(tenant: Tenant) -> None:
    """Create the portal's own tables (idempotent)."""
    with tenant.db.lock:
        tenant.db.conn.executescript(PORTAL_TABLES)


# --- rendering --------------------------------------------------------------------------------


def _claims_select() -> str:
    return (
        "SELECT c.*, p.chart_number, p.account_number, py.name AS payer_name "
        "FROM claims c JOIN patients p ON p.id = c.patient_id "
        "LEFT JOIN payers py ON py.id = c.payer_id"
    )


def claim_item(tenant: Tenant, row: sqlite3.Row) -> dict[str, Any]:
    """A claim in a list."""
    return {
        "claimNumber": row["claim_number"],
        "status": row["status"],
        "patient": {"chartNumber": row["chart_number"], "rcmAccountNumber": row["account_number"]},
        "payer": {"id": row["payer_id"], "name": row["payer_name"]},
        "insurancePolicyId": row["insurance_policy_id"],  # 837P 2000B: the subscriber's policy
        "renderingProvider": provider_json(tenant, row["provider_id"]),
        "encounterId": row["encounter_id"],
        "locationId": row["location_id"],
        "serviceFrom": row["service_from"],
        "serviceTo": row["service_to"],
        "billedAmount": money(row["billed_cents"]),
        "paidAmount": money(row["paid_cents"]),
        "patientResponsibility": money(row["patient_resp_cents"]),
        "payerControlNumber": row["payer_control_number"],
        "submittedAt": row["submitted_at"],
        "adjudicatedAt": row["adjudicated_at"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _adjustments(tenant: Tenant, remittance_line_id: int) -> list[dict[str, Any]]:
    return [
        {
            "groupCode": a["group_code"],
            "carc": a["carc"],
            "carcDescription": codes.CARC.get(a["carc"]),
            "rarc": a["rarc"],
            "amount": money(a["amount_cents"]),
        }
        for a in tenant.db.all(
            "SELECT * FROM adjustments WHERE remittance_line_id = ? ORDER BY id",
            (remittance_line_id,),
        )
    ]


def remittance_json(tenant: Tenant, row: sqlite3.Row, control_number: str | None) -> dict[str, Any]:
    """One claim on an ERA (835 CLP) with its service lines (SVC) and adjustments (CAS);
    ``control_number`` is the payer's claim control number (CLP07)."""
    lines = tenant.db.all(
        "SELECT rl.*, cl.line_number, cl.procedure_code FROM remittance_lines rl "
        "LEFT JOIN claim_lines cl ON cl.id = rl.claim_line_id WHERE rl.remittance_id = ? "
        "ORDER BY cl.line_number, rl.id",
        (row["id"],),
    )
    return {
        "eraId": row["payment_id"],
        "claimStatusCode": row["claim_status_code"],
        "payerClaimControlNumber": control_number,
        "billedAmount": money(row["billed_cents"]),
        "paidAmount": money(row["paid_cents"]),
        "patientResponsibility": money(row["patient_resp_cents"]),
        "receivedAt": row["received_at"],
        "lines": [
            {
                "lineNumber": ln["line_number"],
                "procedureCode": ln["procedure_code"],
                "billedAmount": money(ln["billed_cents"]),
                "allowedAmount": money(ln["allowed_cents"]),
                "paidAmount": money(ln["paid_cents"]),
                "adjustments": _adjustments(tenant, int(ln["id"])),
            }
            for ln in lines
        ],
    }


def claim_detail(tenant: Tenant, row: sqlite3.Row) -> dict[str, Any]:
    """A claim with lines, diagnoses, attachments, history and remittances."""
    body = claim_item(tenant, row)
    body["diagnoses"] = [
        {"pointer": i, "code": code, "description": codes.ICD10_DESCRIPTIONS.get(code, "")}
        for i, code in enumerate(loads(row["diagnoses_json"]) or [], start=1)
    ]
    body["lines"] = [
        {
            "lineNumber": ln["line_number"],
            "chargeId": ln["charge_id"],
            "procedureCode": ln["procedure_code"],
            "modifiers": loads(ln["modifiers_json"]) or [],
            "units": ln["units"],
            "serviceDate": ln["service_date"],
            "billedAmount": money(ln["billed_cents"]),
            "diagnosisPointers": loads(ln["diagnosis_pointers_json"]) or [],
        }
        for ln in tenant.db.all(
            "SELECT * FROM claim_lines WHERE claim_id = ? ORDER BY line_number", (row["id"],)
        )
    ]
    body["attachments"] = loads(row["attachments_json"]) or []
    body["scrubErrors"] = loads(row["scrub_errors_json"]) or []
    referral = tenant.db.one(
        "SELECT * FROM portal_claim_referrals WHERE claim_id = ?", (row["id"],)
    )
    body["referringProvider"] = (
        None if referral is None else {"npi": referral["npi"], "name": referral["name"] or None}
    )
    body["statusHistory"] = [
        {
            "status": h["status"],
            "categoryCode": h["category_code"],
            "note": h["note"],
            "at": h["at"],
        }
        for h in tenant.db.all(
            "SELECT * FROM claim_status_history WHERE claim_id = ? ORDER BY at, id", (row["id"],)
        )
    ]
    body["remittances"] = [
        remittance_json(tenant, r, row["payer_control_number"])
        for r in tenant.db.all(
            "SELECT * FROM remittances WHERE claim_id = ? ORDER BY received_at, id", (row["id"],)
        )
    ]
    return body


def charge_json(row: sqlite3.Row) -> dict[str, Any]:
    """A ledger charge."""
    return {
        "id": row["id"],
        "chartNumber": row["chart_number"],
        "serviceDate": row["service_date"],
        "postingDate": row["posting_date"],
        "procedureCode": row["procedure_code"],
        "modifiers": loads(row["modifiers_json"]) or [],
        "units": row["units"],
        "description": row["description"],
        "diagnosisCodes": loads(row["diagnosis_codes_json"]) or [],
        "amount": money(row["amount_cents"]),
        "balance": money(row["balance_cents"]),
        "balanceType": row["balance_type"],
        "status": row["transaction_status"],
        "billed": bool(row["billed"]),
        "encounterId": row["encounter_id"],
        "providerId": row["provider_id"],
        "locationId": row["location_id"],
        "updatedAt": row["updated_at"],
    }


def payment_json(row: sqlite3.Row) -> dict[str, Any]:
    """A payment: a payer's ERA or a patient's payment."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "payer": None
        if row["payer_id"] is None
        else {"id": row["payer_id"], "name": row["payer_name"]},
        "patient": None if row["chart_number"] is None else {"chartNumber": row["chart_number"]},
        "traceNumber": row["trace_number"],
        "method": row["method"],
        "paymentDate": row["payment_date"],
        "amount": money(row["amount_cents"]),
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _cents(line: dict[str, Any], name: str) -> str | None:
    value = line.get(f"{name}Cents", line.get(name))
    return money(value) if isinstance(value, int) else value


def statement_json(row: sqlite3.Row) -> dict[str, Any]:
    """A patient statement with aging and lines."""
    aging = loads(row["aging_json"]) or {}
    return {
        "statementNumber": row["statement_number"],
        "chartNumber": row["chart_number"],
        "rcmAccountNumber": row["account_number"],
        "statementDate": row["statement_date"],
        "dueDate": row["due_date"],
        "balance": money(row["balance_cents"]),
        "status": row["status"],
        "aging": {k: money(v) if isinstance(v, int) else v for k, v in aging.items()},
        "lines": [
            {
                "chargeId": ln.get("chargeId"),
                "serviceDate": ln.get("serviceDate"),
                "code": ln.get("code"),
                "amount": _cents(ln, "amount"),
                "balance": _cents(ln, "balance"),
            }
            for ln in loads(row["lines_json"]) or []
            if isinstance(ln, dict)
        ],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


# --- reads ------------------------------------------------------------------------------------


def _patient_filter(
    tenant: Tenant, session: PortalSession, request: Request, column: str
) -> tuple[list[str], list[Any]]:
    chart = request.query_params.get("patient")
    if not chart:
        return [], []
    patient = tenant.db.one(
        "SELECT id FROM patients WHERE practice_id = ? AND chart_number = ?",
        (session.practice_id, chart),
    )
    if patient is None:
        raise invalid("patient", "No such patient in this practice.")
    return [f"{column} = ?"], [patient["id"]]


def _since(request: Request, column: str) -> tuple[list[str], list[Any]]:
    since = updated_since(request)
    return ([f"{column} > ?"], [since]) if since is not None else ([], [])


async def list_charges(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/charges?patient=&billed=&updatedSince=``."""
    paged = paging(request)
    where = ["t.practice_id = ?", "t.transaction_type = 'charge'"]
    params: list[Any] = [session.practice_id]
    for clauses, values in (
        _patient_filter(tenant, session, request, "t.patient_id"),
        _since(request, "t.updated_at"),
    ):
        where += clauses
        params += values
    billed = flag(request, "billed")
    if billed is not None:
        where.append("t.billed = ?")
        params.append(int(billed))
    rows, total = fetch_page(
        tenant.db.all,
        tenant.db.scalar,
        select="SELECT t.*, p.chart_number FROM transactions t JOIN patients p ON p.id = t.patient_id",
        where=where,
        params=params,
        order="t.service_date DESC, t.id DESC",
        paged=paged,
    )
    return json_response(page_body([charge_json(r) for r in rows], total, paged))


async def list_claims(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/claims?status=&patient=&updatedSince=`` (``status`` may list several,
    comma-separated)."""
    paged = paging(request)
    where = ["c.practice_id = ?"]
    params: list[Any] = [session.practice_id]
    status = request.query_params.get("status")
    if status:
        wanted = [s.strip() for s in status.split(",") if s.strip()]
        if not wanted or any(s not in billing.CLAIM_STATUSES for s in wanted):
            raise invalid("status", f"Must be among: {', '.join(billing.CLAIM_STATUSES)}.")
        where.append(f"c.status IN ({', '.join('?' for _ in wanted)})")
        params += wanted
    for clauses, values in (
        _patient_filter(tenant, session, request, "c.patient_id"),
        _since(request, "c.updated_at"),
    ):
        where += clauses
        params += values
    rows, total = fetch_page(
        tenant.db.all,
        tenant.db.scalar,
        select=_claims_select(),
        where=where,
        params=params,
        order="c.updated_at DESC, c.id DESC",
        paged=paged,
    )
    return json_response(page_body([claim_item(tenant, r) for r in rows], total, paged))


def _claim_row(tenant: Tenant, session: PortalSession, number: str) -> sqlite3.Row:
    row = tenant.db.one(
        f"{_claims_select()} WHERE c.claim_number = ? AND c.practice_id = ?",
        (number, session.practice_id),
    )
    if row is None:
        raise not_found("claim")
    return row


async def show_claim(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/claims/{claimNumber}``."""
    row = _claim_row(tenant, session, request.path_params["claim_number"])
    return json_response(claim_detail(tenant, row))


def _payments_select() -> str:
    return (
        "SELECT pm.*, py.name AS payer_name, p.chart_number FROM payments pm "
        "LEFT JOIN payers py ON py.id = pm.payer_id LEFT JOIN patients p ON p.id = pm.patient_id"
    )


async def list_payments(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/payments?kind=era|patient&updatedSince=``."""
    paged = paging(request)
    where = ["pm.practice_id = ?"]
    params: list[Any] = [session.practice_id]
    kind = request.query_params.get("kind")
    if kind:
        if kind not in ("era", "patient"):
            raise invalid("kind", "Must be era or patient.")
        where.append("pm.kind = ?")
        params.append(kind)
    clauses, values = _since(request, "pm.updated_at")
    rows, total = fetch_page(
        tenant.db.all,
        tenant.db.scalar,
        select=_payments_select(),
        where=where + clauses,
        params=params + values,
        order="pm.payment_date DESC, pm.id DESC",
        paged=paged,
    )
    return json_response(page_body([payment_json(r) for r in rows], total, paged))


async def show_era(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/eras/{id}``: a payer's ERA (835) with every claim it pays."""
    era_id = path_int(request, "era_id", "ERA")
    row = tenant.db.one(
        f"{_payments_select()} WHERE pm.id = ? AND pm.practice_id = ? AND pm.kind = 'era'",
        (era_id, session.practice_id),
    )
    if row is None:
        raise not_found("ERA")
    body = payment_json(row)
    claims = []
    for r in tenant.db.all(
        "SELECT r.*, c.claim_number, c.payer_control_number, p.chart_number FROM remittances r "
        "JOIN claims c ON c.id = r.claim_id JOIN patients p ON p.id = c.patient_id "
        "WHERE r.payment_id = ? ORDER BY r.id",
        (era_id,),
    ):
        entry = remittance_json(tenant, r, r["payer_control_number"])
        entry["claimNumber"] = r["claim_number"]
        entry["chartNumber"] = r["chart_number"]
        claims.append(entry)
    body["claims"] = claims
    return json_response(body)


def _statements_select() -> str:
    return (
        "SELECT s.*, p.chart_number, p.account_number FROM statements s "
        "JOIN patients p ON p.id = s.patient_id"
    )


async def list_statements(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/statements?patient=&status=sent|paid|collections&updatedSince=``."""
    paged = paging(request)
    where = ["s.practice_id = ?"]
    params: list[Any] = [session.practice_id]
    status = request.query_params.get("status")
    if status:
        if status not in ("sent", "paid", "collections"):
            raise invalid("status", "Must be sent, paid or collections.")
        where.append("s.status = ?")
        params.append(status)
    for clauses, values in (
        _patient_filter(tenant, session, request, "s.patient_id"),
        _since(request, "s.updated_at"),
    ):
        where += clauses
        params += values
    rows, total = fetch_page(
        tenant.db.all,
        tenant.db.scalar,
        select=_statements_select(),
        where=where,
        params=params,
        order="s.statement_date DESC, s.id DESC",
        paged=paged,
    )
    return json_response(page_body([statement_json(r) for r in rows], total, paged))


async def show_statement(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/statements/{statementNumber}``."""
    row = tenant.db.one(
        f"{_statements_select()} WHERE s.statement_number = ? AND s.practice_id = ?",
        (request.path_params["number"], session.practice_id),
    )
    if row is None:
        raise not_found("statement")
    return json_response(statement_json(row))


async def denials_queue(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/workqueues/denials``: denied claims, oldest first, with the reason."""
    paged = paging(request)
    rows, total = fetch_page(
        tenant.db.all,
        tenant.db.scalar,
        select=_claims_select(),
        where=["c.practice_id = ?", "c.status = 'denied'"],
        params=[session.practice_id],
        order="c.updated_at, c.id",
        paged=paged,
    )
    today = tenant.today(session.practice_id)
    items = []
    for row in rows:
        item = claim_item(tenant, row)
        reason = tenant.db.one(
            "SELECT a.group_code, a.carc, a.rarc FROM adjustments a "
            "JOIN remittance_lines rl ON rl.id = a.remittance_line_id "
            "JOIN remittances r ON r.id = rl.remittance_id "
            "WHERE r.claim_id = ? AND a.group_code != 'PR' ORDER BY r.received_at DESC, a.id LIMIT 1",
            (row["id"],),
        )
        item["denial"] = (
            None
            if reason is None
            else {
                "groupCode": reason["group_code"],
                "carc": reason["carc"],
                "carcDescription": codes.CARC.get(reason["carc"]),
                "rarc": reason["rarc"],
            }
        )
        denied_on = (row["adjudicated_at"] or row["updated_at"])[:10]
        item["daysSinceDenial"] = (today - date.fromisoformat(denied_on)).days
        item["appealable"] = "appealed" in billing.TRANSITIONS["denied"]
        items.append(item)
    return json_response(page_body(items, total, paged))


async def collections_queue(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/workqueues/collections``: patients with a statement in collections or
    a patient balance more than 90 days past the date of service, largest aged balance first."""
    paged = paging(request)
    cutoff = (tenant.today(session.practice_id) - timedelta(days=90)).isoformat()
    select = (
        "SELECT p.chart_number, p.account_number, p.id AS patient_id, "
        "COALESCE(aged.over90, 0) AS over90, aged.oldest, "
        "COALESCE(owed.total, 0) AS owed, coll.statement_number "
        "FROM patients p "
        "LEFT JOIN (SELECT patient_id, SUM(balance_cents) AS over90, MIN(service_date) AS oldest "
        "  FROM transactions WHERE practice_id = ? AND transaction_type = 'charge' "
        "  AND balance_type = 'patient' AND balance_cents > 0 AND service_date < ? "
        "  GROUP BY patient_id) aged ON aged.patient_id = p.id "
        "LEFT JOIN (SELECT patient_id, SUM(balance_cents) AS total FROM transactions "
        "  WHERE practice_id = ? AND transaction_type = 'charge' AND balance_type = 'patient' "
        "  AND balance_cents > 0 GROUP BY patient_id) owed ON owed.patient_id = p.id "
        "LEFT JOIN (SELECT patient_id, MAX(statement_number) AS statement_number FROM statements "
        "  WHERE practice_id = ? AND status = 'collections' GROUP BY patient_id) coll "
        "  ON coll.patient_id = p.id"
    )
    rows, total = fetch_page(
        tenant.db.all,
        tenant.db.scalar,
        select=select,
        where=[
            "p.practice_id = ?",
            "(aged.patient_id IS NOT NULL OR coll.patient_id IS NOT NULL)",
        ],
        params=[
            session.practice_id,
            cutoff,
            session.practice_id,
            session.practice_id,
            session.practice_id,
        ],
        order="over90 DESC, chart_number",
        paged=paged,
    )
    items = []
    for row in rows:
        statement = None
        if row["statement_number"] is not None:
            s = tenant.db.one(
                f"{_statements_select()} WHERE s.statement_number = ?", (row["statement_number"],)
            )
            statement = None if s is None else statement_json(s)
        reasons = []
        if statement is not None:
            reasons.append("statement_in_collections")
        if row["over90"]:
            reasons.append("balance_over_90_days")
        items.append(
            {
                "chartNumber": row["chart_number"],
                "rcmAccountNumber": row["account_number"],
                "patientBalance": money(row["owed"]),
                "balanceOver90": money(row["over90"]),
                "oldestServiceDate": row["oldest"],
                "reasons": reasons,
                "statement": statement,
            }
        )
    return json_response(page_body(items, total, paged))


# --- writes ------------------------------------------------------------------------------------


def _charge_ids(body: dict[str, Any]) -> list[int]:
    value = body.get("chargeIds")
    if value is None:
        raise invalid("chargeIds", "This field is required.")
    if not isinstance(value, list) or not value:
        raise invalid("chargeIds", "Must be a non-empty list of charge ids.")
    if len(value) > MAX_CHARGES:
        raise invalid("chargeIds", f"At most {MAX_CHARGES} charges a claim.")
    ids: list[int] = []
    for i, item in enumerate(value):
        number = to_int(item) if isinstance(item, int) else None
        if number is None:
            raise invalid(f"chargeIds[{i}]", "Must be a charge id.")
        if number in ids:
            raise invalid(f"chargeIds[{i}]", "The charge is listed twice.")
        ids.append(number)
    return ids


def _attachments(body: dict[str, Any], name: str = "attachments") -> list[dict[str, Any]]:
    value = body.get(name, [])
    if not isinstance(value, list):
        raise invalid(name, "Must be a list.")
    if len(value) > MAX_ATTACHMENTS:
        raise invalid(name, f"At most {MAX_ATTACHMENTS} attachments.")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid(f"{name}[{i}]", "Must be an object {documentId, type}.")
        document = item.get("documentId")
        number = to_int(document) if isinstance(document, int) else None
        if number is None:
            raise invalid(f"{name}[{i}].documentId", "Must be a document id.")
        kind = item.get("type")
        if not isinstance(kind, str) or kind not in ATTACHMENT_TYPES:
            raise invalid(
                f"{name}[{i}].type", "Must be an X12 PWK report type code (e.g. 09, LA, M1)."
            )
        out.append({"documentId": number, "type": kind})
    return out


def _referral(body: dict[str, Any]) -> tuple[dict[str, str] | None, list[dict[str, str]]]:
    """The referring provider, and the scrubber's objections to it."""
    value = body.get("referringProvider")
    if value is None:
        return None, []
    if not isinstance(value, dict):
        raise invalid("referringProvider", "Must be an object {npi[, name]}.")
    npi = value.get("npi")
    name = value.get("name") if isinstance(value.get("name"), str) else ""
    if not isinstance(npi, str) or not npi.strip():
        return None, [
            {
                "field": "referringProvider.npi",
                "message": "The referring provider's NPI is missing.",
            }
        ]
    if not is_valid_npi(npi.strip()):
        return None, [
            {
                "field": "referringProvider.npi",
                "message": "The referring provider's NPI is not a valid NPI.",
            }
        ]
    return {"npi": npi.strip(), "name": (name or "")[:120]}, []


def _claim_error(err: billing.ClaimError) -> PortalError:
    extra: dict[str, Any] = {}
    if err.errors:
        extra["errors"] = err.errors
    if err.code == "validation_failed":
        extra["claimStatus"] = "draft"
    return PortalError(err.status, err.code, err.message, field=err.field, extra=extra)


async def create_claim(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``POST /portal/api/claims``: build, scrub and submit a claim from charges."""
    body = await read_body(request, tenant.config.max_body_bytes)
    name = "chartNumber" if "chartNumber" in body else "patient"
    chart = text_field(body, name, required=True, max_len=40, field=name) or ""
    patient = tenant.db.one(
        "SELECT * FROM patients WHERE practice_id = ? AND chart_number = ?",
        (session.practice_id, chart),
    )
    if patient is None:
        raise invalid(name, "No such patient in this practice.")
    charge_ids = _charge_ids(body)
    attachments = _attachments(body)
    referral, errors = _referral(body)
    practice_code = str(
        tenant.db.scalar("SELECT fhir_code FROM practices WHERE id = ?", (session.practice_id,))
    )
    now = tenant.now_db()
    today = tenant.today(session.practice_id)
    outcome: PortalError | int
    try:
        with tenant.db.transaction() as conn:
            _, _, scrubbed = billing.scrub(
                conn,
                practice_id=session.practice_id,
                patient_id=patient["id"],
                charge_ids=charge_ids,
                attachments=attachments,
                today=today,
            )
            errors = scrubbed + errors
            if errors:
                outcome = PortalError(
                    422,
                    "validation_failed",
                    errors[0]["message"],
                    field=errors[0]["field"],
                    extra={"errors": errors, "claimStatus": "draft"},
                )
            else:
                outcome = billing.create_claim(
                    conn,
                    practice_id=session.practice_id,
                    practice_code=practice_code,
                    patient_id=patient["id"],
                    charge_ids=charge_ids,
                    attachments=attachments,
                    today=today,
                    at=now,
                )
                _log_claim(tenant, conn, session, outcome, "create", now)
                for charge_id in charge_ids:
                    log_write(tenant, conn, session, "charge", charge_id, "billed", now)
                if referral is not None:
                    conn.execute(
                        "INSERT OR REPLACE INTO portal_claim_referrals(claim_id, npi, name) "
                        "VALUES (?, ?, ?)",
                        (outcome, referral["npi"], referral["name"]),
                    )
    except billing.ClaimError as err:
        raise _claim_error(err) from None
    if isinstance(outcome, PortalError):
        raise outcome
    row = tenant.db.one(f"{_claims_select()} WHERE c.id = ?", (outcome,))
    assert row is not None  # noqa: S101 - written just above
    return json_response(claim_detail(tenant, row), status=201)


async def appeal_claim(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``POST /portal/api/claims/{claimNumber}/appeal {reason[, attachments]}``."""
    row = _claim_row(tenant, session, request.path_params["claim_number"])
    body = await read_body(request, tenant.config.max_body_bytes)
    reason = text_field(body, "reason", required=True, max_len=MAX_TEXT) or ""
    attachments = _attachments(body)
    for i, attachment in enumerate(attachments):
        if not tenant.db.scalar(
            "SELECT 1 FROM documents WHERE id = ? AND patient_id = ?",
            (attachment["documentId"], row["patient_id"]),
        ):
            raise invalid(f"attachments[{i}].documentId", "No such document for this patient.")
    now = tenant.now_db()
    try:
        with tenant.db.transaction() as conn:
            billing.record_status(conn, int(row["id"]), "appealed", now, f"Appeal: {reason[:200]}")
            if attachments:
                merged = (loads(row["attachments_json"]) or []) + attachments
                conn.execute(
                    "UPDATE claims SET attachments_json = ? WHERE id = ?",
                    (dumps(merged), row["id"]),
                )
            conn.execute("UPDATE claims SET updated_at = ? WHERE id = ?", (now, row["id"]))
            _log_claim(tenant, conn, session, int(row["id"]), "appeal", now)
    except billing.ClaimError as err:
        raise _claim_error(err) from None
    return json_response(claim_detail(tenant, _claim_row(tenant, session, row["claim_number"])))


def _log_claim(
    tenant: Tenant,
    conn: sqlite3.Connection,
    session: PortalSession,
    claim_id: int,
    action: str,
    at: str,
) -> None:
    log_write(tenant, conn, session, "claim", claim_id, action, at)


# --- routes -----------------------------------------------------------------------------------


def routes(tenant: Tenant, api: str) -> list[tuple[str, dict[str, Endpoint]]]:
    """The RCM paths and their methods."""

    def read(handler: Any) -> Endpoint:
        return portal(tenant, handler)

    def write(handler: Any) -> Endpoint:
        return portal(tenant, handler, write=True)

    return [
        (f"{api}/charges", {"GET": read(list_charges)}),
        (f"{api}/claims", {"GET": read(list_claims), "POST": write(create_claim)}),
        (f"{api}/claims/{{claim_number}}", {"GET": read(show_claim)}),
        (f"{api}/claims/{{claim_number}}/appeal", {"POST": write(appeal_claim)}),
        (f"{api}/payments", {"GET": read(list_payments)}),
        (f"{api}/eras/{{era_id}}", {"GET": read(show_era)}),
        (f"{api}/statements", {"GET": read(list_statements)}),
        (f"{api}/statements/{{number}}", {"GET": read(show_statement)}),
        (f"{api}/workqueues/denials", {"GET": read(denials_queue)}),
        (f"{api}/workqueues/collections", {"GET": read(collections_queue)}),
    ]
