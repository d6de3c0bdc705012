"""Glue between Starlette and the v2 handlers: auth, privileges and error rendering."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from carebridge.sandbox.tenant import Grant, Tenant
from carebridge.sandbox.v2.common import ApiError, error_response

Handler = Callable[[Request, Tenant, Grant], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def authed(tenant: Tenant, privilege: str | None, handler: Handler) -> Endpoint:
    """Wrap a handler: resolve the bearer token, check the privilege, render ApiError."""

    async def endpoint(request: Request) -> Response:
        try:
            grant = tenant.authenticate(request.headers.get("authorization"), privilege)
            return await handler(request, tenant, grant)
        except ApiError as err:
            return error_response(err)

    return endpoint


def public(tenant: Tenant, handler: Callable[[Request, Tenant], Awaitable[Response]]) -> Endpoint:
    """Wrap a handler that needs no token (the OAuth grant endpoints)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, tenant)
        except ApiError as err:
            return error_response(err)

    return endpoint
