"""Reference lists of the v2 surface (``upstream/carecloud.md`` §2.1, §2.5).

Visit reasons, resources and providers return active records only; showing an inactive one is
404. Each list keeps the upstream's wrapper: some are bare arrays of wrapped items
(``[{"resource": {...}}]``), some objects (``{"providers": [...]}``), visit reasons a bare array.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, time, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carecloud_sandbox.npi import is_valid_npi
from carecloud_sandbox.tenant import Grant, Tenant
from carecloud_sandbox.v2.common import (
    ApiError,
    json_response,
    loads,
    local_iso,
    paged_response,
    paginate,
    parse_page,
)
from carecloud_sandbox.v2.routing import active_by_id, authed

TEMPLATES_PAGE = 20
DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


OCCURRENCE_DAYS = 14


def _occurrences(
    tenant: Tenant,
    practice_id: int,
    days: str,
    start_at: str,
    end_at: str,
    first: str,
    last: str | None,
) -> list[dict[str, str]]:
    """The occurrences in the next two weeks, as practice-local timestamps."""
    tz = tenant.tz(practice_id)
    today = tenant.today(practice_id)
    found = []
    for offset in range(OCCURRENCE_DAYS):
        day = today + timedelta(days=offset)
        if days[(day.weekday() + 1) % 7] != "1" or day.isoformat() < first:
            continue
        if last is not None and day.isoformat() > last:
            continue
        found.append(
            {
                "start_at": datetime.combine(day, time.fromisoformat(start_at), tz).isoformat(
                    timespec="seconds"
                ),
                "end_at": datetime.combine(day, time.fromisoformat(end_at), tz).isoformat(
                    timespec="seconds"
                ),
            }
        )
    return found


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


async def statuses(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``[{"appointment_status": {id, code, name}}]``."""
    del request
    rows = tenant.db.all(
        "SELECT id, code, name FROM appointment_statuses WHERE practice_id = ? ORDER BY id",
        (grant.practice_id,),
    )
    return json_response([{"appointment_status": dict(r)} for r in rows])


