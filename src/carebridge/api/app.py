"""The carebridge API: ``create_app`` composes the routers of :mod:`carebridge.api.routes`, the
middleware and the problem handlers over the read and write services.

Each route module parses a request, calls one service function and renders its answer; the
business rules (scopes, tenant checks, freshness, idempotency) live in the services.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp

from carebridge.api import problems
from carebridge.api.middleware import DEFAULT_MAX_BODY, BodyLimit, SecureHeaders
from carebridge.api.routes import audit as audit_routes
from carebridge.api.routes import billing, charts, health, patients, practice, scheduling
from carebridge.api.routes import events as event_routes
from carebridge.api.routes.common import Caller as Caller
from carebridge.api.routes.common import SessionCheck, caller
from carebridge.services.reads import Reads
from carebridge.services.records import AuditReader, EventReader, KeyStore
from carebridge.services.writes import Writes

DESCRIPTION = """\
The carebridge API: the seven seed endpoints and the rest of the surface.

Every route authenticates a bearer credential (an API key, or a session token from
``POST /authenticate``), checks its scope, scopes the query to the caller's tenant (another
tenant's ids are 404), audits PHI access before answering, and answers errors as RFC 9457
problems. Reads say how old their data is (``Age``) and accept ``max_age`` (or
``Cache-Control: max-age=N`` / ``no-cache``); writes take an ``Idempotency-Key`` and answer
their ledger state. ``RateLimit`` headers carry the tenant's upstream budget."""
"""The OpenAPI document's description of the API."""


def _query_names(dependant: Any) -> frozenset[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


async def _declared_query(request: Request) -> None:
    """Refuse query parameters the route does not declare (422): a misspelt filter
    (``update_since``) must not silently widen a read."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:  # pragma: no cover - every API route has one
        return
    # kept on the route itself: a table keyed by id() would outlive a collected route, and
    # another app's route could reuse its id
    known: frozenset[str] | None = getattr(route, "_carebridge_query_names", None)
    if known is None:
        known = _query_names(dependant)
        route._carebridge_query_names = known  # type: ignore[union-attr]
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name[:64]),
                    "msg": "not a query parameter of this route",
                }
                for name in unknown
            ]
        )


PUBLIC = frozenset({"/health", "/authenticate", "/tenants"})


async def _credential(request: Request) -> None:
    """Raise unless the request carries a valid credential (public routes need none)."""
    if request.url.path not in PUBLIC:
        await caller(request, request.headers.get("authorization"))


class Api(FastAPI):
    """FastAPI whose every answer, including the last-resort 500, carries the security
    headers (:class:`SecureHeaders` wraps the whole stack, error middleware included), and whose
    OpenAPI document says how it authenticates and which problems each operation answers."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecureHeaders(super().build_middleware_stack())

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = _document_problems(super().openapi())
        return self.openapi_schema


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem; ``errors`` names each refused field.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key (`cbk_...`), or a session token (`cbs_...`) from "
    "`POST /authenticate`; the operator token on `/tenants`.",
}
_METHODS = frozenset({"get", "post", "put", "patch", "delete"})


def _document_problems(doc: dict[str, Any]) -> dict[str, Any]:
    """Every operation's problem answers (``application/problem+json``), and the bearer
    credential as a security scheme rather than an ``Authorization`` header parameter."""
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {})["bearer"] = BEARER
    problem_content = {problems.MEDIA: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for item in doc.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            parameters = operation.get("parameters", [])
            kept = [
                p
                for p in parameters
                if not (p.get("in") == "header" and p.get("name", "").lower() == "authorization")
            ]
            authenticated = len(kept) < len(parameters)
            if kept:
                operation["parameters"] = kept
            else:
                operation.pop("parameters", None)
            statuses = {400, 404, 422}
            if authenticated:
                operation["security"] = [{"bearer": []}]
                statuses |= {401, 403, 502, 503, 504}
            if "requestBody" in operation:
                statuses |= {409, 413}
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                entry = responses.setdefault(str(status), {})
                entry.setdefault("description", problems.TITLES.get(status, "Error"))
                entry["content"] = problem_content
    return doc


def create_app(
    reads: Reads,
    keys: KeyStore,
    audit: AuditReader | None = None,
    *,
    sessions: SessionCheck | None = None,
    events: EventReader | None = None,
    writes: Writes | None = None,
    extra_routers: list[Any] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """The API over the read use cases (without a backend, they serve the store only) and the
    write use cases (by default, over the same reads).

    Request bodies over ``max_body_bytes`` are refused with 413 before they are parsed."""
    writing = writes if writes is not None else Writes(reads)
    app = Api(
        dependencies=[Depends(_declared_query)],
        title="carebridge",
        version="0.1.0",
        openapi_url="/openapi.json",
        description=DESCRIPTION,
    )
    problems.install(app, credential=_credential)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.state.keys = keys
    app.state.sessions = sessions
    # the order of the OpenAPI document's paths: the reads, then the writes, then the logs
    for router in (
        health.router(reads),
        patients.router(reads),
        practice.router(reads),
        scheduling.router(reads),
        charts.router(reads),
        billing.router(reads),
        scheduling.write_router(writing),
        charts.write_router(writing),
        billing.write_router(writing),
    ):
        app.include_router(router)
    if audit is not None:
        app.include_router(audit_routes.router(audit))
    if events is not None:
        app.include_router(event_routes.router(events, reads))
    for router in extra_routers or []:
        app.include_router(router)
    return app
