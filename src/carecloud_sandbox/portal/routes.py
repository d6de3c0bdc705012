"""Routes of the portal surface, and its control-plane routes under ``/_sandbox``.

Every ``/portal/*`` path answers in the portal's envelope: a known path with a method it lacks
gets 405, and the catch-all at the end turns any other path into the envelope 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carecloud_sandbox.portal import charts, rcm, session
from carecloud_sandbox.portal.common import Endpoint, dispatch, error_response, not_found
from carecloud_sandbox.tenant import Tenant


async def _unknown(request: Request) -> Response:
    del request
    return error_response(not_found("resource"))


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _route(path: str, methods: dict[str, Endpoint]) -> Route:
    # Every method reaches the dispatcher, which answers the envelope 405 for the ones missing.
    return Route(path, dispatch(methods), methods=ALL_METHODS)


def routes(tenant: Tenant) -> list[BaseRoute]:
    """The surface's routes, including its control-plane routes under /_sandbox."""
    rcm.ensure_tables(tenant)
    api = "/portal/api"
    table: list[tuple[str, dict[str, Endpoint]]] = [
        (
            f"{api}/session",
            {
                "POST": session.public(tenant, session.login),
                "GET": session.portal(tenant, session.whoami),
                "DELETE": session.portal(tenant, session.logout, write=True),
            },
        ),
        (f"{api}/session/mfa/challenge", {"POST": session.public(tenant, session.challenge)}),
        (f"{api}/session/mfa/verify", {"POST": session.public(tenant, session.verify)}),
        *charts.routes(tenant, api),
        *rcm.routes(tenant, api),
    ]
    control = [
        Route("/_sandbox/outbox", session.control(tenant, session.outbox), methods=["GET"]),
        Route(
            "/_sandbox/sessions", session.control(tenant, session.list_sessions), methods=["GET"]
        ),
        Route(
            "/_sandbox/sessions/kill",
            session.control(tenant, session.kill_sessions),
            methods=["POST"],
        ),
        Route(
            "/_sandbox/sessions/force-mfa",
            session.control(tenant, session.force_mfa),
            methods=["POST"],
        ),
    ]
    return [
        *(_route(path, methods) for path, methods in table),
        *control,
        Route("/portal", _unknown, methods=ALL_METHODS),
        Route("/portal/{rest:path}", _unknown, methods=ALL_METHODS),
    ]