async def cancellation_reasons(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Global reasons (null business entity) and the practice's own."""
    be = tenant.db.scalar(
        "SELECT business_entity_id FROM practices WHERE id = ?", (grant.practice_id,)
    )
    global_only = _flag(request.query_params.get("global_only"))
    rows = tenant.db.all(
        "SELECT * FROM cancellation_reasons WHERE practice_id IS NULL "
        + ("" if global_only else "OR practice_id = ? ")
        + "ORDER BY sort_code, id",
        () if global_only else (grant.practice_id,),
    )
    tz = tenant.tz(grant.practice_id)
    return json_response(
        [
            {
                "appointment_cancellation_reason": {
                    "id": r["id"],
                    "business_entity_id": None if r["practice_id"] is None else be,
                    "code": r["code"],
                    "name": r["name"],
                    "description": r["description"],
                    "is_default": bool(r["is_default"]),
                    "sort_code": r["sort_code"],
                    "created_at": local_iso(r["created_at"], tz),
                    "updated_at": local_iso(r["updated_at"], tz),
                }
            }
            for r in rows
        ]
    )


def _resource(tenant: Tenant, row: sqlite3.Row, be: str) -> dict[str, Any]:
    tz = tenant.tz(row["practice_id"])
    return {
        "id": row["id"],
        "business_entity_id": be,
        "name": row["name"],
        "code": row["code"],
        "description": row["description"],
        "status": row["status"],
        "sort_code": row["sort_code"],
        "created_at": local_iso(row["created_at"], tz),
        "updated_at": local_iso(row["updated_at"], tz),
        "created_by": row["created_by"],
        "updated_by": row["updated_by"],
        "is_for_requests": bool(row["is_for_requests"]),
        "appointment_confirmation": row["appointment_confirmation"],
    }


def _be(tenant: Tenant, grant: Grant) -> str:
    return str(
        tenant.db.scalar(
            "SELECT business_entity_id FROM practices WHERE id = ?", (grant.practice_id,)
        )
    )


def _active_resource(tenant: Tenant, grant: Grant, ref: str) -> sqlite3.Row:
    return active_by_id(tenant, "resources", ref, label="Resource", practice_id=grant.practice_id)


async def resources(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``[{"resource": {...}}]``, active only."""
    del request
    be = _be(tenant, grant)
    rows = tenant.db.all(
        "SELECT * FROM resources WHERE practice_id = ? AND status = 'A' ORDER BY sort_code, id",
        (grant.practice_id,),
    )
    return json_response([{"resource": _resource(tenant, r, be)} for r in rows])


async def resource(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """One resource, with its ``default_provider``."""
    row = _active_resource(tenant, grant, request.path_params["resource_id"])
    body = _resource(tenant, row, _be(tenant, grant))
    provider = tenant.db.one(
        "SELECT id, first_name, last_name FROM providers WHERE id = ?",
        (row["default_provider_id"],),
    )
    body["default_provider"] = (
        None
        if provider is None
        else {"id": provider["id"], "name": f"{provider['first_name']} {provider['last_name']}"}
    )
    return json_response({"resource": body})


def _visit_reasons(
    tenant: Tenant, grant: Grant, extra: str, params: tuple[Any, ...], requests_only: bool
) -> Response:
    rows = tenant.db.all(
        "SELECT v.id, v.name, v.description FROM visit_reasons v WHERE v.practice_id = ? "
        "AND v.status = 'A' "
        + ("AND v.for_requests = 1 " if requests_only else "")
        + extra
        + " ORDER BY v.id",
        (grant.practice_id, *params),
    )
    return json_response([dict(r) for r in rows])


async def visit_reasons(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """A bare array of ``{id, name, description}``, active only."""
    requests_only = _flag(request.query_params.get("request_types_only"))
    return _visit_reasons(tenant, grant, "", (), requests_only)


async def resource_visit_reasons(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """The visit reasons a resource takes."""
    row = _active_resource(tenant, grant, request.path_params["resource_id"])
    requests_only = _flag(request.query_params.get("request_types_only"))
    return _visit_reasons(
        tenant,
        grant,
        "AND v.id IN (SELECT visit_reason_id FROM resource_visit_reasons WHERE resource_id = ?)",
        (row["id"],),
        requests_only,
    )


async def providers(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``{"providers": [...]}``, active only."""
    del request
    rows = tenant.db.all(
        "SELECT * FROM providers WHERE practice_id = ? AND status = 'A' ORDER BY id",
        (grant.practice_id,),
    )
    return json_response({"providers": [_provider(r) for r in rows]})


def _provider(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "npi": r["npi"],
        "name": f"{r['first_name']} {r['last_name']}, {r['credentials']}",
        "email": r["email"],
        "phone_number": r["phone_number"],
        "specialty": None
        if r["taxonomy"] is None
        else {"name": r["specialty_name"], "taxonomy": r["taxonomy"]},
        "last_name": r["last_name"],
        "first_name": r["first_name"],
    }


async def physician(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """NPI lookup."""
    del grant
    npi = request.path_params["npi"]
    if not is_valid_npi(npi):
        raise ApiError(400, "NPI must be ten digits with a valid check digit.")
    row = tenant.db.one("SELECT * FROM providers WHERE npi = ?", (npi,))
    if row is None:
        raise ApiError(404, "Resource not found.")
    return json_response({"physician": _provider(row)})


async def locations(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``{"locations": [...]}``."""
    del request
    rows = tenant.db.all(
        "SELECT * FROM locations WHERE practice_id = ? AND status = 'A' ORDER BY id",
        (grant.practice_id,),
    )
    return json_response(
        {
            "locations": [
                {
                    "id": r["id"],
                    "name": r["name"],
                    "is_visible_appointment_scheduler": bool(r["is_visible_appointment_scheduler"]),
                    "place_of_service_code": r["place_of_service_code"],
                    "address": loads(r["address_json"]),
                    "phones": loads(r["phones_json"]),
                }
                for r in rows
            ]
        }
    )


def _named(tenant: Tenant, table: str, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = tenant.db.all(
        f"SELECT id, name FROM {table} WHERE id IN ({','.join('?' * len(ids))}) ORDER BY id",
        tuple(ids),
    )
    return [dict(r) for r in rows]


async def templates(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Schedule templates, 20 a page."""
    where, params = "practice_id = ? AND status = 'A'", [grant.practice_id]
    if "resource_id" in request.path_params:
        row = _active_resource(tenant, grant, request.path_params["resource_id"])
        where += " AND EXISTS (SELECT 1 FROM json_each(resource_ids_json) WHERE value = ?)"
        params.append(row["id"])
    total = int(
        tenant.db.scalar(f"SELECT COUNT(*) FROM appointment_templates WHERE {where}", tuple(params))
    )
    page = paginate(
        lambda limit, offset: tenant.db.all(
            f"SELECT * FROM appointment_templates WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ),
        total,
        parse_page(request.query_params.get("page")),
        TEMPLATES_PAGE,
    )
    be = _be(tenant, grant)
    items = []
    for t in page.rows:
        vrs = loads(t["visit_reasons_json"])
        names = {
            v["id"]: v["name"] for v in _named(tenant, "visit_reasons", [v["id"] for v in vrs])
        }
        body: dict[str, Any] = {
            "id": t["id"],
            "name": t["name"],
            "locations": _named(tenant, "locations", loads(t["location_ids_json"])),
            "resources": _named(tenant, "resources", loads(t["resource_ids_json"])),
            "visit_reasons": [
                {
                    "id": v["id"],
                    "name": names.get(v["id"]),
                    "max_appointments_allowed": v["max_appointments_allowed"],
                }
                for v in vrs
            ],
            "business_entity_id": be,
            "description": t["description"],
            "effective_from": t["effective_from"],
            "effective_to": t["effective_to"],
            "max_appointments_allowed": t["max_appointments_allowed"],
            "start_at": t["start_at"],
            "end_at": t["end_at"],
            "occurrences": _occurrences(
                tenant,
                grant.practice_id,
                t["days"],
                t["start_at"],
                t["end_at"],
                t["effective_from"],
                t["effective_to"],
            ),
        }
        for index, day in enumerate(DAYS):
            body[f"use_{day}"] = t["days"][index] == "1"
        items.append({"appointment_template": body})
    return paged_response(request, tenant.config.base_url, items, page)


async def blockouts(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Blocked time: ISO times without a date, the practice's time zone."""
    del request
    rows = tenant.db.all(
        "SELECT * FROM appointment_blockouts WHERE practice_id = ? AND status = 'A' ORDER BY id",
        (grant.practice_id,),
    )
    tz = tenant.tz(grant.practice_id).key
    return json_response(
        [
            {
                "appointment_blockout": {
                    "id": r["id"],
                    "name": r["name"],
                    "description": r["description"],
                    "locations": _named(tenant, "locations", loads(r["location_ids_json"])),
                    "resources": _named(tenant, "resources", loads(r["resource_ids_json"])),
                    "start_at": f"{r['start_at']}:00",
                    "end_at": f"{r['end_at']}:00",
                    "effective_from": r["start_date"],
                    "effective_to": r["end_date"],
                    "timezone": tz,
                    "recurrence_id": r["recurrence_id"],
                    **{f"use_{day}": r["days"][i] == "1" for i, day in enumerate(DAYS)},
                    "occurrences": _occurrences(
                        tenant,
                        grant.practice_id,
                        r["days"],
                        r["start_at"],
                        r["end_at"],
                        r["start_date"],
                        r["end_date"],
                    ),
                }
            }
            for r in rows
        ]
    )


async def payers(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """The payer directory (global)."""
    del request, grant
    rows = tenant.db.all("SELECT * FROM payers WHERE status = 'A' ORDER BY id")
    return json_response(
        {
            "payers": [
                {
                    "id": r["id"],
                    "name": r["name"],
                    "payer_code": r["payer_code"],
                    "address": loads(r["address_json"]),
                    "phones": loads(r["phones_json"]),
                }
                for r in rows
            ]
        }
    )


def _payer_item(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "name": r["name"],
        "payer_code": r["payer_code"],
        "address": loads(r["address_json"]),
        "phones": loads(r["phones_json"]),
    }


async def payer_search(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``POST /v2/payers/search`` with ``{"name": ...}`` (a case-insensitive prefix or word)."""
    del grant
    try:
        body = loads(await request.body() or b"{}")
    except ValueError:
        raise ApiError(400, "Payer Search Failed - Request body is not valid JSON.") from None
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or len(name.strip()) < 2:
        raise ApiError(400, "Payer Search Failed - name must be at least 2 characters")
    rows = tenant.db.all(
        "SELECT * FROM payers WHERE status = 'A' AND (lower(name) LIKE ? OR lower(name) LIKE ?) "
        "ORDER BY name LIMIT 50",
        (f"{name.strip().lower()}%", f"% {name.strip().lower()}%"),
    )
    return json_response({"payers": [_payer_item(r) for r in rows]})


async def payer_plans(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``GET /v2/payers/{id}/plans``."""
    del grant
    row = active_by_id(
        tenant, "payers", request.path_params["payer_id"], label="Payer", practice_id=None
    )
    return json_response({"plans": loads(row["plans_json"])})


def routes(tenant: Tenant) -> list[BaseRoute]:
    """The list routes and their legacy aliases."""
    sched, practice = "scheduling.read", "practice.read"
    st = authed(tenant, sched, statuses)
    res = authed(tenant, sched, resources)
    vr = authed(tenant, sched, visit_reasons)
    prov = authed(tenant, practice, providers)
    loc = authed(tenant, practice, locations)
    tpl = authed(tenant, sched, templates)
    return [
        Route("/v2/appointment_statuses", st, methods=["GET"]),
        Route("/v2/appointment/statuses", st, methods=["GET"]),
        Route(
            "/v2/appointment_cancellation_reasons",
            authed(tenant, sched, cancellation_reasons),
            methods=["GET"],
        ),
        Route("/v2/appointment_resources", res, methods=["GET"]),
        Route("/v2/appointment/resources", res, methods=["GET"]),
        Route(
            "/v2/appointment_resources/{resource_id}",
            authed(tenant, sched, resource),
            methods=["GET"],
        ),
        Route(
            "/v2/appointment_resources/{resource_id}/visit_reasons",
            authed(tenant, sched, resource_visit_reasons),
            methods=["GET"],
        ),
        Route(
            "/v2/appointment_resources/{resource_id}/appointment_templates", tpl, methods=["GET"]
        ),
        Route("/v2/visit_reasons", vr, methods=["GET"]),
        Route("/v2/nature_of_visits", vr, methods=["GET"]),
        Route("/v2/appointment_templates", tpl, methods=["GET"]),
        Route("/v2/appointment_blockouts", authed(tenant, sched, blockouts), methods=["GET"]),
        Route("/v2/providers", prov, methods=["GET"]),
        Route("/v2/provider/list", prov, methods=["GET"]),
        Route("/v2/physicians/{npi}", authed(tenant, practice, physician), methods=["GET"]),
        Route("/v2/locations", loc, methods=["GET"]),
        Route("/v2/appointment/locations", loc, methods=["GET"]),
        Route("/v2/payers", authed(tenant, practice, payers), methods=["GET"]),
        Route("/v2/payers/search", authed(tenant, practice, payer_search), methods=["POST"]),
        Route(
            "/v2/payers/{payer_id}/plans", authed(tenant, practice, payer_plans), methods=["GET"]
        ),
    ]
