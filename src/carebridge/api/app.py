"""The carebridge API: ``create_app`` composes the routers of :mod:`carebridge.api.routes`, the
middleware and the problem handlers over the read and write services.

Each route module parses a request, calls one service function and renders its answer; the
business rules (scopes, tenant checks, freshness, idempotency) live in the services.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fastapi.routing
import fastapi_offline
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from carebridge.api import problems
from carebridge.api.edge import Edge, install_log_ids
from carebridge.api.middleware import DEFAULT_MAX_BODY, BodyLimit, SecureHeaders
from carebridge.api.ratelimit import Limiter, from_environment
from carebridge.api.routes import audit as audit_routes
from carebridge.api.routes import billing, charts, health, patients, practice, scheduling
from carebridge.api.routes import events as event_routes
from carebridge.api.routes.common import Caller as Caller
from carebridge.api.routes.common import (
    SessionCheck,
    declared_query,
    principal_of,
    refuses_undeclared_query,
)
from carebridge.contract import VERSION
from carebridge.contract.problems import Problem
from carebridge.errors import Unauthorized
from carebridge.services.reads import Reads
from carebridge.services.records import AuditReader, EventReader, KeyStore
from carebridge.services.writes import Writes

DESCRIPTION = """\
carebridge puts one API in front of a practice's CareCloud tenant: patients, the schedule,
charts and the revenue cycle, read from a local store that stays in step with the upstream,
and written through to it with idempotency keys.

**Authenticate** every call with `Authorization: Bearer <API key>` (or a session token from
`POST /authenticate`); the Authorize button takes an API key. Each route needs a scope
(`patient.read`, `appointment.write`...). Another tenant's ids answer 404.

**Conventions** (docs/api-conventions.md): ids are a prefix and an opaque body (`pat_...`);
instants are RFC 3339 UTC (`2026-11-24T15:00:00Z`); lists answer `{data, has_more,
next_cursor}`; amounts are decimal strings with a `currency`; errors are RFC 9457 problems
(`application/problem+json`) naming each refused field and its rule, with the answer's
`X-Request-Id`. `RateLimit` headers are your key's own quota (429 + `Retry-After` over it);
`X-Upstream-RateLimit-*` is the tenant's upstream budget. Reads answer `Age` and accept
`max_age`; writes take an `Idempotency-Key`.

**Versions**: this is contract v1, on these paths and identically under `/v1`;
`Carebridge-Version: 0` asks for the few shapes before v1 (ADR 0015)."""
"""The OpenAPI document's description of the API."""


PUBLIC = frozenset({"/health", "/authenticate", "/tenants", "/docs", "/redoc", "/openapi.json"})
OPERATOR = frozenset({"/tenants"})
"""Routes that take the operator token rather than a tenant's credential."""


async def _credential(request: Request) -> None:
    """Raise unless the request carries a valid credential (public routes need none; the
    operator's routes need the operator token)."""
    authorization = request.headers.get("authorization")
    if request.url.path in OPERATOR:
        operator: Callable[[str | None], object] | None = getattr(
            request.app.state, "operator", None
        )
        if operator is None:
            raise Unauthorized("no operator token is configured")
        operator(authorization)
    elif request.url.path not in PUBLIC:
        await principal_of(request, authorization)


class Api(FastAPI):
    """FastAPI whose every answer, including the last-resort 500, carries the security
    headers (:class:`SecureHeaders` wraps the whole stack, error middleware included), and whose
    OpenAPI document says how it authenticates and which problems each operation answers."""

    def build_middleware_stack(self) -> ASGIApp:
        return Edge(SecureHeaders(super().build_middleware_stack()))

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = _document_problems(super().openapi())
        return self.openapi_schema


PROBLEM_SCHEMA: dict[str, Any] = Problem.model_json_schema(
    ref_template="#/components/schemas/{model}"
)
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key (`cbk_...`), or a session token (`cbs_...`) from "
    "`POST /authenticate`; the operator token on `/tenants`.",
}
_METHODS = frozenset({"get", "post", "put", "patch", "delete"})
_UNUSED = ("HTTPValidationError", "ValidationError")
"""FastAPI's default 422 schemas: the API answers problems instead."""

