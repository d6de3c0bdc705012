"""Routes of the Connector surface (FHIR R4 behind SMART backend services).

| route | what it does |
|---|---|
| ``GET /metadata``, ``GET /.well-known/smart-configuration`` | discovery at the host root |
| ``POST /api/fhir/oauth2/token`` | client credentials with a ``private_key_jwt`` assertion |
| ``GET {base}/metadata``, ``GET {base}/.well-known/smart-configuration`` | the same per practice |
| ``GET {base}/{Type}``, ``POST {base}/{Type}/_search``, ``GET {base}/{Type}/{id}`` | search, read |
| ``GET {base}/Group/grp-<code>`` and ``.../$export``, ``GET {base}/Patient/$export`` | Bulk Data |
| ``GET|DELETE {base}/bulkstatus/{job}``, ``GET {base}/bulkfiles/{job}/{Type}.ndjson`` | Bulk Data |
| ``POST|GET /_sandbox/smart/clients``, ``DELETE /_sandbox/smart/clients/{id}`` | control plane |

``{base}`` is ``/api/fhir/R4/{practices.fhir_code}``. Every error under ``/api/fhir`` is an
OperationOutcome, unknown paths included (the catch-all route is last).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carecloud_sandbox.fhir import auth, bulk
from carecloud_sandbox.fhir.capability import capability_statement
from carecloud_sandbox.fhir.catalog import TYPES, TypeSpec
from carecloud_sandbox.fhir.common import (
    R4_PATH,
    ROOT_PATH,
    FhirError,
    Practice,
    bad_request,
    ensure_schema,
    error_response,
    fhir_response,
    not_found,
    practice_by_code,
    public_base,
)
from carecloud_sandbox.fhir.ids import ensure_ids
from carecloud_sandbox.fhir.search import read, search_bundle
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2.common import ApiError, json_response
from carecloud_sandbox.v2.common import error_response as plain_error

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Tenant], Awaitable[Response]]
MAX_SEARCH_BODY = 64_000
BINARY_PLACEHOLDER = b"%PDF-1.4\n% synthetic sandbox document\n%%EOF\n"
# Every route accepts every method, so a wrong one gets an OperationOutcome 405 (not Starlette's).
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _endpoint(tenant: Tenant, methods: tuple[str, ...], handler: Handler) -> Endpoint:
    """Wrap a handler: method check, OperationOutcome for every error, never a bare 500."""

    async def endpoint(request: Request) -> Response:
        try:
            if request.method not in methods:
                raise FhirError(405, "not-supported", f"Method {request.method} is not allowed")
            ensure_schema(tenant)
            return await handler(request, tenant)
        except FhirError as err:
            return error_response(err)
        except Exception:  # noqa: BLE001 - the surface answers OperationOutcome, never a stack
            return error_response(FhirError(500, "exception", "Internal error"))

    return endpoint


def _grant(request: Request, tenant: Tenant) -> auth.SmartGrant:
    grant = auth.authenticate(tenant, request.headers.get("authorization"))
    ensure_ids(tenant)
    return grant


def _practice(request: Request, tenant: Tenant) -> Practice:
    return practice_by_code(tenant, str(request.path_params["code"]))


def _self_url(request: Request, tenant: Tenant) -> str:
    url = f"{public_base(tenant)}{request.url.path}"
    return f"{url}?{request.url.query}" if request.url.query else url


def _spec(name: str) -> TypeSpec:
    spec = TYPES.get(name)
    if spec is None:
        raise not_found(f"Resource type '{name[:64]}' is not supported")
    return spec


# --- discovery --------------------------------------------------------------------------------


async def root_metadata(request: Request, tenant: Tenant) -> Response:
    """The CapabilityStatement at the host root."""
    del request
    return fhir_response(capability_statement(tenant, f"{public_base(tenant)}{R4_PATH}"))


async def practice_metadata(request: Request, tenant: Tenant) -> Response:
    """The CapabilityStatement of one practice base."""
    practice = _practice(request, tenant)
    return fhir_response(capability_statement(tenant, practice.base))


async def smart_config(request: Request, tenant: Tenant) -> Response:
    """``.well-known/smart-configuration`` (root or practice base)."""
    if "code" in request.path_params:
        _practice(request, tenant)
    return json_response(auth.smart_configuration(tenant))


# --- read and search --------------------------------------------------------------------------


async def search_type(request: Request, tenant: Tenant) -> Response:
    """``GET {base}/{Type}``: a searchset Bundle."""
    grant = _grant(request, tenant)
    practice = _practice(request, tenant)
    spec = _spec(str(request.path_params["rtype"]))
    auth.require(grant, spec.name)
    items = list(request.query_params.multi_items())
    return fhir_response(search_bundle(tenant, practice, spec, items, _self_url(request, tenant)))


async def search_post(request: Request, tenant: Tenant) -> Response:
    """``POST {base}/{Type}/_search`` with form-encoded parameters (and/or a query string)."""
    grant = _grant(request, tenant)
    practice = _practice(request, tenant)
    spec = _spec(str(request.path_params["rtype"]))
    auth.require(grant, spec.name)
    raw = await request.body()
    if len(raw) > MAX_SEARCH_BODY:
        raise FhirError(413, "too-costly", "The search body is too large")
    try:
        form = parse_qsl(raw.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise bad_request("The search body must be form-encoded") from None
    items = [*request.query_params.multi_items(), *form]
    url = f"{practice.base}/{spec.name}"
    return fhir_response(search_bundle(tenant, practice, spec, items, url))


async def read_resource(request: Request, tenant: Tenant) -> Response:
    """``GET {base}/{Type}/{id}``."""
    grant = _grant(request, tenant)
    practice = _practice(request, tenant)
    spec = _spec(str(request.path_params["rtype"]))
    auth.require(grant, spec.name)
    return fhir_response(read(tenant, practice, spec, str(request.path_params["rid"])))


async def read_group(request: Request, tenant: Tenant) -> Response:
    """``GET {base}/Group/{id}``: the practice's one Group."""
    grant = _grant(request, tenant)
    practice = _practice(request, tenant)
    auth.require(grant, "Group")
    return fhir_response(bulk.group(tenant, practice, str(request.path_params["gid"])))


