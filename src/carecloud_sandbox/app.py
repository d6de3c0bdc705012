"""The emulated tenant as one ASGI application."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from carecloud_sandbox import control
from carecloud_sandbox.fhir import routes as fhir_routes
from carecloud_sandbox.portal import routes as portal_routes
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2 import appointments, availability, lists, oauth, patients
from carecloud_sandbox.v2.common import UNRECOVERABLE, json_response


async def _http_error(request: Request, exc: Exception) -> Response:
    del request
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return json_response({"error": "Resource not found."}, status=404)
    if status == 405:
        return json_response({"error": "Method not allowed."}, status=405)
    return json_response({"error": UNRECOVERABLE}, status=status)


async def _unrecoverable(request: Request, exc: Exception) -> Response:
    del request, exc
    return json_response({"error": UNRECOVERABLE}, status=500)


def build_app(tenant: Tenant) -> ASGIApp:
    """Assemble the tenant's surfaces and wrap them in the control plane's middleware."""
    routes = [
        *oauth.routes(tenant),
        *patients.routes(tenant),
        *appointments.routes(tenant),
        *availability.routes(tenant),
        *lists.routes(tenant),
        *portal_routes.routes(tenant),
        *fhir_routes.routes(tenant),
        *control.routes(tenant),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _unrecoverable},
    )
    app.state.tenant = tenant
    return control.wrap(app, tenant)
