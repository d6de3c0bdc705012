"""Appointments of the v2 surface (``upstream/carecloud.md`` §2.4-2.6, §6.1).

- ``GET /v2/appointments``: today (practice-local) unless dates are given; 100 a page with the
  ``Link`` header; items wrapped as ``{"appointment": {...}}``.
- ``POST /v2/appointments`` (alias ``/v2/appointment/create``): permit list, ``patient`` or
  ``patients``, ``visit_reason_id`` stored as ``nature_of_visit_id``, ``chief_complaint`` as
  ``reason_for_visit``, end time from the visit reason's duration; 201 ``{"appointment": guid}``.
- ``GET /v2/appointments/{id}``; ``PUT .../cancel|check_in|check_out|pending``.

Status codes: ``P`` pending, ``I`` checked in, ``O`` checked out, ``C`` cancelled,
``R`` rescheduled (plus the practice's own, such as a no-show).
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carecloud_sandbox.tenant import Grant, Tenant
from carecloud_sandbox.v2.common import (
    ApiError,
    failed,
    is_guid,
    json_response,
    local_day_bounds,
    local_iso,
    paged_response,
    paginate,
    parse_id_list,
    parse_int_id,
    parse_iso_date,
    parse_page,
    parse_timestamp,
    read_json_object,
    to_db_instant,
)
from carecloud_sandbox.v2.routing import authed

PAGE_SIZE = 100
STATUS_FILTER = ("P", "I", "O", "C", "R")
PERMITTED = (
    "start_time",
    "end_time",
    "appointment_status_id",
    "location_id",
    "provider_id",
    "nature_of_visit_id",
    "reason_for_visit",
    "resource_id",
    "chief_complaint",
    "patients",
)
COMMUNICATION_METHODS = ("other", "phone", "email", "text_message", "fax")
APP_NAME = "carebridge-sandbox-client"

SELECT = (
    "SELECT a.*, s.code AS s_code, s.name AS s_name, l.name AS l_name, "
    "p.chart_number AS p_chart, p.dob AS p_dob, p.first_name AS p_first, "
    "p.last_name AS p_last, p.middle_initial AS p_mi, p.gender_code AS p_gender, "
    "p.email AS p_email, p.status AS p_status, p.phone_digits AS p_phone, "
    "r.name AS r_name, pr.business_entity_id AS be "
    "FROM appointments a "
    "JOIN appointment_statuses s ON s.id = a.appointment_status_id "
    "JOIN practices pr ON pr.id = a.practice_id "
    "LEFT JOIN locations l ON l.id = a.location_id "
    "LEFT JOIN patients p ON p.id = a.patient_id "
    "LEFT JOIN cancellation_reasons r ON r.id = a.cancellation_reason_id "
)
GENDER_IDS = {"M": 1, "F": 2, "O": 3, "U": 4}
LIST_SELECT = SELECT.replace(
    "SELECT a.*, ",
    "SELECT a.id, a.practice_id, a.patient_id, a.provider_id, a.location_id, a.resource_id, "
    "a.nature_of_visit_id, a.appointment_status_id, a.start_time, a.end_time, "
    "a.reason_for_visit, a.comments, a.cancellation_reason_id, a.cancellation_comments, "
    "a.arrived_at, a.departed_at, a.is_confirmed, a.is_force_overbook, a.patient_contacted, "
    "a.referring_physician_npi, a.updated_by_application, a.created_at, a.updated_at, ",
    1,
)
"""The listing's columns: what a list item renders (not the extended fields, nor the JSON
column), so a page copies and compares less."""


def render(tenant: Tenant, found: sqlite3.Row, *, extended: bool = False) -> dict[str, Any]:
    """The ``_appointment.jbuilder`` shape (``_appointment_extended`` when ``extended``)."""
    # A plain dict first: sqlite3.Row finds a column by name with a scan of its names, and
    # an appointment reads forty of them.
    row = dict(zip(found.keys(), found, strict=True))
    return _render(row, tenant.tz(row["practice_id"]), extended=extended)


def listed(tenant: Tenant, found: sqlite3.Row) -> orjson.Fragment:
    """A list item (``{"appointment": ...}``) as JSON, rendered once per distinct row: the
    item is a function of the row's values (the appointment and what it joins) and the
    practice's time zone, so a row read again unchanged reuses its bytes."""
    keys = tuple(found.keys())
    values = tuple(found)
    return _listed(keys, values, tenant.tz(found["practice_id"]))