async def read_binary(request: Request, tenant: Tenant) -> Response:
    """``GET {base}/Binary/doc-<id>``: a placeholder of the document's content."""
    grant = _grant(request, tenant)
    practice = _practice(request, tenant)
    if not (grant.allows("Binary") or grant.allows("DocumentReference")):
        auth.require(grant, "Binary")
    match = re.fullmatch(r"doc-(\d{1,18})", str(request.path_params["bid"]))
    row = None
    if match is not None:
        row = tenant.db.one(
            "SELECT id, content_type FROM documents WHERE id = ? AND practice_id = ?",
            (int(match.group(1)), practice.id),
        )
    if row is None:
        raise not_found("Binary not found")
    return fhir_response(
        {
            "resourceType": "Binary",
            "id": f"doc-{row['id']}",
            "contentType": row["content_type"],
            "data": base64.b64encode(BINARY_PLACEHOLDER).decode(),
        }
    )


# --- bulk -------------------------------------------------------------------------------------


async def group_export(request: Request, tenant: Tenant) -> Response:
    """``GET {base}/Group/{id}/$export``."""
    grant = _grant(request, tenant)
    practice = _practice(request, tenant)
    if str(request.path_params["gid"]) != practice.group_id:
        raise not_found("Group not found")
    return bulk.kickoff(request, tenant, practice, grant)


async def patient_export(request: Request, tenant: Tenant) -> Response:
    """``GET {base}/Patient/$export``."""
    grant = _grant(request, tenant)
    practice = _practice(request, tenant)
    return bulk.kickoff(request, tenant, practice, grant)


async def export_status(request: Request, tenant: Tenant) -> Response:
    """``GET`` polls, ``DELETE`` cancels."""
    grant = _grant(request, tenant)
    practice = _practice(request, tenant)
    job_id = str(request.path_params["job"])
    if request.method == "DELETE":
        return bulk.cancel(tenant, practice, grant, job_id)
    return bulk.status(tenant, practice, grant, job_id)


async def export_file(request: Request, tenant: Tenant) -> Response:
    """One NDJSON output file."""
    grant = _grant(request, tenant)
    practice = _practice(request, tenant)
    return bulk.download(
        tenant, practice, grant, str(request.path_params["job"]), str(request.path_params["name"])
    )


async def unknown(request: Request, tenant: Tenant) -> Response:
    """Anything else under ``/api/fhir``."""
    del request, tenant
    raise not_found("Unknown path")


async def token(request: Request, tenant: Tenant) -> Response:
    """The SMART token endpoint."""
    return await auth.token_endpoint(request, tenant)


# --- control plane ----------------------------------------------------------------------------


def _control(tenant: Tenant) -> list[BaseRoute]:
    async def clients(request: Request) -> Response:
        try:
            if request.method == "GET":
                return json_response({"clients": auth.list_clients(tenant)})
            raw = await request.body()
            try:
                body = orjson.loads(raw or b"{}")
            except orjson.JSONDecodeError:
                raise ApiError(400, "body must be JSON") from None
            if not isinstance(body, dict):
                raise ApiError(400, "body must be a JSON object")
            try:
                registered = auth.register_client(tenant, body)
            except ValueError as err:
                raise ApiError(400, str(err)) from None
            return json_response(registered, status=201)
        except ApiError as err:
            return plain_error(err)

    async def client(request: Request) -> Response:
        if not auth.delete_client(tenant, str(request.path_params["client_id"])):
            return plain_error(ApiError(404, "unknown client"))
        return Response(status_code=204)

    return [
        Route("/_sandbox/smart/clients", clients, methods=["GET", "POST"]),
        Route("/_sandbox/smart/clients/{client_id}", client, methods=["DELETE"]),
    ]


def routes(tenant: Tenant) -> list[BaseRoute]:
    """The surface's routes, including its control-plane routes under /_sandbox."""
    ensure_schema(tenant)
    base = R4_PATH + "/{code}"
    get = ("GET", "HEAD")

    def route(path: str, handler: Handler, methods: tuple[str, ...] = get) -> Route:
        return Route(path, _endpoint(tenant, methods, handler), methods=ALL_METHODS)

    return [
        route("/metadata", root_metadata),
        route("/.well-known/smart-configuration", smart_config),
        route(ROOT_PATH + "/oauth2/token", token, ("POST",)),
        route(base + "/metadata", practice_metadata),
        route(base + "/.well-known/smart-configuration", smart_config),
        route(base + "/Patient/$export", patient_export),
        route(base + "/Group/{gid}/$export", group_export),
        route(base + "/Group/{gid}", read_group),
        route(base + "/Binary/{bid}", read_binary),
        route(base + "/bulkstatus/{job}", export_status, ("GET", "DELETE")),
        route(base + "/bulkfiles/{job}/{name}", export_file),
        route(base + "/{rtype}/_search", search_post, ("POST",)),
        route(base + "/{rtype}", search_type),
        route(base + "/{rtype}/{rid}", read_resource),
        *_control(tenant),
        route(ROOT_PATH + "{rest:path}", unknown, tuple(ALL_METHODS)),
    ]
