"""The emulated tenant as one ASGI application."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import PARAM_REGEX, BaseRoute, Match, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

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


def _segment(path: str) -> str:
    return path[1:].split("/", 1)[0]


def _route_segment(route: BaseRoute) -> str | None:
    """The first path segment every path the route matches has, or None when it varies."""
    if not isinstance(route, Route):
        return None
    param = PARAM_REGEX.search(route.path)
    head = route.path if param is None else route.path[: param.start()]
    if param is not None and "/" not in head[1:]:
        return None  # a parameter inside the first segment
    return _segment(head)


class IndexedRouter(Router):
    """Starlette's router that asks only the routes a path's first segment can match.

    A route's path pattern is anchored and starts with its literal text up to the first
    parameter, so a route whose first segment differs from the path's answers ``NONE``:
    skipping it changes nothing. The routes asked keep their order, so the first full match
    (or else the first partial one, a 405) is the one Starlette's scan of every route finds.
    When nothing matches, Starlette's own scan runs (trailing-slash redirect, then 404). The
    index is built once, from the routes given.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        super().__init__(routes=list(routes))
        keys = [_route_segment(route) for route in self.routes]
        self._anywhere = [r for r, key in zip(self.routes, keys, strict=True) if key is None]
        self._by_segment = {
            segment: [r for r, key in zip(self.routes, keys, strict=True) if key in (segment, None)]
            for segment in {key for key in keys if key is not None}
        }

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch as :class:`Router` does, asking only the candidate routes."""
        if scope["type"] != "http" or scope.get("root_path"):
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        partial: BaseRoute | None = None
        partial_scope: Scope = {}
        for route in self._by_segment.get(_segment(scope["path"]), self._anywhere):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        await super().app(scope, receive, send)


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
    app.router = IndexedRouter(routes)
    app.state.tenant = tenant
    return control.wrap(app, tenant)
