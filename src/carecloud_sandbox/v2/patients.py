"""Patients of the v2 surface (``upstream/carecloud.md`` §2.4-2.5, §6.5).

- ``POST /v2/patients`` (alias ``/v2/patients/create``): 201 ``{"patient": "<guid>"}``; invalid
  demographic codes are dropped, never refused.
- ``POST /v2/patients/search``: exactly one of ``terms`` or ``fields``; ``dob`` in six formats.
- ``GET /v2/patients/{id}``: a GUID or the numeric internal id.
- ``GET /v2/patients/{id}/insurances``, ``/balance``, ``/transactions``, ``/charges``.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carecloud_sandbox import crosswalk
from carecloud_sandbox.codes import FEE_SCHEDULE_CENTS
from carecloud_sandbox.tenant import Grant, Tenant
from carecloud_sandbox.v2.common import (
    ApiError,
    dumps,
    failed,
    is_guid,
    json_response,
    loads,
    money,
    paged_response,
    paginate,
    parse_int_id,
    parse_iso_date,
    parse_page,
    parse_timestamp,
    read_json_object,
    ruby_decimal,
    to_db_instant,
)
from carecloud_sandbox.v2.routing import active_by_id, authed

SEARCH_ONE_OF = (
    "You must search by either a list of terms, by creation date, or specific terms against "
    "specific fields."
)
DOB_FORMATS = ("%m/%d/%Y", "%m-%d-%Y", "%m%d%Y", "%m%d%y", "%m/%d/%y", "%m-%d-%y")
GENDERS = {"M": "Male", "F": "Female", "O": "Other", "U": "Unknown"}
ETHNICITY = {"U", "H", "N"}
EMPLOYMENT = {"E", "D", "R", "P", "U", "S", "N"}
STUDENT = {"F", "P", "N", "U"}
MARITAL = {"D", "L", "M", "S", "T", "U", "W"}
TRANSACTIONS_PAGE = 50


def parse_dob(text: str) -> date | None:
    """A search ``dob`` in any of the upstream's formats, or None."""
    for fmt in DOB_FORMATS:
        try:
            parsed = datetime.strptime(text.strip(), fmt).date()  # noqa: DTZ007 - a date only
        except ValueError:
            continue
        if fmt.endswith("%y") and parsed.year > date.today().year:  # noqa: DTZ011 - century pivot
            parsed = parsed.replace(year=parsed.year - 100)
        return parsed
    return None


def find_patient(tenant: Tenant, grant: Grant, ref: str) -> sqlite3.Row:
    """The grant's patient by GUID or internal id, or the upstream's 400/404."""
    number = parse_int_id(ref)
    if number is not None:
        row = tenant.db.one(
            "SELECT * FROM patients WHERE internal_id = ? AND practice_id = ?",
            (number, grant.practice_id),
        )
    elif is_guid(ref):
        row = tenant.db.one(
            "SELECT * FROM patients WHERE id = ? AND practice_id = ?",
            (ref.lower(), grant.practice_id),
        )
    else:
        raise ApiError(400, "Patient ID must be a valid GUID.")
    if row is None:
        raise ApiError(404, "Resource not found.")
    return row


def _name(row: sqlite3.Row) -> str:
    return f"{row['first_name']} {row['last_name']}"


def _balances_cents(tenant: Tenant, patient_ids: list[str]) -> dict[str, int]:
    """Each patient's account balance (the sum of their ledger), one query for all of them."""
    if not patient_ids:
        return {}
    marks = ",".join("?" * len(patient_ids))
    rows = tenant.db.all(
        "SELECT patient_id, COALESCE(SUM(amount_cents), 0) AS cents FROM transactions "
        f"WHERE patient_id IN ({marks}) GROUP BY patient_id",
        tuple(patient_ids),
    )
    found = {r["patient_id"]: int(r["cents"]) for r in rows}
    return {pid: found.get(pid, 0) for pid in patient_ids}


