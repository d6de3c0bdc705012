"""The MCP server over streamable HTTP, as the API mounts it at ``/mcp``.

Each request is authenticated first, with the API's own bearer credentials (an API key or a
session token): without a valid one it is answered 401 with ``WWW-Authenticate: Bearer
resource_metadata=...`` naming the protected-resource metadata (RFC 9728, as the MCP
authorization spec asks), so a client discovers how to authenticate. The principal rides in the
request's ASGI scope to the tools.

The server runs stateless (a fresh transport per request, JSON answers): any API process behind
a load balancer answers any request, and no session outlives its request. The SDK's session
manager is made per request and run for that request only, so nothing needs the hosting app's
lifespan.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from carebridge.errors import Unauthorized
from carebridge.mcp.server import PRINCIPAL_KEY, build_server
from carebridge.services.records import Principal
from carebridge.wiring.mcp import AgentServices

METADATA_PATH = "/.well-known/oauth-protected-resource"
"""The protected-resource metadata; ``/mcp`` appended names the MCP endpoint's own."""


def base_url(scope: Scope) -> str:
    """The URL the client reached the app at (scheme, ``Host``, root path)."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    host = headers.get("host") or "localhost"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"


async def _from_scope(request: Any) -> Principal:
    principal = None if request is None else request.scope.get(PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        raise Unauthorized("no authenticated principal on this request")
    return principal


class McpEndpoint:
    """The ASGI endpoint of ``/mcp`` (see the module docstring)."""

    def __init__(self, services: AgentServices) -> None:
        self.services = services
        self.server = build_server(services, _from_scope)
        self.security = TransportSecuritySettings(enable_dns_rebinding_protection=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        try:
            principal = await self.services.principal(authorization)
        except Unauthorized as refused:
            await _unauthorized(scope, send, str(refused))
            return
        inner = dict(scope)
        inner[PRINCIPAL_KEY] = principal
        # a fresh stateless manager for this request (built synchronously, so it is this one's)
        self.server.streamable_http_app(
            stateless_http=True, json_response=True, transport_security=self.security
        )
        manager = self.server.session_manager
        async with manager.run():
            await manager.handle_request(inner, receive, send)


async def _unauthorized(scope: Scope, send: Send, detail: str) -> None:
    """401 as an RFC 9457 problem, naming the protected-resource metadata."""
    metadata = f"{base_url(scope)}{METADATA_PATH}/mcp"
    body = json.dumps(
        {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", f'Bearer resource_metadata="{metadata}"'.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def resource_metadata(base: str, scopes: list[str]) -> dict[str, Any]:
    """The MCP endpoint's protected-resource metadata (RFC 9728). carebridge issues its own
    bearer credentials: API keys (by the operator) and session tokens (``POST
    /authenticate``), so its authorization server is itself."""
    return {
        "resource": f"{base}/mcp",
        "authorization_servers": [base],
        "bearer_methods_supported": ["header"],
        "scopes_supported": scopes,
        "resource_name": "carebridge MCP server",
        "resource_documentation": f"{base}/docs",
    }
