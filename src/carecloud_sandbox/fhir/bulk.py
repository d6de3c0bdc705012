"""Bulk Data export (FHIR Bulk Data Access 2.0, async pattern) of one practice.

``GET {base}/Group/grp-<code>/$export`` and ``GET {base}/Patient/$export`` need
``Prefer: respond-async`` and answer 202 with a ``Content-Location`` status URL
(``{base}/bulkstatus/<job>``). Polling it answers 202 with ``X-Progress`` and ``Retry-After``
until ``config.bulk_export_seconds`` of tenant-clock time have passed, then 200 with the
manifest. Files are ``{base}/bulkfiles/<job>/<Type>.ndjson`` and need the bearer token of the
client that started the export; ``DELETE`` on the status URL cancels.

The export is a snapshot as of its ``transactionTime``: a file holds the resources whose
``meta.lastUpdated`` is at most that instant (and after ``_since`` when given), so a later
export with ``_since=<transactionTime>`` picks up exactly what changed in between.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from carecloud_sandbox.fhir.auth import SmartGrant, require
from carecloud_sandbox.fhir.catalog import EXPORT_TYPES, TYPES
from carecloud_sandbox.fhir.common import (
    NDJSON,
    Practice,
    bad_request,
    fhir_response,
    not_found,
    operation_outcome,
    public_base,
)
from carecloud_sandbox.fhir.ids import IdMap
from carecloud_sandbox.fhir.search import Query, count_matches, iterate, make_ctx, parse_date
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2.common import dumps, from_db_instant, loads, to_db_instant

OUTPUT_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
KICKOFF_PARAMS = {"_type", "_since", "_outputFormat"}


def _export_types(grant: SmartGrant, raw: str | None) -> list[str]:
    if raw is None:
        allowed = [t for t in EXPORT_TYPES if grant.allows(t)]
        if not allowed:
            require(grant, "Patient")
        return allowed
    names = [t.strip() for t in raw.split(",") if t.strip()]
    if not names:
        raise bad_request("_type is empty")
    for name in names:
        if name not in TYPES:
            raise bad_request(f"_type names an unsupported resource type: {name[:64]}")
    require(grant, *names)
    return list(dict.fromkeys(names))


def kickoff(request: Request, tenant: Tenant, practice: Practice, grant: SmartGrant) -> Response:
    """Start an export of the practice's patients (the Group or Patient level)."""
    prefer = request.headers.get("prefer", "")
    if "respond-async" not in [p.strip().lower() for p in prefer.split(",")]:
        raise bad_request("The kick-off request needs the header 'Prefer: respond-async'")
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in KICKOFF_PARAMS:
            raise bad_request(f"Export parameter '{name[:64]}' is not supported", "not-supported")
        if name in params:
            raise bad_request(f"Export parameter '{name}' is repeated")
        params[name] = value
    output_format = params.get("_outputFormat")
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise bad_request("_outputFormat must be application/fhir+ndjson", "not-supported")
    types = _export_types(grant, params.get("_type"))
    since: str | None = None
    if "_since" in params:
        try:
            since = to_db_instant(parse_date(params["_since"], practice.tz)[0])
        except ValueError:
            raise bad_request("_since must be a FHIR instant") from None
    now = tenant.now()
    job_id = uuid.uuid4().hex
    ready_at = now + timedelta(seconds=max(int(tenant.config.bulk_export_seconds), 0))
    request_url = f"{public_base(tenant)}{request.url.path}"
    if request.url.query:
        request_url += f"?{request.url.query}"
    with tenant.db.transaction() as conn:
        conn.execute(
            "INSERT INTO fhir_bulk_jobs(id, client_id, practice_id, request_url, types_json, "
            "since, transaction_time, ready_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                grant.client_id,
                practice.id,
                request_url,
                dumps(types),
                since,
                to_db_instant(now),
                to_db_instant(ready_at),
                to_db_instant(now),
            ),
        )
    return fhir_response(
        operation_outcome("informational", "Export started", severity="information"),
        status=202,
        headers={"Content-Location": f"{practice.base}/bulkstatus/{job_id}"},
    )


def _job(tenant: Tenant, practice: Practice, grant: SmartGrant, job_id: str) -> Any:
    row = tenant.db.one(
        "SELECT * FROM fhir_bulk_jobs WHERE id = ? AND practice_id = ? AND client_id = ?",
        (job_id, practice.id, grant.client_id),
    )
    if row is None or row["cancelled"]:
        raise not_found("Export job not found")
    return row