def _search_item(row: sqlite3.Row, balance_cents: int) -> dict[str, Any]:
    gender = row["gender_code"]
    return {
        "id": row["id"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "middle_initial": row["middle_initial"],
        "name": _name(row),
        "dob": row["dob"],
        "account_balance": money(balance_cents),
        "chart_number": row["chart_number"],
        "last_seen_date": row["last_seen_date"],
        "gender": GENDERS.get(gender or ""),
        "gender_code": gender,
        "primary_location_id": row["primary_location_id"],
        "photo": None,
    }


async def create_patient(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Create a patient; unknown codes are dropped, as upstream does."""
    call = "Patient Creation"
    body = await read_json_object(request, call, tenant.config.max_body_bytes)
    patient = body.get("patient")
    if not isinstance(patient, dict):
        raise failed(call, "patient is required")
    first, last = patient.get("first_name"), patient.get("last_name")
    if not isinstance(first, str) or not first.strip():
        raise failed(call, "first_name is required")
    if not isinstance(last, str) or not last.strip():
        raise failed(call, "last_name is required")
    dob = patient.get("date_of_birth")
    dob_text: str | None = None
    if dob not in (None, ""):
        try:
            dob_value = parse_iso_date(str(dob))
        except ValueError:
            raise failed(call, "date_of_birth must be a date formatted YYYY-MM-DD") from None
        if dob_value > tenant.today(grant.practice_id):
            raise failed(call, "date_of_birth cannot be in the future")
        dob_text = dob_value.isoformat()
    addresses = body.get("addresses", [])
    phones = body.get("phones", [])
    if not isinstance(addresses, list) or not all(isinstance(a, dict) for a in addresses):
        raise failed(call, "addresses must be a list of objects")
    if not isinstance(phones, list) or not all(isinstance(p, dict) for p in phones):
        raise failed(call, "phones must be a list of objects")

    def code(key: str, allowed: set[str]) -> str | None:
        value = patient.get(key)
        return value.upper() if isinstance(value, str) and value.upper() in allowed else None

    gender = code("gender_code", set(GENDERS))
    phone_rows = [
        {
            "phone_number": str(p.get("phone_number") or ""),
            "phone_type_code": p.get("phone_type_code") or "M",
            "extension": str(p.get("extension") or ""),
            "is_primary": bool(p.get("is_primary")),
        }
        for p in phones
    ]
    data: dict[str, Any] = {
        "prefix": str(patient.get("prefix") or ""),
        "suffix": str(patient.get("suffix") or ""),
        "marital_status_code": code("marital_status_code", MARITAL),
        "language_code": patient["language_code"]
        if isinstance(patient.get("language_code"), str)
        and re.fullmatch(r"[a-z]{3}", patient["language_code"])
        else None,
        "race_code": patient["race_code"]
        if isinstance(patient.get("race_code"), str)
        and re.fullmatch(r"(\d{4}-\d)?", patient["race_code"])
        else None,
        "ethnicity_code": code("ethnicity_code", ETHNICITY),
        "employment_status_code": code("employment_status_code", EMPLOYMENT),
        "student_status_code": code("student_status_code", STUDENT),
        "referring_physician_npi": str(patient.get("referring_physician_npi") or ""),
        "date_of_death": None,
        "addresses": [
            {
                k: a.get(k)
                for k in ("line1", "line2", "city", "state_code", "zip_code", "is_primary")
            }
            for a in addresses
        ],
        "phones": phone_rows,
        "responsible_party": {"relationship": "self"},
    }
    now = tenant.now_db()
    guid = str(uuid.uuid4())
    digits = re.sub(r"\D", "", str(phone_rows[0]["phone_number"])) if phone_rows else ""
    with tenant.db.transaction() as conn:
        internal = int(
            conn.execute("SELECT COALESCE(MAX(internal_id), 0) + 1 FROM patients").fetchone()[0]
        )
        conn.execute(
            "INSERT INTO patients(id, internal_id, practice_id, chart_number, account_number, "
            "first_name, last_name, middle_initial, dob, gender_code, ssn, email, phone_digits, "
            "drivers_license_number, status, data_json, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'A', ?, ?, ?)",
            (
                guid,
                internal,
                grant.practice_id,
                str(patient.get("chart_number") or f"NEW{internal:06d}"),
                str(patient.get("account_number") or f"A{grant.practice_id}{internal:07d}"),
                first.strip(),
                last.strip(),
                str(patient.get("middle_initial") or "")[:1],
                dob_text,
                gender,
                str(patient.get("ssn") or ""),
                str(patient.get("email") or ""),
                digits,
                str(patient.get("drivers_license_number") or ""),
                dumps(data),
                now,
                now,
            ),
        )
        crosswalk.link(conn, "Patient", grant.practice_id, guid)
        tenant.db.log_change(
            conn,
            at=now,
            practice_id=grant.practice_id,
            entity="patient",
            entity_id=guid,
            action="created",
            source="v2",
        )
    return json_response({"patient": guid}, status=201)


UPDATABLE_CODES = {
    "marital_status_code": MARITAL,
    "ethnicity_code": ETHNICITY,
    "employment_status_code": EMPLOYMENT,
    "student_status_code": STUDENT,
}


async def update_patient(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``PUT /v2/patients/{id}``: body as in create; only the given fields change; 204."""
    call = "Patient Update"
    row = find_patient(tenant, grant, request.path_params["patient_id"])
    body = await read_json_object(request, call, tenant.config.max_body_bytes)
    patient = body.get("patient")
    if not isinstance(patient, dict):
        raise failed(call, "patient is required")
    columns: dict[str, Any] = {}
    for key in ("first_name", "last_name"):
        if key in patient:
            value = patient[key]
            if not isinstance(value, str) or not value.strip():
                raise failed(call, f"{key} must be a non-empty string")
            columns[key] = value.strip()
    for key in ("email", "middle_initial", "drivers_license_number"):
        if key in patient:
            if not isinstance(patient[key], str):
                raise failed(call, f"{key} must be a string")
            columns[key] = patient[key][:1] if key == "middle_initial" else patient[key]
    if "date_of_birth" in patient:
        try:
            dob = parse_iso_date(str(patient["date_of_birth"]))
        except ValueError:
            raise failed(call, "date_of_birth must be a date formatted YYYY-MM-DD") from None
        if dob > tenant.today(grant.practice_id):
            raise failed(call, "date_of_birth cannot be in the future")
        columns["dob"] = dob.isoformat()
    if isinstance(patient.get("gender_code"), str) and patient["gender_code"].upper() in GENDERS:
        columns["gender_code"] = patient["gender_code"].upper()
    data = loads(row["data_json"])
    for key, allowed in UPDATABLE_CODES.items():
        value = patient.get(key)
        if isinstance(value, str) and value.upper() in allowed:
            data[key] = value.upper()  # an invalid code is ignored, as on create
    now = tenant.now_db()
    columns.update({"data_json": dumps(data), "updated_at": now})
    tenant.db.update_logged(
        "patients",
        row["id"],
        columns,
        at=now,
        practice_id=grant.practice_id,
        entity="patient",
        action="updated",
    )
    return Response(status_code=204)


def _prefix_range(prefix: str) -> tuple[str, str] | None:
    """The range of lowercase names a LIKE ``prefix%`` can match (None when the prefix holds
    a wildcard or is empty: then only the predicate applies)."""
    if not prefix or "%" in prefix or "_" in prefix:
        return None
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _term_candidates(term: str, dob: date | None) -> tuple[str, list[Any]]:
    """A clause narrowing a term's search to the patients some index says may match it: a name
    containing it (the trigram index ``patient_names``), or one of the exact fields (their
    indexes). Every patient the term's own predicate accepts is among them; the predicate
    then decides, so the answer is the same as a scan's, at a cost that does not grow with
    the tenant."""
    text = term.strip().lower()
    like = f"%{text}%"
    parts = [
        "SELECT rowid FROM patient_names WHERE first_name LIKE ?",
        "SELECT rowid FROM patient_names WHERE last_name LIKE ?",
        "SELECT rowid FROM patients WHERE ssn = ?",
        "SELECT rowid FROM patients WHERE lower(chart_number) = ?",
        "SELECT rowid FROM patients WHERE lower(drivers_license_number) = ?",
        "SELECT rowid FROM patients WHERE lower(email) = ?",
        "SELECT p.rowid FROM patients p JOIN insurance_policies i ON i.patient_id = p.id "
        "WHERE lower(i.member_number) = ?",
        "SELECT p.rowid FROM patients p JOIN insurance_policies i ON i.patient_id = p.id "
        "WHERE lower(i.policy_number) = ?",
    ]
    values: list[Any] = [like, like, term, text, text, text, text, text]
    number = term.strip()
    if number.lstrip("-").isdigit() and str(int(number)) == number:
        parts.append("SELECT rowid FROM patients WHERE internal_id = ?")
        values.append(int(number))
    if dob is not None:
        parts.append("SELECT rowid FROM patients WHERE dob = ?")
        values.append(dob.isoformat())
    return f"rowid IN ({' UNION '.join(parts)})", values


async def search_patients(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Search by a list of terms, or by specific fields."""
    call = "Patient Search"
    body = await read_json_object(request, call, tenant.config.max_body_bytes)
    terms, fields = body.get("terms"), body.get("fields")
    if (terms is None) == (fields is None):
        raise ApiError(400, SEARCH_ONE_OF)
    limit = parse_int_id(body.get("limit", 25)) or 25
    limit = min(limit, 100)
    where: list[str] = ["practice_id = ?"]
    params: list[Any] = [grant.practice_id]
    indexed = ""
    if terms is not None:
        if not isinstance(terms, list) or not terms or not all(isinstance(t, str) for t in terms):
            raise failed(call, "terms must be a non-empty list of strings")
        for term in terms:
            dob = parse_dob(term)
            narrow, candidates = _term_candidates(term, dob)
            where.append(narrow)
            params.extend(candidates)
            like = f"%{term.strip().lower()}%"
            clauses = [
                "lower(first_name) LIKE ?",
                "lower(last_name) LIKE ?",
                "ssn = ?",
                "CAST(internal_id AS TEXT) = ?",
                "lower(chart_number) = ?",
                "lower(drivers_license_number) = ?",
                "lower(email) = ?",
                "id IN (SELECT patient_id FROM insurance_policies WHERE lower(member_number) = ? "
                "OR lower(policy_number) = ?)",
            ]
            values: list[Any] = [
                like,
                like,
                term,
                term.strip(),
                term.strip().lower(),
                term.strip().lower(),
                term.strip().lower(),
                term.strip().lower(),
                term.strip().lower(),
            ]
            if dob is not None:
                clauses.append("dob = ?")
                values.append(dob.isoformat())
            where.append("(" + " OR ".join(clauses) + ")")
            params.extend(values)
    else:
        if not isinstance(fields, dict) or not fields:
            raise failed(call, "fields must be a non-empty object")
        for key, value in fields.items():
            if not isinstance(value, str):
                raise failed(call, f"{key} must be a string")
            if key in ("first_name", "last_name"):
                prefix = value.strip().lower()
                bounds = _prefix_range(prefix)
                if bounds is not None:  # the index's range, then the predicate itself
                    where.append(f"lower({key}) >= ? AND lower({key}) < ?")
                    params.extend(bounds)
                    if key == "last_name" or not indexed:
                        # read the range from its index (without statistics, the planner would
                        # walk the practice's whole name index for the ORDER BY instead)
                        indexed = f"INDEXED BY patients_lower_{key.split('_')[0]}"
                where.append(f"lower({key}) LIKE ?")  # key is one of two literals
                params.append(f"{prefix}%")
            elif key == "dob":
                dob = parse_dob(value)
                if dob is None:
                    raise failed(call, "dob must be formatted MM/DD/YYYY")
                where.append("dob = ?")
                params.append(dob.isoformat())
            elif key == "gender":
                where.append("gender_code = ?")
                params.append(value.strip().upper()[:1])
            elif key == "phone_number":
                where.append("phone_digits = ?")
                params.append(re.sub(r"\D", "", value))
            else:
                raise failed(call, f"{key} is not a searchable field")
    # ties in name keep the order of the practice's name index (rowid last), whichever index
    # the rows came from
    sql = (
        f"SELECT * FROM patients {indexed} WHERE {' AND '.join(where)} "
        "ORDER BY last_name, first_name, rowid LIMIT ?"
    )
    rows = tenant.db.all(sql, (*params, limit))
    balances = _balances_cents(tenant, [r["id"] for r in rows])
    return json_response({"patients": [_search_item(r, balances[r["id"]]) for r in rows]})


async def show_patient(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``{"patient": {...}}`` with the PatientShow fields."""
    row = find_patient(tenant, grant, request.path_params["patient_id"])
    data = loads(row["data_json"])
    practice = tenant.db.one("SELECT * FROM practices WHERE id = ?", (grant.practice_id,))
    location = tenant.db.one("SELECT * FROM locations WHERE id = ?", (row["primary_location_id"],))
    gender = row["gender_code"]
    body = {
        "id": row["id"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "middle_initial": row["middle_initial"],
        "prefix": data.get("prefix", ""),
        "suffix": data.get("suffix", ""),
        "ssn": row["ssn"],
        "name": _name(row),
        "dob": row["dob"],
        "email_address": row["email"],
        "status": "Active" if row["status"] == "A" else "Inactive",
        "status_id": 1 if row["status"] == "A" else 2,
        "legacy_patient_id": "",
        "chart_number": row["chart_number"],
        "account_number": row["account_number"],
        "business_entity_id": practice["business_entity_id"] if practice else None,
        "business_entity_name": practice["name"] if practice else None,
        "date_of_death": data.get("date_of_death"),
        "last_seen_date": row["last_seen_date"],
        "drivers_license_number": row["drivers_license_number"],
        "marital_status": data.get("marital_status_code"),
        "language": data.get("language_code"),
        "language_code": data.get("language_code"),
        "gender": GENDERS.get(gender or ""),
        "gender_code": gender,
        "ethnicity": data.get("ethnicity_code"),
        "ethnicity_code": data.get("ethnicity_code"),
        "race": data.get("race_code"),
        "race_code": data.get("race_code"),
        "primary_location": None
        if location is None
        else {
            "id": location["id"],
            "name": location["name"],
            "mnemonic": location["mnemonic"],
            "npi": location["npi"],
            "is_default": bool(location["is_default"]),
            "address": loads(location["address_json"]),
        },
        "primary_provider_id": row["primary_provider_id"],
        "referring_physician_npi": data.get("referring_physician_npi", ""),
        "responsible_party": data.get("responsible_party"),
        "insurance_profiles": _profiles(tenant, row["id"]),
        "addresses": data.get("addresses", []),
        "phones": data.get("phones", []),
        "photo": None,
    }
    return json_response({"patient": body})


def _profiles(tenant: Tenant, patient_id: str) -> list[dict[str, Any]]:
    profiles = []
    for prof in tenant.db.all(
        "SELECT * FROM insurance_profiles WHERE patient_id = ? ORDER BY id", (patient_id,)
    ):
        policies = []
        for pol in tenant.db.all(
            "SELECT p.*, y.name AS payer_name, y.pending AS payer_pending, y.phones_json, "
            "y.address_json, y.plans_json FROM insurance_policies p "
            "JOIN payers y ON y.id = p.payer_id WHERE p.profile_id = ? ORDER BY policy_priority",
            (prof["id"],),
        ):
            plan = next((p for p in loads(pol["plans_json"]) if p["id"] == pol["plan_id"]), None)
            policies.append(
                {
                    "id": pol["id"],
                    "policy_priority": pol["policy_priority"],
                    "member_number": pol["member_number"],
                    "policy_number": pol["policy_number"],
                    "effective_from": pol["effective_from"],
                    "effective_to": pol["effective_to"],
                    "co_payment": ruby_decimal(pol["co_payment_cents"]),
                    "deductible": ruby_decimal(pol["deductible_cents"]),
                    "type": pol["insurance_policy_type"],
                    "group_name": pol["group_name"],
                    "requires_authorization": bool(pol["requires_authorization"]),
                    "plan": None if plan is None else {"id": plan["id"], "name": plan["name"]},
                    "insured": loads(pol["insured_json"]),
                    "payer": {
                        "id": pol["payer_id"],
                        "name": pol["payer_name"],
                        "payer_pending?": bool(pol["payer_pending"]),
                        "phones": loads(pol["phones_json"]),
                        "address": loads(pol["address_json"]),
                    },
                }
            )
        profiles.append(
            {
                "id": prof["id"],
                "name": prof["name"],
                "self_pay": bool(prof["self_pay"]),
                "default": bool(prof["is_default"]),
                "insurance_policies": policies,
            }
        )
    return profiles


async def list_insurances(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``{"insurance_profiles": [...]}``."""
    row = find_patient(tenant, grant, request.path_params["patient_id"])
    return json_response({"insurance_profiles": _profiles(tenant, row["id"])})


RELATIONSHIPS = {
    "self",
    "spouse",
    "child",
    "mother",
    "father",
    "employee",
    "other",
    "unknown",
    "life_partner",
    "domestic_partner",
    "grandparent",
    "grandchild",
    "stepchild",
    "ward",
    "foster_child",
    "niece_nephew",
    "sibling",
    "guardian",
    "dependent",
    "emancipated_minor",
}
POLICY_TYPES = {
    "commercial_insurance",
    "ppo",
    "hmo",
    "pos",
    "epo",
    "indemnity",
    "medicare_a",
    "medicare_b",
    "medicare_hmo",
    "medicare_ppo",
    "medicare_advantage",
    "medicaid",
    "medicaid_hmo",
    "blue_cross_blue_shield",
    "workers_compensation",
    "auto_insurance",
    "champus",
    "champ_va",
    "other",
    "self_pay",
}
PRIORITIES = ("primary", "secondary", "tertiary", "quaternary")


async def create_insurance(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``POST /v2/patients/{id}/insurances``: a profile with up to four policies; 201."""
    call = "Insurance Profile Creation"
    patient = find_patient(tenant, grant, request.path_params["patient_id"])
    body = await read_json_object(request, call, tenant.config.max_body_bytes)
    profile = body.get("insurance_profile")
    if not isinstance(profile, dict):
        raise failed(call, "insurance_profile is required")
    relationship = profile.get("responsible_party_relationship", "self")
    if relationship not in RELATIONSHIPS:
        raise failed(call, "responsible_party_relationship is not a known relationship", 422)
    policies = []
    for priority, name in enumerate(PRIORITIES, start=1):
        policy = profile.get(f"{name}_insurance_policy")
        if policy is None:
            continue
        if not isinstance(policy, dict):
            raise failed(call, f"{name}_insurance_policy must be an object")
        if policy.get("insurance_policy_type") not in POLICY_TYPES:
            raise failed(
                call, f"{name}_insurance_policy.insurance_policy_type is not a known type", 422
            )
        if policy.get("insured_person_relationship", "self") not in RELATIONSHIPS:
            raise failed(
                call,
                f"{name}_insurance_policy.insured_person_relationship is not a known relationship",
                422,
            )
        member = policy.get("member_number")
        if not isinstance(member, str) or not member.strip():
            raise failed(call, f"{name}_insurance_policy.member_number is required")
        payer = policy.get("payer")
        payer_id = parse_int_id(payer.get("id")) if isinstance(payer, dict) else None
        if (
            payer_id is None
            or tenant.db.scalar("SELECT 1 FROM payers WHERE id = ?", (payer_id,)) is None
        ):
            raise failed(call, f"{name}_insurance_policy.payer.id must name a payer", 422)
        effective = policy.get("effective_date")
        if effective not in (None, ""):
            try:
                effective = parse_iso_date(str(effective)).isoformat()
            except ValueError:
                raise failed(
                    call, f"{name}_insurance_policy.effective_date must be YYYY-MM-DD"
                ) from None
        policies.append((priority, payer_id, policy, member.strip(), effective))
    if not policies:
        raise failed(call, "at least one insurance policy is required")
    is_default = bool(profile.get("is_default", False))
    now = tenant.now_db()
    with tenant.db.transaction() as conn:
        if is_default:
            conn.execute(
                "UPDATE insurance_profiles SET is_default = 0 WHERE patient_id = ?",
                (patient["id"],),
            )
        name = str(profile.get("name") or "Insurance")
        cursor = conn.execute(
            "INSERT INTO insurance_profiles(patient_id, name, self_pay, is_default, "
            "responsible_party_relationship, responsible_party_json, created_at, updated_at) "
            "VALUES (?, ?, 0, ?, ?, ?, ?, ?)",
            (
                patient["id"],
                name,
                int(is_default),
                relationship,
                dumps(profile.get("responsible_party") or {}),
                now,
                now,
            ),
        )
        profile_id = cursor.lastrowid
        for priority, payer_id, policy, member, effective in policies:
            conn.execute(
                "INSERT INTO insurance_policies(profile_id, patient_id, policy_priority, payer_id, "
                "insurance_policy_type, member_number, group_number, group_name, effective_from, "
                "insured_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    profile_id,
                    patient["id"],
                    priority,
                    payer_id,
                    policy["insurance_policy_type"],
                    member,
                    str(policy.get("group_number") or ""),
                    str(policy.get("group_name") or ""),
                    effective or None,
                    dumps(policy.get("insured") or {"relation_to_patient": "self"}),
                    now,
                    now,
                ),
            )
        tenant.db.log_change(
            conn,
            at=now,
            practice_id=grant.practice_id,
            entity="insurance_profile",
            entity_id=str(profile_id),
            action="created",
            source="v2",
        )
    return json_response(
        {"insurance_profile": {"id": profile_id, "is_default": is_default, "name": name}},
        status=201,
    )


async def balance(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Aging buckets per balance type, amounts as ``'%.2f'`` strings."""
    row = find_patient(tenant, grant, request.path_params["patient_id"])
    today = tenant.today(grant.practice_id)
    kinds = ("patient", "insurance")
    totals = {
        kind: dict.fromkeys(("unbilled", "current", "30", "60", "90", "120"), 0) for kind in kinds
    }
    for charge in tenant.db.all(
        "SELECT balance_type, balance_cents, posting_date, billed FROM transactions "
        "WHERE patient_id = ? AND transaction_type IN ('charge', 'simple_charge') "
        "AND balance_type IN ('patient', 'insurance') AND balance_cents != 0",
        (row["id"],),
    ):
        buckets = totals[charge[0]]
        cents = charge[1]
        if not charge[3]:
            buckets["unbilled"] += cents
            continue
        age = (today - date.fromisoformat(charge[2])).days
        key = (
            "120"
            if age > 120
            else "90"
            if age > 90
            else "60"
            if age > 60
            else ("30" if age > 30 else "current")
        )
        buckets[key] += cents
    rows = []
    for balance_type in kinds:
        buckets = totals[balance_type]
        rows.append(
            {
                "balance_type": balance_type,
                "unapplied_credit": money(0),
                "unbilled": money(buckets["unbilled"]),
                "current": money(buckets["current"]),
                "greater_than_30": money(buckets["30"]),
                "greater_than_60": money(buckets["60"]),
                "greater_than_90": money(buckets["90"]),
                "greater_than_120": money(buckets["120"]),
                "total": money(sum(buckets.values())),
            }
        )
    return json_response(rows)


def _date_window(request: Request, tenant: Tenant, grant: Grant) -> tuple[date, date]:
    q = request.query_params
    start_text, end_text = q.get("start_date"), q.get("end_date")
    try:
        start = parse_iso_date(start_text) if start_text else None
        end = parse_iso_date(end_text) if end_text else None
    except ValueError:
        raise ApiError(400, "Dates must be formatted YYYY-MM-DD") from None
    if end is not None and start is None:
        raise ApiError(
            400, "Both start_date and end_date parameters are required for date filtering"
        )
    if start is None:
        end = tenant.today(grant.practice_id)
        return end - timedelta(days=30), end
    return start, end or start + timedelta(days=30)


def _ledger(request: Request, tenant: Tenant, grant: Grant, charges_only: bool) -> Response:
    row = find_patient(tenant, grant, request.path_params["patient_id"])
    start, end = _date_window(request, tenant, grant)
    kinds = "AND transaction_type IN ('charge', 'simple_charge')" if charges_only else ""
    where = f"patient_id = ? AND posting_date BETWEEN ? AND ? {kinds}"
    params = (row["id"], start.isoformat(), end.isoformat())
    total = int(tenant.db.scalar(f"SELECT COUNT(*) FROM transactions WHERE {where}", params))
    page = paginate(
        lambda limit, offset: tenant.db.all(
            f"SELECT * FROM transactions WHERE {where} ORDER BY posting_date, id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ),
        total,
        parse_page(request.query_params.get("page")),
        TRANSACTIONS_PAGE,
    )
    items = [
        {
            "id": t["id"],
            "amount": money(t["amount_cents"]),
            "balance": money(t["balance_cents"]),
            "unapplied_credit": money(t["unapplied_credit_cents"]),
            "posting_date": t["posting_date"],
            "transaction_type": t["transaction_type"],
            "transaction_status": t["transaction_status"],
            "location_id": t["location_id"],
            "provider_id": t["provider_id"],
            "attending_provider_id": t["attending_provider_id"],
            "units": t["units"],
            "description": t["description"],
        }
        for t in page.rows
    ]
    return paged_response(request, tenant.config.base_url, items, page)


async def transactions(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """The ledger, 50 a page, the last 30 days by default."""
    return _ledger(request, tenant, grant, charges_only=False)


async def charges(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Only ``charge`` and ``simple_charge`` ledger entries."""
    return _ledger(request, tenant, grant, charges_only=True)


ELIGIBILITY_DELAY = timedelta(seconds=5)


async def create_eligibility(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Start an electronic eligibility request (a raw pass-through upstream); 201 with its id.

    The answer is ready ``ELIGIBILITY_DELAY`` of tenant time later; poll the GET route.
    """
    call = "Eligibility Request"
    patient = find_patient(tenant, grant, request.path_params["patient_id"])
    body = await read_json_object(request, call, tenant.config.max_body_bytes)
    when = body.get("eligibility_date")
    if when in (None, ""):
        day = tenant.today(grant.practice_id)
    else:
        try:
            day = parse_iso_date(str(when))
        except ValueError:
            raise failed(call, "eligibility_date must be formatted YYYY-MM-DD") from None
    now = tenant.now()
    with tenant.db.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO eligibility_requests(practice_id, patient_id, status, request_json, "
            "eligibility_date, ready_at, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?)",
            (
                grant.practice_id,
                patient["id"],
                dumps(body),
                day.isoformat(),
                to_db_instant(now + ELIGIBILITY_DELAY),
                to_db_instant(now),
                to_db_instant(now),
            ),
        )
        request_id = cursor.lastrowid
    return json_response(
        {"eligibility_request": {"id": request_id, "status": "pending"}}, status=201
    )


def _benefits(tenant: Tenant, patient_id: str, day: str) -> dict[str, Any]:
    """The 271-like answer for the primary policy in force on ``day``."""
    policy = tenant.db.one(
        "SELECT p.*, y.name AS payer_name FROM insurance_policies p JOIN payers y ON y.id = p.payer_id "
        "WHERE p.patient_id = ? ORDER BY p.policy_priority LIMIT 1",
        (patient_id,),
    )
    if policy is None:
        return {"coverage_status": "inactive", "reason": "no insurance on file", "benefits": []}
    active = (policy["effective_from"] or "0000") <= day and (
        policy["effective_to"] is None or day <= policy["effective_to"]
    )
    if not active:
        return {
            "coverage_status": "inactive",
            "payer": {"id": policy["payer_id"], "name": policy["payer_name"]},
            "member_number": policy["member_number"],
            "benefits": [],
        }
    spent = int(
        tenant.db.scalar(
            "SELECT COALESCE(-SUM(amount_cents), 0) FROM transactions WHERE patient_id = ? "
            "AND transaction_type = 'patient_payment' AND posting_date >= ?",
            (patient_id, f"{day[:4]}-01-01"),
        )
    )
    deductible = policy["deductible_cents"] or 0
    benefits = [
        {
            "service_type_code": stc,
            "co_payment": money(policy["co_payment_cents"] or 0),
            "co_insurance": f"{(policy['coinsurance_pct'] or 0) / 100:.2f}",
            "deductible": money(deductible),
            "deductible_remaining": money(max(deductible - spent, 0)),
            "out_of_pocket_max": money(policy["out_of_pocket_max_cents"]),
        }
        for stc in ("30", "98")
    ]
    return {
        "coverage_status": "active",
        "payer": {"id": policy["payer_id"], "name": policy["payer_name"]},
        "member_number": policy["member_number"],
        "plan_type": policy["insurance_policy_type"],
        "benefits": benefits,
    }


async def show_eligibility(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Poll an eligibility request: ``pending`` until ready, then ``complete`` with benefits."""
    patient = find_patient(tenant, grant, request.path_params["patient_id"])
    number = parse_int_id(request.path_params["request_id"])
    if number is None:
        raise ApiError(400, "Eligibility request ID must be an integer.")
    row = tenant.db.one(
        "SELECT * FROM eligibility_requests WHERE id = ? AND patient_id = ?",
        (number, patient["id"]),
    )
    if row is None:
        raise ApiError(404, "Resource not found.")
    if row["status"] == "pending" and row["ready_at"] <= tenant.now_db():
        answer = _benefits(tenant, patient["id"], row["eligibility_date"])
        with tenant.db.transaction() as conn:
            conn.execute(
                "UPDATE eligibility_requests SET status = 'complete', response_json = ?, updated_at = ? "
                "WHERE id = ?",
                (dumps(answer), tenant.now_db(), number),
            )
        row = tenant.db.one("SELECT * FROM eligibility_requests WHERE id = ?", (number,))
        assert row is not None  # noqa: S101 - updated above
    return json_response(
        {
            "eligibility_request": {
                "id": row["id"],
                "status": row["status"],
                "eligibility_date": row["eligibility_date"],
                "response": loads(row["response_json"]),
            }
        }
    )


CHARGE_REQUIRED = ("start_time", "end_time", "units", "procedure_code", "diagnosis1_code")


def _icd10(code: Any) -> str | None:
    """A billable ICD-10-CM code (dot optional), normalized with its dot; None otherwise."""
    import simple_icd_10_cm as cm  # heavy: loaded on first use

    if not isinstance(code, str) or not re.fullmatch(
        r"[A-Za-z][0-9A-Za-z]{2}\.?[0-9A-Za-z]{0,4}", code
    ):
        return None
    text = code.upper().replace(".", "")
    dotted = text if len(text) <= 3 else f"{text[:3]}.{text[3:]}"
    return dotted if cm.is_valid_item(dotted) and cm.is_leaf(dotted) else None


async def create_charge(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``POST /v2/patients/{id}/charge``: a CPT/HCPCS charge with ICD-10 diagnoses."""
    call = "Charge Creation"
    patient = find_patient(tenant, grant, request.path_params["patient_id"])
    body = await read_json_object(request, call, tenant.config.max_body_bytes)
    charge = body.get("charge")
    if not isinstance(charge, dict):
        raise ApiError(400, "charge: Required param.")
    missing = [
        f"{key}: Required param." for key in CHARGE_REQUIRED if charge.get(key) in (None, "")
    ]
    if missing:
        raise ApiError(400, " ".join(missing))
    tz = tenant.tz(grant.practice_id)
    try:
        start = parse_timestamp(charge["start_time"], tz)
        end = parse_timestamp(charge["end_time"], tz)
    except (ValueError, TypeError):
        raise failed(call, "start_time and end_time must be ISO 8601 timestamps") from None
    if end < start:
        raise failed(call, "end_time must not be before start_time")
    if end > tenant.now():
        raise failed(call, "a charge cannot be in the future")
    units = parse_int_id(charge["units"])
    if units is None or units > 999:
        raise failed(call, "units must be a positive integer")
    indicator = charge.get("icd_indicator", 10)
    if str(indicator) not in ("9", "10"):
        raise failed(call, "icd_indicator must be 9 or 10")
    if str(indicator) == "9":
        raise failed(call, "ICD-9 codes are not accepted for dates of service after 2015-10-01")
    procedure = str(charge["procedure_code"]).upper()
    if procedure not in FEE_SCHEDULE_CENTS:
        raise failed(call, "procedure_code is not on the practice's fee schedule")
    diagnoses = []
    for n in range(1, 9):
        value = charge.get(f"diagnosis{n}_code")
        if value in (None, ""):
            continue
        code = _icd10(value)
        if code is None:
            raise failed(call, f"diagnosis{n}_code is not a billable ICD-10-CM code")
        diagnoses.append(code)
    provider_id = parse_int_id(charge.get("provider_id")) if charge.get("provider_id") else None
    if (
        provider_id is not None
        and tenant.db.scalar(
            "SELECT 1 FROM providers WHERE id = ? AND practice_id = ? AND status = 'A'",
            (provider_id, grant.practice_id),
        )
        is None
    ):
        raise failed(call, "provider_id must be an active provider of the practice")
    amount = FEE_SCHEDULE_CENTS[procedure] * units
    now = tenant.now_db()
    service = start.astimezone(tz).date().isoformat()
    with tenant.db.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO transactions(practice_id, patient_id, transaction_type, "
            "transaction_status, balance_type, amount_cents, balance_cents, posting_date, "
            "service_date, provider_id, attending_provider_id, units, description, "
            "procedure_code, diagnosis_codes_json, billed, created_at, updated_at) "
            "VALUES (?, ?, 'charge', 'not_posted', 'insurance', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (
                grant.practice_id,
                patient["id"],
                amount,
                amount,
                tenant.today(grant.practice_id).isoformat(),
                service,
                provider_id,
                provider_id,
                units,
                f"Charge {procedure}",
                procedure,
                dumps(diagnoses),
                now,
                now,
            ),
        )
        charge_id = cursor.lastrowid
        tenant.db.log_change(
            conn,
            at=now,
            practice_id=grant.practice_id,
            entity="charge",
            entity_id=str(charge_id),
            action="created",
            source="v2",
        )
    return json_response([{"id": charge_id, "encounter_id": None}], status=201)


LOINC_BY_SOURCE = {
    "Progress note": "11506-3",
    "Procedure Note": "28570-0",
    "History and Physical": "34117-2",
    "Discharge summary": "18842-5",
    "Consult note": "11488-4",
}
DEFAULT_LOINC = "11502-2"


def _document(row: sqlite3.Row) -> dict[str, Any]:
    source = row["document_source_name"]
    return {
        "id": row["id"],
        "patient_id": row["patient_id"],
        "name": row["name"],
        "description": row["description"],
        "document_source_name": source,
        "document_type": {
            "system": "http://loinc.org",
            "code": LOINC_BY_SOURCE.get(source, DEFAULT_LOINC),
        },
        "document_date": row["document_date"],
        "content_type": row["content_type"],
        "size": row["size_bytes"],
    }


async def documents(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``GET /v2/documents?patient_id=&date=``: clinical documents with LOINC types."""
    q = request.query_params
    ref = q.get("patient_id")
    if not ref:
        raise failed("Document List", "patient_id is required")
    patient = find_patient(tenant, grant, ref)
    where, params = "patient_id = ? AND status = 'A'", [patient["id"]]
    if q.get("date"):
        try:
            day = parse_iso_date(q["date"])
        except ValueError:
            raise failed("Document List", "date must be formatted YYYY-MM-DD") from None
        where += " AND document_date = ?"
        params.append(day.isoformat())
    rows = tenant.db.all(
        f"SELECT * FROM documents WHERE {where} ORDER BY document_date, id", tuple(params)
    )
    return json_response({"documents": [_document(r) for r in rows]})


async def document(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """One document of the grant's practice."""
    row = active_by_id(
        tenant,
        "documents",
        request.path_params["document_id"],
        label="Document",
        practice_id=grant.practice_id,
    )
    return json_response({"document": _document(row)})


def routes(tenant: Tenant) -> list[BaseRoute]:
    """The patient routes."""
    create = authed(tenant, "patients.write", create_patient)
    return [
        Route("/v2/patients", create, methods=["POST"]),
        Route("/v2/patients/create", create, methods=["POST"]),
        Route(
            "/v2/patients/search",
            authed(tenant, "patients.read", search_patients),
            methods=["POST"],
        ),
        Route(
            "/v2/patients/{patient_id}",
            authed(tenant, "patients.read", show_patient),
            methods=["GET"],
        ),
        Route(
            "/v2/patients/{patient_id}/insurances",
            authed(tenant, "patients.read", list_insurances),
            methods=["GET"],
        ),
        Route(
            "/v2/patients/{patient_id}/balance",
            authed(tenant, "billing.read", balance),
            methods=["GET"],
        ),
        Route(
            "/v2/patients/{patient_id}/transactions",
            authed(tenant, "billing.read", transactions),
            methods=["GET"],
        ),
        Route(
            "/v2/patients/{patient_id}/charges",
            authed(tenant, "billing.read", charges),
            methods=["GET"],
        ),
        Route(
            "/v2/patients/{patient_id}",
            authed(tenant, "patients.write", update_patient),
            methods=["PUT"],
        ),
        Route(
            "/v2/patients/{patient_id}/insurances",
            authed(tenant, "patients.write", create_insurance),
            methods=["POST"],
        ),
        Route(
            "/v2/patients/{patient_id}/charge",
            authed(tenant, "billing.write", create_charge),
            methods=["POST"],
        ),
        Route(
            "/v2/patients/{patient_id}/eligibility_request",
            authed(tenant, "eligibility.write", create_eligibility),
            methods=["POST"],
        ),
        Route(
            "/v2/patients/{patient_id}/eligibility_request/{request_id}",
            authed(tenant, "patients.read", show_eligibility),
            methods=["GET"],
        ),
        Route("/v2/documents", authed(tenant, "documents.read", documents), methods=["GET"]),
        Route(
            "/v2/document/{document_id}",
            authed(tenant, "documents.read", document),
            methods=["GET"],
        ),
    ]
