"""Glue between Starlette and the v2 handlers: auth, privileges and error rendering."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from carecloud_sandbox.tenant import Grant, Tenant
from carecloud_sandbox.v2.common import ApiError, error_response, parse_int_id

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


def active_by_id(
    tenant: Tenant, table: str, ref: str, *, label: str, practice_id: int | None
) -> sqlite3.Row:
    """An active row of ``table`` by integer id, scoped to the practice when given.

    Raises:
        ApiError: 400 ``"<label> ID must be an integer."``, or 404 when absent or inactive.
    """
    number = parse_int_id(ref)
    if number is None:
        raise ApiError(400, f"{label} ID must be an integer.")
    scope = " AND practice_id = ?" if practice_id is not None else ""
    params = (number,) if practice_id is None else (number, practice_id)
    row = tenant.db.one(f"SELECT * FROM {table} WHERE id = ? AND status = 'A'{scope}", params)
    if row is None:
        raise ApiError(404, "Resource not found.")
    return row
