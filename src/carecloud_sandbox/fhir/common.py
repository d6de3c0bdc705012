"""Conventions every Connector route shares: OperationOutcome errors, ``application/fhir+json``
responses, base URLs, the practice a base stands for, and the surface's own tables.

The Connector's tables (SMART clients, tokens, assertion ids, bulk jobs) are created here with
``CREATE TABLE IF NOT EXISTS`` so the shared schema in ``sandbox/db.py`` stays untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.responses import Response

from carecloud_sandbox.tenant import Tenant

FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
FHIR_VERSION = "4.0.1"
ROOT_PATH = "/api/fhir"
R4_PATH = "/api/fhir/R4"

SCHEMA = """
CREATE TABLE IF NOT EXISTS fhir_smart_clients (
    client_id  TEXT PRIMARY KEY,
    jwks_json  TEXT NOT NULL,                          -- public keys only
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fhir_smart_tokens (
    access_token TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    scopes_json  TEXT NOT NULL,
    issued_at    TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fhir_smart_jtis (          -- client assertions already used
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE TABLE IF NOT EXISTS fhir_bulk_jobs (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    practice_id      INTEGER NOT NULL,
    request_url      TEXT NOT NULL,
    types_json       TEXT NOT NULL,
    since            TEXT,                             -- UTC instant, exclusive
    transaction_time TEXT NOT NULL,                    -- UTC instant, inclusive upper bound
    ready_at         TEXT NOT NULL,
    cancelled        INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL
);
"""


class FhirError(Exception):
    """An error answered as an OperationOutcome."""

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.headers = dict(headers or {})


def bad_request(diagnostics: str, code: str = "invalid") -> FhirError:
    """A 400 OperationOutcome."""
    return FhirError(400, code, diagnostics)


def not_found(diagnostics: str = "Resource not found") -> FhirError:
    """A 404 OperationOutcome."""
    return FhirError(404, "not-found", diagnostics)


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    """An OperationOutcome with one issue."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def fhir_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Serialize a FHIR body with orjson as ``application/fhir+json``."""
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


def error_response(err: FhirError) -> Response:
    """Render a :class:`FhirError` as an OperationOutcome."""
    return fhir_response(
        operation_outcome(err.code, err.diagnostics), status=err.status, headers=err.headers
    )


def ensure_schema(tenant: Tenant) -> None:
    """Create the Connector's tables once per tenant (idempotent)."""
    if tenant.__dict__.get("fhir_schema_ready"):
        return
    with tenant.db.lock:
        tenant.db.conn.executescript(SCHEMA)
    tenant.__dict__["fhir_schema_ready"] = True


def public_base(tenant: Tenant) -> str:
    """The public base URL of the tenant, without a trailing slash."""
    return tenant.config.base_url.rstrip("/")


def token_url(tenant: Tenant) -> str:
    """The SMART token endpoint's absolute URL (the ``aud`` of client assertions)."""
    return f"{public_base(tenant)}{ROOT_PATH}/oauth2/token"


@dataclass(frozen=True)
class Practice:
    """The practice a Connector base URL stands for."""

    id: int
    code: str
    name: str
    tz: ZoneInfo
    base: str  # absolute FHIR base URL, no trailing slash

    @property
    def group_id(self) -> str:
        """The id of the practice's Group of all patients (``grp-<code in lower case>``)."""
        return f"grp-{self.code.lower()}"


def fhir_base(tenant: Tenant, code: str) -> str:
    """The absolute FHIR base URL of a practice code."""
    return f"{public_base(tenant)}{R4_PATH}/{code}"


def practice_by_code(tenant: Tenant, code: str) -> Practice:
    """The practice of a base URL's code (exact match).

    Raises:
        FhirError: 404 for an unknown code.
    """
    row = tenant.db.one("SELECT id, name, fhir_code FROM practices WHERE fhir_code = ?", (code,))
    if row is None:
        raise not_found("Unknown practice code")
    return Practice(
        id=int(row["id"]),
        code=str(row["fhir_code"]),
        name=str(row["name"]),
        tz=tenant.tz(int(row["id"])),
        base=fhir_base(tenant, str(row["fhir_code"])),
    )


def generated_at(tenant: Tenant) -> str:
    """When the tenant was generated (the lastUpdated of rows without an ``updated_at``)."""
    return tenant.db.get_meta("generated") or tenant.now_db()
