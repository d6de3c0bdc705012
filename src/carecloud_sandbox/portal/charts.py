"""CareCloud Charts in the portal: patients by chart number, their chart lists and encounters.

Reads (a verified session; scoped to the user's practice):

- ``GET /portal/api/patients?search=&updatedSince=&page=&pageSize=``
- ``GET /portal/api/patients/{chartNumber}`` (summary, with ``rcmAccountNumber``)
- ``GET /portal/api/patients/{chartNumber}/{encounters|problems|medications|allergies|labs|
  immunizations|vitals}?updatedSince=&page=&pageSize=`` (newest first)
- ``GET /portal/api/encounters/{id}`` (notes, diagnoses, procedures, vitals, addenda, signature)

Writes (CSRF; each logs to the change log with ``source="portal"`` in its transaction):

- ``POST /portal/api/encounters`` push an encounter (``open``)
- ``PATCH /portal/api/encounters/{id}`` edit an open encounter (423 ``encounter_locked`` once
  signed)
- ``POST /portal/api/encounters/{id}/sign`` sign it; its procedures become ledger charges
- ``POST /portal/api/encounters/{id}/addenda`` an addendum to a signed encounter
- ``POST /portal/api/patients/{chartNumber}/{problems|medications|allergies}``

Pushed encounters take ids from 800,000,001 up, clear of the appointment internal ids that
visit encounters use.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from carecloud_sandbox import codes
from carecloud_sandbox.portal.common import (
    ICD10_RE,
    MAX_TEXT,
    PROCEDURE_RE,
    Endpoint,
    PortalError,
    choice_field,
    date_field,
    fetch_page,
    int_field,
    invalid,
    json_response,
    money,
    not_found,
    page_body,
    paging,
    parse_instant,
    path_int,
    read_body,
    text_field,
    updated_since,
)
from carecloud_sandbox.portal.session import PortalSession, log_write, portal
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2.common import dumps, from_db_instant, loads, to_db_instant

PUSHED_ENCOUNTER_BASE = 800_000_000
ENCOUNTER_TYPES = ("office_visit", "nurse_visit", "telephone")
NOTE_SECTIONS = ("subjective", "objective", "assessment", "plan")
MODIFIER_RE = re.compile(r"^[0-9A-Z]{2}$")
RXNORM_RE = re.compile(r"^[0-9]{1,8}$")  # RxCUIs are at most 8 digits
SNOMED_RE = re.compile(r"^[0-9]{6,18}$")
SEX = {"M": "male", "F": "female", "O": "other", "U": "unknown"}


# --- lookups ----------------------------------------------------------------------------------


def patient_by_chart(tenant: Tenant, session: PortalSession, chart: str) -> sqlite3.Row:
    """The practice's patient with this chart number, or the envelope 404."""
    row = tenant.db.one(
        "SELECT * FROM patients WHERE practice_id = ? AND chart_number = ?",
        (session.practice_id, chart),
    )
    if row is None:
        raise not_found("patient")
    return row


def provider_json(tenant: Tenant, provider_id: int | None) -> dict[str, Any] | None:
    """A provider reference: id, display name and NPI."""
    if provider_id is None:
        return None
    row = tenant.db.one("SELECT * FROM providers WHERE id = ?", (provider_id,))
    if row is None:
        return {"id": provider_id, "name": None, "npi": None}
    return {
        "id": row["id"],
        "name": f"{row['first_name']} {row['last_name']}, {row['credentials']}",
        "npi": row["npi"],
    }


def _provider_id(
    tenant: Tenant, session: PortalSession, body: dict[str, Any], name: str
) -> int | None:
    provider_id = int_field(body, name)
    if provider_id is None:
        return None
    found = tenant.db.scalar(
        "SELECT 1 FROM providers WHERE id = ? AND practice_id = ? AND status = 'A'",
        (provider_id, session.practice_id),
    )
    if not found:
        raise invalid(name, "No such active provider in this practice.")
    return provider_id


def _encounter_row(tenant: Tenant, session: PortalSession, encounter_id: int) -> sqlite3.Row:
    row = tenant.db.one(
        "SELECT e.*, p.chart_number FROM encounters e JOIN patients p ON p.id = e.patient_id "
        "WHERE e.id = ? AND e.practice_id = ?",
        (encounter_id, session.practice_id),
    )
    if row is None:
        raise not_found("encounter")
    return row


# --- rendering --------------------------------------------------------------------------------


def patient_item(row: sqlite3.Row) -> dict[str, Any]:
    """A patient in a list."""
    return {
        "chartNumber": row["chart_number"],
        "rcmAccountNumber": row["account_number"],
        "firstName": row["first_name"],
        "lastName": row["last_name"],
        "middleInitial": row["middle_initial"] or None,
        "dateOfBirth": row["dob"],
        "sex": SEX.get(row["gender_code"] or "U", "unknown"),
        "status": "active" if row["status"] == "A" else "inactive",
        "updatedAt": row["updated_at"],
    }


