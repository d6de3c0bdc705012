"""The MCP server's HTTP surface: the streamable HTTP endpoint at ``/mcp``, its
protected-resource metadata, a person's approval of an agent's pending write, and the per-key
approval policy."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, StrictBool

from carebridge.api.routes.common import Caller, declared_query, json_response
from carebridge.contract.time import Timestamp, rfc3339
from carebridge.mcp.http import METADATA_PATH, McpEndpoint, base_url, resource_metadata
from carebridge.services.keys import SCOPES
from carebridge.wiring.mcp import AgentServices

TokenId = Annotated[str, Path(pattern=r"^mct_[0-9a-f]{24}$")]


class Approved(BaseModel):
    """An approved confirmation: the agent's confirmed call may now run the write."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "token_id": "mct_3f9a1c2b7d4e5f60718293a4",
                    "operation": "create_appointment",
                    "requested_by": "key_agent",
                    "approved_by": "key_frontdesk",
                    "expires_at": "2026-11-24T15:10:00Z",
                }
            ]
        },
    )

    token_id: str
    operation: str
    requested_by: str
    approved_by: str
    expires_at: Timestamp


class Policy(BaseModel):
    """Whether a key's (or user's) agent writes wait for a person's approval."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"needs_person": True}]}
    )

    needs_person: StrictBool  # true or false: 0, 1 or "yes" are refused, not coerced


def router(services: AgentServices) -> APIRouter:
    """The ``/mcp`` endpoint and its companion routes."""
    routes = APIRouter(tags=["mcp"])
    endpoint = McpEndpoint(services)
    # an ASGI app as the endpoint: Starlette serves it as it is (not as a request handler)
    routes.add_route(
        "/mcp",
        endpoint,  # type: ignore[arg-type]
        methods=["GET", "POST", "DELETE"],
        include_in_schema=False,
    )

    async def metadata(request: Request) -> Response:
        """The MCP endpoint's protected-resource metadata (RFC 9728)."""
        return json_response(resource_metadata(base_url(request.scope), sorted(SCOPES)))

    for path in (METADATA_PATH, f"{METADATA_PATH}/mcp"):
        routes.add_api_route(
            path,
            metadata,
            methods=["GET"],
            include_in_schema=False,
            dependencies=[Depends(declared_query)],
        )

    @routes.post(
        "/mcp/confirmations/{token_id}/approve",
        summary="Approve an agent's pending write",
        response_model=Approved,
    )
    async def approve(principal: Caller, token_id: TokenId) -> Response:
        """Approve an agent's pending write (its key's policy asks for a person): the
        write's scope is needed, and nobody approves their own."""
        found = await services.confirmations.approve(principal, token_id)
        body: dict[str, Any] = {
            "token_id": found.id,
            "operation": found.tool,
            "requested_by": found.principal,
            "approved_by": found.approved_by,
            "expires_at": rfc3339(found.expires_at),
        }
        return json_response(body)

    @routes.put(
        "/mcp/policies/{principal_id}",
        summary="Set whether a key's agent writes wait for a person",
        response_model=Policy,
    )
    async def set_policy(
        principal: Caller,
        principal_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
        body: Policy,
    ) -> Response:
        """Whether a key's agent writes wait for a person's approval (``admin``)."""
        await services.confirmations.set_policy(principal, principal_id, body.needs_person)
        return json_response(body.model_dump())

    return routes