@lru_cache(maxsize=20_000)  # ~25 MB of items at most
def _listed(keys: tuple[str, ...], values: tuple[Any, ...], tz: ZoneInfo) -> orjson.Fragment:
    item = {"appointment": _render(dict(zip(keys, values, strict=True)), tz)}
    return orjson.Fragment(orjson.dumps(item))


def _render(row: dict[str, Any], tz: ZoneInfo, *, extended: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row["id"],
        "appointment_status": {
            "id": row["appointment_status_id"],
            "code": row["s_code"],
            "name": row["s_name"],
        },
        "patient": {
            "id": row["patient_id"],
            "chart_number": row["p_chart"],
            "date_of_birth": row["p_dob"],
            "first_name": row["p_first"],
            "last_name": row["p_last"],
            "middle_initial": row["p_mi"],
            "gender_id": GENDER_IDS.get(row["p_gender"] or ""),
            "email": row["p_email"],
            "patient_status": "A" if row["p_status"] == "A" else "I",
            "primary_phone_number": row["p_phone"],
        },
        "location": {"id": row["location_id"], "name": row["l_name"]},
        "cancellation_details": None
        if row["cancellation_reason_id"] is None
        else {
            "id": row["cancellation_reason_id"],
            "detail": row["r_name"],
            "comments": row["cancellation_comments"],
        },
        "chief_complaint": row["reason_for_visit"],
        "task_id": None,
        "updated_by_application": row["updated_by_application"],
        "appointment_cancellation_reason_id": row["cancellation_reason_id"],
        "arrived_at": local_iso(row["arrived_at"], tz),
        "comments": row["comments"],
        "confirmation_details": None,
        "departed_at": local_iso(row["departed_at"], tz),
        "exam_room_id": None,
        "is_confirmed": bool(row["is_confirmed"]),
        "is_force_overbook": bool(row["is_force_overbook"]),
        "patient_contacted": bool(row["patient_contacted"]),
        "recurrence_id": None,
        "recurrence_index": None,
        "referring_physician_npi": row["referring_physician_npi"],
        "visit_reason_id": row["nature_of_visit_id"],
        "resource_id": row["resource_id"],
        "provider_id": row["provider_id"],
        "start_time": local_iso(row["start_time"], tz),
        "end_time": local_iso(row["end_time"], tz),
        "created_at": local_iso(row["created_at"], tz),
        "updated_at": local_iso(row["updated_at"], tz),
        "business_entity_id": row["be"],
    }
    if extended:
        body.update(
            {
                "admit_diagnosis_id": None,
                "note_set_id": None,
                "document_set_id": None,
                "contrast": None,
                "laterality": None,
                "created_by_application": row["created_by_application"],
                "patient_instructions": None,
                "preferred_confirmation_method": row["preferred_confirmation_method"],
                "encounter_id": row["encounter_id"],
            }
        )
    return body


def find_appointment(tenant: Tenant, grant: Grant, ref: str) -> sqlite3.Row:
    """The grant's appointment, or the upstream's 400/404."""
    if not is_guid(ref):
        raise ApiError(400, "Appointment ID must be a valid GUID.")
    row = tenant.db.one(
        SELECT + "WHERE a.id = ? AND a.practice_id = ?", (ref.lower(), grant.practice_id)
    )
    if row is None:
        raise ApiError(404, "Resource not found.")
    return row