def _query(practice: Practice, job: Any) -> Query:
    query = Query()
    query.add("(s.practice_id = ? OR s.practice_id IS NULL)", practice.id)
    query.add("s.lu <= ?", job["transaction_time"])
    if job["since"] is not None:
        query.add("s.lu > ?", job["since"])
    return query


def status(tenant: Tenant, practice: Practice, grant: SmartGrant, job_id: str) -> Response:
    """Poll an export: 202 with progress until ready, then 200 with the manifest."""
    job = _job(tenant, practice, grant, job_id)
    now = tenant.now()
    ready_at = from_db_instant(job["ready_at"])
    if now < ready_at:
        started = from_db_instant(job["created_at"])
        total = max((ready_at - started).total_seconds(), 1.0)
        done = int(100 * (now - started).total_seconds() / total)
        remaining = max(1, math.ceil((ready_at - now).total_seconds()))
        return Response(
            status_code=202,
            headers={"X-Progress": f"in-progress ({done}%)", "Retry-After": str(remaining)},
        )
    output = []
    query = _query(practice, job)
    for name in loads(job["types_json"]):
        count = count_matches(tenant, TYPES[name], query)
        if count:
            output.append(
                {
                    "type": name,
                    "url": f"{practice.base}/bulkfiles/{job_id}/{name}.ndjson",
                    "count": count,
                }
            )
    manifest = {
        "transactionTime": job["transaction_time"],
        "request": job["request_url"],
        "requiresAccessToken": True,
        "output": output,
        "error": [],
    }
    return Response(orjson.dumps(manifest), media_type="application/json")


def cancel(tenant: Tenant, practice: Practice, grant: SmartGrant, job_id: str) -> Response:
    """Cancel an export (its status and files answer 404 afterwards)."""
    job = _job(tenant, practice, grant, job_id)
    with tenant.db.transaction() as conn:
        conn.execute("UPDATE fhir_bulk_jobs SET cancelled = 1 WHERE id = ?", (job["id"],))
    return fhir_response(
        operation_outcome("informational", "Export cancelled", severity="information"),
        status=202,
    )


def download(
    tenant: Tenant, practice: Practice, grant: SmartGrant, job_id: str, file_name: str
) -> Response:
    """One NDJSON file of a finished export, streamed."""
    job = _job(tenant, practice, grant, job_id)
    if tenant.now() < from_db_instant(job["ready_at"]):
        raise not_found("The export is not complete yet")
    name = file_name.removesuffix(".ndjson")
    if name not in loads(job["types_json"]) or not file_name.endswith(".ndjson"):
        raise not_found("No such export file")
    require(grant, name)
    spec = TYPES[name]
    query = _query(practice, job)
    ctx = make_ctx(tenant, practice, IdMap(tenant))

    def lines() -> Iterator[bytes]:
        batch: list[bytes] = []
        for resource in iterate(tenant, spec, query, ctx, chunk=1000):
            batch.append(orjson.dumps(resource) + b"\n")
            if len(batch) >= 200:
                yield b"".join(batch)
                batch = []
        if batch:
            yield b"".join(batch)

    return StreamingResponse(lines(), media_type=NDJSON)


def group(tenant: Tenant, practice: Practice, group_id: str) -> dict[str, Any]:
    """The practice's Group of all its patients (the target of a group-level export)."""
    if group_id != practice.group_id:
        raise not_found("Group not found")
    ids = IdMap(tenant)
    rows = tenant.db.all(
        "SELECT id FROM patients WHERE practice_id = ? ORDER BY internal_id", (practice.id,)
    )
    members = []
    for row in rows:
        fid = ids.get("Patient", "patients", row["id"])
        if fid is not None:
            members.append({"entity": {"reference": f"Patient/{fid}"}})
    org = ids.get("Organization", "practices", practice.id)
    updated = tenant.db.scalar(
        "SELECT MAX(updated_at) FROM patients WHERE practice_id = ?", (practice.id,)
    )
    body: dict[str, Any] = {
        "resourceType": "Group",
        "id": practice.group_id,
        "meta": {"lastUpdated": updated or tenant.now_db()},
        "identifier": [{"system": "urn:carecloud:connector:group", "value": practice.group_id}],
        "active": True,
        "type": "person",
        "actual": True,
        "name": f"All patients of {practice.name}",
        "quantity": len(members),
    }
    if org is not None:
        body["managingEntity"] = {"reference": f"Organization/{org}"}
    if members:
        body["member"] = members
    return body
