"""The API process: a deployment opened from the environment, served by granian or uvicorn.

``carebridge.api.main:app`` is an ASGI app whose lifespan opens the store named by
``CAREBRIDGE_DATABASE_URL`` (default ``sqlite:///carebridge.db``) with the vault key of
``CAREBRIDGE_VAULT_KEY`` (or ``CAREBRIDGE_VAULT_KEY_FILE``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from carebridge.api import admin_routes, auth_routes, sync_routes
from carebridge.api.app import create_app
from carebridge.store.vault import KeyRing
from carebridge.wiring.admin import database_url
from carebridge.wiring.api import Deployment, open_deployment


def build(deployment: Deployment, *, admin_token: str | None = None) -> FastAPI:
    """The API over one deployment."""
    return create_app(
        deployment.live,
        deployment.keys,
        deployment.audit,
        sessions=deployment.session_principal,
        events=deployment.events,
        extra_routers=[
            auth_routes.router(deployment.sessions),
            admin_routes.router(deployment.onboard, admin_token),
            sync_routes.router(deployment.sync),
        ],
    )


def app() -> FastAPI:
    """An app factory for ASGI servers (``granian --factory carebridge.api.main:app``)."""
    holder: dict[str, Deployment] = {}

    @asynccontextmanager
    async def lifespan(outer: FastAPI) -> AsyncIterator[None]:
        deployment = await open_deployment(database_url(), KeyRing.from_env())
        holder["d"] = deployment
        inner = build(deployment, admin_token=os.environ.get("CAREBRIDGE_ADMIN_TOKEN"))
        outer.mount("/", inner)
        try:
            yield
        finally:
            await deployment.aclose()

    return FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