_PROBLEM_DESCRIPTIONS = {
    400: "Malformed: the body is not JSON, the cursor was not issued by the API, or a header "
    "is malformed.",
    401: "No credential, or one that is not valid.",
    403: "The credential lacks the scope this route needs.",
    404: "No such object for your tenant.",
    409: "A conflict: the slot is taken, the object exists, or the Idempotency-Key is in flight.",
    413: "The body is over the size limit.",
    422: "A field breaks a rule; `errors` names each field and rule.",
    429: "Your key's rate limit is spent; retry after `Retry-After` seconds.",
    502: "The upstream failed or refused carebridge's credentials.",
    503: "The upstream is rate limiting carebridge or is not configured; see `Retry-After`.",
    504: "The upstream did not answer in time.",
}


def _document_problems(doc: dict[str, Any]) -> dict[str, Any]:
    """Every operation's problem answers (``application/problem+json``, per status it can
    answer), the bearer credential as a security scheme rather than an ``Authorization``
    header parameter, and none of FastAPI's default 422 schemas."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _UNUSED:
        schemas.pop(name, None)
    problem = dict(PROBLEM_SCHEMA)  # every app's document gets the whole schema, $defs included
    for name, schema in problem.pop("$defs", {}).items():
        schemas[name] = schema
    schemas["Problem"] = problem
    components.setdefault("securitySchemes", {})["bearer"] = BEARER
    problem_content = {problems.MEDIA: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, item in doc.get("paths", {}).items():
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
            statuses = {400, 422}
            if authenticated:
                operation["security"] = [{"bearer": []}]
                statuses |= {401, 403, 404, 429, 502, 503, 504}
            if "requestBody" in operation:
                statuses |= {409, 413}
            if path == "/authenticate":
                statuses |= {401, 423}
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                entry = responses.setdefault(str(status), {})
                entry["description"] = _PROBLEM_DESCRIPTIONS.get(
                    status, entry.get("description") or problems.TITLES.get(status, "Error")
                )
                entry["content"] = problem_content
    return doc


_DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
"""Swagger UI's and ReDoc's files, as the fastapi-offline package ships them."""
_ASSETS_URL = "/docs-assets"


def _self_hosted_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI, whose Authorize button takes an API key) and ``/redoc``, from the
    package's own files: no CDN, so they render on an air-gapped network."""
    app.mount(_ASSETS_URL, StaticFiles(directory=_DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(declared_query)])
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="openapi.json",
            title="carebridge API",
            swagger_js_url=f"{_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False, dependencies=[Depends(declared_query)])
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="openapi.json",
            title="carebridge API",
            redoc_js_url=f"{_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )


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
    limiter: Limiter | None = None,
    operator: Callable[[str | None], object] | None = None,
) -> FastAPI:
    """The API over the read use cases (without a backend, they serve the store only) and the
    write use cases (by default, over the same reads).

    Request bodies over ``max_body_bytes`` are refused with 413 before they are parsed. Each
    key's own rate limit is ``limiter``'s (default: ``CAREBRIDGE_RATE_LIMIT``, 600 a minute).
    ``operator`` checks the operator token of ``/tenants`` before a refused request is
    validated (without it, those routes answer 401)."""
    writing = writes if writes is not None else Writes(reads)
    app = Api(
        title="carebridge",
        version=f"{VERSION}.0.0",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        description=DESCRIPTION,
    )
    install_log_ids()
    _self_hosted_docs(app)
    app.state.limiter = limiter if limiter is not None else from_environment()
    app.state.operator = operator
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
    _every_route_checks_its_query(app)
    return app


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes, with the dependencies they are served with: through the routers
    they were included from, where FastAPI keeps them so (``iter_route_contexts``)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:  # pragma: no cover - a FastAPI that copies included routes
        yield from (route for route in app.routes if isinstance(route, APIRoute))
        return
    for context in contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _every_route_checks_its_query(app: FastAPI) -> None:
    """Raise unless each route refuses undeclared query parameters: through its caller
    (:data:`Caller`) or, without one, :func:`declared_query` among its dependencies. (One
    app-wide dependency would cost every request a second dependency solve.)"""
    missing = sorted(
        f"{sorted(route.methods or ())} {route.path}"
        for route in _api_routes(app)
        if not refuses_undeclared_query(route.dependant)
    )
    if missing:
        raise TypeError(
            "routes without Caller nor Depends(declared_query) (undeclared query parameters "
            f"would pass): {', '.join(missing)}"
        )
