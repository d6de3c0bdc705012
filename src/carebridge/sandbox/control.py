"""The control plane ``/_sandbox/*`` (being written)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from carebridge.sandbox import personas
from carebridge.sandbox.tenant import Tenant
from carebridge.sandbox.v2.common import json_response, loads
from carebridge.sandbox.v2.oauth import seed_refresh_token


def credentials(tenant: Tenant) -> dict[str, object]:
    """Everything a client needs to reach the tenant."""
    base = tenant.config.base_url.rstrip("/")
    clients = {r["client_id"]: r for r in tenant.db.all("SELECT * FROM oauth_clients")}
    main = clients[personas.CLIENT_ID]
    limited = clients[personas.LIMITED_CLIENT_ID]
    practices = []
    for p in tenant.db.all("SELECT * FROM practices ORDER BY id"):
        users = tenant.db.all(
            "SELECT username, password, totp_seed, email, phone FROM users "
            "WHERE practice_id = ? ORDER BY id",
            (p["id"],),
        )
        practices.append(
            {
                "id": p["id"],
                "business_entity_id": p["business_entity_id"],
                "name": p["name"],
                "timezone": p["timezone"],
                "fhir_code": p["fhir_code"],
                "refresh_token": seed_refresh_token(tenant, main["client_id"], p["id"]),
                "limited_refresh_token": seed_refresh_token(tenant, limited["client_id"], p["id"]),
                "users": [dict(u) for u in users],
            }
        )
    return {
        "base_url": base,
        "api_base_url": f"{base}/v2",
        "authorize_url": f"{base}/oauth2/authorize",
        "token_url": f"{base}/oauth2/access_token",
        "client_id": main["client_id"],
        "client_secret": main["client_secret"],
        "redirect_uri": main["redirect_uri"],
        "scopes": loads(main["scopes_json"]),
        "limited_client": {
            "client_id": limited["client_id"],
            "client_secret": limited["client_secret"],
            "scopes": loads(limited["scopes_json"]),
        },
        "practices": practices,
    }


def routes(tenant: Tenant) -> list[BaseRoute]:
    """The control-plane routes."""

    async def get_credentials(request: Request) -> Response:
        del request
        return json_response(credentials(tenant))

    return [Route("/_sandbox/credentials", get_credentials, methods=["GET"])]


def wrap(app: ASGIApp, tenant: Tenant) -> ASGIApp:
    """Wrap the app in the control plane's middleware."""
    del tenant
    return app
