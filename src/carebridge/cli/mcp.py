"""``carebridge mcp``: the MCP server over stdio, for desktop clients.

It serves the store of ``CAREBRIDGE_DATABASE_URL`` with the vault key of
``CAREBRIDGE_VAULT_KEY`` (as ``carebridge serve`` does), as the principal of
``CAREBRIDGE_API_KEY`` or ``CAREBRIDGE_SESSION_TOKEN``; the credential is checked again on
every call, so a revoked key or an ended session stops working at once.
"""

from __future__ import annotations

import os
from typing import Any

from carebridge.cli.common import fail, ring, run
from carebridge.mcp.server import build_server
from carebridge.services.records import Principal
from carebridge.wiring.admin import database_url
from carebridge.wiring.api import open_deployment
from carebridge.wiring.mcp import agent_services

CREDENTIALS = ("CAREBRIDGE_API_KEY", "CAREBRIDGE_SESSION_TOKEN")


def mcp_command() -> None:
    """Serve the MCP server over stdio (the credential comes from CAREBRIDGE_API_KEY or
    CAREBRIDGE_SESSION_TOKEN)."""
    token = next((os.environ[n].strip() for n in CREDENTIALS if os.environ.get(n, "").strip()), "")
    if not token:
        raise fail("set CAREBRIDGE_API_KEY (or CAREBRIDGE_SESSION_TOKEN) to the agent's credential")
    keys = ring()
    url = database_url()

    async def serve() -> None:
        deployment = await open_deployment(url, keys)
        try:
            services = agent_services(deployment)
            await services.principal(f"Bearer {token}")  # a bad credential stops here

            async def caller(request: Any) -> Principal:
                del request  # stdio: one credential for the whole process
                return await services.principal(f"Bearer {token}")

            await build_server(services, caller).run_stdio_async()
        finally:
            await deployment.aclose()

    run(serve)