def vitals_json(row: sqlite3.Row) -> dict[str, Any]:
    """One set of vital signs."""
    return {
        "id": row["id"],
        "encounterId": row["encounter_id"],
        "takenAt": row["taken_at"],
        "heightCm": row["height_cm"],
        "weightKg": row["weight_kg"],
        "bmi": row["bmi"],
        "systolicMmHg": row["systolic_mmhg"],
        "diastolicMmHg": row["diastolic_mmhg"],
        "heartRateBpm": row["heart_rate_bpm"],
        "respiratoryRate": row["respiratory_rate"],
        "temperatureC": row["temperature_c"],
        "spo2Pct": row["spo2_pct"],
        "updatedAt": row["updated_at"],
    }


def encounter_item(tenant: Tenant, row: sqlite3.Row) -> dict[str, Any]:
    """An encounter in a list."""
    return {
        "id": row["id"],
        "chartNumber": row["chart_number"],
        "appointmentId": row["appointment_id"],
        "type": row["encounter_type"],
        "date": row["encounter_date"],
        "startTime": row["start_time"],
        "endTime": row["end_time"],
        "status": row["status"],
        "chiefComplaint": row["chief_complaint"],
        "provider": provider_json(tenant, row["provider_id"]),
        "locationId": row["location_id"],
        "signedAt": row["signed_at"],
        "signedBy": provider_json(tenant, row["signed_by"]),
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def encounter_detail(tenant: Tenant, row: sqlite3.Row) -> dict[str, Any]:
    """An encounter with its note, codes, vitals, addenda and charges."""
    body = encounter_item(tenant, row)
    diagnoses = loads(row["diagnoses_json"]) or []
    body["notes"] = loads(row["note_json"]) or {}
    body["diagnoses"] = [
        {"rank": i, "code": d.get("code"), "description": d.get("description", "")}
        for i, d in enumerate(diagnoses, start=1)
    ]
    body["procedures"] = [
        {
            "code": p.get("code"),
            "units": p.get("units", 1),
            "modifiers": p.get("modifiers", []),
            "description": p.get("description", ""),
        }
        for p in loads(row["procedures_json"]) or []
    ]
    body["vitals"] = [
        vitals_json(v)
        for v in tenant.db.all(
            "SELECT * FROM vitals WHERE encounter_id = ? ORDER BY taken_at, id", (row["id"],)
        )
    ]
    body["addenda"] = [
        {
            "id": a["id"],
            "author": provider_json(tenant, a["author_id"]),
            "text": a["text"],
            "createdAt": a["created_at"],
        }
        for a in tenant.db.all(
            "SELECT * FROM encounter_addenda WHERE encounter_id = ? ORDER BY id", (row["id"],)
        )
    ]
    body["chargeIds"] = [
        int(r[0])
        for r in tenant.db.all(
            "SELECT id FROM transactions WHERE encounter_id = ? AND transaction_type = 'charge' "
            "AND practice_id = ? ORDER BY id",
            (row["id"], row["practice_id"]),
        )
    ]
    return body


def problem_json(row: sqlite3.Row) -> dict[str, Any]:
    """A problem-list entry (ICD-10-CM)."""
    return {
        "id": row["id"],
        "code": row["icd10_code"],
        "codeSystem": "ICD-10-CM",
        "description": row["description"],
        "status": row["status"],
        "onsetDate": row["onset_date"],
        "resolvedDate": row["resolved_date"],
        "encounterId": row["encounter_id"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def medication_json(row: sqlite3.Row) -> dict[str, Any]:
    """A medication (RxNorm)."""
    return {
        "id": row["id"],
        "rxnormCode": row["rxnorm_code"],
        "name": row["name"],
        "sig": row["sig"],
        "status": row["status"],
        "startDate": row["start_date"],
        "endDate": row["end_date"],
        "prescriberId": row["prescriber_id"],
        "encounterId": row["encounter_id"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def allergy_json(row: sqlite3.Row) -> dict[str, Any]:
    """An allergy (RxNorm ingredient or SNOMED CT substance)."""
    return {
        "id": row["id"],
        "allergenCode": row["allergen_code"],
        "allergenSystem": row["allergen_system"],
        "allergenName": row["allergen_name"],
        "category": row["category"],
        "reaction": row["reaction"],
        "severity": row["severity"],
        "status": row["status"],
        "recordedDate": row["recorded_date"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def lab_json(row: sqlite3.Row) -> dict[str, Any]:
    """A lab result (LOINC)."""
    return {
        "id": row["id"],
        "encounterId": row["encounter_id"],
        "orderCode": row["order_code"],
        "loincCode": row["loinc_code"],
        "name": row["name"],
        "value": row["value_num"] if row["value_num"] is not None else row["value_text"],
        "unit": row["unit"],
        "referenceRange": {"low": row["reference_low"], "high": row["reference_high"]},
        "interpretation": row["interpretation"],
        "status": row["status"],
        "collectedAt": row["collected_at"],
        "resultedAt": row["resulted_at"],
        "updatedAt": row["updated_at"],
    }


def immunization_json(row: sqlite3.Row) -> dict[str, Any]:
    """An immunization (CVX, with the CPT product code)."""
    return {
        "id": row["id"],
        "encounterId": row["encounter_id"],
        "cvxCode": row["cvx_code"],
        "cptCode": row["cpt_code"],
        "name": row["name"],
        "lotNumber": row["lot_number"],
        "administeredOn": row["administered_on"],
        "site": row["site"],
        "route": row["route"],
        "status": row["status"],
        "updatedAt": row["updated_at"],
    }


# --- reads ------------------------------------------------------------------------------------


def _like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def list_patients(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/patients``: search by chart or account number, name or date of birth."""
    paged = paging(request)
    where = ["practice_id = ?"]
    params: list[Any] = [session.practice_id]
    since = updated_since(request)
    if since is not None:
        where.append("updated_at > ?")
        params.append(since)
    term = (request.query_params.get("search") or "").strip()
    if len(term) > 100:
        raise invalid("search", "Must be at most 100 characters.")
    if term:
        if "," in term:
            last, _, first = term.partition(",")
            where.append(
                "lower(last_name) LIKE lower(?) ESCAPE '\\' AND lower(first_name) LIKE lower(?) "
                "ESCAPE '\\'"
            )
            params += [_like(last.strip()), _like(first.strip())]
        else:
            where.append(
                "(upper(chart_number) = upper(?) OR account_number = ? OR dob = ? OR "
                "lower(last_name) LIKE lower(?) ESCAPE '\\' OR "
                "lower(first_name) LIKE lower(?) ESCAPE '\\')"
            )
            params += [term, term, term, _like(term), _like(term)]
    rows, total = fetch_page(
        tenant.db.all,
        tenant.db.scalar,
        select="SELECT * FROM patients",
        where=where,
        params=params,
        order="last_name, first_name, chart_number",
        paged=paged,
    )
    return json_response(page_body([patient_item(r) for r in rows], total, paged))


async def show_patient(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/patients/{chartNumber}``: the chart's summary."""
    row = patient_by_chart(tenant, session, request.path_params["chart"])
    body = patient_item(row)
    data = loads(row["data_json"]) or {}
    body.update(
        {
            "email": row["email"] or None,
            "phone": row["phone_digits"] or None,
            "lastSeenDate": row["last_seen_date"],
            "primaryProvider": provider_json(tenant, row["primary_provider_id"]),
            "primaryLocationId": row["primary_location_id"],
            "preferredLanguage": data.get("language_code") if isinstance(data, dict) else None,
            "createdAt": row["created_at"],
        }
    )
    body["insurance"] = [
        {
            "priority": p["policy_priority"],
            "payer": {"id": p["payer_id"], "name": p["payer_name"]},
            "memberNumber": p["member_number"],
            "groupNumber": p["group_number"] or None,
            "policyType": p["insurance_policy_type"],
            "effectiveFrom": p["effective_from"],
            "effectiveTo": p["effective_to"],
        }
        for p in tenant.db.all(
            "SELECT ip.*, py.name AS payer_name FROM insurance_policies ip "
            "LEFT JOIN payers py ON py.id = ip.payer_id WHERE ip.patient_id = ? "
            "ORDER BY ip.policy_priority, ip.id",
            (row["id"],),
        )
    ]
    owed = {
        r["balance_type"]: int(r["owed"] or 0)
        for r in tenant.db.all(
            "SELECT balance_type, SUM(balance_cents) AS owed FROM transactions "
            "WHERE patient_id = ? AND transaction_type = 'charge' GROUP BY balance_type",
            (row["id"],),
        )
    }
    body["balance"] = {
        "patient": money(owed.get("patient", 0)),
        "insurance": money(owed.get("insurance", 0)),
        "total": money(sum(owed.values())),
    }
    counts = tenant.db.one(
        "SELECT (SELECT COUNT(*) FROM problems WHERE patient_id = :p AND status = 'active') AS pr, "
        "(SELECT COUNT(*) FROM medications WHERE patient_id = :p AND status = 'active') AS me, "
        "(SELECT COUNT(*) FROM allergies WHERE patient_id = :p AND status = 'active') AS al, "
        "(SELECT COUNT(*) FROM encounters WHERE patient_id = :p AND status = 'open') AS en",
        {"p": row["id"]},
    )
    assert counts is not None  # noqa: S101 - a SELECT without FROM always yields a row
    body["counts"] = {
        "activeProblems": counts["pr"],
        "activeMedications": counts["me"],
        "activeAllergies": counts["al"],
        "openEncounters": counts["en"],
    }
    return json_response(body)


def _chart_list(
    table: str, order: str, render: Callable[[sqlite3.Row], dict[str, Any]]
) -> Callable[[Request, Tenant, PortalSession], Any]:
    async def handler(request: Request, tenant: Tenant, session: PortalSession) -> Response:
        patient = patient_by_chart(tenant, session, request.path_params["chart"])
        paged = paging(request)
        where = ["patient_id = ?", "practice_id = ?"]
        params: list[Any] = [patient["id"], session.practice_id]
        since = updated_since(request)
        if since is not None:
            where.append("updated_at > ?")
            params.append(since)
        status = request.query_params.get("status")
        if status:
            where.append("status = ?")
            params.append(status)
        rows, total = fetch_page(
            tenant.db.all,
            tenant.db.scalar,
            select=f"SELECT * FROM {table}",
            where=where,
            params=params,
            order=order,
            paged=paged,
        )
        return json_response(page_body([render(r) for r in rows], total, paged))

    return handler


async def list_encounters(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/patients/{chartNumber}/encounters?status=&updatedSince=``."""
    patient = patient_by_chart(tenant, session, request.path_params["chart"])
    paged = paging(request)
    where = ["e.patient_id = ?", "e.practice_id = ?"]
    params: list[Any] = [patient["id"], session.practice_id]
    since = updated_since(request)
    if since is not None:
        where.append("e.updated_at > ?")
        params.append(since)
    status = request.query_params.get("status")
    if status:
        where.append("e.status = ?")
        params.append(status)
    rows, total = fetch_page(
        tenant.db.all,
        tenant.db.scalar,
        select="SELECT e.*, p.chart_number FROM encounters e JOIN patients p ON p.id = e.patient_id",
        where=where,
        params=params,
        order="start_time DESC, id DESC",
        paged=paged,
    )
    return json_response(page_body([encounter_item(tenant, r) for r in rows], total, paged))


async def show_encounter(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/encounters/{id}``."""
    row = _encounter_row(tenant, session, path_int(request, "encounter_id", "encounter"))
    return json_response(encounter_detail(tenant, row))


# --- write helpers ------------------------------------------------------------------------------


def _diagnoses(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise invalid("diagnoses", "Must be a list.")
    if len(value) > 12:
        raise invalid("diagnoses", "At most 12 diagnoses.")
    out: list[dict[str, str]] = []
    for i, item in enumerate(value):
        entry = {"code": item} if isinstance(item, str) else item
        if not isinstance(entry, dict):
            raise invalid(f"diagnoses[{i}]", "Must be an ICD-10-CM code or an object.")
        code = text_field(entry, "code", required=True, max_len=8, field=f"diagnoses[{i}].code")
        code = (code or "").upper()
        if not ICD10_RE.match(code):
            raise invalid(f"diagnoses[{i}].code", "Must be an ICD-10-CM code.")
        description = text_field(
            entry, "description", max_len=300, field=f"diagnoses[{i}].description"
        )
        if any(d["code"] == code for d in out):
            raise invalid(f"diagnoses[{i}].code", "The code is listed twice.")
        out.append(
            {"code": code, "description": description or codes.ICD10_DESCRIPTIONS.get(code, "")}
        )
    return out


def _procedures(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid("procedures", "Must be a list.")
    if len(value) > 50:
        raise invalid("procedures", "At most 50 procedures.")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        entry = {"code": item} if isinstance(item, str) else item
        if not isinstance(entry, dict):
            raise invalid(f"procedures[{i}]", "Must be a CPT/HCPCS code or an object.")
        code = (
            text_field(entry, "code", required=True, max_len=5, field=f"procedures[{i}].code") or ""
        ).upper()
        if not PROCEDURE_RE.match(code):
            raise invalid(f"procedures[{i}].code", "Must be a CPT or HCPCS code.")
        units = entry.get("units", 1)
        if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= 99:
            raise invalid(f"procedures[{i}].units", "Must be an integer from 1 to 99.")
        modifiers = entry.get("modifiers", [])
        if (
            not isinstance(modifiers, list)
            or len(modifiers) > 4
            or not all(isinstance(m, str) and MODIFIER_RE.match(m) for m in modifiers)
        ):
            raise invalid(f"procedures[{i}].modifiers", "Up to four two-character modifiers.")
        procedure = codes.PROCEDURE_BY_CODE.get(code)
        out.append(
            {
                "code": code,
                "units": units,
                "modifiers": modifiers,
                "description": procedure.label if procedure else "",
            }
        )
    return out


def _notes(value: Any, current: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("notes", "Must be an object with subjective, objective, assessment, plan.")
    merged = dict(current)
    for key, text in value.items():
        if key not in NOTE_SECTIONS:
            raise invalid(f"notes.{key}", "Not a note section.")
        if text is not None and not isinstance(text, str):
            raise invalid(f"notes.{key}", "Must be a string.")
        if text is not None and len(text) > MAX_TEXT:
            raise invalid(f"notes.{key}", f"Must be at most {MAX_TEXT} characters.")
        merged[key] = text or ""
    return merged


def _locked() -> PortalError:
    return PortalError(423, "encounter_locked", "The encounter is signed; add an addendum instead.")


# --- encounter writes ---------------------------------------------------------------------------


async def create_encounter(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``POST /portal/api/encounters``: push an encounter, open, for a patient's chart."""
    body = await read_body(request, tenant.config.max_body_bytes)
    chart = text_field(body, "chartNumber", required=True, max_len=40) or ""
    patient = tenant.db.one(
        "SELECT * FROM patients WHERE practice_id = ? AND chart_number = ?",
        (session.practice_id, chart),
    )
    if patient is None:
        raise invalid("chartNumber", "No such patient in this practice.")
    provider_id = (
        _provider_id(tenant, session, body, "providerId") or patient["primary_provider_id"]
    )
    if provider_id is None:
        raise invalid("providerId", "This field is required.")
    location_id = int_field(body, "locationId")
    if location_id is not None and not tenant.db.scalar(
        "SELECT 1 FROM locations WHERE id = ? AND practice_id = ? AND status = 'A'",
        (location_id, session.practice_id),
    ):
        raise invalid("locationId", "No such active location in this practice.")
    kind = choice_field(body, "type", ENCOUNTER_TYPES, default="office_visit")
    start_raw = body.get("startTime")
    start = tenant.now() if start_raw is None else parse_instant(start_raw)
    if start is None:
        raise invalid("startTime", "Must be an ISO 8601 instant.")
    if start > tenant.now() + timedelta(days=1):
        raise invalid("startTime", "Must not be in the future.")
    complaint = text_field(body, "chiefComplaint", max_len=500, default="") or ""
    notes = _notes(body.get("notes", {}), dict.fromkeys(NOTE_SECTIONS, ""))
    diagnoses = _diagnoses(body.get("diagnoses", []))
    procedures = _procedures(body.get("procedures", []))
    now = tenant.now_db()
    local_date = start.astimezone(tenant.tz(session.practice_id)).date().isoformat()
    with tenant.db.transaction() as conn:
        encounter_id = PUSHED_ENCOUNTER_BASE + tenant.db.next_id("portal_encounters", conn)
        conn.execute(
            "INSERT INTO encounters(id, practice_id, patient_id, appointment_id, provider_id, "
            "location_id, encounter_type, encounter_date, start_time, end_time, status, "
            "chief_complaint, note_json, diagnoses_json, procedures_json, created_at, updated_at) "
            "VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, NULL, 'open', ?, ?, ?, ?, ?, ?)",
            (
                encounter_id,
                session.practice_id,
                patient["id"],
                provider_id,
                location_id or patient["primary_location_id"],
                kind,
                local_date,
                to_db_instant(start),
                complaint,
                dumps(notes),
                dumps(diagnoses),
                dumps(procedures),
                now,
                now,
            ),
        )
        log_write(tenant, conn, session, "encounter", encounter_id, "create", now)
    row = _encounter_row(tenant, session, encounter_id)
    return json_response(encounter_detail(tenant, row), status=201)


PATCHABLE = ("chiefComplaint", "type", "notes", "diagnoses", "procedures", "providerId")


async def update_encounter(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``PATCH /portal/api/encounters/{id}``: edit an open encounter."""
    row = _encounter_row(tenant, session, path_int(request, "encounter_id", "encounter"))
    body = await read_body(request, tenant.config.max_body_bytes)
    if row["status"] != "open":
        raise _locked()
    for key in body:
        if key not in PATCHABLE:
            raise invalid(str(key)[:64], "This field cannot be changed.")
    if not body:
        raise PortalError(422, "validation_failed", "Nothing to change.")
    changes: dict[str, Any] = {}
    if "chiefComplaint" in body:
        changes["chief_complaint"] = text_field(body, "chiefComplaint", max_len=500) or ""
    if "type" in body:
        changes["encounter_type"] = choice_field(
            body, "type", ENCOUNTER_TYPES, default="office_visit"
        )
    if "notes" in body:
        changes["note_json"] = dumps(_notes(body["notes"], loads(row["note_json"]) or {}))
    if "diagnoses" in body:
        changes["diagnoses_json"] = dumps(_diagnoses(body["diagnoses"]))
    if "procedures" in body:
        changes["procedures_json"] = dumps(_procedures(body["procedures"]))
    if "providerId" in body:
        provider_id = _provider_id(tenant, session, body, "providerId")
        if provider_id is None:
            raise invalid("providerId", "This field is required.")
        changes["provider_id"] = provider_id
    now = tenant.now_db()
    changes["updated_at"] = now
    assignments = ", ".join(f"{name} = ?" for name in changes)
    outcome: PortalError | None = None
    with tenant.db.transaction() as conn:
        cursor = conn.execute(
            f"UPDATE encounters SET {assignments} WHERE id = ? AND status = 'open'",
            (*changes.values(), row["id"]),
        )
        if cursor.rowcount == 0:  # signed meanwhile
            outcome = _locked()
        else:
            log_write(tenant, conn, session, "encounter", row["id"], "update", now)
    if outcome is not None:
        raise outcome
    return json_response(encounter_detail(tenant, _encounter_row(tenant, session, row["id"])))


async def sign_encounter(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``POST /portal/api/encounters/{id}/sign``: lock the note and post its charges."""
    row = _encounter_row(tenant, session, path_int(request, "encounter_id", "encounter"))
    body = await read_body(request, tenant.config.max_body_bytes)
    signer = _provider_id(tenant, session, body, "providerId") or int(row["provider_id"])
    if row["status"] != "open":
        raise PortalError(409, "invalid_transition", "The encounter is already signed.")
    diagnoses = loads(row["diagnoses_json"]) or []
    if not diagnoses:
        raise invalid("diagnoses", "An encounter needs a diagnosis before it is signed.")
    now = tenant.now_db()
    outcome: PortalError | None = None
    with tenant.db.transaction() as conn:
        cursor = conn.execute(
            "UPDATE encounters SET status = 'signed', signed_at = ?, signed_by = ?, "
            "end_time = COALESCE(end_time, ?), updated_at = ? WHERE id = ? AND status = 'open'",
            (now, signer, now, now, row["id"]),
        )
        if cursor.rowcount == 0:
            outcome = PortalError(409, "invalid_transition", "The encounter is already signed.")
        else:
            log_write(tenant, conn, session, "encounter", row["id"], "sign", now)
            _post_charges(tenant, conn, session, row, now)
    if outcome is not None:
        raise outcome
    return json_response(encounter_detail(tenant, _encounter_row(tenant, session, row["id"])))


def _post_charges(
    tenant: Tenant, conn: sqlite3.Connection, session: PortalSession, row: sqlite3.Row, now: str
) -> None:
    """The superbill: one ledger charge a procedure, unless the visit already has charges."""
    if conn.execute(
        "SELECT 1 FROM transactions WHERE encounter_id = ? AND transaction_type = 'charge' "
        "AND practice_id = ?",
        (row["id"], session.practice_id),
    ).fetchone():
        return
    diagnoses = [d.get("code") for d in loads(row["diagnoses_json"]) or []][:4]
    profile = conn.execute(
        "SELECT id FROM insurance_profiles WHERE patient_id = ? ORDER BY is_default DESC, id "
        "LIMIT 1",
        (row["patient_id"],),
    ).fetchone()
    insured = conn.execute(
        "SELECT 1 FROM insurance_policies WHERE patient_id = ? AND policy_priority = 1 "
        "AND (effective_from IS NULL OR effective_from <= ?) "
        "AND (effective_to IS NULL OR effective_to >= ?)",
        (row["patient_id"], row["encounter_date"], row["encounter_date"]),
    ).fetchone()
    today = from_db_instant(now).astimezone(tenant.tz(session.practice_id)).date().isoformat()
    for procedure in loads(row["procedures_json"]) or []:
        code = str(procedure.get("code"))
        units = int(procedure.get("units") or 1)
        amount = codes.FEE_SCHEDULE_CENTS.get(code, 10000) * units
        charge_id = int(
            conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM transactions").fetchone()[0]
        )
        conn.execute(
            "INSERT INTO transactions(id, practice_id, patient_id, transaction_type, "
            "transaction_status, balance_type, amount_cents, balance_cents, posting_date, "
            "service_date, location_id, provider_id, attending_provider_id, units, description, "
            "procedure_code, modifiers_json, diagnosis_codes_json, encounter_id, appointment_id, "
            "insurance_profile_id, billed, created_at, updated_at) VALUES (?, ?, ?, 'charge', "
            "'not_posted', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (
                charge_id,
                session.practice_id,
                row["patient_id"],
                "insurance" if insured else "patient",
                amount,
                amount,
                today,
                row["encounter_date"],
                row["location_id"],
                row["provider_id"],
                row["provider_id"],
                units,
                procedure.get("description") or code,
                code,
                dumps(procedure.get("modifiers") or []),
                dumps(diagnoses),
                row["id"],
                row["appointment_id"],
                None if profile is None else profile[0],
                now,
                now,
            ),
        )
        log_write(tenant, conn, session, "charge", charge_id, "create", now)


async def add_addendum(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``POST /portal/api/encounters/{id}/addenda {text[, authorId]}`` on a signed encounter."""
    row = _encounter_row(tenant, session, path_int(request, "encounter_id", "encounter"))
    body = await read_body(request, tenant.config.max_body_bytes)
    text = text_field(body, "text", required=True, max_len=MAX_TEXT) or ""
    author = _provider_id(tenant, session, body, "authorId") or int(row["provider_id"])
    if row["status"] != "signed":
        raise PortalError(
            409, "invalid_transition", "Addenda go on signed encounters; edit the note instead."
        )
    now = tenant.now_db()
    with tenant.db.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO encounter_addenda(encounter_id, practice_id, author_id, text, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (row["id"], session.practice_id, author, text, now),
        )
        addendum_id = int(cursor.lastrowid or 0)
        conn.execute("UPDATE encounters SET updated_at = ? WHERE id = ?", (now, row["id"]))
        log_write(tenant, conn, session, "encounter_addendum", addendum_id, "create", now)
        log_write(tenant, conn, session, "encounter", row["id"], "addendum", now)
    detail = encounter_detail(tenant, _encounter_row(tenant, session, row["id"]))
    return json_response(detail, status=201)


# --- chart list writes ------------------------------------------------------------------------


def _encounter_ref(
    tenant: Tenant, session: PortalSession, body: dict[str, Any], patient: sqlite3.Row
) -> int | None:
    encounter_id = int_field(body, "encounterId")
    if encounter_id is not None and not tenant.db.scalar(
        "SELECT 1 FROM encounters WHERE id = ? AND patient_id = ? AND practice_id = ?",
        (encounter_id, patient["id"], session.practice_id),
    ):
        raise invalid("encounterId", "No such encounter for this patient.")
    return encounter_id


def _today(tenant: Tenant, session: PortalSession) -> str:
    return tenant.today(session.practice_id).isoformat()


async def add_problem(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``POST /portal/api/patients/{chartNumber}/problems {code[, description, status,
    onsetDate, resolvedDate, encounterId]}``."""
    patient = patient_by_chart(tenant, session, request.path_params["chart"])
    body = await read_body(request, tenant.config.max_body_bytes)
    code = (text_field(body, "code", required=True, max_len=8) or "").upper()
    if not ICD10_RE.match(code):
        raise invalid("code", "Must be an ICD-10-CM code.")
    description = text_field(body, "description", max_len=300) or codes.ICD10_DESCRIPTIONS.get(
        code, ""
    )
    status = choice_field(body, "status", ("active", "resolved"), default="active")
    onset = date_field(body, "onsetDate")
    resolved = date_field(body, "resolvedDate")
    if resolved is not None and status != "resolved":
        raise invalid("resolvedDate", "Only a resolved problem has a resolved date.")
    if onset and resolved and resolved < onset:
        raise invalid("resolvedDate", "Must not be before the onset date.")
    encounter_id = _encounter_ref(tenant, session, body, patient)
    now = tenant.now_db()
    with tenant.db.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO problems(practice_id, patient_id, icd10_code, description, status, "
            "onset_date, resolved_date, encounter_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.practice_id,
                patient["id"],
                code,
                description,
                status,
                onset,
                resolved,
                encounter_id,
                now,
                now,
            ),
        )
        new_id = int(cursor.lastrowid or 0)
        log_write(tenant, conn, session, "problem", new_id, "create", now)
    created = tenant.db.one("SELECT * FROM problems WHERE id = ?", (new_id,))
    assert created is not None  # noqa: S101 - written just above
    return json_response(problem_json(created), status=201)


async def add_medication(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``POST /portal/api/patients/{chartNumber}/medications {rxnormCode, name, sig[, status,
    startDate, endDate, prescriberId, encounterId]}``."""
    patient = patient_by_chart(tenant, session, request.path_params["chart"])
    body = await read_body(request, tenant.config.max_body_bytes)
    rxnorm = text_field(body, "rxnormCode", required=True, max_len=8) or ""
    if not RXNORM_RE.match(rxnorm):
        raise invalid("rxnormCode", "Must be an RxNorm concept id (digits).")
    name = text_field(body, "name", required=True, max_len=300) or ""
    sig = text_field(body, "sig", required=True, max_len=1000) or ""
    status = choice_field(body, "status", ("active", "stopped", "completed"), default="active")
    start = date_field(body, "startDate") or _today(tenant, session)
    end = date_field(body, "endDate")
    if end is not None and end < start:
        raise invalid("endDate", "Must not be before the start date.")
    prescriber = _provider_id(tenant, session, body, "prescriberId")
    encounter_id = _encounter_ref(tenant, session, body, patient)
    now = tenant.now_db()
    with tenant.db.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO medications(practice_id, patient_id, rxnorm_code, name, sig, status, "
            "start_date, end_date, prescriber_id, encounter_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.practice_id,
                patient["id"],
                rxnorm,
                name,
                sig,
                status,
                start,
                end,
                prescriber,
                encounter_id,
                now,
                now,
            ),
        )
        new_id = int(cursor.lastrowid or 0)
        log_write(tenant, conn, session, "medication", new_id, "create", now)
    created = tenant.db.one("SELECT * FROM medications WHERE id = ?", (new_id,))
    assert created is not None  # noqa: S101 - written just above
    return json_response(medication_json(created), status=201)


async def add_allergy(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``POST /portal/api/patients/{chartNumber}/allergies {allergenCode, allergenSystem,
    allergenName, category, reaction, severity[, status, recordedDate]}``."""
    patient = patient_by_chart(tenant, session, request.path_params["chart"])
    body = await read_body(request, tenant.config.max_body_bytes)
    system = choice_field(body, "allergenSystem", ("rxnorm", "snomed"))
    if system is None:
        raise invalid("allergenSystem", "This field is required.")
    code = text_field(body, "allergenCode", required=True, max_len=18) or ""
    if not (RXNORM_RE if system == "rxnorm" else SNOMED_RE).match(code):
        raise invalid("allergenCode", f"Must be a {system} code.")
    name = text_field(body, "allergenName", required=True, max_len=300) or ""
    category = choice_field(body, "category", ("medication", "food", "environment"))
    if category is None:
        raise invalid("category", "This field is required.")
    reaction = text_field(body, "reaction", required=True, max_len=300) or ""
    severity = choice_field(body, "severity", ("mild", "moderate", "severe"))
    if severity is None:
        raise invalid("severity", "This field is required.")
    status = choice_field(body, "status", ("active", "inactive"), default="active")
    recorded = date_field(body, "recordedDate") or _today(tenant, session)
    now = tenant.now_db()
    new_id: int | None = None
    with tenant.db.transaction() as conn:
        duplicate = conn.execute(
            "SELECT 1 FROM allergies WHERE patient_id = ? AND allergen_code = ? "
            "AND allergen_system = ? AND status = 'active'",
            (patient["id"], code, system),
        ).fetchone()
        if duplicate is None:
            cursor = conn.execute(
                "INSERT INTO allergies(practice_id, patient_id, allergen_code, allergen_system, "
                "allergen_name, category, reaction, severity, status, recorded_date, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.practice_id,
                    patient["id"],
                    code,
                    system,
                    name,
                    category,
                    reaction,
                    severity,
                    status,
                    recorded,
                    now,
                    now,
                ),
            )
            new_id = int(cursor.lastrowid or 0)
            log_write(tenant, conn, session, "allergy", new_id, "create", now)
    if new_id is None:
        raise PortalError(
            409, "duplicate", "This allergen is already on the active list.", field="allergenCode"
        )
    created = tenant.db.one("SELECT * FROM allergies WHERE id = ?", (new_id,))
    assert created is not None  # noqa: S101 - written just above
    return json_response(allergy_json(created), status=201)


# --- routes -----------------------------------------------------------------------------------


def routes(tenant: Tenant, api: str) -> list[tuple[str, dict[str, Endpoint]]]:
    """The Charts paths and their methods."""
    chart = f"{api}/patients/{{chart}}"
    encounter = f"{api}/encounters/{{encounter_id}}"

    def read(handler: Any) -> Endpoint:
        return portal(tenant, handler)

    def write(handler: Any) -> Endpoint:
        return portal(tenant, handler, write=True)

    return [
        (f"{api}/patients", {"GET": read(list_patients)}),
        (chart, {"GET": read(show_patient)}),
        (f"{chart}/encounters", {"GET": read(list_encounters)}),
        (
            f"{chart}/problems",
            {
                "GET": read(_chart_list("problems", "updated_at DESC, id DESC", problem_json)),
                "POST": write(add_problem),
            },
        ),
        (
            f"{chart}/medications",
            {
                "GET": read(
                    _chart_list("medications", "start_date DESC, id DESC", medication_json)
                ),
                "POST": write(add_medication),
            },
        ),
        (
            f"{chart}/allergies",
            {
                "GET": read(_chart_list("allergies", "recorded_date DESC, id DESC", allergy_json)),
                "POST": write(add_allergy),
            },
        ),
        (
            f"{chart}/labs",
            {"GET": read(_chart_list("lab_results", "collected_at DESC, id DESC", lab_json))},
        ),
        (
            f"{chart}/immunizations",
            {
                "GET": read(
                    _chart_list("immunizations", "administered_on DESC, id DESC", immunization_json)
                )
            },
        ),
        (
            f"{chart}/vitals",
            {"GET": read(_chart_list("vitals", "taken_at DESC, id DESC", vitals_json))},
        ),
        (f"{api}/encounters", {"POST": write(create_encounter)}),
        (
            encounter,
            {"GET": read(show_encounter), "PATCH": write(update_encounter)},
        ),
        (f"{encounter}/sign", {"POST": write(sign_encounter)}),
        (f"{encounter}/addenda", {"POST": write(add_addendum)}),
    ]
