"""The API process: a deployment opened from the environment, served by granian or uvicorn.

``carebridge.api.main:app`` is an ASGI app whose lifespan opens the store named by
``CAREBRIDGE_DATABASE_URL`` (default ``sqlite:///carebridge.db``) with the vault key of
``CAREBRIDGE_VAULT_KEY`` (or ``CAREBRIDGE_VAULT_KEY_FILE``). Request bodies over
``CAREBRIDGE_MAX_BODY_BYTES`` (default 1 MiB) are refused with 413.

On the embedded SQLite store there is no worker: the process itself syncs every tenant every
``CAREBRIDGE_SYNC_INTERVAL`` seconds (default 300; 0 turns it off, with the feed and the
delivery loop), with the same handlers ``carebridge worker`` runs on PostgreSQL, polls each
tenant's change feed every ``CAREBRIDGE_FEED_INTERVAL`` seconds (default 2) and delivers
webhooks as soon as they are queued (``carebridge.wiring.jobs.background``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from carebridge.api import heap, problems
from carebridge.api.app import Api, create_app
from carebridge.api.middleware import DEFAULT_MAX_BODY
from carebridge.api.routes import admin as admin_routes
from carebridge.api.routes import auth as auth_routes
from carebridge.api.routes import mcp as mcp_routes
from carebridge.api.routes import sync as sync_routes
from carebridge.api.routes import webhooks as webhook_routes
from carebridge.errors import ConfigError
from carebridge.services.admin import OperatorGate
from carebridge.wiring.admin import database_url, key_ring
from carebridge.wiring.api import Deployment, open_deployment
from carebridge.wiring.jobs import background as background_loops
from carebridge.wiring.mcp import agent_services


def build(
    deployment: Deployment,
    *,
    admin_token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """The API over one deployment."""
    return create_app(
        deployment.live,
        deployment.keys,
        deployment.audit,
        sessions=deployment.session_principal,
        events=deployment.events,
        extra_routers=[
            auth_routes.router(deployment.sessions),
            admin_routes.router(deployment.admin, admin_token),
            sync_routes.router(deployment.syncs.sync_now),
            webhook_routes.router(deployment.subscriptions),
            mcp_routes.router(agent_services(deployment)),
        ],
        max_body_bytes=max_body_bytes,
        operator=OperatorGate(admin_token).check,
    )


def max_body_bytes() -> int:
    """``CAREBRIDGE_MAX_BODY_BYTES``: the largest request body accepted (default 1 MiB)."""
    text = os.environ.get("CAREBRIDGE_MAX_BODY_BYTES", "").strip()
    if not text:
        return DEFAULT_MAX_BODY
    if not text.isdigit() or int(text) < 1:
        raise ConfigError("CAREBRIDGE_MAX_BODY_BYTES must be a positive number of bytes")
    return int(text)


def app() -> FastAPI:
    """An app factory for ASGI servers (``granian --factory carebridge.api.main:app``)."""
    holder: dict[str, Deployment] = {}

    @asynccontextmanager
    async def lifespan(outer: FastAPI) -> AsyncIterator[None]:
        deployment = await open_deployment(database_url(), key_ring())
        holder["d"] = deployment
        inner = build(
            deployment,
            admin_token=os.environ.get("CAREBRIDGE_ADMIN_TOKEN"),
            max_body_bytes=max_body_bytes(),
        )
        outer.mount("/", inner)
        heap.settle()  # after start-up: what lives as long as the process leaves the GC's scans
        background: list[asyncio.Task[None]] = []
        every = float(os.environ.get("CAREBRIDGE_SYNC_INTERVAL", "300"))
        if deployment.engine.dialect.name == "sqlite" and every > 0:
            for loop in background_loops(deployment, sync_every=every):
                background.append(asyncio.create_task(loop))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await deployment.aclose()

    return shell(lifespan)


def shell(lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]]) -> FastAPI:
    """The process's outer app, into which the lifespan mounts the API. What the mount cannot
    route (a path with a line break) is answered here, still as a problem with the security
    headers."""
    outer = Api(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    problems.install(outer)
    return outer