async def list_appointments(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """List a date window (today by default), 100 a page."""
    call = "Appointment List"
    q = request.query_params
    tz = tenant.tz(grant.practice_id)
    try:
        start = parse_iso_date(q["start_date"]) if q.get("start_date") else None
        end = parse_iso_date(q["end_date"]) if q.get("end_date") else None
    except ValueError:
        raise failed(call, "start_date and end_date must be dates formatted YYYY-MM-DD") from None
    today = tenant.today(grant.practice_id)
    start = start or end or today
    end = end or start
    if end < start:
        raise failed(call, "end_date must not be before start_date")
    lo, hi = local_day_bounds(start, end, tz)
    where = ["a.practice_id = ?", "a.start_time >= ?", "a.start_time < ?"]
    params: list[Any] = [grant.practice_id, lo, hi]
    try:
        for key, column in (("location_id", "a.location_id"), ("resource_id", "a.resource_id")):
            if q.get(key):
                ids = parse_id_list(q[key])
                assert ids is not None  # noqa: S101 - parse_id_list returns a list for text
                where.append(f"{column} IN ({','.join('?' * len(ids))})")
                params.extend(ids)
        for key, column in (("visit_reason_ids", "a.nature_of_visit_id"),):
            ids = parse_id_list(q.get(key))
            if ids:
                where.append(f"{column} IN ({','.join('?' * len(ids))})")
                params.extend(ids)
    except ValueError:
        raise failed(call, "ids must be integers") from None
    if q.get("patient_ids"):
        guids = [g.strip().lower() for g in q["patient_ids"].split(",") if g.strip()]
        if not all(is_guid(g) for g in guids):
            raise ApiError(400, "Patient ID must be a valid GUID.")
        where.append(f"a.patient_id IN ({','.join('?' * len(guids))})")
        params.extend(guids)
    if q.get("status"):
        codes = [c.strip().upper() for c in q["status"].split(",")]
        if not all(c in STATUS_FILTER for c in codes):
            raise failed(call, "status must be one of P, I, O, C, R")
        where.append(f"a.status_code IN ({','.join('?' * len(codes))})")
        params.extend(codes)
    for key, op in (("created_at_from", ">="), ("created_at_to", "<")):
        if q.get(key):
            try:
                day = parse_iso_date(q[key])
            except ValueError:
                raise failed(call, f"{key} must be a date formatted YYYY-MM-DD") from None
            bound = local_day_bounds(day, day, tz)[0 if op == ">=" else 1]
            where.append(f"a.created_at {op} ?")
            params.append(bound)
    clause = " AND ".join(where)
    total = int(
        tenant.db.scalar(f"SELECT COUNT(*) FROM appointments a WHERE {clause}", tuple(params))
    )
    # The page's rows are picked on the index alone (practice, start, internal id), then
    # joined: the rows a deep page skips are never joined.
    page = paginate(
        lambda limit, offset: tenant.db.all(
            LIST_SELECT + "WHERE a.internal_id IN (SELECT a.internal_id FROM appointments a "
            f"WHERE {clause} ORDER BY a.start_time, a.internal_id LIMIT ? OFFSET ?) "
            "ORDER BY a.start_time, a.internal_id",
            (*params, limit, offset),
        ),
        total,
        parse_page(q.get("page")),
        PAGE_SIZE,
    )
    items = [listed(tenant, row) for row in page.rows]
    return paged_response(request, tenant.config.base_url, items, page)


def _active(tenant: Tenant, table: str, ident: Any, practice_id: int) -> sqlite3.Row | None:
    number = parse_int_id(ident)
    if number is None:
        return None
    return tenant.db.one(
        f"SELECT * FROM {table} WHERE id = ? AND practice_id = ? AND status = 'A'",
        (number, practice_id),
    )


async def create_appointment(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Book an appointment, as the upstream's permit list and aliases allow."""
    call = "Appointment Creation"
    body = await read_json_object(request, call, tenant.config.max_body_bytes)
    raw = body.get("appointment")
    if not isinstance(raw, dict):
        raise failed(call, "appointment is required")
    raw = dict(raw)
    if "visit_reason_id" in raw and "nature_of_visit_id" not in raw:
        raw["nature_of_visit_id"] = raw.pop("visit_reason_id")
    if "patient" in raw and "patients" not in raw:
        raw["patients"] = [raw.pop("patient")]
    appt = {k: raw[k] for k in PERMITTED if k in raw}
    if "chief_complaint" in appt and "reason_for_visit" not in appt:
        appt["reason_for_visit"] = appt.pop("chief_complaint")
    practice = grant.practice_id
    tz = tenant.tz(practice)
    if appt.get("provider_id") in (None, ""):
        raise ApiError(400, "Provider id must be passed in")
    provider = _active(tenant, "providers", appt["provider_id"], practice)
    if provider is None:
        raise failed(call, "provider_id must be an active provider of the practice")
    patients = appt.get("patients")
    if not isinstance(patients, list) or not patients or not isinstance(patients[0], dict):
        raise failed(call, "a patient is required")
    patient_ref = patients[0].get("id")
    if not isinstance(patient_ref, str) or not is_guid(patient_ref):
        raise ApiError(400, "Patient ID must be a valid GUID.")
    patient = tenant.db.one(
        "SELECT id FROM patients WHERE id = ? AND practice_id = ?", (patient_ref.lower(), practice)
    )
    if patient is None:
        raise failed(call, "patient not found", 404)
    comments = raw.get("comments", patients[0].get("comments"))
    reason = None
    if appt.get("nature_of_visit_id") is not None:
        reason = _active(tenant, "visit_reasons", appt["nature_of_visit_id"], practice)
        if reason is None:
            raise failed(call, "visit_reason_id must be an active visit reason of the practice")
    resource = None
    if appt.get("resource_id") is not None:
        resource = _active(tenant, "resources", appt["resource_id"], practice)
        if resource is None:
            raise failed(call, "resource_id must be an active resource of the practice")
    location = None
    if appt.get("location_id") is not None:
        location = _active(tenant, "locations", appt["location_id"], practice)
        if location is None:
            raise failed(call, "location_id must be an active location of the practice")
    try:
        start = parse_timestamp(appt.get("start_time"), tz)
    except (ValueError, TypeError):
        raise failed(call, "start_time must be an ISO 8601 timestamp") from None
    if appt.get("end_time") not in (None, ""):
        try:
            end = parse_timestamp(appt.get("end_time"), tz)
        except (ValueError, TypeError):
            raise failed(call, "end_time must be an ISO 8601 timestamp") from None
    elif reason is not None:
        end = start + timedelta(minutes=int(reason["duration"]))
    else:
        raise failed(call, "end_time is required when no visit reason is given")
    if end <= start:
        raise failed(call, "end_time must be after start_time")
    status_ref = parse_int_id(appt.get("appointment_status_id", 0))
    status = tenant.db.one(
        "SELECT * FROM appointment_statuses WHERE practice_id = ? AND "
        + ("id = ?" if status_ref else "code = 'P' AND ? IS NULL"),
        (practice, status_ref),
    )
    if status is None:
        raise failed(call, "appointment_status_id is not a status of the practice")
    overbook = bool(raw.get("is_force_overbook"))
    now = tenant.now_db()
    guid = str(uuid.uuid4())
    with tenant.db.transaction() as conn:
        if resource is not None and not overbook:
            taken = conn.execute(
                "SELECT 1 FROM appointments WHERE resource_id = ? AND status_code NOT IN ('C', 'R') "
                "AND start_time < ? AND end_time > ? LIMIT 1",
                (resource["id"], to_db_instant(end), to_db_instant(start)),
            ).fetchone()
            if taken is not None:
                raise failed(call, "the requested time is not available for this resource", 409)
        internal = int(
            conn.execute("SELECT COALESCE(MAX(internal_id), 0) + 1 FROM appointments").fetchone()[0]
        )
        conn.execute(
            "INSERT INTO appointments(id, internal_id, practice_id, patient_id, provider_id, "
            "location_id, resource_id, nature_of_visit_id, appointment_status_id, status_code, "
            "start_time, end_time, reason_for_visit, comments, is_force_overbook, "
            "created_by_application, updated_by_application, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                guid,
                internal,
                practice,
                patient["id"],
                provider["id"],
                None if location is None else location["id"],
                None if resource is None else resource["id"],
                None if reason is None else reason["id"],
                status["id"],
                status["code"],
                to_db_instant(start),
                to_db_instant(end),
                None if appt.get("reason_for_visit") is None else str(appt["reason_for_visit"]),
                None if comments is None else str(comments),
                int(overbook),
                APP_NAME,
                APP_NAME,
                now,
                now,
            ),
        )
        tenant.db.log_change(
            conn,
            at=now,
            practice_id=practice,
            entity="appointment",
            entity_id=guid,
            action="created",
            source="v2",
        )
    return json_response({"appointment": guid}, status=201)


async def show_appointment(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``{"appointment": {...}}``, extended."""
    row = find_appointment(tenant, grant, request.path_params["appointment_id"])
    return json_response({"appointment": render(tenant, row, extended=True)})


def _transition(
    tenant: Tenant,
    grant: Grant,
    ref: str,
    *,
    allowed_from: str,
    to: str,
    action: str,
    extra: dict[str, Any] | None = None,
) -> sqlite3.Row:
    row = find_appointment(tenant, grant, ref)
    if row["status_code"] not in allowed_from:
        raise ApiError(
            422,
            f"Appointment Update Failed - cannot {action.replace('_', ' ')} an appointment "
            f"with status {row['s_name']}",
        )
    status_id = tenant.db.scalar(
        "SELECT id FROM appointment_statuses WHERE practice_id = ? AND code = ?",
        (grant.practice_id, to),
    )
    now = tenant.now_db()
    sets = {
        "appointment_status_id": status_id,
        "status_code": to,
        "updated_at": now,
        "updated_by_application": APP_NAME,
        **(extra or {}),
    }
    tenant.db.update_logged(
        "appointments",
        row["id"],
        sets,
        at=now,
        practice_id=grant.practice_id,
        entity="appointment",
        action=action,
    )
    return find_appointment(tenant, grant, ref)


async def cancel(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Cancel with a reason and comments; frees the slot."""
    call = "Appointment Cancellation"
    body = await read_json_object(request, call, tenant.config.max_body_bytes)
    method = body.get("communication_method")
    if method is not None and method not in COMMUNICATION_METHODS:
        raise ApiError(400, "Invalid communication method.")
    reason_id = parse_int_id(body.get("appointment_cancellation_reason_id"))
    if reason_id is None:
        raise failed(call, "appointment_cancellation_reason_id is required")
    reason = tenant.db.one(
        "SELECT * FROM cancellation_reasons WHERE id = ? AND (practice_id IS NULL OR practice_id = ?)",
        (reason_id, grant.practice_id),
    )
    if reason is None:
        raise failed(call, "appointment_cancellation_reason_id is not a cancellation reason", 404)
    comments = body.get("cancellation_comments")
    if comments is not None and not isinstance(comments, str):
        raise failed(call, "cancellation_comments must be a string")
    row = _transition(
        tenant,
        grant,
        request.path_params["appointment_id"],
        allowed_from="PI",
        to="C",
        action="cancel",
        extra={"cancellation_reason_id": reason_id, "cancellation_comments": comments},
    )
    tz = tenant.tz(grant.practice_id)
    return json_response(
        {
            "appointment_id": row["id"],
            "start_time": local_iso(row["start_time"], tz),
            "appointment_cancellation_reason_id": reason_id,
            "cancellation_details": {
                "id": reason_id,
                "detail": reason["name"],
                "comments": comments,
            },
            "cancellation_comments": comments,
            "updated_at": local_iso(row["updated_at"], tz),
        }
    )


async def check_in(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Pending -> checked in; sets ``arrived_at``."""
    row = _transition(
        tenant,
        grant,
        request.path_params["appointment_id"],
        allowed_from="P",
        to="I",
        action="check_in",
        extra={"arrived_at": tenant.now_db()},
    )
    return json_response({"appointment": render(tenant, row, extended=True)})


async def check_out(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Checked in -> checked out; sets ``departed_at``."""
    row = _transition(
        tenant,
        grant,
        request.path_params["appointment_id"],
        allowed_from="I",
        to="O",
        action="check_out",
        extra={"departed_at": tenant.now_db()},
    )
    return json_response({"appointment": render(tenant, row, extended=True)})


async def pending(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Back to pending."""
    row = _transition(
        tenant,
        grant,
        request.path_params["appointment_id"],
        allowed_from="IC",
        to="P",
        action="pending",
        extra={"arrived_at": None, "cancellation_reason_id": None},
    )
    return json_response({"appointment": render(tenant, row, extended=True)})


OUTCOMES = (
    "terminated",
    "undeliverable",
    "error",
    "responded",
    "processing",
    "message_sent",
    "left_message_to_reschedule",
    "incorrect_number",
    "confirmed",
    "line_busy",
    "no_answer",
    "left_message",
    "disconnected",
)


def _confirmation(tenant: Tenant, practice_id: int, row: sqlite3.Row) -> dict[str, Any]:
    tz = tenant.tz(practice_id)
    return {
        "id": row["id"],
        "appointment_id": row["appointment_id"],
        "comments": row["comments"],
        "communication_method": row["communication_method"],
        "communication_method_description": row["communication_method_description"],
        "communication_outcome": row["communication_outcome"],
        "created_at": local_iso(row["created_at"], tz),
        "date_confirmed": local_iso(row["date_confirmed"], tz),
        "updated_at": local_iso(row["updated_at"], tz),
    }


async def _record_contact(request: Request, tenant: Tenant, grant: Grant, kind: str) -> Response:
    """Record a confirmation attempt (``confirmation``), a confirmation (``confirm``) or a
    reminder (``communication``)."""
    call = "Appointment Confirmation"
    appt = find_appointment(tenant, grant, request.path_params["appointment_id"])
    body = await read_json_object(request, call, tenant.config.max_body_bytes)
    method = body.get("communication_method")
    if method not in COMMUNICATION_METHODS:
        raise ApiError(400, "Invalid communication method.")
    outcome = body.get("communication_outcome")
    if kind == "confirm":
        if outcome is not None:
            raise failed(call, "communication_outcome is not accepted when confirming")
        outcome = "confirmed"
    elif outcome not in OUTCOMES:
        raise failed(call, "communication_outcome is not a known outcome")
    elif kind == "communication" and outcome == "confirmed":
        raise failed(call, "a communication cannot be a confirmation; use confirm")
    comments = body.get("comments")
    description = body.get("communication_method_description")
    if not all(v is None or isinstance(v, str) for v in (comments, description)):
        raise failed(call, "comments and communication_method_description must be strings")
    now = tenant.now_db()
    with tenant.db.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO appointment_confirmations(appointment_id, date_confirmed, "
            "communication_method, communication_method_description, communication_outcome, "
            "comments, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                appt["id"],
                now if outcome == "confirmed" else None,
                method,
                description,
                outcome,
                comments,
                now,
                now,
            ),
        )
        if outcome == "confirmed":
            conn.execute(
                "UPDATE appointments SET is_confirmed = 1, updated_at = ? WHERE id = ?",
                (now, appt["id"]),
            )
            tenant.db.log_change(
                conn,
                at=now,
                practice_id=grant.practice_id,
                entity="appointment",
                entity_id=appt["id"],
                action="confirm",
                source="v2",
            )
        new_id = cursor.lastrowid
    row = tenant.db.one("SELECT * FROM appointment_confirmations WHERE id = ?", (new_id,))
    assert row is not None  # noqa: S101 - inserted above
    return json_response(
        {"appointment_confirmation": _confirmation(tenant, grant.practice_id, row)}, status=201
    )


async def confirmation(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Record a confirmation attempt and its outcome."""
    return await _record_contact(request, tenant, grant, "confirmation")


async def confirm(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Confirm the appointment."""
    return await _record_contact(request, tenant, grant, "confirm")


async def communication(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Log a reminder that is not a confirmation."""
    return await _record_contact(request, tenant, grant, "communication")


async def confirmations(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """The confirmation history."""
    appt = find_appointment(tenant, grant, request.path_params["appointment_id"])
    rows = tenant.db.all(
        "SELECT * FROM appointment_confirmations WHERE appointment_id = ? ORDER BY id",
        (appt["id"],),
    )
    return json_response(
        [{"appointment_confirmation": _confirmation(tenant, grant.practice_id, r)} for r in rows]
    )


async def list_by_patient(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Every appointment of one patient."""
    ref = request.query_params.get("patient_id", "")
    if not is_guid(ref):
        raise ApiError(400, "Patient ID must be a valid GUID.")
    rows = tenant.db.all(
        SELECT + "WHERE a.patient_id = ? AND a.practice_id = ? ORDER BY a.start_time",
        (ref.lower(), grant.practice_id),
    )
    return json_response([{"appointment": render(tenant, r)} for r in rows])


def routes(tenant: Tenant) -> list[BaseRoute]:
    """The appointment routes."""
    create = authed(tenant, "appointments.write", create_appointment)
    write = "appointments.write"
    return [
        Route(
            "/v2/appointments",
            authed(tenant, "appointments.read", list_appointments),
            methods=["GET"],
        ),
        Route("/v2/appointments", create, methods=["POST"]),
        Route("/v2/appointment/create", create, methods=["POST"]),
        Route(
            "/v2/appointments/listbypatient",
            authed(tenant, "appointments.read", list_by_patient),
            methods=["GET"],
        ),
        Route(
            "/v2/appointments/{appointment_id}/confirm",
            authed(tenant, write, confirm),
            methods=["POST"],
        ),
        Route(
            "/v2/appointments/{appointment_id}/confirmation",
            authed(tenant, write, confirmation),
            methods=["POST"],
        ),
        Route(
            "/v2/appointments/{appointment_id}/communication",
            authed(tenant, write, communication),
            methods=["POST"],
        ),
        Route(
            "/v2/appointments/{appointment_id}/confirmations",
            authed(tenant, "appointments.read", confirmations),
            methods=["GET"],
        ),
        Route(
            "/v2/appointments/{appointment_id}",
            authed(tenant, "appointments.read", show_appointment),
            methods=["GET"],
        ),
        Route(
            "/v2/appointments/{appointment_id}/cancel",
            authed(tenant, write, cancel),
            methods=["PUT"],
        ),
        Route(
            "/v2/appointments/{appointment_id}/check_in",
            authed(tenant, write, check_in),
            methods=["PUT"],
        ),
        Route(
            "/v2/appointments/{appointment_id}/check_out",
            authed(tenant, write, check_out),
            methods=["PUT"],
        ),
        Route(
            "/v2/appointments/{appointment_id}/pending",
            authed(tenant, write, pending),
            methods=["PUT"],
        ),
    ]


__all__ = ["render", "routes"]
